#!/usr/bin/env bash
# Run a command with every outside program the suite drives installed (each cached) and required:
#   scripts/upstreams-install.sh    llama-cpp-python's server and the LiteLLM proxy (tests/conformance)
#   scripts/claude-code-install.sh  Claude Code (tests/clients)
#   scripts/codex-install.sh        Codex CLI (tests/clients)
#   scripts/browser-install.sh      Chromium (apt-get) and Playwright (tests/browser)
#   scripts/services-install.sh     PostgreSQL and Redis servers (apt-get; tests/scaled)
# A failed install stops here; with the programs in place, a test that cannot find one fails
# instead of skipping (TOLLGATE_*_REQUIRED=1).
#
# Usage: scripts/with-test-tools.sh COMMAND [ARGS...]
set -euo pipefail
cd "$(dirname "$0")/.."
for installer in upstreams-install claude-code-install codex-install browser-install services-install; do
  env_lines="$(bash "scripts/$installer.sh" --print-env)"
  while IFS='=' read -r name value; do
    [[ "$name" =~ ^[A-Z_][A-Z0-9_]*$ ]] || continue
    export "$name=$value"
  done <<< "$env_lines"
done
export TOLLGATE_CONFORMANCE_REQUIRED=1 TOLLGATE_CLIENTS_REQUIRED=1 TOLLGATE_BROWSER_REQUIRED=1 TOLLGATE_SERVICES_REQUIRED=1
exec "$@"
