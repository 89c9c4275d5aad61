#!/usr/bin/env bash
# Gateway overhead, in one command: direct (nginx), tollgate, LiteLLM without a database and
# LiteLLM with PostgreSQL + a budgeted virtual key, all measured in the same run by the shared
# harness, then the ratios against the targets (bench/summarize.py).
#
#   bash bench/overhead.sh                         # the full run: json + stream, c = 1, 16, 64, 10 s each
#   bash bench/overhead.sh --duration 5 --concurrency 1,16   # any gateway_overhead.py option
#   ONLY=tollgate bash bench/overhead.sh           # direct + tollgate only (a quick check while optimising)
#   SCALED=0 bash bench/overhead.sh                # without tollgate-scaled (one worker on PostgreSQL + Redis)
#
# The harness (../shared/bench, read-only) is copied to $BENCH_COPY (default /tmp/bench) and set
# up there once (as root: Debian's nginx-light, wrk, postgresql; LiteLLM 1.108.7 in its own venv).
# Results: $BENCH_COPY/results/<run>.json; the summary is printed and written next to it (.txt).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SHARED="${SHARED_BENCH:-$REPO/../shared/bench}"
BENCH="${BENCH_COPY:-/tmp/bench}"

if [ ! -f "$BENCH/gateway_overhead.py" ]; then
  [ -f "$SHARED/gateway_overhead.py" ] || { echo "shared harness not found at $SHARED (set SHARED_BENCH)" >&2; exit 2; }
  mkdir -p "$(dirname "$BENCH")"
  cp -r "$SHARED" "$BENCH"
  chmod -R u+w "$BENCH"
fi

needs_setup=0
for tool in nginx wrk taskset; do command -v "$tool" >/dev/null || needs_setup=1; done
[ -x "$BENCH/.venv-litellm/bin/litellm" ] || needs_setup=1
[ -d "$BENCH/gateways/prisma-engine-shim/node_modules/@prisma/client" ] || needs_setup=1
if [ "$needs_setup" = 1 ]; then
  echo "setting up the harness in $BENCH (a few minutes)..." >&2
  bash "$BENCH/setup.sh"
fi

[ -x "$REPO/.venv/bin/python" ] || { echo "no $REPO/.venv: run make test (or make serve) once" >&2; exit 2; }

RUN="${RUN:-overhead-$(date +%Y%m%d-%H%M%S)}"
GATEWAYS=(--gateway tollgate "$REPO/bench/gateway.sh" "cmd:$REPO/bench/bench_key.sh")
if [ "${SCALED:-1}" = 1 ]; then
  # The scaled configuration: one worker, PostgreSQL and Redis on this machine (bench/scaled_services.sh).
  GATEWAYS+=(--gateway tollgate-scaled "GW_STORE=scaled $REPO/bench/gateway.sh" "cmd:$REPO/bench/bench_key.sh")
fi
if [ "${ONLY:-}" != "tollgate" ]; then
  GATEWAYS+=(
    --gateway litellm-nodb 'gateways/litellm.sh nodb' sk-bench-master-key
    --gateway litellm-db-vkey 'gateways/litellm.sh db' 'cmd:gateways/litellm_key.sh'
  )
fi

rc=0
python3 "$BENCH/gateway_overhead.py" --run "$RUN" --keep-going "${GATEWAYS[@]}" "$@" || rc=$?
RESULT="$BENCH/results/$RUN.json"
if [ -f "$RESULT" ]; then
  echo
  "$REPO/.venv/bin/python" "$REPO/bench/summarize.py" "$RESULT" | tee "$BENCH/results/$RUN.txt"
fi
exit "$rc"
