// The wall clock the actors read, injected so that the deterministic
// simulation can run them on CAF's test clock. Production uses the system
// clock; nothing in actors/ calls std::chrono::system_clock directly.
#pragma once

#include <cstdint>
#include <functional>

namespace seckill {

using clock_fn = std::function<int64_t()>; // Unix epoch milliseconds

/// The system clock in milliseconds since the epoch.
clock_fn system_clock_ms();

/// A monotonic clock in microseconds, for durations measured on one node
/// (server time, scheduler lag); its epoch means nothing.
using steady_us_fn = std::function<int64_t()>;

/// The steady clock in microseconds.
steady_us_fn steady_clock_us();

} // namespace seckill
