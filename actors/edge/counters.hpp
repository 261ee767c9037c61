// The counters the node's bridges share, by route and by outcome: every
// bridge adds to them, /metrics reads them. Atomics only, so no actor state
// is shared; apart from the bridge so that metrics.hpp need not include it.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "actors/edge/routes.hpp"
#include "messages/errors.hpp"

namespace seckill {

/// Requests by route and outcome, purchases by outcome. Atomics: every
/// bridge adds, /metrics reads; no actor state is shared.
struct bridge_counters {
  static constexpr std::size_t outcomes =
    static_cast<std::size_t>(errc_last) + 1;
  std::array<std::array<std::atomic<int64_t>, outcomes>, route_count>
    requests{};
  std::array<std::atomic<int64_t>, outcomes> purchases{};
  /// Purchases answered 201 (new order) and 200 (a retry's order).
  std::atomic<int64_t> orders_created{0};
  std::atomic<int64_t> orders_replayed{0};
  /// Renders of /metrics and of the item list (each may answer many
  /// requests: see shared_answer).
  std::atomic<int64_t> metrics_renders{0};
  std::atomic<int64_t> items_list_renders{0};
};

} // namespace seckill
