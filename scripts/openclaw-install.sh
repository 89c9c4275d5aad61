#!/usr/bin/env bash
# Install Node 24 and a pinned OpenClaw into a cache folder, for the OpenClaw client tests.
#
# Both come from the npm registry through the ordinary npm client: Node as the prebuilt
# `node-linux-<arch>` package (Debian 12 ships no Node 24), OpenClaw as its own package.
# Idempotent: a stamp file records what was installed; a second run with the same pins only
# checks the binaries and prints the paths. The npm download cache lives inside the same
# folder, so CI can cache that one folder between runs.
#
# Usage: scripts/openclaw-install.sh [--print-env]
#   TOLLGATE_CACHE     root of tollgate's caches (default: $HOME/.cache/tollgate)
#   OPENCLAW_DIR       install folder (default: $TOLLGATE_CACHE/openclaw)
#   OPENCLAW_VERSION   pinned OpenClaw version (default below)
#   NODE24_VERSION     pinned Node 24 version (default below)
# With --print-env the last lines are shell assignments (OPENCLAW_NODE_BIN=..., OPENCLAW_BIN=...)
# that a caller may `eval`.
set -euo pipefail

OPENCLAW_VERSION="${OPENCLAW_VERSION:-2026.9.6}"
NODE24_VERSION="${NODE24_VERSION:-24.22.3}"
CACHE_ROOT="${TOLLGATE_CACHE:-$HOME/.cache/tollgate}"
DIR="${OPENCLAW_DIR:-$CACHE_ROOT/openclaw}"
PRINT_ENV=0
[[ "${1:-}" == "--print-env" ]] && PRINT_ENV=1

log() { echo "[openclaw-install] $*" >&2; }

case "$(uname -m)" in
  x86_64 | amd64) ARCH=x64 ;;
  aarch64 | arm64) ARCH=arm64 ;;
  *) log "unsupported machine $(uname -m)"; exit 1 ;;
esac
NODE_PKG="node-linux-$ARCH"
NODE_DIR="$DIR/node-$NODE24_VERSION"
APP_DIR="$DIR/app-$OPENCLAW_VERSION"
NODE_BIN_DIR="$NODE_DIR/node_modules/$NODE_PKG/bin"
NODE_BIN="$NODE_BIN_DIR/node"
OPENCLAW_BIN="$APP_DIR/node_modules/.bin/openclaw"
NPM_CACHE="$DIR/npm-cache"
STAMP_NODE="$NODE_DIR/.installed"
STAMP_APP="$APP_DIR/.installed"

command -v npm >/dev/null || { log "npm is required (any version that can reach the registry)"; exit 1; }
mkdir -p "$DIR" "$NPM_CACHE"
# Two installs sharing one cache (parallel CI jobs) take turns.
if command -v flock >/dev/null; then
  exec 9>"$DIR/.lock"
  flock 9
fi

npm_install() {  # npm_install PREFIX SPEC...
  local prefix="$1"; shift
  npm install --no-audit --no-fund --no-update-notifier --ignore-scripts --loglevel=error \
    --cache "$NPM_CACHE" --prefer-offline --prefix "$prefix" "$@" >&2
}

# Node 24: installed into a temporary folder, renamed into place when complete.
if [[ -f "$STAMP_NODE" && -x "$NODE_BIN" ]]; then
  log "node $NODE24_VERSION cached"
else
  log "installing $NODE_PKG@$NODE24_VERSION"
  tmp="$NODE_DIR.tmp.$$"
  rm -rf "$tmp" "$NODE_DIR"
  mkdir -p "$tmp"
  echo '{"name":"tollgate-node24","private":true}' > "$tmp/package.json"
  npm_install "$tmp" "$NODE_PKG@$NODE24_VERSION"
  "$tmp/node_modules/$NODE_PKG/bin/node" --version >/dev/null
  echo "$NODE_PKG@$NODE24_VERSION" > "$tmp/.installed"
  mv "$tmp" "$NODE_DIR"
fi

# OpenClaw, installed with Node 24 first on PATH so npm runs under it. Install scripts are
# skipped (npm 11 blocks them by default anyway): none of OpenClaw's are needed, its native
# parts come as per-platform packages.
export PATH="$NODE_BIN_DIR:$PATH"
if [[ -f "$STAMP_APP" && -x "$OPENCLAW_BIN" ]]; then
  log "openclaw $OPENCLAW_VERSION cached"
else
  log "installing openclaw@$OPENCLAW_VERSION (about a minute with a cold cache)"
  tmp="$APP_DIR.tmp.$$"
  rm -rf "$tmp" "$APP_DIR"
  mkdir -p "$tmp"
  echo '{"name":"tollgate-openclaw","private":true}' > "$tmp/package.json"
  npm_install "$tmp" "openclaw@$OPENCLAW_VERSION"
  echo "openclaw@$OPENCLAW_VERSION" > "$tmp/.installed"
  mv "$tmp" "$APP_DIR"
fi

# Drop older pinned versions so the cache folder does not grow without end.
for old in "$DIR"/node-* "$DIR"/app-*; do
  [[ -d "$old" && "$old" != "$NODE_DIR" && "$old" != "$APP_DIR" ]] || continue
  log "removing stale $(basename "$old")"
  rm -rf "$old"
done

# Check that the pair really starts (the version banner needs Node >= 24.16).
version="$(OPENCLAW_NO_AUTO_UPDATE=1 DO_NOT_TRACK=1 HOME="$DIR/probe-home" \
  "$NODE_BIN" "$OPENCLAW_BIN" --version 2>/dev/null | tail -n 1)"
[[ "$version" == *"$OPENCLAW_VERSION"* ]] || { log "openclaw did not start: '$version'"; exit 1; }
log "node $("$NODE_BIN" --version), $version"

if [[ $PRINT_ENV == 1 ]]; then
  printf 'OPENCLAW_NODE_BIN=%q\n' "$NODE_BIN"
  printf 'OPENCLAW_BIN=%q\n' "$OPENCLAW_BIN"
  printf 'OPENCLAW_APP_DIR=%q\n' "$APP_DIR"
else
  echo "node:     $NODE_BIN"
  echo "openclaw: $OPENCLAW_BIN"
  echo "app dir:  $APP_DIR"
fi
