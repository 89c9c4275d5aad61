#!/usr/bin/env bash
# The OpenClaw suite: installs Node 24 + the pinned OpenClaw (cached), then runs
#   1. the budget-park plugin's unit tests (node's test runner), and
#   2. the real-client tests (pytest): a real OpenClaw against the gateway under test, and the
#      plugin end to end in a real OpenClaw gateway.
#
# Usage: scripts/openclaw-test.sh [extra pytest args]
#   PYTEST   pytest to use (default: .venv/bin/pytest)
#   TOLLGATE_CACHE / OPENCLAW_VERSION / NODE24_VERSION: see scripts/openclaw-install.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTEST="${PYTEST:-$ROOT/.venv/bin/pytest}"
started=$SECONDS

eval "$("$ROOT/scripts/openclaw-install.sh" --print-env | grep -E '^OPENCLAW_(NODE_BIN|BIN|APP_DIR)=')"
export OPENCLAW_NODE_BIN OPENCLAW_BIN
echo "[openclaw-test] install ready after $((SECONDS - started))s"

echo "[openclaw-test] plugin unit tests"
(cd "$ROOT/integrations/openclaw" && "$OPENCLAW_NODE_BIN" --test test/*.test.js)

echo "[openclaw-test] real-client tests"
[[ -x "$PYTEST" ]] || { echo "[openclaw-test] no pytest at $PYTEST (create the venv first)" >&2; exit 1; }
TOLLGATE_OPENCLAW_REQUIRED=1 "$PYTEST" "$ROOT/tests/openclaw" -p no:cacheprovider -q "$@"

echo "[openclaw-test] done in $((SECONDS - started))s"
