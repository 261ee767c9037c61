// The admission-queue actor (see admission_queue.hpp).
#include "actors/sale/admission_queue.hpp"
#include "actors/base/strangers.hpp"

#include <algorithm>
#include <chrono>

#include <caf/event_based_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include "actors/base/hop.hpp"
#include "actors/sale/item.hpp"
#include "actors/sale/item_book.hpp"
#include "actors/sale/request_filter.hpp"
#include "actors/sale/session_manager.hpp"
#include "messages/assert.hpp"
#include "messages/limits.hpp"
#include "messages/log_text.hpp"

namespace seckill {

errc status_refusal(item_status s) {
  switch (s) {
    case item_status::upcoming: return errc::not_started;
    case item_status::on_sale: return errc::ok;
    case item_status::paused: return errc::paused;
    case item_status::sold_out: return errc::sold_out;
    case item_status::ended: return errc::ended;
  }
  return errc::ok;
}

bool room_refuses(std::size_t waiting, std::size_t waiting_max,
                  double rate_per_s, int64_t wait_ms_max) {
  if (waiting >= waiting_max)
    return true;
  // The newcomer is served after the `waiting` ahead of it, one token each.
  auto turn_ms = (static_cast<double>(waiting) + 1.0) * 1000.0 / rate_per_s;
  return turn_ms > static_cast<double>(wait_ms_max);
}

int64_t retry_hint_ms(std::size_t waiting, double rate_per_s,
                      int64_t wait_ms_max) {
  auto ms = static_cast<int64_t>(waiting * 1000.0 / rate_per_s);
  constexpr auto floor = limits::busy_retry_ms_min;
  return std::clamp<int64_t>(ms, floor, std::max(floor, wait_ms_max));
}

namespace {

int64_t now(queue_pointer self) {
  return self->state.now_ms();
}

void drain(queue_pointer self);

void dispatch(queue_pointer self, purchase p,
              caf::typed_response_promise<order> rp) {
  auto& st = self->state;
  st.inflight += 1;
  st.admitted += 1;
  // The session manager is this node's: a local hop, bounded by the
  // caller's timeout (it sends a remote user's purchase on through a relay).
  // Until the item's status is known the session must not judge the limit.
  auto limit =
    st.status_known ? st.status.per_user_limit : limits::per_user_limit_max;
  auto request_id = p.request_id;
  self
    ->request(st.sessions, caf::infinite, purchase_atom_v, std::move(p),
              st.item, limit)
    .then(
      [self, rp, request_id](order& o) mutable {
        auto& acked = self->state.acked_requests;
        if (acked.size() < limits::orders_per_item_max)
          acked.insert(request_id);
        rp.deliver(std::move(o));
        self->state.inflight -= 1;
        drain(self);
      },
      [self, rp](caf::error& err) mutable {
        rp.deliver(std::move(err));
        self->state.inflight -= 1;
        drain(self);
      });
}

// Whether `request_id` may already have an order: acknowledged through this
// queue, or in the item's filter of ordered ids (placed through any queue).
// Such a request goes on to the item even when the status refuses.
bool may_have_order(const queue_state& st, const std::string& request_id) {
  return st.acked_requests.count(request_id) != 0
         || filter_may_hold(st.status.ordered_requests, request_id);
}

// Answers every waiter with `code`; with `keep_orders`, except those whose
// request id may have an order (they wait on, to get it back).
void reject_all(queue_pointer self, errc code, bool keep_orders = false) {
  auto& st = self->state;
  std::deque<waiting_purchase> kept;
  for (auto& w : st.waiting) {
    if (keep_orders && may_have_order(st, w.p.request_id)) {
      kept.push_back(std::move(w));
      continue;
    }
    w.rp.deliver(make_error(code));
    st.rejected += 1;
  }
  st.waiting = std::move(kept);
}

void arm_timer(queue_pointer self, int64_t due_ms) {
  auto& st = self->state;
  auto t = now(self);
  due_ms = std::max(due_ms, t + 1);
  if (st.timer_due_ms != 0 && st.timer_due_ms <= due_ms)
    return;
  st.timer_due_ms = due_ms;
  self->delayed_send(self, std::chrono::milliseconds(due_ms - t), tick_atom_v);
}

// Answers waiters past their deadline, then lets waiters on while there are
// tokens and room downstream, in arrival order.
void drain(queue_pointer self) {
  auto& st = self->state;
  auto t = now(self);
  while (!st.waiting.empty()
         && t - st.waiting.front().arrived_ms >= st.cfg.wait_ms_max) {
    auto hint =
      retry_hint_ms(st.waiting.size(), st.cfg.rate_per_s, st.cfg.wait_ms_max);
    st.waiting.front().rp.deliver(make_error(errc::busy, hint));
    st.waiting.pop_front();
    st.rejected += 1;
  }
  while (!st.waiting.empty() && st.inflight < st.cfg.inflight_max
         && take_token(st.bucket, t)) {
    auto w = std::move(st.waiting.front());
    st.waiting.pop_front();
    dispatch(self, std::move(w.p), std::move(w.rp));
  }
  if (st.waiting.empty())
    return;
  auto deadline = st.waiting.front().arrived_ms + st.cfg.wait_ms_max;
  if (st.inflight < st.cfg.inflight_max)
    deadline = std::min(deadline, t + ms_until_token(st.bucket, t));
  arm_timer(self, deadline);
}

caf::result<order> on_purchase(queue_pointer self, purchase& p) {
  auto& st = self->state;
  if (auto code = validate_purchase(p); code != errc::ok) {
    st.rejected += 1;
    return make_error(code);
  }
  if (!st.owner_up) {
    st.rejected += 1;
    return make_error(errc::shard_unavailable);
  }
  if (st.status_known) {
    if (auto code = status_refusal(st.status.status);
        code != errc::ok && !may_have_order(st, p.request_id)) {
      st.rejected += 1;
      return make_error(code);
    }
    // A token or quiz item's purchase without a sale token goes no further
    // (the item would refuse it too), unless it may be a retry of an order.
    if (st.status.admission != admission_mode::open && !p.sale_token_ok
        && !may_have_order(st, p.request_id)) {
      st.rejected += 1;
      return make_error(errc::token_required);
    }
  }
  auto t = now(self);
  bool pass = st.waiting.empty() && st.inflight < st.cfg.inflight_max
              && take_token(st.bucket, t);
  // Refusals first: once a response promise exists, it alone answers.
  if (!pass
      && room_refuses(st.waiting.size(), st.cfg.waiting_max, st.cfg.rate_per_s,
                      st.cfg.wait_ms_max)) {
    st.rejected += 1;
    return make_error(
      errc::busy,
      retry_hint_ms(st.waiting.size(), st.cfg.rate_per_s, st.cfg.wait_ms_max));
  }
  auto rp = self->make_response_promise<order>();
  if (pass) {
    dispatch(self, std::move(p), rp);
    return rp;
  }
  st.waiting.push_back(waiting_purchase{std::move(p), t, rp});
  drain(self);
  return rp;
}

void on_status(queue_pointer self, const status_update& u);

// Learns the item's status now; later changes are pushed. A remote item is
// reached through a relay (bounded in time); if that fails, purchases still
// go on to the item (which decides) and the next owner_atom subscribes again.
void subscribe(queue_pointer self) {
  auto& st = self->state;
  auto item = st.item;
  hop_request(self, st.cluster, std::hash<std::string>{}(st.item_id),
              st.owner_node, st.item, subscribe_atom_v,
              caf::actor_cast<caf::actor>(self))
    .then(
      [self, item](status_update& u) {
        if (item != self->state.item)
          return; // an answer for a handle replaced meanwhile
        // Sized for what the item can still sell, at once: a growing set
        // rehashes all at once and stalls the queue (limits.hpp).
        auto& acked = self->state.acked_requests;
        acked.reserve(std::min<std::size_t>(
          acked.size()
            + static_cast<std::size_t>(std::max<int64_t>(0, u.available)),
          limits::orders_reserved_max));
        on_status(self, u);
      },
      [self](caf::error& err) {
        spdlog::warn("queue_subscribe_failed item={} owner={} error={}",
                     self->state.item_id, self->state.owner_node,
                     log_text(self->system().render(err)));
        // Purchases still go on to the item, which decides; the sold-out
        // shortcut waits for the next attempt.
        if (self->state.owner_up)
          self->delayed_send(
            self, std::chrono::milliseconds(limits::queue_resubscribe_ms),
            owner_atom_v, true, caf::actor{});
      });
}

void on_owner(queue_pointer self, bool up, caf::actor item) {
  auto& st = self->state;
  st.owner_up = up;
  if (!up) {
    // Whatever the owner said is stale now: its connection (and with it our
    // subscription) may be gone even if the process comes back.
    st.status_known = false;
    reject_all(self, errc::shard_unavailable);
    return;
  }
  // Always take the handle the owner sent: after a connection flap CAF's
  // new proxy compares equal to the dead one, which drops every message.
  if (item)
    st.item = std::move(item);
  if (!st.status_known)
    subscribe(self);
  drain(self);
}

void on_status(queue_pointer self, const status_update& u) {
  auto& st = self->state;
  bool sold_out_now = st.status_known && u.status == item_status::sold_out
                      && st.status.status != item_status::sold_out;
  auto waiting_before = st.waiting.size();
  st.status = u;
  st.status_known = true;
  if (auto code = status_refusal(u.status); code != errc::ok)
    reject_all(self, code, true);
  if (sold_out_now) {
    // How late this queue's waiters learned of the last unit: the item's
    // decision to here (one push; on another node, over the network).
    st.sold_out_notice_ms = std::max<int64_t>(0, now(self) - u.changed_ms);
    st.sold_out_waiters =
      static_cast<int64_t>(waiting_before - st.waiting.size());
    spdlog::info("sold_out_known item={} notice_ms={} waiters_answered={}",
                 st.item_id, st.sold_out_notice_ms, st.sold_out_waiters);
  }
  drain(self);
}

queue_view make_view(queue_pointer self) {
  auto& st = self->state;
  queue_view v;
  v.item_id = st.item_id;
  v.status = st.status.status;
  v.waiting = static_cast<int64_t>(st.waiting.size());
  v.inflight = static_cast<int64_t>(st.inflight);
  if (!st.waiting.empty())
    v.oldest_wait_ms = now(self) - st.waiting.front().arrived_ms;
  v.admitted = st.admitted;
  v.rejected = st.rejected;
  v.sold_out_notice_ms = st.sold_out_notice_ms;
  v.sold_out_waiters = st.sold_out_waiters;
  return v;
}

} // namespace

queue_actor::behavior_type
queue_impl(queue_pointer self, std::string item_id, queue_config cfg,
           clock_fn now_ms, caf::actor item, session_manager_actor sessions,
           std::vector<std::string> known_requests, cluster_env cluster) {
  survive_strangers(self, "queue");
  SECKILL_ASSERT(cfg.waiting_max <= limits::waiting_room_max
                   && cfg.inflight_max <= limits::queue_inflight_max
                   && cfg.wait_ms_max <= limits::wait_ms_max,
                 "queue limits stay under their hard maxima");
  auto& st = self->state;
  st.item_id = std::move(item_id);
  st.cfg = cfg;
  st.now_ms = std::move(now_ms);
  st.item = std::move(item);
  st.sessions = std::move(sessions);
  st.bucket = make_bucket(cfg.rate_per_s, cfg.burst, st.now_ms());
  SECKILL_ASSERT(known_requests.size() <= limits::orders_per_item_max,
                 "an item never has more orders than it may keep");
  st.acked_requests.insert(known_requests.begin(), known_requests.end());
  st.cluster = std::move(cluster);
  st.owner_node = st.cluster.item_node(st.item_id);
  subscribe(self);
  return {
    [self](purchase_atom, purchase& p) { return on_purchase(self, p); },
    [self](status_atom, const status_update& u) { on_status(self, u); },
    [self](owner_atom, bool up, caf::actor& item) {
      on_owner(self, up, std::move(item));
    },
    [self](rate_atom, double rate, double burst) {
      auto& st = self->state;
      SECKILL_ASSERT(rate > 0 && burst >= 1, "a queue always admits something");
      st.cfg.rate_per_s = rate;
      st.cfg.burst = burst;
      auto tokens = std::min(st.bucket.tokens, burst);
      st.bucket = make_bucket(rate, burst, now(self));
      st.bucket.tokens = tokens;
      drain(self);
    },
    [self](tick_atom) {
      // Any tick disarms (see the item actor): drain re-arms what is due.
      self->state.timer_due_ms = 0;
      drain(self);
    },
    [self](view_atom) { return make_view(self); },
  };
}

} // namespace seckill
