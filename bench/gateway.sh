#!/usr/bin/env bash
# Start tollgate for the shared gateway-overhead harness (its `CMD`), in the foreground.
#
# Writes a config with one upstream ($UPSTREAM_BASE_URL), one model ($BENCH_MODEL,
# priced like gpt-4o-mini: $0.15 / $0.60 per million tokens) and a `bench` plan whose
# budget per window is so large that it never runs out mid-run, but is still checked
# (reserve -> settle) on every request. Usage records and spend go to SQLite in
# $GW_WORKDIR, group-committed before each response completes (always on in tollgate).
# bench/bench_key.sh then mints the key the load uses.
#
# Environment from the harness: GW_PORT, UPSTREAM_BASE_URL, GW_WORKDIR, GW_INFO_FILE, AUX_CPU.
# Optional: TOLLGATE_PYTHON (default: the repo's .venv), BENCH_MODEL,
#           TOLLGATE_ADMIN_TOKEN (default: a fixed bench token; 32+ characters, as tollgate requires),
#           GW_STORE=scaled: the scaled configuration instead (one worker, PostgreSQL and Redis on this
#           machine, started here as children of this script on AUX_CPU, as gateways/litellm.sh starts
#           LiteLLM's PostgreSQL: the harness counts their CPU in the gateway's process tree).
set -euo pipefail
: "${GW_PORT:?}" "${UPSTREAM_BASE_URL:?}" "${GW_WORKDIR:?}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${TOLLGATE_PYTHON:-$REPO/.venv/bin/python}"
MODEL="${BENCH_MODEL:-fake-gpt-4o-mini}"
export TOLLGATE_ADMIN_TOKEN="${TOLLGATE_ADMIN_TOKEN:-bench_SJzEDZUiuxx-OYXWSB0WV7iY5nopxXNAN8L2N5g6GPE}"
mkdir -p "$GW_WORKDIR"
CONFIG="$GW_WORKDIR/tollgate.toml"
DATABASE="sqlite:///$GW_WORKDIR/tollgate.db"
STORE_INFO="sqlite (WAL, group commit)"
SCALED_TOML=""
if [ "${GW_STORE:-embedded}" = scaled ]; then
  source "$REPO/bench/scaled_services.sh"   # starts them; sets DATABASE, REDIS_URL, STORE_INFO; cleans up on exit
  SCALED_TOML="redis = \"$REDIS_URL\"
[ledger]
journal_dir = \"$GW_WORKDIR/journal\""
fi
cat > "$CONFIG" <<TOML
[server]
host = "127.0.0.1"
port = $GW_PORT
database = "$DATABASE"
$SCALED_TOML

[[upstreams]]
name = "fake"
base_url = "$UPSTREAM_BASE_URL"
timeout = 60
first_byte_timeout = 30

[[models]]
id = "$MODEL"
upstream = "fake"
upstream_model = "gpt-4o-mini"
input_per_mtok = "0.15"
output_per_mtok = "0.60"
context = 128000
max_output = 16384

# A budget that never runs out in a run (about \$0.0001 per request), but is reserved and
# settled on every request like any other; per-minute limits far above what one core does.
[[plans]]
slug = "bench"
name = "Bench"
window = "1d"
budget_per_window = 1000000
rpm = 1000000000
tpm = 1000000000
TOML

"$PY" - "$CONFIG" "$STORE_INFO" > "${GW_INFO_FILE:-/dev/null}" <<'PY'
import json, platform, sys
from importlib.metadata import PackageNotFoundError, version
def v(p):
    try:
        return version(p)
    except PackageNotFoundError:
        return None
print(json.dumps({"gateway": "tollgate", "tollgate": v("tollgate"), "uvicorn": v("uvicorn"),
                  "uvloop": v("uvloop"), "httptools": v("httptools"), "orjson": v("orjson"),
                  "python": platform.python_version(), "workers": 1, "database": sys.argv[2],
                  "budget": "plan bench: $1,000,000 per 1d window, reserved + settled per request",
                  "config": sys.argv[1]}))
PY

if [ "${GW_STORE:-embedded}" = scaled ]; then
  "$PY" -m tollgate serve --config "$CONFIG" &
  GW_PID=$!
  wait "$GW_PID"   # the trap of bench/scaled_services.sh stops the gateway, then PostgreSQL and Redis
else
  exec "$PY" -m tollgate serve --config "$CONFIG"
fi
