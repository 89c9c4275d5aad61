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

LOG_NAME=openclaw-install
# shellcheck source=lib/npm-cache.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib/npm-cache.sh"

NODE_PKG="node-linux-$(machine_arch)"
NODE_DIR="$DIR/node-$NODE24_VERSION"
APP_DIR="$DIR/app-$OPENCLAW_VERSION"
NODE_BIN_DIR="$NODE_DIR/node_modules/$NODE_PKG/bin"
NODE_BIN="$NODE_BIN_DIR/node"
OPENCLAW_BIN="$APP_DIR/node_modules/.bin/openclaw"

cache_open "$DIR"
# Node 24, then OpenClaw with Node 24 first on PATH so npm runs under it. Install scripts are
# skipped (npm 11 blocks them by default anyway): none of OpenClaw's are needed, its native
# parts come as per-platform packages.
install_pinned "$NODE_DIR" "$NODE_PKG@$NODE24_VERSION" "$NODE_BIN"
"$NODE_BIN" --version >/dev/null
export PATH="$NODE_BIN_DIR:$PATH"
install_pinned "$APP_DIR" "openclaw@$OPENCLAW_VERSION" "$OPENCLAW_BIN"
drop_stale "$NODE_DIR" "$APP_DIR"

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
