#!/usr/bin/env bash
# Local PostgreSQL and Redis for the scaled configuration (`make serve-scaled`, docs/deploy.md).
#
# Everything lives under DIR (default .tollgate/scaled): the PostgreSQL cluster (initdb on first use,
# a generated password kept in DIR/pg-password, 0600), Redis' append-only file, the gateway's journal
# slots, and DIR/tollgate.toml (written once, then yours to edit). Both servers listen on 127.0.0.1
# only. PostgreSQL will not run as root: as root it runs as the `postgres` user Debian's package
# creates (the same logic as tests/support/services.py). The programs: scripts/services-install.sh.
#
# Usage:
#   scripts/scaled-services.sh start [DIR]         start both (if not running), write DIR/tollgate.toml if missing
#   scripts/scaled-services.sh stop [DIR]          stop both
#   scripts/scaled-services.sh run DIR -- CMD...   start, run CMD, stop both when it ends (Ctrl-C included)
# Ports: TOLLGATE_SCALED_PG_PORT (default 55432), TOLLGATE_SCALED_REDIS_PORT (default 56379).
set -euo pipefail
cd "$(dirname "$0")/.."
ACTION="${1:-}"
DIR="${2:-.tollgate/scaled}"
PG_PORT="${TOLLGATE_SCALED_PG_PORT:-55432}"
REDIS_PORT="${TOLLGATE_SCALED_REDIS_PORT:-56379}"
log() { echo "[scaled-services] $*" >&2; }

setup() {
  mkdir -p "$DIR"
  DIR="$(cd "$DIR" && pwd)"
  while IFS='=' read -r name value; do
    [[ "$name" =~ ^TOLLGATE_[A-Z_]+$ ]] && export "$name=$value"
  done <<< "$(bash scripts/services-install.sh --print-env)"
  PG_BIN="$TOLLGATE_PG_BIN"
  AS=()
  if [[ "$(id -u)" == 0 ]]; then
    AS=(runuser -u postgres --)
  fi
}

as_pg() { "${AS[@]}" "$@"; }

start_postgres() {
  local data="$DIR/postgres/data" pwfile="$DIR/pg-password"
  mkdir -p "$DIR/postgres"
  if [[ ! -f "$data/PG_VERSION" ]]; then
    log "initdb $data (first use)"
    (umask 077; head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$pwfile")
    local tmp_pw="$DIR/postgres/pw"
    cp "$pwfile" "$tmp_pw"
    if (( ${#AS[@]} )); then
      chown postgres:postgres "$DIR/postgres" "$tmp_pw"
      as_pg test -x "$DIR/postgres" || {
        log "the postgres user cannot enter $DIR (a parent folder is private): pick another, e.g."
        log "  make serve-scaled SCALED_DIR=/var/tmp/tollgate-scaled"; exit 1; }
    fi
    as_pg "$PG_BIN/initdb" -D "$data" -U tollgate --pwfile "$tmp_pw" -A scram-sha-256 -E UTF8 >/dev/null
    rm -f "$tmp_pw"
  fi
  if as_pg "$PG_BIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    log "PostgreSQL already running ($data)"
  else
    as_pg "$PG_BIN/pg_ctl" -D "$data" -l "$DIR/postgres/postgres.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -c port=$PG_PORT -c unix_socket_directories=$DIR/postgres -c max_connections=200" \
      start >/dev/null
    log "PostgreSQL on 127.0.0.1:$PG_PORT"
  fi
  # The password through the environment, not the command line (which every user can read in ps).
  local psql=("$PG_BIN/psql" -X -h 127.0.0.1 -p "$PG_PORT" -U tollgate -d postgres)
  local pw
  pw="$(cat "$pwfile")"
  if [[ "$(PGPASSWORD="$pw" "${psql[@]}" -A -t -c "SELECT 1 FROM pg_database WHERE datname = 'tollgate'")" != 1 ]]; then
    PGPASSWORD="$pw" "${psql[@]}" -q -c "CREATE DATABASE tollgate" >/dev/null
  fi
}

start_redis() {
  mkdir -p "$DIR/redis"
  if [[ -f "$DIR/redis/redis.pid" ]] && kill -0 "$(cat "$DIR/redis/redis.pid")" 2>/dev/null; then
    log "Redis already running"
    return
  fi
  # appendonly everysec: a crash loses at most a second of counters, which are rebuilt from PostgreSQL.
  "$TOLLGATE_REDIS_SERVER" --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$DIR/redis" --appendonly yes \
    --appendfsync everysec --save "" --protected-mode yes --daemonize yes --pidfile "$DIR/redis/redis.pid" \
    --logfile "$DIR/redis/redis.log"
  local tries=0
  until [[ -f "$DIR/redis/redis.pid" ]] && (exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT") 2>/dev/null; do
    (( ++tries < 100 )) || { log "Redis did not start: $DIR/redis/redis.log"; exit 1; }
    sleep 0.1
  done
  log "Redis on 127.0.0.1:$REDIS_PORT"
}

write_config() {
  local config="$DIR/tollgate.toml"
  [[ -f "$config" ]] && return
  (umask 077; cat > "$config" <<EOF
# The scaled configuration on this machine (scripts/scaled-services.sh wrote it once; edit freely).
# docs/deploy.md explains every key. The password is this local cluster's own (DIR/pg-password).
[server]
database = "postgresql://tollgate:$(cat "$DIR/pg-password")@127.0.0.1:$PG_PORT/tollgate"
redis = "redis://127.0.0.1:$REDIS_PORT/0"
workers = 2

[ledger]
journal_dir = "$DIR/journal"
EOF
  )
  log "wrote $config"
}

stop_all() {
  if [[ -f "$DIR/redis/redis.pid" ]]; then
    kill "$(cat "$DIR/redis/redis.pid")" 2>/dev/null || true
    rm -f "$DIR/redis/redis.pid"
  fi
  if [[ -f "$DIR/postgres/data/PG_VERSION" ]]; then
    as_pg "$PG_BIN/pg_ctl" -D "$DIR/postgres/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  log "stopped"
}

case "$ACTION" in
  start) setup; start_postgres; start_redis; write_config ;;
  stop) setup; stop_all ;;
  run)
    shift 2
    [[ "${1:-}" == "--" ]] && shift
    setup; start_postgres; start_redis; write_config
    trap stop_all EXIT
    "$@" ;;
  *) echo "usage: $0 start|stop [DIR] | run DIR -- COMMAND..." >&2; exit 2 ;;
esac
