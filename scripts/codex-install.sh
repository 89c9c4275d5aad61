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

log() { echo "[codex-install] $*" >&2; }

# Node 24 (and npm under it) from the OpenClaw install's cache.
eval "$("$HERE/openclaw-install.sh" --print-env | grep '^OPENCLAW_NODE_BIN=')"
NODE_BIN_DIR="$(dirname "$OPENCLAW_NODE_BIN")"
export PATH="$NODE_BIN_DIR:$PATH"

APP_DIR="$DIR/app-$CODEX_VERSION"
LAUNCHER="$APP_DIR/node_modules/@openai/codex/bin/codex.js"
CODEX_BIN="$DIR/codex-$CODEX_VERSION"  # a wrapper that runs the launcher with Node 24
NPM_CACHE="$DIR/npm-cache"
STAMP="$APP_DIR/.installed"

command -v npm >/dev/null || { log "npm is required (any version that can reach the registry)"; exit 1; }
mkdir -p "$DIR" "$NPM_CACHE"
if command -v flock >/dev/null; then
  exec 9>"$DIR/.lock"
  flock 9
fi

if [[ -f "$STAMP" && -f "$LAUNCHER" ]]; then
  log "codex $CODEX_VERSION cached"
else
  log "installing @openai/codex@$CODEX_VERSION"
  tmp="$APP_DIR.tmp.$$"
  rm -rf "$tmp" "$APP_DIR"
  mkdir -p "$tmp"
  echo '{"name":"tollgate-codex","private":true}' > "$tmp/package.json"
  npm install --no-audit --no-fund --no-update-notifier --ignore-scripts --loglevel=error \
    --cache "$NPM_CACHE" --prefer-offline --prefix "$tmp" "@openai/codex@$CODEX_VERSION" >&2
  echo "@openai/codex@$CODEX_VERSION" > "$tmp/.installed"
  mv "$tmp" "$APP_DIR"
fi

# The wrapper: tests and people run one path, whatever Node is first on their PATH.
printf '#!/bin/sh\nexec %q %q "$@"\n' "$OPENCLAW_NODE_BIN" "$LAUNCHER" > "$CODEX_BIN.tmp"
chmod +x "$CODEX_BIN.tmp"
mv "$CODEX_BIN.tmp" "$CODEX_BIN"

for old in "$DIR"/app-* "$DIR"/codex-*; do
  [[ -e "$old" && "$old" != "$APP_DIR" && "$old" != "$CODEX_BIN" ]] || continue
  log "removing stale $(basename "$old")"
  rm -rf "$old"
done

version="$(HOME="$DIR/probe-home" CODEX_HOME="$DIR/probe-home/.codex" "$CODEX_BIN" --version 2>/dev/null | tail -n 1)"
[[ "$version" == *"$CODEX_VERSION"* ]] || { log "codex did not start: '$version'"; exit 1; }
log "$version"

if [[ $PRINT_ENV == 1 ]]; then
  printf 'TOLLGATE_CODEX_BIN=%q\n' "$CODEX_BIN"
else
  echo "codex: $CODEX_BIN"
fi
