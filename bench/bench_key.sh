#!/usr/bin/env bash
# Mint a tollgate key for the harness (`cmd:` KEY mode): an account, a `bench`
# subscription, and a subscription key with its own budget too, so both the pool and
# the key's budget are checked on every request. Prints the sk_ key on the last line.
#
# Environment: GW_BASE_URL (from the harness), TOLLGATE_ADMIN_TOKEN (as bench/gateway.sh).
set -euo pipefail
: "${GW_BASE_URL:?}"
TOKEN="${TOLLGATE_ADMIN_TOKEN:-bench_SJzEDZUiuxx-OYXWSB0WV7iY5nopxXNAN8L2N5g6GPE}"
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print(d$1)"; }
post() {  # post URL AUTH BODY
  curl -sS --fail-with-body --max-time 30 -X POST "$1" -H "Authorization: Bearer $2" \
    -H 'Content-Type: application/json' -d "$3"
}
ACCOUNT=$(post "$GW_BASE_URL/admin/accounts" "$TOKEN" '{"name": "bench"}')
ACCOUNT_ID=$(printf '%s' "$ACCOUNT" | json '["data"]["id"]')
MK=$(printf '%s' "$ACCOUNT" | json '["data"]["managementKey"]')
SUB_ID=$(post "$GW_BASE_URL/admin/accounts/$ACCOUNT_ID/subscriptions" "$TOKEN" '{"plan": "bench"}' | json '["data"]["id"]')
KEY=$(post "$GW_BASE_URL/api/keys/subscription" "$MK" \
  "{\"name\": \"bench\", \"subscriptionId\": \"$SUB_ID\", \"budget\": {\"limit\": 100000, \"window\": \"1d\"}}" \
  | json '["data"]["apiKey"]')
echo "account $ACCOUNT_ID, subscription $SUB_ID (plan bench), key with its own \$100,000/day budget" >&2
echo "$KEY"
