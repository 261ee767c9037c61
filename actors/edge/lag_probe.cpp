// The lag probe (see lag_probe.hpp).
#include "actors/edge/lag_probe.hpp"

#include <algorithm>
#include <chrono>

#include "messages/assert.hpp"
#include "messages/type_ids.hpp"

namespace seckill {

namespace {

void schedule(caf::stateful_actor<lag_probe_state>* self, int64_t now_us) {
  auto& st = self->state;
  auto due = now_us + st.interval_ms * 1000;
  st.switches->lag_due_us.store(due, std::memory_order_relaxed);
  self->delayed_send(self, std::chrono::milliseconds(st.interval_ms),
                     tick_atom_v, due);
}

// Feeds both detectors at `now_us`: the scheduler's with its tick `late_us`
// late, the event loop's with its last measure or the time past its due
// point if longer (not before the server's first tick).
void judge(lag_probe_state& st, int64_t late_us, int64_t now_us) {
  auto& sw = *st.switches;
  auto lim = lag_limits_of(sw);
  bool sustained = feed_lag(st.scheduler, lim, late_us, now_us);
  auto io_due = sw.io_lag_due_us.load(std::memory_order_relaxed);
  if (io_due > 0) {
    auto io_late = std::max(sw.io_lag_last_us.load(std::memory_order_relaxed),
                            now_us - io_due);
    sustained = feed_lag(st.io_loop, lim, io_late, now_us) || sustained;
  }
  sw.lag_sustained.store(sustained, std::memory_order_relaxed);
}

} // namespace

caf::behavior lag_probe_impl(caf::stateful_actor<lag_probe_state>* self,
                             std::shared_ptr<node_switches> switches,
                             steady_us_fn now_us, int64_t interval_ms) {
  SECKILL_ASSERT(switches && now_us && interval_ms > 0,
                 "a probe has switches, a clock and an interval");
  self->state.switches = std::move(switches);
  self->state.now_us = std::move(now_us);
  self->state.interval_ms = interval_ms;
  schedule(self, self->state.now_us());
  return {
    [self](tick_atom, int64_t due_us) {
      auto& st = self->state;
      auto now = st.now_us();
      auto late = std::max<int64_t>(0, now - due_us);
      st.switches->lag_last_us.store(late, std::memory_order_relaxed);
      judge(st, late, now);
      schedule(self, now);
    },
  };
}

} // namespace seckill
