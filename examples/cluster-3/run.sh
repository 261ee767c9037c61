#!/usr/bin/env bash
# The three-node example on loopback: starts n1, n2 and n3 (n*.conf here),
# over TLS with peer certificates (made here, in ./data/cluster-3/tls),
# waits until each has joined the other two, creates four items through n1
# (each is created on its owner), runs a small crowd of 600 buyers spread
# over all three nodes' HTTP bridges, and prints what each node answered,
# the stock as every node sees it, and `seckill-cli nodes`. Then it stops
# the nodes (SIGTERM: drain, commit, exit 0); with --keep it leaves them
# running and prints how to stop them.
# Run from the top of the checkout after building. It starts from an empty
# ./data/cluster-3 (this example's own directory) every time.
set -euo pipefail
keep=false
[[ "${1:-}" == "--keep" ]] && keep=true
node_bin=./build/seckill-node
cli_bin=./build/seckill-cli
dir=./data/cluster-3
rm -rf "$dir"
mkdir -p "$dir"
# The cluster port is TLS with peer certificates ([openssl] in n*.conf):
# a CA, a certificate for each member and one for the CLI.
bash examples/tls/make-certs.sh "$dir/tls" n1 n2 n3 cli
# The secrets every member shares (n*.conf names the files): the site's
# login service signs buyer JWTs with the first; the nodes sign sale tokens
# with the second.
(umask 077 && openssl rand -hex 32 >"$dir/buyer-jwt-secret" \
  && openssl rand -hex 32 >"$dir/sale-secret")
pids=()
stop() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap 'stop; exit 1' INT TERM
for i in 1 2 3; do
  "$node_bin" --config-file="examples/cluster-3/n$i.conf" >"$dir/n$i.log" 2>&1 &
  pids+=($!)
done
# Ready, and joined: every node logs peer_up for the two others.
for _ in $(seq 1 100); do
  joined=0
  for i in 1 2 3; do
    n=$(grep -c 'peer_up' "$dir/n$i.log" 2>/dev/null || true)
    [[ "${n:-0}" -ge 2 ]] && joined=$((joined + 1))
  done
  [[ $joined -eq 3 ]] && break
  for p in "${pids[@]}"; do
    kill -0 "$p" 2>/dev/null || { echo "a node exited:"; tail -n 5 "$dir"/n*.log; stop; exit 1; }
  done
  sleep 0.1
done
[[ $joined -eq 3 ]] || { echo "the nodes did not join within 10 s:"; tail -n 5 "$dir"/n*.log; stop; exit 1; }
grep -h '^node_ready' "$dir"/n*.log
token=$(cat "$dir/n1/admin-token")
now_ms=$(($(date +%s%3N) - 1000))
items=(c3-phone c3-watch c3-tablet c3-buds)
for it in "${items[@]}"; do
  curl -s -o /dev/null -w "create $it through n1: %{http_code}\n" -X POST \
    http://127.0.0.1:8081/api/v1/items -H "Authorization: Bearer $token" \
    -H 'Content-Type: application/json' \
    -d "{\"item_id\":\"$it\",\"total\":100,\"per_user_limit\":1,\"starts_at_ms\":$now_ms}"
done
sleep 0.2 # the owners announce the new items to the other nodes
# The crowd: buyer u$k signs in (a JWT, minted here in place of the site's
# login service), asks node k%3+1 for a sale token for item k%4 and buys
# it from node (k+1)%3+1 (a token one node issued holds on every other),
# 24 at a time.
buy() {
  local k=$1 items=(c3-phone c3-watch c3-tablet c3-buds)
  local node=$((k % 3 + 1)) item=${items[$((k % 4))]}
  local other=$(((k + 1) % 3 + 1))
  local jwt answer sale code
  jwt=$("$cli_bin" buyer-token --user "u$k" --secret-file "$dir/buyer-jwt-secret")
  answer=$(curl -s -X POST -H "Authorization: Bearer $jwt" \
    "http://127.0.0.1:808$node/api/v1/items/$item/token")
  if [[ "$answer" != *'"sale_token"'* ]]; then # sold out: no token
    echo "n$node $item token-$(sed -E 's/.*"status":([0-9]+).*/\1/' <<<"$answer")"
    return
  fi
  sale=$(sed -E 's/.*"sale_token":"([^"]*)".*/\1/' <<<"$answer")
  code=$(curl -s -o /dev/null -w '%{http_code}' -X POST \
    "http://127.0.0.1:808$other/api/v1/items/$item/purchase" \
    -H "Authorization: Bearer $jwt" -H 'Content-Type: application/json' \
    -d "{\"quantity\":1,\"request_id\":\"r$k\",\"sale_token\":\"$sale\"}")
  echo "n$other $item $code"
}
export -f buy
export cli_bin dir
start=$(date +%s%3N)
seq 1 600 | xargs -P 24 -I{} bash -c 'buy {}' >"$dir/crowd.txt"
took=$(($(date +%s%3N) - start))
echo
echo "crowd: 600 buyers, 24 at a time, ${took} ms (curl per request)"
echo "answers by node and HTTP status:"
awk '{print $1, $3}' "$dir/crowd.txt" | sort | uniq -c | awk '{printf "  %s %s: %s\n", $2, $3, $1}'
echo "stock as each node sees it (available/sold):"
for it in "${items[@]}"; do
  line="  $it:"
  for i in 1 2 3; do
    s=$(curl -s "http://127.0.0.1:808$i/api/v1/items/$it/stock")
    a=$(sed -E 's/.*"available":"?([0-9]+).*/\1/' <<<"$s")
    so=$(sed -E 's/.*"sold":"?([0-9]+).*/\1/' <<<"$s")
    line+=" n$i $a/$so"
  done
  echo "$line"
done
echo
"$cli_bin" --node 127.0.0.1:4301 --data-dir "$dir/n1" --tls-cert "$dir/tls/cli.pem" \
  --tls-key "$dir/tls/cli.key" --tls-ca "$dir/tls/ca.pem" nodes || true
if $keep; then
  echo
  echo "The nodes keep running: kill -TERM ${pids[*]}   (logs: $dir/n*.log)"
  trap - INT TERM
  exit 0
fi
stop
echo "stopped the three nodes (logs: $dir/n*.log)"
