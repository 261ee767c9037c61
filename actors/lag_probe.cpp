// The lag probe (see lag_probe.hpp).
#include "actors/lag_probe.hpp"

#include <algorithm>
#include <chrono>

#include "messages/assert.hpp"
#include "messages/type_ids.hpp"

namespace seckill {

namespace {

void schedule(caf::stateful_actor<lag_probe_state>* self) {
  auto& st = self->state;
  auto due = st.now_us() + st.interval_ms * 1000;
  st.switches->lag_due_us.store(due, std::memory_order_relaxed);
  self->delayed_send(self, std::chrono::milliseconds(st.interval_ms),
                     tick_atom_v, due);
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
  schedule(self);
  return {
    [self](tick_atom, int64_t due_us) {
      auto late = std::max<int64_t>(0, self->state.now_us() - due_us);
      self->state.switches->lag_last_us.store(late, std::memory_order_relaxed);
      schedule(self);
    },
  };
}

} // namespace seckill
