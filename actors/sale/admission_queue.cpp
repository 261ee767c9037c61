// The admission-queue actor (see admission_queue.hpp).
#include "actors/sale/admission_queue.hpp"
#include "actors/base/strangers.hpp"

#include <algorithm>
#include <chrono>
#include <optional>

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
caf::error take_ticket(queue_pointer self, purchase& p);

// Sends `p` on downstream (one in flight more) and calls `done` with the
// order or the error.
template <class Done>
void send_on(queue_pointer self, purchase p, Done done) {
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
      [self, done, request_id](order& o) mutable {
        auto& acked = self->state.acked_requests;
        if (acked.size() < limits::orders_per_item_max)
          acked.insert(request_id);
        done(std::move(o), caf::error{});
        self->state.inflight -= 1;
        drain(self);
      },
      [self, done](caf::error& err) mutable {
        done(order{}, std::move(err));
        self->state.inflight -= 1;
        drain(self);
      });
}

void dispatch(queue_pointer self, purchase p,
              caf::typed_response_promise<order> rp) {
  send_on(self, std::move(p), [rp](order o, caf::error err) mutable {
    if (err)
      rp.deliver(std::move(err));
    else
      rp.deliver(std::move(o));
  });
}

// The line's front goes on; its answer waits for its holder.
void dispatch_ticket(queue_pointer self) {
  auto& st = self->state;
  auto t = std::move(st.line.front());
  st.line.pop_front();
  st.line_units -= t.p.quantity;
  st.line_inflight.insert(t.ticket);
  auto ticket = t.ticket;
  send_on(self, std::move(t.p), [self, ticket](order o, caf::error err) {
    auto& st = self->state;
    st.line_inflight.erase(ticket);
    st.decided[ticket] = ticket_answer{now(self), std::move(o), std::move(err)};
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
  // The line's purchases are decided now too: their holders collect that.
  std::deque<ticketed_purchase> kept_line;
  for (auto& t : st.line) {
    if (keep_orders && may_have_order(st, t.p.request_id)) {
      kept_line.push_back(std::move(t));
      continue;
    }
    st.line_units -= t.p.quantity;
    st.decided[t.ticket] = ticket_answer{now(self), {}, make_error(code)};
    st.rejected += 1;
  }
  st.line = std::move(kept_line);
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
    // Waited its maximum: a ticket keeps its purchase in line (busy when
    // tickets are off or at their bound).
    auto w = std::move(st.waiting.front());
    st.waiting.pop_front();
    if (st.cfg.tickets_max > 0) {
      w.rp.deliver(take_ticket(self, w.p));
      continue;
    }
    w.rp.deliver(
      make_error(errc::busy, retry_hint_ms(st.waiting.size(), st.cfg.rate_per_s,
                                           st.cfg.wait_ms_max)));
    st.rejected += 1;
  }
  while (!st.waiting.empty() && st.inflight < st.cfg.inflight_max
         && take_token(st.bucket, t)) {
    auto w = std::move(st.waiting.front());
    st.waiting.pop_front();
    dispatch(self, std::move(w.p), std::move(w.rp));
  }
  // The line goes on behind the room, in ticket order.
  while (st.waiting.empty() && !st.line.empty()
         && st.inflight < st.cfg.inflight_max && take_token(st.bucket, t))
    dispatch_ticket(self);
  // Decided answers nobody came for expire (roughly in ticket order).
  while (!st.decided.empty()
         && t - st.decided.begin()->second.decided_ms >= st.cfg.ticket_ttl_ms) {
    st.decided.erase(st.decided.begin());
    st.tickets_expired += 1;
  }
  SECKILL_ASSERT(st.line.size() + st.line_inflight.size() + st.decided.size()
                     <= st.cfg.tickets_max
                   && st.line_units >= 0,
                 "the ticket line stays within its bound");
  if (!st.line.empty() && st.waiting.empty()) {
    auto due = st.inflight < st.cfg.inflight_max
                 ? t + ms_until_token(st.bucket, t)
                 : t + limits::busy_retry_ms_min;
    arm_timer(self, due);
  }
  if (st.waiting.empty())
    return;
  auto deadline = st.waiting.front().arrived_ms + st.cfg.wait_ms_max;
  if (st.inflight < st.cfg.inflight_max)
    deadline = std::min(deadline, t + ms_until_token(st.bucket, t));
  arm_timer(self, deadline);
}

/// A holder's place: its ticket, position and ETA now.
caf::error queued_answer(queue_pointer self, int64_t ticket, int64_t position,
                         int64_t units_ahead) {
  auto& st = self->state;
  queued_facts q;
  q.ticket = ticket;
  q.position = position;
  q.eta_ms =
    std::max<int64_t>(limits::busy_retry_ms_min,
                      static_cast<int64_t>(static_cast<double>(position)
                                           * 1000.0 / st.cfg.rate_per_s));
  q.likely_sold_out = st.status_known && units_ahead >= st.status.available;
  return make_queued(q);
}

/// A buyer the room cannot take (a newcomer, or a waiter whose wait ran
/// out): a ticket and a place at the line's end, answered queued; or busy
/// when the tickets are at their bound (or off).
caf::error take_ticket(queue_pointer self, purchase& p) {
  auto& st = self->state;
  auto held = st.line.size() + st.line_inflight.size() + st.decided.size();
  if (held >= st.cfg.tickets_max) {
    st.rejected += 1;
    return make_error(errc::busy,
                      retry_hint_ms(st.waiting.size() + st.line.size(),
                                    st.cfg.rate_per_s, st.cfg.wait_ms_max));
  }
  auto ticket = st.next_ticket++;
  // Units asked for ahead: the line's, and about one per buyer in the room
  // and on the way (an estimate: hence "likely").
  auto ahead = st.line_units + static_cast<int64_t>(st.waiting.size())
               + static_cast<int64_t>(st.inflight);
  st.line_units += p.quantity;
  st.line.push_back(ticketed_purchase{ticket, std::move(p)});
  st.tickets_issued += 1;
  return queued_answer(self, ticket, static_cast<int64_t>(st.line.size()),
                       ahead);
}

/// A retry presenting ticket p.ticket: its decided answer (collected once),
/// or its place again; nothing (a newcomer after all) if this queue does
/// not hold that ticket (expired, or another incarnation of the queue).
std::optional<caf::result<order>> on_ticket(queue_pointer self, purchase& p) {
  auto& st = self->state;
  if (auto i = st.decided.find(p.ticket); i != st.decided.end()) {
    auto a = std::move(i->second);
    st.decided.erase(i);
    st.tickets_served += 1;
    if (a.err)
      return caf::result<order>{std::move(a.err)};
    return caf::result<order>{std::move(a.placed)};
  }
  if (st.line_inflight.count(p.ticket) != 0)
    return caf::result<order>{queued_answer(self, p.ticket, 0, 0)};
  if (!st.line.empty() && p.ticket >= st.line.front().ticket
      && p.ticket <= st.line.back().ticket) {
    auto at = static_cast<std::size_t>(p.ticket - st.line.front().ticket);
    SECKILL_ASSERT(st.line[at].ticket == p.ticket,
                   "the line holds contiguous tickets in order");
    auto ahead = static_cast<int64_t>(st.waiting.size() + st.inflight);
    for (std::size_t k = 0; k < at; ++k)
      ahead += st.line[k].p.quantity;
    return caf::result<order>{
      queued_answer(self, p.ticket, static_cast<int64_t>(at) + 1, ahead)};
  }
  p.ticket = 0;
  return std::nullopt;
}

caf::result<order> on_purchase(queue_pointer self, purchase& p) {
  auto& st = self->state;
  if (auto code = validate_purchase(p); code != errc::ok) {
    st.rejected += 1;
    return make_error(code);
  }
  if (p.ticket > 0)
    if (auto answered = on_ticket(self, p))
      return std::move(*answered);
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
  bool pass = st.waiting.empty() && st.line.empty()
              && st.inflight < st.cfg.inflight_max && take_token(st.bucket, t);
  // Refusals first: once a response promise exists, it alone answers. With
  // a line, a newcomer joins its end: it never overtakes a ticket holder.
  bool full = !pass
              && room_refuses(st.waiting.size(), st.cfg.waiting_max,
                              st.cfg.rate_per_s, st.cfg.wait_ms_max);
  if (!st.line.empty() || (full && st.cfg.tickets_max > 0)) {
    auto answer = take_ticket(self, p);
    drain(self);
    return answer;
  }
  if (full) {
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
  v.tickets_issued = st.tickets_issued;
  v.tickets_served = st.tickets_served;
  v.tickets_expired = st.tickets_expired;
  v.tickets_waiting = static_cast<int64_t>(st.line.size());
  v.ticket_head = st.line.empty() ? 0 : st.line.front().ticket;
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
                   && cfg.wait_ms_max <= limits::wait_ms_max
                   && cfg.tickets_max <= limits::tickets_per_queue_max,
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
