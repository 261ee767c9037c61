// A token bucket as a pure value: `rate_per_s` tokens per second, at most
// `burst` stored. The admission queue meters purchases with it, the user
// session meters a user's requests. Time comes in as an argument.
#pragma once

#include <cstdint>

namespace seckill {

struct token_bucket {
  double rate_per_s = 1;
  double burst = 1;
  double tokens = 1;
  int64_t last_ms = 0;
};

token_bucket make_bucket(double rate_per_s, double burst, int64_t now_ms);

/// Takes one token if there is one; refills by the time passed first.
bool take_token(token_bucket& b, int64_t now_ms);

/// Milliseconds until a token will be there (0 if there is one now).
int64_t ms_until_token(const token_bucket& b, int64_t now_ms);

} // namespace seckill
