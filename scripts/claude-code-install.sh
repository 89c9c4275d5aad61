#!/usr/bin/env bash
# Install a pinned Claude Code into a cache folder, for the Claude Code client tests.
#
# It comes from the npm registry through the ordinary npm client, run under the Node 24 that
# scripts/openclaw-install.sh caches (one Node for every real client; Claude Code wants Node >= 22).
# Claude Code is a native binary shipped in a per-platform package
# (`@anthropic-ai/claude-code-linux-x64`); its postinstall only links it into place, so install
# scripts stay off and the tests run the platform binary itself (no Node needed to run it).
# Idempotent: a stamp file records what was installed; a second run with the same pin only checks
# the binary and prints its path. The npm download cache lives inside the same folder, so CI can
# cache that one folder.
#
# Usage: scripts/claude-code-install.sh [--print-env]
#   TOLLGATE_CACHE       root of tollgate's caches (default: $HOME/.cache/tollgate)
#   CLAUDE_CODE_DIR      install folder (default: $TOLLGATE_CACHE/claude-code)
#   CLAUDE_CODE_VERSION  pinned Claude Code version (default below)
# With --print-env the last line is a shell assignment (TOLLGATE_CLAUDE_BIN=...) that a caller may
# `eval`; tests/clients/test_claude_code.py runs that binary.
set -euo pipefail

CLAUDE_CODE_VERSION="${CLAUDE_CODE_VERSION:-2.1.328}"
CACHE_ROOT="${TOLLGATE_CACHE:-$HOME/.cache/tollgate}"
DIR="${CLAUDE_CODE_DIR:-$CACHE_ROOT/claude-code}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PRINT_ENV=0
[[ "${1:-}" == "--print-env" ]] && PRINT_ENV=1

LOG_NAME=claude-code-install
# shellcheck source=lib/npm-cache.sh
source "$ROOT/scripts/lib/npm-cache.sh"

# Node 24 (and npm under it) from the OpenClaw install's cache; its log lines go to stderr.
eval "$("$ROOT/scripts/openclaw-install.sh" --print-env | grep '^OPENCLAW_NODE_BIN=')"
[[ -x "${OPENCLAW_NODE_BIN:-}" ]] || { log "no Node 24 from scripts/openclaw-install.sh"; exit 1; }
export PATH="$(dirname "$OPENCLAW_NODE_BIN"):$PATH"

ARCH="$(machine_arch)"
LIBC=""
if ldd --version 2>&1 | grep -qi musl; then LIBC="-musl"; fi
APP_DIR="$DIR/app-$CLAUDE_CODE_VERSION"
CLAUDE_BIN="$APP_DIR/node_modules/@anthropic-ai/claude-code-linux-$ARCH$LIBC/claude"

cache_open "$DIR"
install_pinned "$APP_DIR" "@anthropic-ai/claude-code@$CLAUDE_CODE_VERSION" "$CLAUDE_BIN"
drop_stale "$APP_DIR"

# Check that it really starts (offline; a private HOME, since it writes its settings there).
version="$(HOME="$DIR/probe-home" DISABLE_AUTOUPDATER=1 CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 \
  timeout 60 "$CLAUDE_BIN" --version 2>/dev/null | tail -n 1 || true)"
[[ "$version" == *"$CLAUDE_CODE_VERSION"* ]] || { log "claude did not start: '$version'"; exit 1; }
log "$version"

if [[ $PRINT_ENV == 1 ]]; then
  printf 'TOLLGATE_CLAUDE_BIN=%q\n' "$CLAUDE_BIN"
else
  echo "claude: $CLAUDE_BIN"
fi
