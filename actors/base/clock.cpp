// The production wall clock.
#include "actors/base/clock.hpp"

#include <chrono>

namespace seckill {

clock_fn system_clock_ms() {
  return [] {
    using namespace std::chrono;
    return static_cast<int64_t>(
      duration_cast<milliseconds>(system_clock::now().time_since_epoch())
        .count());
  };
}

steady_us_fn steady_clock_us() {
  return [] {
    using namespace std::chrono;
    return static_cast<int64_t>(
      duration_cast<microseconds>(steady_clock::now().time_since_epoch())
        .count());
  };
}

} // namespace seckill
