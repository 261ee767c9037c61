// A limiter for repeated log events: a fault that fails every request (a
// full disk fails every commit) must not write a line per request. The first
// event logs; later ones log at most once per period, saying how many were
// left out since. Pure: the caller passes the time, so tests drive it.
#pragma once

#include <cstdint>
#include <limits>

namespace seckill {

struct log_limiter {
  int64_t period_ms = 1'000;
  int64_t last_ms = std::numeric_limits<int64_t>::min();
  int64_t suppressed = 0;

  /// True if this event is to be logged; then `skipped` is the number of
  /// events left out since the last one logged.
  bool allow(int64_t now_ms, int64_t& skipped) {
    if (last_ms != std::numeric_limits<int64_t>::min()
        && now_ms - last_ms < period_ms) {
      ++suppressed;
      return false;
    }
    last_ms = now_ms;
    skipped = suppressed;
    suppressed = 0;
    return true;
  }
};

} // namespace seckill
