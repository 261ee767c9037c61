#!/usr/bin/env bash
# bench/compare.sh: seckill side by side with what it is measured against,
# on this machine, on 127.0.0.1 only, one system after another:
#   nginx answering a fixed 200 (wrk): the ceiling of any HTTP server here;
#   Redis 7 running the incumbent flash-sale Lua script (bench/purchase.lua,
#     redis-benchmark) with persistence off, AOF everysec and AOF always;
#   seckill-node buying with durable orders (synchronous = FULL), driven by
#     wrk (examples/wrk-purchase.lua) and by seckill-bench.
# Then bench/overload.sh measures Plan B (overload, shedding, the sold-out
# notice). It prints one table and writes docs/BENCHMARKS.md wholly, with
# the overload section of this run, keeping the <!-- profile --> section
# (the profile of the purchase path, written by hand).
#
# Run as root on Debian 12 from the top of the checkout:
#   bash bench/compare.sh
# Environment: BENCH_SECONDS (10) per run, BENCH_CONNECTIONS (64),
# BENCH_BUILD_DIR (build, the README's), BENCH_BUILD_TYPE (empty: the
# project's default, RelWithDebInfo).
#
# Every server is started here in the foreground of a background job, with a
# config generated under ./data/bench/ (wiped at each start), and stopped by
# its own pid: a trap stops whatever still runs on any exit. No system
# service is used. Every command is recorded verbatim for the doc (the
# readiness polls are not). Exit 1 at once if a server does not come up, and
# exit 1 after writing the doc if a check failed.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${BENCH_SECONDS:-10}
conns=${BENCH_CONNECTIONS:-64}
build=${BENCH_BUILD_DIR:-build}
work=data/bench
doc=docs/BENCHMARKS.md
plot=docs/bench-latency.png
ready_timeout_s=10
# Stock for Redis and seckill that no run can sell out: a sold-out answer is
# cheap and would flatter whoever reaches it first.
stock_total=1000000000
seckill_total=100000000
# seckill-bench picks users at random among these; many, so that few
# attempts are a second purchase by the same user (answered 409).
bench_users=10000000
seckill_acked="after its commit's fsync (FULL, group commit)"

servers=()     # pids of the servers running now
checks_failed=0
started_s=$(date +%s)

fail() { # fail MESSAGE [LOG]: says why, shows the log's tail, exits 1
  echo "compare.sh: $1" >&2
  if [[ -n ${2:-} && -f $2 ]]; then tail -n 20 "$2" >&2; fi
  exit 1
}

# -- The record of commands ----------------------------------------------------

note_line() { # note_line TEXT: records TEXT as a command run, and shows it
  echo "+ $1" >&2
  echo "$1" >>"$work/commands.txt"
}

# note_cmd SUFFIX ARG...: records a command quoted so that it can be pasted
# back into a shell, followed by SUFFIX (a redirection, say).
note_cmd() {
  local suffix=$1 line="" a
  shift
  for a in "$@"; do
    if [[ $a =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then
      line+="$a "
    else
      local quoted=${a//\'/\'\\\'\'}
      line+="'$quoted' "
    fi
  done
  note_line "${line% }${suffix:+ $suffix}"
}

run() { # run CMD...: records and runs it
  note_cmd "" "$@"
  "$@"
}

run_tee() { # run_tee FILE CMD...: records and runs it, its output also in FILE
  local out=$1
  shift
  note_cmd "| tee $out" "$@"
  "$@" | tee "$out"
}

render() { # render TEMPLATE OUT KEY=VALUE...: fills in @KEY@ placeholders
  local template=$1 out=$2 expr=() kv
  shift 2
  for kv in "$@"; do expr+=(-e "s|@${kv%%=*}@|${kv#*=}|g"); done
  note_cmd "> $out" sed "${expr[@]}" "$template"
  sed "${expr[@]}" "$template" >"$out"
}

# -- Servers: start, wait until ready, stop by pid -------------------------------

# start_server NAME LOG READY... -- CMD...: starts CMD in the background, its
# output in LOG, and waits until the command READY succeeds. Sets server_pid.
start_server() {
  local name=$1 log=$2 ready=() i
  shift 2
  while [[ $1 != -- ]]; do
    ready+=("$1")
    shift
  done
  shift
  note_cmd "> $log 2>&1 &" "$@"
  "$@" >"$log" 2>&1 &
  server_pid=$!
  servers+=("$server_pid")
  for ((i = 0; i < ready_timeout_s * 10; i++)); do
    if "${ready[@]}" 2>/dev/null; then return 0; fi
    kill -0 "$server_pid" 2>/dev/null || fail "$name exited before it was ready:" "$log"
    sleep 0.1
  done
  fail "$name did not come up within ${ready_timeout_s} s:" "$log"
}

# stop_server PID: SIGTERM (every server here shuts down cleanly on it), at
# most 10 s, then SIGKILL; waits for that pid only.
stop_server() {
  local pid=$1 i status=0 left=() p
  note_cmd "" kill -TERM "$pid"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "compare.sh: pid $pid still runs 10 s after SIGTERM: SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" || status=$?
  ((status == 0)) || echo "compare.sh: pid $pid exited with status $status" >&2
  for p in "${servers[@]}"; do [[ $p == "$pid" ]] || left+=("$p"); done
  servers=("${left[@]}")
}

cleanup() {
  local pid
  for pid in "${servers[@]}"; do stop_server "$pid"; done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() { # free_port FIRST: the first port from FIRST nothing listens on
  local p
  for ((p = $1; p < $1 + 100; p++)); do
    if [[ -z $(ss -Hltn "( sport = :$p )") ]]; then
      echo "$p"
      return 0
    fi
  done
  fail "no free port in $1..$(($1 + 99))"
}

http_ok() { curl -sf -o /dev/null "$1"; }
redis_up() { [[ $(redis-cli -h 127.0.0.1 -p "$1" PING) == PONG ]]; }
node_ready() { grep -q '^node_ready' "$1"; }

# -- Results -----------------------------------------------------------------------

# add_row NAME OPS P50 P99 OK_PERCENT ACKNOWLEDGED: one row of the table.
add_row() {
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$work/results.tsv"
}

# check VERDICT TEXT: one line of the doc's checks; FAIL fails the run.
check() {
  [[ $1 == PASS ]] || checks_failed=1
  echo "$1: $2" | tee -a "$work/checks.txt"
}

info() { echo "$1" | tee -a "$work/checks.txt"; } # a line of the checks, no verdict

# parse_wrk FILE: "requests/s p50_ms p99_ms answered non_2xx socket_errors"
# from wrk's output with --latency.
parse_wrk() {
  awk '
    function ms(v) {
      if (v ~ /us$/) return v / 1000
      if (v ~ /ms$/) return v + 0
      if (v ~ /s$/) return v * 1000
      return -1
    }
    / requests in / { answered = $1 }
    /Non-2xx or 3xx responses:/ { non2xx = $NF }
    /Socket errors:/ { gsub(",", ""); errors = $4 + $6 + $8 + $10 }
    /^Requests\/sec:/ { rps = $2 }
    $1 == "50%" { p50 = ms($2) }
    $1 == "99%" { p99 = ms($2) }
    END { printf "%s %.3f %.3f %d %d %d\n", rps, p50, p99, answered, non2xx, errors }
  ' "$1"
}

# -- Install and build ---------------------------------------------------------------

# Installs the Debian packages named that are not installed yet (the pattern
# of examples/install-deps.sh). Debian may start the packaged nginx and Redis
# services on install; nothing here uses them (own configs, own ports).
install_missing() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
      || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  run apt-get update -qq
  run env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends "${missing[@]}"
}

install_tools() {
  run bash examples/install-deps.sh
  local tools=(redis-server redis-tools wrk gnuplot-nox)
  # Any nginx flavour will do; nginx-light is the smallest.
  command -v nginx >/dev/null || tools=(nginx-light "${tools[@]}")
  install_missing "${tools[@]}"
}

build_seckill() {
  local t0=$SECONDS
  run cmake -S . -B "$build" ${BENCH_BUILD_TYPE:+-DCMAKE_BUILD_TYPE=$BENCH_BUILD_TYPE}
  run cmake --build "$build" -j"$(nproc)" --target seckill-node seckill-bench
  build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$build/CMakeCache.txt")
  build_s=$((SECONDS - t0))
}

# -- nginx -------------------------------------------------------------------------

bench_nginx() {
  local dir=$PWD/$work/nginx port pid rps p50 p99 answered non2xx errors
  mkdir -p "$dir"
  port=$(free_port 18080)
  render bench/nginx.conf.in "$dir/nginx.conf" DIR="$dir" PORT="$port"
  start_server nginx "$dir/nginx.log" http_ok "http://127.0.0.1:$port/" -- \
    nginx -p "$dir/" -e "$dir/error.log" -c "$dir/nginx.conf" -g 'daemon off;'
  pid=$server_pid
  run_tee "$dir/wrk.txt" wrk -t2 -c"$conns" -d"${secs}s" --latency "http://127.0.0.1:$port/"
  stop_server "$pid"
  read -r rps p50 p99 answered non2xx errors < <(parse_wrk "$dir/wrk.txt")
  add_row "nginx static 200 (wrk)" "$rps" "$p50" "$p99" \
    "$(awk -v a="$answered" -v n="$non2xx" 'BEGIN { printf "%.2f", a ? 100 * (a - n) / a : 0 }')" \
    "nothing to keep"
  if ((answered > 0 && non2xx == 0)); then
    check PASS "nginx answered $answered requests, all 200 ($errors socket errors)"
  else
    check FAIL "nginx answered $answered requests, $non2xx of them not 2xx"
  fi
}

# -- Redis + Lua ---------------------------------------------------------------------

# csv_stats FILE: "rps p50_ms p99_ms" from redis-benchmark --csv.
csv_stats() {
  awk -F, '
    NR == 1 { for (i = 1; i <= NF; i++) { gsub(/"/, "", $i); col[$i] = i } }
    NR == 2 { gsub(/"/, ""); print $col["rps"], $col["p50_latency_ms"], $col["p99_latency_ms"] }
  ' "$1"
}

# bench_redis MODE APPENDONLY APPENDFSYNC LABEL ACKNOWLEDGED: a fresh Redis
# with that persistence, the script loaded, a stock no run sells out.
bench_redis() {
  local mode=$1 dir=$work/redis-$1 port pid sha n t0 t1
  local stock0 stock1 len0 len1 rps p50 p99
  mkdir -p "$dir"
  port=$(free_port 16379)
  render bench/redis.conf.in "$dir/redis.conf" DIR="$dir" PORT="$port" \
    APPENDONLY="$2" APPENDFSYNC="$3"
  start_server "redis-server ($mode)" "$dir/redis.log" redis_up "$port" -- \
    redis-server "$dir/redis.conf"
  pid=$server_pid
  local cli=(redis-cli -h 127.0.0.1 -p "$port")
  run "${cli[@]}" SET stock "$stock_total" >/dev/null
  note_cmd "< bench/purchase.lua" "${cli[@]}" -x SCRIPT LOAD
  sha=$("${cli[@]}" -x SCRIPT LOAD <bench/purchase.lua)
  [[ $sha =~ ^[0-9a-f]{40}$ ]] || fail "SCRIPT LOAD answered '$sha'" "$dir/redis.log"
  # __rand_int__ becomes a random 12-digit number in each call: a new buyer
  # almost every time (a repeat is answered "duplicate").
  local load=(redis-benchmark -h 127.0.0.1 -p "$port" -c "$conns" -r 100000000 --csv)
  local call=(EVALSHA "$sha" 3 stock buyers orders 'user:__rand_int__' 1)
  # redis-benchmark runs a number of requests, not a duration: calibration
  # runs grow fourfold until one lasts a second, and the measured run asks
  # for BENCH_SECONDS at the rate that one saw (wall clock, as measured).
  n=$((conns * 50))
  while :; do
    t0=$(date +%s%3N)
    run_tee "$dir/calibrate.csv" "${load[@]}" -n "$n" "${call[@]}"
    t1=$(date +%s%3N)
    ((t1 - t0 < 1000 && n < 10000000)) || break
    n=$((n * 4))
  done
  n=$((n * 1000 * secs / (t1 - t0)))
  stock0=$(run "${cli[@]}" GET stock)
  len0=$(run "${cli[@]}" LLEN orders)
  t0=$(date +%s%3N)
  run_tee "$dir/bench.csv" timeout $((secs * 4 + 30)) "${load[@]}" -n "$n" "${call[@]}" \
    || fail "redis-benchmark ($mode) did not finish" "$dir/redis.log"
  t1=$(date +%s%3N)
  stock1=$(run "${cli[@]}" GET stock)
  len1=$(run "${cli[@]}" LLEN orders)
  stop_server "$pid"
  read -r rps p50 p99 < <(csv_stats "$dir/bench.csv")
  local sold=$((stock0 - stock1)) added=$((len1 - len0))
  add_row "$4" "$rps" "$p50" "$p99" \
    "$(awk -v a="$added" -v n="$n" 'BEGIN { printf "%.2f", 100 * a / n }')" "$5"
  local took what
  took=$(awk -v ms=$((t1 - t0)) 'BEGIN { printf "%.1f", ms / 1000 }')
  what="Redis $mode: $n EVALSHA calls in $took s"
  what+=", orders grew by $added, stock fell by $sold ($((n - added)) answered duplicate)"
  if ((added > 0 && added == sold)); then check PASS "$what"; else check FAIL "$what"; fi
}

# -- seckill ---------------------------------------------------------------------------

# start_seckill RUN: a fresh node in data/bench/seckill-RUN with durable
# orders (cluster.conf's seckill.synchronous = "FULL") and the admission
# queue and session limits opened wide, so that the run measures the engine
# and not the brakes in front of it; buyers are not signed in (buyer-auth
# open, items admission open), as nginx and Redis check no one either:
# bench/buyers.sh measures what signing in costs. Ports 0: the kernel picks free ones and
# the node_ready line says which. Sets seckill_pid, seckill_dir, seckill_http.
start_seckill() {
  seckill_dir=$work/seckill-$1
  mkdir -p "$seckill_dir"
  start_server "seckill-node ($1)" "$work/seckill-$1.log" \
    node_ready "$work/seckill-$1.log" -- \
    "./$build/seckill-node" --config-file=cluster.conf \
    --seckill.data-dir="$seckill_dir" --seckill.http-port=0 --cluster.port=0 \
    --seckill.admission-rate-per-s=1000000 --seckill.admission-burst=100000 \
    --seckill.sessions-max=1000000 --seckill.waiting-room-max=100000 \
    --seckill.buyer-auth=open --seckill.log-level=warn
  seckill_pid=$server_pid
  seckill_http=$(sed -n 's/^node_ready .* http=\([^ ]*\) .*/\1/p' "$work/seckill-$1.log")
  grep -q '^node_ready .* data_dir=' "$work/seckill-$1.log" || fail "no node_ready line"
}

# create_item ITEM: on sale since a second ago, one per user, never sold out.
# The admin token goes in a header file, so that no command shows it.
create_item() {
  local header=$seckill_dir/auth.header code
  note_line "printf 'Authorization: Bearer %s\\n' \"\$(cat $seckill_dir/admin-token)\" > $header"
  printf 'Authorization: Bearer %s\n' "$(cat "$seckill_dir/admin-token")" >"$header"
  local body="{\"item_id\":\"$1\",\"total\":$seckill_total,\"per_user_limit\":1,\"admission\":\"open\","
  body+="\"starts_at_ms\":$(($(date +%s%3N) - 1000))}"
  code=$(run curl -s -o "$seckill_dir/create-$1.json" -w '%{http_code}' -X POST \
    "http://$seckill_http/api/v1/items" -H "@$header" \
    -H 'Content-Type: application/json' -d "$body")
  [[ $code == 201 ]] || fail "creating $1 answered $code:" "$seckill_dir/create-$1.json"
}

# sold_of ITEM: the item's sold count once it stops moving (purchases in
# flight when the load generator stopped still commit).
sold_of() {
  local url="http://$seckill_http/api/v1/items/$1/stock" last=-1 now i
  for ((i = 0; i < 50; i++)); do
    now=$(curl -s "$url" | sed -nE 's/.*"sold":"?([0-9]+).*/\1/p')
    [[ -n $now ]] || fail "no stock for $1 at $url"
    [[ $now == "$last" ]] && break
    last=$now
    sleep 0.2
  done
  note_cmd "" curl -s "$url"
  echo "$now"
}

# commit_summary RUN: the node's group commits, from its /metrics: how many
# orders one fsync carried is what sets seckill's durable throughput.
commit_summary() {
  # With the admin token, so the node's front gate never sheds the scrape.
  run curl -s -H "@$seckill_dir/auth.header" "http://$seckill_http/metrics" \
    >"$seckill_dir/metrics.txt"
  info "seckill $1 node: $(awk '
    $1 == "seckill_commit_seconds_sum" { sum = $2 }
    $1 == "seckill_commit_seconds_count" { n = $2 }
    $1 == "seckill_commit_rows_sum" { rows = $2 }
    END {
      if (n > 0) printf "%d group commits, %.2f ms each on average, %.1f rows written per commit", n, 1000 * sum / n, rows / n
      else printf "no commit figures in /metrics"
    }' "$seckill_dir/metrics.txt")"
}

bench_seckill_wrk() {
  local rps p50 p99 answered non2xx errors sold
  start_seckill wrk
  create_item bench-item
  run_tee "$seckill_dir/wrk.txt" env SECKILL_ITEM=bench-item SECKILL_RUN=cmp \
    wrk -t2 -c"$conns" -d"${secs}s" --latency -s examples/wrk-purchase.lua \
    "http://$seckill_http"
  sold=$(sold_of bench-item)
  commit_summary "(wrk)"
  stop_server "$seckill_pid"
  read -r rps p50 p99 answered non2xx errors < <(parse_wrk "$seckill_dir/wrk.txt")
  seckill_wrk_ops=$rps
  local ok=$((answered - non2xx))
  add_row "seckill purchase, durable FULL (wrk)" "$rps" "$p50" "$p99" \
    "$(awk -v a="$answered" -v o="$ok" 'BEGIN { printf "%.2f", a ? 100 * o / a : 0 }')" \
    "$seckill_acked"
  # wrk drops the answers in flight when its time is up (at most one per
  # connection) and those that time out: those orders exist, unseen.
  local what="seckill via wrk: $answered answers, $ok of them 2xx (new orders), $non2xx not;"
  what+=" the node's sold count is $sold ($((sold - ok)) more: in flight at the end, $errors socket errors)"
  if ((ok > 0 && sold >= ok && sold - ok <= conns + errors)); then
    check PASS "$what"
  else
    check FAIL "$what"
  fi
}

bench_seckill_bench() {
  local out status=0 attempts p50 p99 orders201 answered sold
  start_seckill bench
  create_item bench-item2
  out=$seckill_dir/bench.txt
  run_tee "$out" "./$build/seckill-bench" --nodes="$seckill_http" --item=bench-item2 \
    --connections="$conns" --duration-s="$secs" --users="$bench_users" \
    --csv="$seckill_dir/bench.csv" --plot="$seckill_dir/latency.png" || status=$?
  sold=$(sold_of bench-item2)
  commit_summary "(seckill-bench)"
  stop_server "$seckill_pid"
  attempts=$(awk '$1 == "attempts/s" { print $2 }' "$out")
  answered=$(awk '$1 == "answered" { print $2 }' "$out")
  orders201=$(awk '$1 == "201" { print $2 }' "$out")
  # The latency table: "class p50 p90 p99 p99.9 max", then a row per class.
  read -r p50 p99 < <(awk '$1 == "all" && NF == 6 { print $2, $4; exit }' "$out")
  seckill_bench_ops=$attempts
  add_row "seckill purchase, durable FULL (seckill-bench)" "$attempts" "$p50" "$p99" \
    "$(awk -v a="$answered" -v o="${orders201:-0}" 'BEGIN { printf "%.2f", a ? 100 * o / a : 0 }')" \
    "$seckill_acked"
  info "seckill-bench answers: $(awk '
    /^  latency ms/ { on = 0 }
    on { count = $(NF - 1); share = $NF; $NF = ""; $(NF - 1) = ""; sub(/ +$/, ""); sub(/^ +/, "")
         printf "%s%s %s (%s)", sep, $0, count, share; sep = ", " }
    $1 == "outcome" && $2 == "count" { on = 1 }' "$out")"
  grep -E '^(PASS|FAIL|SKIP) ' "$out" | sed 's/^/seckill-bench /' >>"$work/checks.txt" || true
  local what="seckill-bench: exit status $status; ${orders201:-0} answers 201 of $answered;"
  what+=" the node's sold count is $sold"
  if ((status == 0 && sold >= ${orders201:-0})); then check PASS "$what"; else check FAIL "$what"; fi
  if [[ -f $seckill_dir/latency.png ]]; then cp "$seckill_dir/latency.png" "$plot"; fi
}

# -- The table and the doc ---------------------------------------------------------------

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else printf "-" }'; }

print_table() {
  echo "| run | ops/s | p50 ms | p99 ms | ok % | acknowledged | seckill wrk ÷ this | seckill-bench ÷ this |"
  echo "| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: |"
  local name ops p50 p99 ok ack
  while IFS=$'\t' read -r name ops p50 p99 ok ack; do
    printf '| %s | %.0f | %.2f | %.2f | %s | %s | %s | %s |\n' "$name" "$ops" "$p50" "$p99" \
      "$ok" "$ack" "$(ratio "$seckill_wrk_ops" "$ops")" "$(ratio "$seckill_bench_ops" "$ops")"
  done <"$work/results.tsv"
}

ops_of() { awk -F'\t' -v n="$1" 'index($1, n) == 1 { print $2; exit }' "$work/results.tsv"; }

summary() { # the table's point in one sentence
  local nginx everysec
  nginx=$(ops_of "nginx")
  everysec=$(ops_of "Redis+Lua, AOF everysec")
  echo "Durable seckill purchases run at $(ratio "$seckill_wrk_ops" "$nginx")× nginx's fixed 200"
  echo "and $(ratio "$seckill_wrk_ops" "$everysec")× Redis+Lua with AOF everysec, driven by wrk"
  echo "($(ratio "$seckill_bench_ops" "$nginx")× and $(ratio "$seckill_bench_ops" "$everysec")× driven by seckill-bench)."
}

# kept_section NAME PLACEHOLDER: the NAME section of the previous doc, as it
# was, or an empty one.
kept_section() {
  if [[ -f $doc ]] && grep -qx "<!-- $1 -->" "$doc"; then
    awk -v a="<!-- $1 -->" -v b="<!-- /$1 -->" '$0 == a { on = 1 } on { print } $0 == b { on = 0 }' "$doc"
  else
    printf '<!-- %s -->\n%s\n<!-- /%s -->\n' "$1" "$2" "$1"
  fi
}

machine() {
  local dirty=clean
  # docs/ is this script's own output: it is rewritten while it runs.
  [[ -z $(git status --porcelain -- . ':(exclude)docs' 2>/dev/null) ]] ||
    dirty="dirty (uncommitted changes)"
  echo "- CPU: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), $(nproc) cores"
  echo "- memory: $(free -g | awk '$1 == "Mem:" { print $2 }') GiB; kernel $(uname -r); Debian $(cat /etc/debian_version)"
  echo "- load average (1 min) at the start: $load_start, at the end: $(cut -d' ' -f1 /proc/loadavg)"
  echo "- $(nginx -v 2>&1); $(redis-server --version | cut -d' ' -f1-3); $( (wrk -v 2>&1 || true) | head -n 1 | cut -d' ' -f1-2)"
  echo "- $(gcc --version | head -n 1); seckill built as $build_type in \`$build/\`"
  echo "- seckill commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown), tree $dirty"
}

write_doc() {
  local profile overload buyers tmp=$doc.tmp took=$(($(date +%s) - started_s))
  profile=$(kept_section profile "## Profile

_Not written yet: another script fills this section; bench/compare.sh keeps it._")
  buyers=$(kept_section buyers "## Buyers: what signing in costs

_Not written yet: bench/buyers.sh fills this section; bench/compare.sh keeps it._")
  if [[ -f $work/overload/section.md ]]; then
    overload=$(cat "$work/overload/section.md") # written by this run
  else
    overload=$(kept_section overload "## Overload

_Not written yet: bench/overload.sh fills this section._")
  fi
  mkdir -p docs
  {
    cat <<EOF
# Benchmarks: seckill side by side with nginx and Redis

Generated by \`bench/compare.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC') in ${took} s (${build_s} s of
them building); do not edit by hand: a run rewrites everything but the
profile section (the overload section comes from \`bench/overload.sh\`,
run by the same command).

## How to run

\`\`\`sh
bash bench/compare.sh                                   # 10 s per run, 64 connections
BENCH_SECONDS=3 BENCH_CONNECTIONS=32 bash bench/compare.sh
\`\`\`

As root on Debian 12 from the top of the checkout. It installs what is
missing (\`examples/install-deps.sh\`, then nginx, Redis, wrk and gnuplot from
Debian's packages), builds seckill, and runs each system alone for
${secs} s with ${conns} connections on 127.0.0.1, each server started by
the script with a config generated under \`data/bench/\` and stopped by its pid.

## Machine

$(machine)

## Results

$(print_table)

$(summary)

ops/s: answers per second as the load generator counts them (wrk's
Requests/sec, redis-benchmark's rps, seckill-bench's attempts/s); ok %: the
share of them that was a success (a 200 for nginx, a new order otherwise:
Redis orders appended, seckill 2xx or 201). Latency from the load generator,
closed loop. The last two columns divide seckill's ops/s (wrk, then
seckill-bench) by the row's.

## Checks

$(sed 's/^/- /' "$work/checks.txt")

EOF
    if [[ -f $plot ]]; then
      cat <<EOF
## seckill latency over the seckill-bench run

![p50 and p99 latency per second](bench-latency.png)

EOF
    fi
    cat <<EOF
## Notes

- One machine, ${nproc_count} cores: the load generator (wrk with two threads,
  redis-benchmark and seckill-bench with one) shares the cores with the server
  it drives, so these are figures of the pair, not of the server alone; other
  work on the machine (see the load average above) makes them noisy.
- nginx runs one worker process (\`worker_processes 1\`, bench/nginx.conf.in),
  as seckill answers HTTP on one I/O thread (\`seckill.http-threads = 1\`); it
  does no work behind its answer and is the ceiling of HTTP here.
- Redis speaks no HTTP: its rows skip the parsing and the connection handling
  seckill does. Its script (bench/purchase.lua) is the incumbent design:
  duplicate check, stock check, DECRBY, SADD, RPUSH in one atomic script.
  With persistence off an acknowledged order lives in memory only; with AOF
  \`appendfsync everysec\` a crash or power loss may lose the last second of
  acknowledged orders; with \`appendfsync always\` Redis writes and fsyncs the
  AOF before it answers (once per event-loop turn, for all clients at once).
  No RDB snapshots in any mode (\`save ""\`).
- seckill acknowledges a purchase only after its transaction committed with
  \`synchronous = FULL\` (cluster.conf's \`seckill.synchronous\`, not
  overridden): an fsync per group commit, so every acknowledged order survives
  a power loss. The admission queue and the session limits are opened wide
  (\`--seckill.admission-rate-per-s=1000000\` and the others below) so that the
  engine is measured, not its brakes; the per-user limit (1) and the stock
  rules stay on. Each seckill run starts a fresh node with an empty data dir.
- redis-benchmark takes a request count, not a duration: calibration runs (in
  the commands), growing fourfold until one lasts a second, measure the rate,
  and the measured run asks for ${secs} s of it (the checks say how long it
  took). Its buyers are \`user:__rand_int__\` with \`-r 100000000\`: a random
  12-digit id per call, so a few calls are a repeat, answered "duplicate".
- A seckill answer other than 2xx is a refusal the node chose (seckill-bench's
  answers above say which); the ok % column gives the share of new orders.
- wrk stops with answers in flight; those orders exist but wrk never saw them,
  hence the node's sold count can exceed wrk's 2xx count by up to one per
  connection.

## Commands run

In order, verbatim (the polls that wait for a server to be ready are left out).

\`\`\`sh
$(cat "$work/commands.txt")
\`\`\`

$profile

$overload

$buyers
EOF
  } >"$tmp"
  mv "$tmp" "$doc"
}

# -- Main ------------------------------------------------------------------------------

main() {
  [[ $secs =~ ^[1-9][0-9]*$ ]] || fail "BENCH_SECONDS must be a whole number of seconds above 0"
  if ! [[ $conns =~ ^[1-9][0-9]*$ ]] || ((conns < 2)); then
    fail "BENCH_CONNECTIONS must be a whole number from 2 (wrk runs two threads)"
  fi
  load_start=$(cut -d' ' -f1 /proc/loadavg)
  nproc_count=$(nproc)
  rm -rf "$work"
  mkdir -p "$work" docs
  rm -f "$plot"
  install_tools
  build_seckill
  bench_nginx
  bench_redis off no no "Redis+Lua, persistence off (redis-benchmark)" "in memory only"
  bench_redis everysec yes everysec "Redis+Lua, AOF everysec (redis-benchmark)" \
    "before its fsync (AOF every second)"
  bench_redis always yes always "Redis+Lua, AOF always (redis-benchmark)" \
    "after its AOF fsync"
  bench_seckill_wrk
  bench_seckill_bench
  # Plan B: overload, shedding and the sold-out notice (its own section).
  note_line "BENCH_BUILD_DIR=$build bash bench/overload.sh"
  BENCH_BUILD_DIR=$build bash bench/overload.sh >"$work/overload.out" 2>&1 ||
    fail "bench/overload.sh failed:" "$work/overload.out"
  write_doc
  echo
  print_table
  echo
  summary
  echo "compare.sh: wrote $doc in $(($(date +%s) - started_s)) s"
  ((checks_failed == 0)) || fail "a check failed (see the Checks section of $doc)"
}

main "$@"
