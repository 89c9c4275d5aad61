#!/usr/bin/env bash
# PostgreSQL and Redis servers for the scaled configuration's tests (tests/scaled/, tests/support/services.py).
#
# Debian's `postgresql` and `redis-server` packages, from apt-get when missing (as root, or through sudo
# without a password). The packages' own services are not used: each test session starts its own
# throw-away servers on loopback (PostgreSQL as the `postgres` user when the tests run as root).
# Idempotent: with both in place it only finds them.
#
# Usage: scripts/services-install.sh [--print-env]
# With --print-env the last lines are shell assignments a caller may export:
#   TOLLGATE_PG_BIN        the directory of PostgreSQL's initdb, pg_ctl, postgres
#   TOLLGATE_REDIS_SERVER  the redis-server program
set -euo pipefail
cd "$(dirname "$0")/.."
PRINT_ENV=0
[[ "${1:-}" == "--print-env" ]] && PRINT_ENV=1
log() { echo "[services-install] $*" >&2; }

find_pg_bin() {
  local dir
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [[ -x "$dir/initdb" && -x "$dir/pg_ctl" ]] && { echo "$dir"; return 0; }
  done
  return 1
}

missing=()
find_pg_bin >/dev/null || missing+=(postgresql)
command -v redis-server >/dev/null || [[ -x /usr/bin/redis-server ]] || missing+=(redis-server)
if (( ${#missing[@]} )); then
  command -v apt-get >/dev/null || { log "no ${missing[*]} and no apt-get: install them"; exit 1; }
  SUDO=()
  if [[ "$(id -u)" != 0 ]]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
      SUDO=(sudo -n)
    else
      log "no ${missing[*]}, and this user cannot run apt-get: install Debian's ${missing[*]}"; exit 1
    fi
  fi
  log "installing ${missing[*]} with apt-get (once)..."
  export DEBIAN_FRONTEND=noninteractive
  if ! "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >&2; then
    "${SUDO[@]}" apt-get update -q >&2
    "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
  fi
  # The packages start their own services on install where a service manager runs: not ours, stop them.
  if command -v service >/dev/null; then
    "${SUDO[@]}" service redis-server stop >/dev/null 2>&1 || true
    "${SUDO[@]}" service postgresql stop >/dev/null 2>&1 || true
  fi
fi
PG_BIN="$(find_pg_bin)" || { log "PostgreSQL's initdb not found under /usr/lib/postgresql"; exit 1; }
REDIS_SERVER="$(command -v redis-server || echo /usr/bin/redis-server)"
log "$("$PG_BIN/postgres" --version), $("$REDIS_SERVER" --version | cut -d' ' -f1-3)"
if (( PRINT_ENV )); then
  echo "TOLLGATE_PG_BIN=$PG_BIN"
  echo "TOLLGATE_REDIS_SERVER=$REDIS_SERVER"
fi
