#!/usr/bin/env bash
# bench/scrapers.sh: what /metrics scrapers cost buyers. One node with ITEMS
# items; PURCHASES purchases one at a time (curl's time_total each), first
# with no scraper, then with SCRAPERS loops fetching /metrics as fast as
# they are answered. Prints a table of purchase latency (p50, p90, p99,
# max) and the scrapes answered, for each binary given (default: this
# build's node), so two builds can be compared; each runs with the
# cluster.conf of its own checkout (the build dir's parent):
#   bash bench/scrapers.sh [NODE_BIN ...]
# Environment: ITEMS (1000), PURCHASES (300), SCRAPERS (8), PORT (18480).
set -euo pipefail
cd "$(dirname "$0")/.."
items=${ITEMS:-1000}
purchases=${PURCHASES:-300}
scrapers=${SCRAPERS:-8}
port=${PORT:-18480}
token=bench-scrapers-token
bins=("$@")
((${#bins[@]})) || bins=(build/seckill-node)
work=$(mktemp -d)
node_pid=
scraper_pids=()
cleanup() {
  for p in "${scraper_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [[ -n $node_pid ]] && kill "$node_pid" 2>/dev/null && wait "$node_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

percentiles() { # stdin: one number a line (seconds) -> "p50 p90 p99 max" in ms
  sort -g | awk '{ v[NR] = $1 * 1000 } END {
    if (NR == 0) { print "- - - -"; exit }
    printf "%.1f %.1f %.1f %.1f\n", v[int(NR*0.5)+ (NR*0.5>int(NR*0.5))], \
      v[int(NR*0.9)+(NR*0.9>int(NR*0.9))], v[int(NR*0.99)+(NR*0.99>int(NR*0.99))], v[NR] }'
}

buy_run() { # $1: label -> prints a table row
  local label=$1
  local times=$work/times.$label
  : > "$times"
  for ((i = 0; i < purchases; ++i)); do
    curl -s -o /dev/null -w '%{time_total}\n' -X POST \
      -H 'Content-Type: application/json' \
      -d "{\"user_id\":\"$label-u$i\",\"request_id\":\"$label-r$i\"}" \
      "http://127.0.0.1:$port/api/v1/items/sc0/purchase" >> "$times"
  done
  read -r p50 p90 p99 max < <(percentiles < "$times")
  echo "$p50 $p90 $p99 $max"
}

printf '| node | scrapers | purchase p50 ms | p90 | p99 | max | scrapes answered |\n'
printf '|---|---|---|---|---|---|---|\n'
for bin in "${bins[@]}"; do
  rm -rf "$work/data"
  "$bin" --config-file="$(dirname "$bin")/../cluster.conf" --seckill.data-dir="$work/data" \
    --seckill.http-port=$port --cluster.port=0 --seckill.admin-token=$token \
    --seckill.log-level=warn --seckill.items-max=$((items + 10)) \
    --seckill.shed-lag-ms=0 --seckill.buyer-auth=open > "$work/node.log" 2>&1 &
  node_pid=$!
  for ((t = 0; t < 100; ++t)); do
    curl -sf "http://127.0.0.1:$port/healthz" > /dev/null && break
    kill -0 "$node_pid" 2>/dev/null || { cat "$work/node.log" >&2; exit 1; }
    sleep 0.1
  done
  for ((i = 0; i < items; ++i)); do
    curl -sf -o /dev/null -X POST -H "Authorization: Bearer $token" \
      -H 'Content-Type: application/json' \
      -d "{\"item_id\":\"sc$i\",\"name\":\"n\",\"total\":$((i == 0 ? purchases * 4 : 100)),\"per_user_limit\":1,\"mode\":\"order\",\"admission\":\"open\"}" \
      "http://127.0.0.1:$port/api/v1/items"
  done
  row=$(buy_run quiet)
  printf '| %s | 0 | %s | - |\n' "$bin" "$(tr ' ' '|' <<< "$row" | sed 's/|/ | /g')"
  : > "$work/scrapes"
  for ((s = 0; s < scrapers; ++s)); do
    (while :; do curl -s -o /dev/null -w '%{http_code}\n' \
       "http://127.0.0.1:$port/metrics" >> "$work/scrapes"; done) &
    scraper_pids+=($!)
  done
  row=$(buy_run scraped)
  for p in "${scraper_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait "${scraper_pids[@]}" 2>/dev/null || true
  scraper_pids=()
  printf '| %s | %d | %s | %d |\n' "$bin" "$scrapers" \
    "$(tr ' ' '|' <<< "$row" | sed 's/|/ | /g')" "$(grep -c '^200' "$work/scrapes")"
  kill "$node_pid"; wait "$node_pid" 2>/dev/null || true; node_pid=
done
