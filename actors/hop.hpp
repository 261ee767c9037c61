// The timeout of one hop between actors. A hop to an actor on another node
// can be lost with its peer, so it always has a timeout. A hop to a local,
// non-blocking actor cannot be lost and relies on the caller's own outer
// timeout: in CAF 0.17 a request with a timeout costs about three times one
// without (one timer each, on the clock thread; CAF-0.17.md), and a purchase
// makes several hops.
#pragma once

#include <chrono>
#include <cstdint>

#include <caf/duration.hpp>
#include <caf/node_id.hpp>

namespace seckill {

template <class Self, class Handle>
caf::duration hop_timeout(Self* self, const Handle& dest, int64_t ms) {
  if (dest && dest->node() != self->node())
    return caf::duration{std::chrono::milliseconds(ms)};
  return caf::duration{caf::infinite};
}

} // namespace seckill
