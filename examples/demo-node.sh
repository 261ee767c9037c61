#!/usr/bin/env bash
# Starts one seckill node on the embedded default (cluster.conf: SQLite in
# ./data, HTTP on 127.0.0.1:8080, CLI port 127.0.0.1:4242), creates a demo
# item through the admin API, prints the commands to buy it, and keeps the
# node in the foreground until Ctrl-C (SIGINT: the node drains, commits and
# exits 0). Run from the top of the checkout after building.
set -euo pipefail
node_bin=./build/seckill-node
conf=cluster.conf
log=./data/node.log
mkdir -p ./data
"$node_bin" --config-file="$conf" "$@" >"$log" 2>&1 &
pid=$!
stop() { kill -INT "$pid" 2>/dev/null || true; wait "$pid" || true; }
trap stop INT TERM
for _ in $(seq 1 100); do
  grep -q '^node_ready' "$log" 2>/dev/null && break
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "seckill-node did not start:"; cat "$log"; exit 1
  fi
  sleep 0.1
done
ready=$(grep '^node_ready' "$log") || { echo "node not ready:"; cat "$log"; stop; exit 1; }
http=$(sed -E 's/.* http=([^ ]+).*/\1/' <<<"$ready")
cluster=$(sed -E 's/.* cluster=([^ ]+).*/\1/' <<<"$ready")
token=$(cat ./data/admin-token 2>/dev/null || true)
echo "$ready"
echo "admin token: ./data/admin-token    log: $log"
code=$(curl -s -o /tmp/seckill-demo-item.json -w '%{http_code}' \
  -X POST "http://$http/api/v1/items" \
  -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
  -d '{"item_id":"demo-phone","name":"Demo phone","total":100,"per_user_limit":1,"mode":"order","price_cents":99900}')
case "$code" in
  201) echo "created item demo-phone: $(cat /tmp/seckill-demo-item.json)";;
  409) echo "item demo-phone exists already (kept in ./data from an earlier run)";;
  *) echo "creating the demo item failed ($code): $(cat /tmp/seckill-demo-item.json)";;
esac
# A buyer signs in: the site's login service would sign this JWT; here the
# CLI signs it with the node's buyer secret (./data/buyer-jwt-secret).
jwt=$(./build/seckill-cli buyer-token --user alice --data-dir ./data)
cat <<MSG

alice's buyer JWT (signed with ./data/buyer-jwt-secret, valid for an hour):
  jwt=$jwt
The sale token (only once the sale is on; the item is admission "token"):
  sale=\$(curl -s -X POST http://$http/api/v1/items/demo-phone/token -H "Authorization: Bearer \$jwt" | sed -E 's/.*"sale_token":"([^"]*)".*/\\1/')
Buy (201 with the order; the same request_id again returns the same order):
  curl -s -X POST http://$http/api/v1/items/demo-phone/purchase -H "Authorization: Bearer \$jwt" -H 'Content-Type: application/json' -d "{\"quantity\":1,\"request_id\":\"alice-1\",\"sale_token\":\"\$sale\"}"
Stock (tiny, dynamic) and the item (static, with an ETag):
  curl -s http://$http/api/v1/items/demo-phone/stock
  curl -si http://$http/api/v1/items/demo-phone
The order (only its buyer may see it):
  curl -s http://$http/api/v1/orders/demo-phone.1 -H "Authorization: Bearer \$jwt"
Inspect the node's actors:
  ./build/seckill-cli --node $cluster --data-dir ./data status
  ./build/seckill-cli --node $cluster --data-dir ./data item demo-phone
Metrics:  curl -s http://$http/metrics

The node runs until Ctrl-C.
MSG
wait "$pid"
