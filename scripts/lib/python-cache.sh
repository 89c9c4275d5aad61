# Shared by scripts/install.sh and scripts/upstreams-install.sh: where Python builds are cached and
# the one llama-cpp-python pin (its wheel compiles for minutes, so both must mean the same one).
PYTHON=${PYTHON:-python3}
CACHE=${TOLLGATE_CACHE:-$HOME/.cache/tollgate}
WHEELS="$CACHE/wheels"
LLAMA_VERSION=0.3.36
