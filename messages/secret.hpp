// Comparing a presented secret (the admin token) with the expected one in
// time that depends only on the expected one's length: no early exit at the
// first differing byte, so timing does not tell an attacker how much of a
// guess was right. Pure; used by the HTTP bridge (Authorization: Bearer)
// and the admin actor (the token every CLI command carries).
#pragma once

#include <cstddef>
#include <string_view>

#include "messages/errors.hpp"

namespace seckill {

/// errc::ok if `given` is `expected`; unauthorized if `given` is empty (no
/// credential); forbidden otherwise. An empty `expected` matches nothing.
inline errc check_secret(std::string_view given, std::string_view expected) {
  if (given.empty())
    return errc::unauthorized;
  unsigned diff =
    given.size() == expected.size() && !expected.empty() ? 0u : 1u;
  for (std::size_t i = 0; i < expected.size(); ++i)
    diff |= static_cast<unsigned char>(expected[i])
            ^ static_cast<unsigned char>(i < given.size() ? given[i] : 0);
  return diff == 0 ? errc::ok : errc::forbidden;
}

} // namespace seckill
