#!/usr/bin/env bash
# A real Chromium and Playwright for Python, for the dashboard's browser tests (tests/browser/).
#
# Playwright drives the system's Chromium (Debian's `chromium` package) through `executable_path`:
# its own browser download is never used. Chromium comes from apt-get when it is missing (as root,
# or through sudo without a password); Playwright comes from PyPI through pip into .venv (it is in
# the `test` extras, so scripts/install.sh has usually installed it already).
# Idempotent: with both in place it only checks them and prints the path.
#
# Usage: scripts/browser-install.sh [--print-env]
#   TOLLGATE_CHROMIUM  the Chromium to drive (default: /usr/bin/chromium, installed by apt-get if missing)
# With --print-env the last line is a shell assignment (TOLLGATE_CHROMIUM=...) that a caller may
# export; tests/browser/conftest.py launches that browser.
set -euo pipefail
cd "$(dirname "$0")/.."
CHROMIUM="${TOLLGATE_CHROMIUM:-/usr/bin/chromium}"
PRINT_ENV=0
[[ "${1:-}" == "--print-env" ]] && PRINT_ENV=1
log() { echo "[browser-install] $*" >&2; }

if [[ ! -x "$CHROMIUM" ]]; then
  if [[ "$CHROMIUM" != /usr/bin/chromium ]]; then
    log "TOLLGATE_CHROMIUM=$CHROMIUM is not an executable file"; exit 1
  fi
  command -v apt-get >/dev/null || { log "no Chromium and no apt-get: install Chromium and set TOLLGATE_CHROMIUM"; exit 1; }
  SUDO=()
  if [[ "$(id -u)" != 0 ]]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
      SUDO=(sudo -n)
    else
      log "no Chromium, and this user cannot run apt-get: install Debian's 'chromium' package"; exit 1
    fi
  fi
  log "installing chromium with apt-get (once)..."
  export DEBIAN_FRONTEND=noninteractive
  if ! "${SUDO[@]}" apt-get install -y -q chromium >&2; then
    "${SUDO[@]}" apt-get update -q >&2
    "${SUDO[@]}" apt-get install -y -q chromium >&2
  fi
fi
version="$("$CHROMIUM" --version 2>/dev/null || true)"
[[ "$version" == *Chromium* || "$version" == *Chrome* ]] || { log "$CHROMIUM did not start: '$version'"; exit 1; }
log "$version"

PY=.venv/bin/python
[[ -x "$PY" ]] || { log "no .venv here: run scripts/install.sh first"; exit 1; }
if ! "$PY" -c "import playwright.sync_api" 2>/dev/null; then
  log "installing playwright into .venv..."
  "$PY" -m pip install -q "playwright>=1.50" >&2
fi

if [[ $PRINT_ENV == 1 ]]; then
  printf 'TOLLGATE_CHROMIUM=%q\n' "$CHROMIUM"
else
  echo "chromium: $CHROMIUM"
fi
