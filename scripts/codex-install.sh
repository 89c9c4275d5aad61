#!/usr/bin/env bash
# Install a pinned Codex CLI into a cache folder, for the Codex client tests (tests/clients/).
#
# Codex comes from the npm registry through the ordinary npm client: `@openai/codex` (a small
# Node launcher) and its per-platform package with the native binary. Node 24 is the one
# scripts/openclaw-install.sh caches (asked with --print-env), so both share one Node.
# Idempotent: a stamp file records what was installed; a second run with the same pin only
# checks the binary and prints the paths.
#
# Usage: scripts/codex-install.sh [--print-env]
#   TOLLGATE_CACHE   root of tollgate's caches (default: $HOME/.cache/tollgate)
#   CODEX_DIR        install folder (default: $TOLLGATE_CACHE/codex)
#   CODEX_VERSION    pinned Codex CLI version (default below)
# With --print-env the last line is a shell assignment (TOLLGATE_CODEX_BIN=...) that a caller
# may `eval`; the tests find Codex through that variable.
set -euo pipefail

CODEX_VERSION="${CODEX_VERSION:-0.169.0}"
CACHE_ROOT="${TOLLGATE_CACHE:-$HOME/.cache/tollgate}"
DIR="${CODEX_DIR:-$CACHE_ROOT/codex}"
PRINT_ENV=0
[[ "${1:-}" == "--print-env" ]] && PRINT_ENV=1
HERE="$(cd "$(dirname "$0")" && pwd)"

LOG_NAME=codex-install
# shellcheck source=lib/npm-cache.sh
source "$HERE/lib/npm-cache.sh"

# Node 24 (and npm under it) from the OpenClaw install's cache.
eval "$("$HERE/openclaw-install.sh" --print-env | grep '^OPENCLAW_NODE_BIN=')"
export PATH="$(dirname "$OPENCLAW_NODE_BIN"):$PATH"

APP_DIR="$DIR/app-$CODEX_VERSION"
LAUNCHER="$APP_DIR/node_modules/@openai/codex/bin/codex.js"
CODEX_BIN="$DIR/codex-$CODEX_VERSION"  # a wrapper that runs the launcher with Node 24

cache_open "$DIR"
install_pinned "$APP_DIR" "@openai/codex@$CODEX_VERSION" "$LAUNCHER"

# The wrapper: tests and people run one path, whatever Node is first on their PATH.
printf '#!/bin/sh\nexec %q %q "$@"\n' "$OPENCLAW_NODE_BIN" "$LAUNCHER" > "$CODEX_BIN.tmp"
chmod +x "$CODEX_BIN.tmp"
mv "$CODEX_BIN.tmp" "$CODEX_BIN"
drop_stale "$APP_DIR" "$CODEX_BIN"

version="$(HOME="$DIR/probe-home" CODEX_HOME="$DIR/probe-home/.codex" "$CODEX_BIN" --version 2>/dev/null | tail -n 1)"
[[ "$version" == *"$CODEX_VERSION"* ]] || { log "codex did not start: '$version'"; exit 1; }
log "$version"

if [[ $PRINT_ENV == 1 ]]; then
  printf 'TOLLGATE_CODEX_BIN=%q\n' "$CODEX_BIN"
else
  echo "codex: $CODEX_BIN"
fi
