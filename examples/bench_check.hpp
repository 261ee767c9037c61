// seckill-bench check: after the run, the node's own counters must agree with
// what the answers said. For each item, the stock taken during the run
// (sold + reserved, after minus before) must equal the distinct orders seen
// in 201/200 answers; an item that answered sold_out must have nothing
// available; no user may hold more than --limit orders of one item; no order
// may have been answered to two users. Answers that do not say whether a
// purchase was placed (transport errors, 5xx) may hide orders: the check
// allows exactly that many unseen orders and says so.
#pragma once

#include <string>
#include <vector>

#include "bench_config.hpp"
#include "bench_engine.hpp"

namespace bench {

struct stock_view {
  long long available = 0;
  long long reserved = 0;
  long long sold = 0;
  std::string status;
};

// GET /api/v1/items/{item}/stock from `node`, blocking, bounded by
// timeout_ms. False with `error` if there is no 200 answer.
bool fetch_stock(const endpoint& node, const std::string& item,
                 uint64_t timeout_ms, stock_view& out, std::string& error);

// Prints PASS/FAIL/SKIP lines; returns false if any line is FAIL.
bool check_run(const bench_config& cfg, const run_stats& stats,
               const std::vector<stock_view>& before);

} // namespace bench
