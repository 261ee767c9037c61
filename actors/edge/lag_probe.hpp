// The lag probe: one per node, it measures how late the actor scheduler
// runs a message, which is how long any new work would wait behind the
// node's own queues. Every `interval_ms` it asks CAF's clock for a tick and
// notes how much later than due the tick ran; it publishes the lateness and
// the next tick's due point in the node's switches. A scheduler so busy that
// the tick never runs shows as the time past that due point, which the
// front gate reads itself (actors/edge/front_gate.hpp).
//
// At every tick it also judges whether the lag is sustained, for the
// scheduler (its own measure) and for the HTTP event loop (the server's
// timer publishes the loop's last lateness and next due point: the probe
// samples the longer of the two), each with a lag_detector: a window of
// measures above shed-lag-ms, with hysteresis. It publishes the verdict in
// `node_switches::lag_sustained`, the one place the gate reads it from, so
// the detectors have one writer and the gate stays lock-free. One late
// tick, however late, never sets it.
//
// Time is the steady clock in microseconds, injected for tests; it is read
// once per tick. It must never: block, or keep more than one tick pending.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/base/clock.hpp"
#include "actors/edge/front_gate.hpp"

namespace seckill {

struct lag_probe_state {
  std::shared_ptr<node_switches> switches;
  steady_us_fn now_us;
  int64_t interval_ms = 5;
  lag_detector scheduler; // fed with this probe's own ticks
  lag_detector io_loop;   // fed with the HTTP event loop's, sampled per tick
  static inline const char* name = "seckill.lag_probe";
};

caf::behavior lag_probe_impl(caf::stateful_actor<lag_probe_state>* self,
                             std::shared_ptr<node_switches> switches,
                             steady_us_fn now_us, int64_t interval_ms);

} // namespace seckill
