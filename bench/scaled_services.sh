# Sourced by bench/gateway.sh with GW_STORE=scaled: PostgreSQL and Redis for one benchmark run.
#
# Both run as children of the gateway script, pinned to AUX_CPU (the load core), in GW_WORKDIR, the
# way the harness's gateways/litellm.sh runs LiteLLM's PostgreSQL, so the harness counts their CPU in
# the gateway's process tree. PostgreSQL with its defaults for durability (fsync on, synchronous
# commit), as a deployment runs it (docs/deploy.md); Redis with an append-only file, fsync every
# second, as docs/deploy.md recommends. Sets DATABASE, REDIS_URL and STORE_INFO for the config,
# and a trap that stops the gateway ($GW_PID, once set), then PostgreSQL and Redis.
PG_BIN="$(bash "$REPO/scripts/services-install.sh" --print-env | sed -n 's/^TOLLGATE_PG_BIN=//p')"
REDIS_SERVER="$(bash "$REPO/scripts/services-install.sh" --print-env | sed -n 's/^TOLLGATE_REDIS_SERVER=//p')"
AUX="${AUX_CPU:-1}"
PG_PORT="${BENCH_PG_PORT:-$((GW_PORT + 1000))}"
REDIS_PORT="${BENCH_REDIS_PORT:-$((GW_PORT + 1001))}"
PGDATA="$GW_WORKDIR/pgdata"
PGSOCK="$GW_WORKDIR/pgsock"
AS=()
if [ "$(id -u)" = 0 ]; then   # PostgreSQL refuses to run as root; setpriv execs in place (the pid is postgres)
  chown postgres "$GW_WORKDIR"
  AS=(setpriv --reuid=postgres --regid=postgres --init-groups --)
fi
mkdir -p "$PGSOCK" "$GW_WORKDIR/redis"
[ "$(id -u)" = 0 ] && chown postgres "$PGSOCK"
rm -rf "$PGDATA"
"${AS[@]}" "$PG_BIN/initdb" -D "$PGDATA" -U postgres -A trust -E UTF8 --no-locale >"$GW_WORKDIR/initdb.log" 2>&1
taskset -c "$AUX" "${AS[@]}" "$PG_BIN/postgres" -D "$PGDATA" -c listen_addresses=127.0.0.1 -c port="$PG_PORT" \
  -c unix_socket_directories="$PGSOCK" -c max_connections=100 -c shared_buffers=256MB \
  >"$GW_WORKDIR/postgres.log" 2>&1 &
PG_PID=$!
taskset -c "$AUX" "$REDIS_SERVER" --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$GW_WORKDIR/redis" --save "" \
  --appendonly yes --appendfsync everysec --protected-mode yes >"$GW_WORKDIR/redis.log" 2>&1 &
REDIS_PID=$!
GW_PID=""
scaled_cleanup() {
  trap - TERM INT EXIT
  if [ -n "$GW_PID" ]; then kill -TERM "$GW_PID" 2>/dev/null || true; wait "$GW_PID" 2>/dev/null || true; fi
  kill -INT "$PG_PID" 2>/dev/null || true   # PostgreSQL's fast shutdown
  kill -TERM "$REDIS_PID" 2>/dev/null || true
  wait "$PG_PID" "$REDIS_PID" 2>/dev/null || true
}
trap scaled_cleanup TERM INT EXIT
for _ in $(seq 1 150); do
  "${AS[@]}" "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" 2>/dev/null && break
  sleep 0.2
done
"${AS[@]}" "$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -c "CREATE DATABASE tollgate" >/dev/null
for _ in $(seq 1 150); do
  (exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT") 2>/dev/null && break
  sleep 0.1
done
DATABASE="postgresql://postgres@127.0.0.1:$PG_PORT/tollgate"
REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
STORE_INFO="scaled: PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') + Redis $("$REDIS_SERVER" --version | awk '{print $3}' | cut -d= -f2) on CPU $AUX"
