#!/usr/bin/env bash
# Third-party OpenAI-compatible servers for the conformance suite (tests/conformance), each in its
# own virtual environment under the cache, built once:
#   llama-server-$LLAMA_VERSION   llama-cpp-python's own server (the wheel install.sh cached)
#   litellm-$LITELLM_VERSION      the LiteLLM proxy
# Their dependencies (FastAPI, pydantic, LiteLLM's many pins) stay out of the gateway's venv.
#
# Usage: scripts/upstreams-install.sh [--print-env]
#   --print-env   print TOLLGATE_LLAMA_SERVER_PYTHON=... and TOLLGATE_LITELLM_BIN=... for eval
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/python-cache.sh
source scripts/lib/python-cache.sh
# The newest release whose `proxy` extra resolves (see the gateway benchmark's setup).
LITELLM_VERSION=${LITELLM_VERSION:-1.108.7}
LLAMA_VENV="$CACHE/upstreams/llama-server-$LLAMA_VERSION"
LITELLM_VENV="$CACHE/upstreams/litellm-$LITELLM_VERSION"

build() {  # build VENV SPEC... : a venv made complete, or not at all (the marker comes last)
  local venv=$1; shift
  [ -f "$venv/.complete" ] && return 0
  echo "[upstreams] installing $* into $venv (once)..." >&2
  rm -rf "$venv"
  "$PYTHON" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip >&2
  "$venv/bin/python" -m pip install -q --find-links "$WHEELS" "$@" >&2
  touch "$venv/.complete"
}

ls "$WHEELS"/llama_cpp_python-"$LLAMA_VERSION"-*.whl >/dev/null 2>&1 || {
  echo "[upstreams] no llama-cpp-python wheel in $WHEELS: run scripts/install.sh first" >&2; exit 1; }
build "$LLAMA_VENV" "llama-cpp-python[server]==$LLAMA_VERSION"
build "$LITELLM_VENV" "litellm[proxy]==$LITELLM_VERSION"

if [ "${1:-}" = "--print-env" ]; then
  echo "TOLLGATE_LLAMA_SERVER_PYTHON=$LLAMA_VENV/bin/python"
  echo "TOLLGATE_LITELLM_BIN=$LITELLM_VENV/bin/litellm"
fi
