#!/usr/bin/env bash
# bench/overload.sh: Plan B measured. One seckill node (durable, FULL), one
# hot item, seckill-bench with thousands of connections:
#   metered   the hot item admitted at RATE/s (seckill.admission-rate-per-s):
#             a baseline offered exactly RATE/s, then ten times it, open loop
#             (a purchase every 1/(10 RATE) s whatever the answers);
#   flood     the admission wide open: the node's own peak (64 connections,
#             closed loop), then 4000 connections closed loop, each sending
#             its next purchase as soon as it is answered: as much as this
#             machine can throw at the node;
#   sold-out  a small stock metered at RATE/s under ten times it: how late
#             the requests in flight at the last unit learn it is gone; on
#             one node, then on the three-node example (examples/cluster-3,
#             its cluster ports 4301-4303), the crowd spread over the three.
# For each: every request's answer, goodput (new orders/s) against the
# baseline, latency per answer class as buyers see it, server time per class
# from the node's /metrics histogram, and seckill-bench's check that exactly
# the stock was sold and no user exceeded the limit.
#
# Run from the top of the checkout after a build (bench/compare.sh runs it):
#   bash bench/overload.sh
# Environment: OVERLOAD_RATE (2000), OVERLOAD_SECONDS (8 per run),
# OVERLOAD_CONNECTIONS (4000), BENCH_BUILD_DIR (build). It writes
# data/bench/overload/section.md (the doc's overload section) and prints it;
# with --doc it also puts it into docs/BENCHMARKS.md in place of the old one.
set -euo pipefail
cd "$(dirname "$0")/.."

rate=${OVERLOAD_RATE:-2000}
secs=${OVERLOAD_SECONDS:-8}
conns=${OVERLOAD_CONNECTIONS:-4000}
build=${BENCH_BUILD_DIR:-build}
work=data/bench/overload
cli_tls=() # the CLI's TLS flags, for the three-node example
section=$work/section.md
doc=docs/BENCHMARKS.md
users=10000000 # picked at random: few repeat buyers
node_pids=() # every node this script runs now

fail() {
  echo "overload.sh: $1" >&2
  if [[ -n ${2:-} && -f $2 ]]; then tail -n 20 "$2" >&2; fi
  exit 1
}

stop_nodes() { # SIGTERM each by its pid, then wait for each
  local p
  for p in "${node_pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${node_pids[@]}"; do wait "$p" 2>/dev/null || true; done
  node_pids=()
}
trap stop_nodes EXIT
trap 'stop_nodes; exit 130' INT TERM

cmd_log() { # cmd_log CMD...: records the command for the doc, runs it
  echo "$*" >>"$work/commands.txt"
  "$@"
}

# start_node NAME CONFIG ARG...: a fresh node (HTTP port from the kernel, an
# empty data dir); sets node_http, node_cluster, node_dir.
start_node() {
  local name=$1 config=$2 log=$work/$1.log i pid
  shift 2
  node_dir=$work/$name
  mkdir -p "$node_dir"
  local args=(--config-file="$config" --seckill.data-dir="$node_dir"
    --seckill.http-port=0 --seckill.sessions-max=1000000
    --seckill.http-connections-max=20000 --seckill.buyer-auth=open "$@")
  echo "./$build/seckill-node ${args[*]}" >>"$work/commands.txt"
  "./$build/seckill-node" "${args[@]}" >"$log" 2>&1 &
  pid=$!
  node_pids+=("$pid")
  for ((i = 0; i < 100; i++)); do
    grep -q '^node_ready' "$log" && break
    kill -0 "$pid" 2>/dev/null || fail "seckill-node ($name) exited:" "$log"
    sleep 0.1
  done
  grep -q '^node_ready' "$log" || fail "seckill-node ($name) not ready in 10 s" "$log"
  node_http=$(sed -n 's/^node_ready .* http=\([^ ]*\) .*/\1/p' "$log")
  node_cluster=$(sed -n 's/^node_ready .* cluster=\([^ ]*\) .*/\1/p' "$log")
}

# A single node: cluster.conf, its cluster port from the kernel, quiet logs.
start_single() { # start_single NAME ARG...
  local name=$1
  shift
  start_node "$name" cluster.conf --cluster.port=0 --seckill.log-level=warn "$@"
}

# notice_of CLUSTER_ENDPOINT ITEM: the queue's own sold-out notice there.
notice_of() {
  "./$build/seckill-cli" --node="$1" --data-dir="$node_dir" "${cli_tls[@]}" item "$2" --json |
    sed -nE 's/.*"sold_out_notice_ms":(-?[0-9]+),"sold_out_waiters":([0-9]+).*/\1 ms (\2 waiters answered then)/p'
}

create_item() { # create_item ID TOTAL
  local code
  code=$(curl -s -o "$node_dir/create-$1.json" -w '%{http_code}' -X POST \
    "http://$node_http/api/v1/items" \
    -H "Authorization: Bearer $(cat "$node_dir/admin-token")" \
    -H 'Content-Type: application/json' \
    -d "{\"item_id\":\"$1\",\"total\":$2,\"per_user_limit\":1,\"admission\":\"open\",\"starts_at_ms\":$(($(date +%s%3N) - 1000))}")
  [[ $code == 201 ]] || fail "creating $1 answered $code" "$node_dir/create-$1.json"
}

# bench RUN ARG...: seckill-bench against the node; its report in RUN.txt.
# A failed check (exit 1) is reported, not fatal: the table says so.
# /metrics with the admin token: the front gate never sheds the scrape.
scrape() {
  curl -s -H "Authorization: Bearer $(cat "$node_dir/admin-token")" \
    "http://$node_http/metrics"
}

# --nodes-all=H:P,... as the first argument spreads the crowd over several.
bench() {
  local run=$1 nodes=$node_http
  shift
  if [[ ${1:-} == --nodes-all=* ]]; then
    nodes=${1#--nodes-all=}
    shift
  fi
  scrape >"$work/$run.m0"
  echo "./$build/seckill-bench --nodes=$nodes --users=$users --run=$run-$$ $*" \
    >>"$work/commands.txt"
  "./$build/seckill-bench" --nodes="$nodes" --users="$users" --run="$run-$$" "$@" \
    >"$work/$run.txt" 2>"$work/$run.err" || true
  scrape >"$work/$run.m1"
}

# -- Reading a report ---------------------------------------------------------

field() { # field RUN LABEL: a value line of seckill-bench's table
  awk -v l="$2" 'index($0, "  " l) == 1 { print $NF; exit }' "$work/$1.txt"
}
outcome() { # outcome RUN KEY: the count of an outcome, 0 if none
  awk -v k="$2" '{ line = $0; sub(/^ +/, "", line) }
    index(line, k " ") == 1 && NF >= 3 { n = $(NF - 1) } END { print n + 0 }' "$work/$1.txt"
}
class_pcts() { # class_pcts RUN CLASS: "p50 / p99" ms as buyers saw it
  awk -v c="$2" '$1 == c && NF == 6 { printf "%s / %s", $2, $4; f = 1 }
    END { if (!f) printf "-" }' "$work/$1.txt"
}
verdict() { # verdict RUN: PASS if every check passed
  if grep -q '^FAIL' "$work/$1.txt"; then echo FAIL; else echo PASS; fi
}

# server_pcts RUN CLASS: p50 / p99 of the node's own time for purchases of
# CLASS during RUN, from the histogram's growth (a bucket's upper bound).
server_pcts() {
  awk -v c="class=\"$2\"" '
    FNR == 1 { file++ }
    index($0, "seckill_purchase_server_seconds_bucket{") == 1 && index($0, c) {
      match($0, /le="[^"]*"/); le = substr($0, RSTART + 4, RLENGTH - 5)
      if (file == 1) before[le] = $NF; else { after[le] = $NF; order[++n] = le }
    }
    END {
      total = after["+Inf"] - before["+Inf"]
      if (total <= 0) { printf "-"; exit }
      for (q = 1; q <= 2; q++) {
        want = (q == 1 ? 0.5 : 0.99) * total
        for (i = 1; i <= n; i++)
          if (after[order[i]] - before[order[i]] >= want) { v = order[i]; break }
        s = (v == "+Inf") ? "inf" : sprintf("%.3f", v * 1000)
        printf "%s%s", (q == 1 ? "" : " / "), s
      }
    }' "$work/$1.m0" "$work/$1.m1"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.0f%%", 100 * a / b; else printf "-" }'; }

row() { # row LABEL RUN BASE_RUN: one line of the table
  local run=$2 sent answered orders
  sent=$(field "$run" attempts/s)
  answered=$(awk '$1 == "answered" { a = $2 } $1 == "attempts" { s = $2 }
    END { if (s > 0) printf "%.2f%%", 100 * a / s }' "$work/$run.txt")
  orders=$(field "$run" "durable orders/s (201)")
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
    "$1" "$sent" "$answered" "$orders" "$(ratio "$orders" "$(field "$3" "durable orders/s (201)")")" \
    "$(class_pcts "$run" admitted)" "$(class_pcts "$run" refused)" "$(class_pcts "$run" shed)" \
    "$(server_pcts "$run" admitted)" "$(server_pcts "$run" refused)" "$(server_pcts "$run" shed)" \
    "$(verdict "$run")"
}

outcomes_line() { # outcomes_line RUN: every outcome with its count
  awk '/^  outcome/ { on = 1; next } /^  latency/ { on = 0 }
    on { line = $0; sub(/^ +/, "", line); n = $(NF - 1); sub(/ +[0-9]+ +[0-9.]+%$/, "", line)
         out = out (out ? ", " : "") line " " n }
    END { print out }' "$work/$1.txt"
}

# -- The runs -----------------------------------------------------------------

run_metered() {
  start_single metered --seckill.admission-rate-per-s="$rate" \
    --seckill.admission-burst=$((rate / 10))
  create_item base 100000000
  create_item over 100000000
  bench metered-base --item=base --mode=open --rate="$rate" --connections=200 \
    --duration-s="$secs"
  bench metered-10x --item=over --mode=open --rate=$((rate * 10)) \
    --connections="$conns" --duration-s="$secs"
  stop_nodes
}

run_flood() {
  start_single flood --seckill.admission-rate-per-s=1000000 \
    --seckill.admission-burst=100000 --seckill.waiting-room-max=100000
  create_item peak 100000000
  create_item flood 100000000
  bench flood-peak --item=peak --connections=64 --duration-s="$secs"
  bench flood-max --item=flood --connections="$conns" --duration-s="$secs"
  stop_nodes
}

run_sold_out() {
  start_single soldout --seckill.admission-rate-per-s="$rate" \
    --seckill.admission-burst=$((rate / 10))
  create_item last $((rate * secs / 4))
  bench soldout --item=last --mode=open --rate=$((rate * 10)) \
    --connections="$conns" --duration-s="$secs"
  sold_out_cli=$(notice_of "$node_cluster" last)
  stop_nodes
}

# The three-node example: the item on its owner, a queue for it on every
# node (each meters a third of the rate), the crowd over the three bridges.
run_cluster_sold_out() {
  local i https=() clusters=() joined n
  # The example's cluster port is TLS: its certificates, and the CLI's.
  [[ -f data/cluster-3/tls/ca.pem ]] ||
    bash examples/tls/make-certs.sh data/cluster-3/tls n1 n2 n3 cli
  cli_tls=(--tls-cert=data/cluster-3/tls/cli.pem --tls-key=data/cluster-3/tls/cli.key
    --tls-ca=data/cluster-3/tls/ca.pem)
  for i in 1 2 3; do
    start_node "c$i" "examples/cluster-3/n$i.conf" \
      --seckill.admission-rate-per-s="$rate" --seckill.admission-burst=$((rate / 10))
    https+=("$node_http")
    clusters+=("$node_cluster")
  done
  for ((i = 0; i < 100; i++)); do # joined: each has seen its two peers
    joined=0
    for n in 1 2 3; do
      (($(grep -c peer_up "$work/c$n.log" || true) >= 2)) && joined=$((joined + 1))
    done
    ((joined == 3)) && break
    sleep 0.1
  done
  ((joined == 3)) || fail "the three nodes did not join in 10 s" "$work/c1.log"
  node_http=${https[0]}
  node_dir=$work/c1
  create_item c3-last $((rate * secs / 4))
  sleep 0.3 # the owner announces the item to the others
  bench cluster-soldout --nodes-all="${https[0]},${https[1]},${https[2]}" \
    --item=c3-last --mode=open --rate=$((rate * 10)) --connections="$conns" \
    --duration-s="$secs"
  cluster_notices=""
  for i in 0 1 2; do
    cluster_notices+="n$((i + 1)) $(notice_of "${clusters[$i]}" c3-last); "
  done
  stop_nodes
}

write_section() {
  local peak flood_max
  peak=$(field flood-peak "durable orders/s (201)")
  flood_max=$(field flood-max attempts/s)
  {
    cat <<EOF
<!-- overload -->
## Overload (Plan B)

Generated by \`bench/overload.sh\` ($(date -u '+%Y-%m-%d %H:%M UTC'), load
average $(cut -d' ' -f1-3 /proc/loadavg)). One node on this machine, durable
(\`synchronous = FULL\`), one hot item, seckill-bench on the same two cores.

| run | offered/s | answered | new orders/s | vs baseline | admitted p50 / p99 ms | refused p50 / p99 ms | shed p50 / p99 ms | server: admitted p50 / p99 ms | server: refused | server: shed | check |
|---|---|---|---|---|---|---|---|---|---|---|---|
$(row "metered baseline: $rate/s offered, 200 connections" metered-base metered-base)
$(row "metered 10x: $((rate * 10))/s offered, $conns connections" metered-10x metered-base)
$(row "flood peak: 64 connections, closed loop" flood-peak flood-peak)
$(row "flood: $conns connections, closed loop" flood-max flood-peak)

- Outcomes, metered 10x: $(outcomes_line metered-10x).
- Outcomes, flood: $(outcomes_line flood-max).
- The flood offered $(awk -v a="$flood_max" -v b="$peak" 'BEGIN { if (b > 0) printf "%.1f", a / b; else printf "-" }')× the node's
  peak of $peak new orders/s: that is all seckill-bench (one thread) could
  send on this machine while the node used the other core, short of 10×.
  Ten times the node's peak is out of reach of a load generator sharing its
  two cores; the metered runs offer ten times what the node admits to the
  hot item instead.
- Sold out under 10× ($((rate * secs / 4)) units metered at $rate/s,
  $((rate * 10))/s offered), one node: $(grep -h 'sold-out notice' "$work/soldout.txt" | sed 's/^ *//' || echo "not measured").
  The node's own measure (its queue, from the item's last unit to its
  waiters' answers): ${sold_out_cli:-not read}. Check: $(verdict soldout).
- The same on the three-node example, the crowd over the three bridges:
  $(grep -h 'sold-out notice' "$work/cluster-soldout.txt" | sed 's/^ *//' || echo "not measured").
  Each node's queue: ${cluster_notices:-not read}(the owner pushes the
  status to every node; the others learn it over the cluster link). Check:
  $(verdict cluster-soldout).

Columns: offered/s is seckill-bench's attempts per second; answered the
share that got an HTTP answer (the rest: transport errors or not sent);
latency per class as buyers saw it (admitted: 2xx, refused: 4xx such as 409
and 429, shed: 503), from the scheduled send in open loop; server time is
the node's own (request complete to answer written, the histogram
\`seckill_purchase_server_seconds\`, as a bucket's upper bound); check is
seckill-bench's: exactly the stock sold for the orders answered, no user
over the limit.

Commands:

\`\`\`sh
$(cat "$work/commands.txt")
\`\`\`
<!-- /overload -->
EOF
  } >"$section"
}

main() {
  [[ -x ./$build/seckill-node && -x ./$build/seckill-bench ]] ||
    fail "build first: cmake -S . -B $build && cmake --build $build -j2"
  rm -rf "$work"
  mkdir -p "$work"
  ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
  run_metered
  run_flood
  run_sold_out
  run_cluster_sold_out
  write_section
  cat "$section"
  if [[ ${1:-} == --doc && -f $doc ]]; then
    awk -v f="$section" '
      $0 == "<!-- overload -->" { while ((getline l < f) > 0) print l; skip = 1; next }
      $0 == "<!-- /overload -->" { skip = 0; next }
      !skip { print }' "$doc" >"$doc.tmp" && mv "$doc.tmp" "$doc"
    echo "overload.sh: the overload section of $doc is replaced"
  fi
}

main "$@"
