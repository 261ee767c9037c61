#!/usr/bin/env bash
# Builds the suite with AddressSanitizer and UBSan (build-asan/) and runs the
# groups that parse untrusted input or hold the data: JSON and HTTP, the
# store, the wire types, hostile requests, the CLI, the cluster, the sale
# core, the real node with its restarts and faults.
# A sanitizer report fails the test that made it (ASan always halts; UBSan
# halts through UBSAN_OPTIONS, after the suppression file).
# CI runs it (the README's test command). The build is -O1 with line
# tables only (-g1): sanitizer reports name file and line, and the build
# took about 9 minutes on 2 cores instead of about 13 at -O2 -g. By hand:
#   bash examples/sanitize.sh            # build and run
#   SANITIZE_TAGS="[dto]" bash examples/sanitize.sh
set -euo pipefail
cd "$(dirname "$0")/.."
tags=${SANITIZE_TAGS:-"[dto],[http],[store],[wire],[rules],[item_book],[item],[queue],[session],[hostile],[cli],[cluster],[tls]~[example],[node],[data-dir],[retry],[fault],[tokens],[buyer]"}
cmake -S . -B build-asan -DSECKILL_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" > /dev/null
cmake --build build-asan -j2 --target seckill-tests
# CAF 0.17's own headers raise one known UBSan report when an actor with no
# arguments is spawned; examples/ubsan.supp suppresses that one, by name.
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:suppressions=$PWD/examples/ubsan.supp"
# CAF's middleman keeps singletons alive past main; their memory is not a
# leak of ours.
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1"
build-asan/seckill-tests "$tags"
