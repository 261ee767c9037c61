#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/) with clang in build-fuzz/ and
# runs each for a bounded time: the HTTP request reader, the purchase JSON
# readers (fast path against protobuf), the item JSON reader. Each run
# starts from the seeds in tests/fuzz/corpus/<target>/, copied into
# build-fuzz/corpus/<target>/ (what a run adds stays there, never in the
# repository, and later runs start from it too). A crash, an invariant
# broken (an abort), a sanitizer report, an input slower than FUZZ_TIMEOUT
# seconds or more memory than FUZZ_RSS_MB is a finding: its input is written
# to build-fuzz/findings/<target>/ and the script exits non-zero after
# running every target. CI runs it with the defaults (the README's test
# command); by hand:
#   bash examples/fuzz.sh                      # 60 s per target
#   FUZZ_SECONDS=300 bash examples/fuzz.sh fuzz_http_request
#   build-fuzz/tests/fuzz/fuzz_http_request build-fuzz/findings/...  # replay
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-60}       # per target
timeout_s=${FUZZ_TIMEOUT:-5}      # per input: a slower one is a finding
rss_mb=${FUZZ_RSS_MB:-2048}
jobs=${FUZZ_JOBS:-2}              # build parallelism
targets=("$@")
if ((${#targets[@]} == 0)); then
  targets=(fuzz_http_request fuzz_purchase_json fuzz_item_json fuzz_buyer_tokens)
fi

cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DSECKILL_FUZZ=ON \
  > /dev/null
cmake --build build-fuzz -j"$jobs" --target "${targets[@]}"

# UBSan halts at its first report, so libFuzzer keeps the input that made it.
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export ASAN_OPTIONS="abort_on_error=1"
failed=()
summary=()
for t in "${targets[@]}"; do
  seeds=tests/fuzz/corpus/${t#fuzz_}
  corpus=build-fuzz/corpus/${t#fuzz_}
  findings=build-fuzz/findings/${t#fuzz_}
  log=build-fuzz/$t.log
  [[ -d $seeds ]] || { echo "no seeds in $seeds" >&2; exit 2; }
  mkdir -p "$corpus" "$findings"
  for f in "$seeds"/*; do # the seeds a run has not got yet
    [[ -e $corpus/${f##*/} ]] || cp "$f" "$corpus"/
  done
  before=$(find "$findings" -type f | wc -l)
  echo "== $t: ${seconds}s from $(find "$corpus" -type f | wc -l) inputs"
  rc=0
  "build-fuzz/tests/fuzz/$t" -max_total_time="$seconds" -timeout="$timeout_s" \
    -rss_limit_mb="$rss_mb" -print_final_stats=1 \
    -artifact_prefix="$findings/" "$corpus" > "$log" 2>&1 || rc=$?
  after=$(find "$findings" -type f | wc -l)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  cov=$(grep -E '^#[0-9]+[[:space:]]+(DONE|INITED|NEW|REDUCE|pulse)' "$log" \
    | tail -1 || true)
  line="$t: ${execs:-?} executions, ${rate:-?} exec/s; ${cov:-no coverage line}"
  if ((rc != 0 || after > before)) || grep -q 'runtime error:' "$log"; then
    failed+=("$t")
    line+=" -- FINDING (exit $rc, see $log and $findings/)"
    grep -E 'invariant broken|ERROR: |runtime error:|SUMMARY:' "$log" \
      | head -5 >&2 || true
  fi
  echo "$line"
  summary+=("$line")
done
echo "== summary"
printf '%s\n' "${summary[@]}"
if ((${#failed[@]})); then
  echo "findings in: ${failed[*]}" >&2
  exit 1
fi
