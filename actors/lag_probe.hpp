// The lag probe: one per node, it measures how late the actor scheduler
// runs a message, which is how long any new work would wait behind the
// node's own queues. Every `interval_ms` it asks CAF's clock for a tick and
// notes how much later than due the tick ran; it publishes the lateness and
// the next tick's due point in the node's switches, where the front gate
// reads them to shed load (actors/front_gate.hpp). A scheduler so busy that
// the tick never runs shows as the time past that due point.
//
// Time is the steady clock in microseconds, injected for tests. It must
// never: block, or keep more than one tick pending.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/clock.hpp"
#include "actors/front_gate.hpp"

namespace seckill {

struct lag_probe_state {
  std::shared_ptr<node_switches> switches;
  steady_us_fn now_us;
  int64_t interval_ms = 5;
  static inline const char* name = "seckill.lag_probe";
};

caf::behavior lag_probe_impl(caf::stateful_actor<lag_probe_state>* self,
                             std::shared_ptr<node_switches> switches,
                             steady_us_fn now_us, int64_t interval_ms);

} // namespace seckill
