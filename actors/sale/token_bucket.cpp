// The token bucket's arithmetic (see token_bucket.hpp).
#include "actors/sale/token_bucket.hpp"

#include <algorithm>
#include <cmath>

#include "messages/assert.hpp"

namespace seckill {

namespace {

double refilled(const token_bucket& b, int64_t now_ms) {
  auto elapsed_ms = std::max<int64_t>(0, now_ms - b.last_ms);
  return std::min(b.burst, b.tokens + elapsed_ms * b.rate_per_s / 1000.0);
}

} // namespace

token_bucket make_bucket(double rate_per_s, double burst, int64_t now_ms) {
  SECKILL_ASSERT(rate_per_s > 0 && burst >= 1,
                 "a bucket refills and holds one");
  return token_bucket{rate_per_s, burst, burst, now_ms};
}

bool take_token(token_bucket& b, int64_t now_ms) {
  b.tokens = refilled(b, now_ms);
  b.last_ms = std::max(b.last_ms, now_ms);
  if (b.tokens < 1.0)
    return false;
  b.tokens -= 1.0;
  return true;
}

int64_t ms_until_token(const token_bucket& b, int64_t now_ms) {
  auto missing = 1.0 - refilled(b, now_ms);
  if (missing <= 0)
    return 0;
  return static_cast<int64_t>(std::ceil(missing * 1000.0 / b.rate_per_s));
}

} // namespace seckill
