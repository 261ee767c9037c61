// The item actor (see item.hpp): behavior, batch pipeline and status pushes.
#include "actors/sale/item.hpp"
#include "actors/base/strangers.hpp"
#include "actors/sale/request_filter.hpp"

#include <algorithm>
#include <chrono>
#include <functional>

#include <caf/event_based_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include "messages/assert.hpp"
#include "messages/limits.hpp"
#include "messages/log_text.hpp"

namespace seckill {

namespace {

using heap_entry = std::pair<int64_t, std::string>;

/// How long expiries wait after a failed commit before being tried again.
constexpr int64_t commit_retry_backoff_ms = 100;
constexpr auto heap_later = std::greater<heap_entry>{};

int64_t now(item_pointer self) {
  return self->state.env.now_ms();
}

item_status current_status(item_pointer self) {
  return status_at(self->state.book.rec, now(self));
}

status_update make_update(item_pointer self) {
  const auto& book = self->state.book;
  const auto& spec = book.rec.spec;
  status_update u{spec.item_id,
                  current_status(self),
                  book.rec.counters.available,
                  spec.per_user_limit,
                  spec.starts_at_ms,
                  spec.admission,
                  {},
                  now(self)};
  // A queue that refuses by the status lets through what may be a retry of
  // an order (placed through any node's queue): see request_filter.hpp.
  if (u.status == item_status::sold_out || u.status == item_status::ended
      || u.status == item_status::paused) {
    u.ordered_requests.assign(filter_words(book.by_request.size()), 0);
    for (const auto& kvp : book.by_request)
      add_to_filter(u.ordered_requests, kvp.first);
  }
  return u;
}

// An ended sale takes no new order (the end is final): its tables shrink
// to the orders it holds, and the directory gets the bytes back.
void release_when_ended(item_pointer self, item_status status) {
  auto& st = self->state;
  if (status != item_status::ended || st.tables_released)
    return;
  st.tables_released = true;
  auto bytes = release_tables(st.book);
  spdlog::info("item_tables_released item={} orders={} table_bytes={}",
               st.book.rec.spec.item_id, st.book.orders.size(), bytes);
  if (st.env.directory)
    self->send(st.env.directory, tables_atom_v, st.book.rec.spec.item_id,
               bytes);
}

void publish_status(item_pointer self) {
  auto& st = self->state;
  auto status = current_status(self);
  release_when_ended(self, status);
  if (status == st.published)
    return;
  st.published = status;
  spdlog::info("item_status item={} status={} available={}",
               st.book.rec.spec.item_id, to_string(status),
               st.book.rec.counters.available);
  auto update = make_update(self);
  for (auto& sub : st.subscribers)
    self->send(sub, status_atom_v, update);
}

// Arms one tick for the earliest of: the next expiry, the sale's start and
// end. A tick already armed for an earlier time covers a later deadline.
void arm_timer(item_pointer self) {
  auto& st = self->state;
  auto t = now(self);
  int64_t due = 0;
  auto consider = [&](int64_t at) {
    if (at > t && (due == 0 || at < due))
      due = at;
  };
  if (!st.expiry_heap.empty())
    consider(
      std::max({st.expiry_heap.front().first, t + 1, st.backoff_until_ms}));
  consider(st.book.rec.spec.starts_at_ms);
  consider(st.book.rec.spec.ends_at_ms);
  if (due == 0 || (st.timer_due_ms != 0 && st.timer_due_ms <= due))
    return;
  st.timer_due_ms = due;
  self->delayed_send(self, std::chrono::milliseconds(due - t), tick_atom_v);
}

void track_expiry(item_pointer self, const order& o) {
  if (o.expires_ms == 0 || is_final(o.state))
    return;
  auto& heap = self->state.expiry_heap;
  heap.emplace_back(o.expires_ms, o.order_id);
  std::push_heap(heap.begin(), heap.end(), heap_later);
  arm_timer(self);
}

void record(item_pointer self, undo_record u, waiter w) {
  auto& pending = self->state.pending;
  if (!u.order_id.empty())
    pending.touched.insert(u.order_id);
  if (!u.order_id.empty() && !u.order_before)
    pending.placed.insert(u.order_id); // created by this change
  pending.undos.push_back(std::move(u));
  if (w)
    pending.waiters.push_back(std::move(w));
}

bool pending_full(item_pointer self) {
  return self->state.pending.undos.size() >= limits::batch_orders_max;
}

// Callers waiting for durability, on both batches: bounded, every path.
bool waiters_full(item_pointer self) {
  const auto& st = self->state;
  return st.pending.waiters.size() + st.inflight.waiters.size()
         >= limits::batch_waiters_max;
}

void flush(item_pointer self);

void settle_notices(item_pointer self, const item_batch_state& done) {
  auto& st = self->state;
  if (!st.env.settled)
    return;
  for (const auto& u : done.undos) {
    if (!u.order_before || is_final(u.order_before->state))
      continue;
    const auto& o = st.book.orders.at(u.order_id);
    if (is_final(o.state))
      self->send(st.env.settled, settled_atom_v, o.user_id, o.order_id,
                 o.state != order_state::confirmed);
  }
}

// Tells the settle listener each user's unpaid orders, so the user's session
// counts them after a restart or a move. Bounded by the expiry heap, which
// holds every unpaid order (and some already settled, skipped here).
void announce_unpaid(item_pointer self) {
  auto& st = self->state;
  if (!st.env.settled)
    return;
  std::unordered_map<std::string, std::vector<unpaid_view>> by_user;
  std::unordered_set<std::string> seen;
  for (const auto& [expires_ms, id] : st.expiry_heap) {
    auto i = st.book.orders.find(id);
    if (i == st.book.orders.end() || is_final(i->second.state)
        || i->second.expires_ms != expires_ms || !seen.insert(id).second)
      continue;
    const auto& o = i->second;
    by_user[o.user_id].push_back(
      unpaid_view{o.order_id, o.item_id, o.quantity, o.expires_ms});
  }
  for (auto& [user, notes] : by_user)
    self->send(st.env.settled, unpaid_atom_v, user, std::move(notes));
}

void on_committed(item_pointer self) {
  auto& st = self->state;
  auto done = std::move(st.inflight);
  st.inflight = item_batch_state{};
  st.commit_inflight = false;
  st.commits += 1;
  for (auto& w : done.waiters)
    w(errc::ok);
  settle_notices(self, done);
  flush(self);
}

void undo_all(item_pointer self, item_batch_state& batch) {
  if (testing::planted_skip_commit_undo)
    return;
  auto& book = self->state.book;
  for (auto i = batch.undos.rbegin(); i != batch.undos.rend(); ++i) {
    undo(book, *i);
    // An undone expiry or payment leaves the order unpaid again: its
    // deadline must be watched again.
    if (i->order_before && !is_final(i->order_before->state))
      track_expiry(self, *i->order_before);
  }
}

void on_commit_failed(item_pointer self, const caf::error& err) {
  auto& st = self->state;
  auto pending = std::move(st.pending);
  auto inflight = std::move(st.inflight);
  st.pending = item_batch_state{};
  st.inflight = item_batch_state{};
  st.commit_inflight = false;
  st.commit_failures += 1;
  // Expiries undone here are due again at once; retrying them every tick
  // against a failing store would spin. They wait a little.
  st.backoff_until_ms = now(self) + commit_retry_backoff_ms;
  undo_all(self, pending);
  undo_all(self, inflight);
  auto problem = check_invariants(st.book);
  SECKILL_ASSERT(problem.empty(), "rollback restores a consistent item");
  int64_t skipped = 0;
  if (st.commit_failed_log.allow(now(self), skipped))
    spdlog::warn("item_commit_failed item={} undone={} error={} skipped={}",
                 st.book.rec.spec.item_id,
                 pending.undos.size() + inflight.undos.size(),
                 log_text(self->system().render(err)), skipped);
  for (auto& w : inflight.waiters)
    w(errc::store_unavailable);
  for (auto& w : pending.waiters)
    w(errc::store_unavailable);
  publish_status(self);
}

item_batch make_batch(item_pointer self) {
  auto& st = self->state;
  item_batch batch;
  batch.item = st.book.rec;
  batch.placed.reserve(st.inflight.placed.size());
  batch.changed.reserve(st.inflight.touched.size() - st.inflight.placed.size());
  for (const auto& id : st.inflight.touched) {
    auto& to = st.inflight.placed.count(id) != 0 ? batch.placed : batch.changed;
    to.push_back(st.book.orders.at(id));
  }
  return batch;
}

// Sends the pending batch to the store unless one is already in flight.
void flush(item_pointer self) {
  auto& st = self->state;
  if (st.commit_inflight || st.pending.empty())
    return;
  if (st.pending.undos.empty()) {
    // Only barrier waiters: everything before them is durable already.
    auto waiters = std::move(st.pending.waiters);
    st.pending.waiters.clear();
    for (auto& w : waiters)
      w(errc::ok);
    return;
  }
  st.inflight = std::move(st.pending);
  st.pending = item_batch_state{};
  st.commit_inflight = true;
  // No timeout on purpose: the store always answers (it is local and each
  // transaction is bounded), and a timeout here could tell a buyer "failed"
  // for an order that then commits (docs/ARCHITECTURE.md: the classic
  // inconsistency).
  self->request(st.env.store, caf::infinite, commit_atom_v, make_batch(self))
    .then([self](int64_t) { on_committed(self); },
          [self](caf::error& err) { on_commit_failed(self, err); });
}

// Attaches a caller to the batch holding the latest change of `order_id`, or
// answers at once if that order is already durable.
template <class Promise>
void answer_when_durable(item_pointer self, const std::string& order_id,
                         Promise rp, bool replayed = false) {
  auto& st = self->state;
  auto snapshot = st.book.orders.at(order_id);
  snapshot.replayed = replayed;
  waiter w = [rp, snapshot](errc e) mutable {
    if (e == errc::ok)
      rp.deliver(snapshot);
    else
      rp.deliver(make_error(e));
  };
  if (testing::planted_ack_before_commit)
    w(errc::ok);
  else if (st.pending.touched.count(order_id) != 0)
    st.pending.waiters.push_back(std::move(w));
  else if (st.inflight.touched.count(order_id) != 0)
    st.inflight.waiters.push_back(std::move(w));
  else
    w(errc::ok);
}

// Remembers a purchase decision for the CLI; the oldest falls off.
void note_outcome(item_pointer self, const purchase& p, const char* outcome,
                  const std::string& order_id) {
  auto& recent = self->state.recent;
  if (recent.size() >= limits::item_recent_outcomes_max)
    recent.pop_front();
  recent.push_back(
    outcome_event{now(self), p.user_id, outcome, p.quantity, order_id});
}

caf::result<order> on_purchase(item_pointer self, const purchase& p) {
  auto& st = self->state;
  // The session's refusal holds only for what is not a retry: a request id
  // with an order here gets that order back, whatever the session believed.
  if (p.soft_refusal != 0 && st.book.by_request.count(p.request_id) == 0) {
    auto code = static_cast<errc>(p.soft_refusal);
    note_outcome(self, p, to_string(code), {});
    return make_error(code);
  }
  auto d = decide_purchase(st.book, p, now(self));
  if (d.code != errc::ok) {
    spdlog::debug("purchase_rejected item={} user={} reason={}", p.item_id,
                  p.user_id, to_string(d.code));
    note_outcome(self, p, to_string(d.code), {});
    return make_error(d.code);
  }
  // Refusals first: once a response promise exists, it alone answers.
  if (waiters_full(self) || (!d.is_retry() && pending_full(self))) {
    note_outcome(self, p, to_string(errc::busy), {});
    return make_error(errc::busy);
  }
  auto rp = self->make_response_promise<order>();
  if (d.is_retry()) {
    note_outcome(self, p, "retry", d.existing);
    answer_when_durable(self, d.existing, rp, true);
    return rp;
  }
  note_outcome(self, p, "ok", d.placed.order_id);
  record(self, apply_place(st.book, d.placed), nullptr);
  answer_when_durable(self, d.placed.order_id, rp);
  track_expiry(self, d.placed);
  flush(self);
  publish_status(self);
  return rp;
}

caf::result<order> on_transition(item_pointer self, const std::string& id,
                                 const transition_decision& d) {
  auto& st = self->state;
  if (d.code != errc::ok && !d.change)
    return make_error(d.code);
  if (waiters_full(self) || (d.change && pending_full(self)))
    return make_error(errc::busy);
  if (!d.change) {
    auto rp = self->make_response_promise<order>();
    answer_when_durable(self, id, rp);
    return rp;
  }
  record(self, apply_transition(st.book, id, d.to, now(self)), nullptr);
  flush(self);
  publish_status(self);
  if (d.code != errc::ok) // e.g. a late payment: expired now, and refused
    return make_error(d.code);
  auto rp = self->make_response_promise<order>();
  answer_when_durable(self, id, rp);
  return rp;
}

void expire_due(item_pointer self) {
  auto& st = self->state;
  auto& heap = st.expiry_heap;
  auto t = now(self);
  if (t < st.backoff_until_ms)
    return;
  while (!heap.empty() && heap.front().first <= t && !pending_full(self)) {
    std::pop_heap(heap.begin(), heap.end(), heap_later);
    auto id = std::move(heap.back().second);
    heap.pop_back();
    auto d = decide_expire(st.book, id, t);
    if (!d.change)
      continue;
    spdlog::debug("order_expired item={} order={}", st.book.rec.spec.item_id,
                  id);
    record(self, apply_transition(st.book, id, d.to, t), nullptr);
  }
  flush(self);
}

// Answers with the item's view once everything received so far is durable.
caf::result<item_view> answer_view_when_durable(item_pointer self) {
  auto& st = self->state;
  auto rp = self->make_response_promise<item_view>();
  st.pending.waiters.push_back([self, rp](errc e) mutable {
    if (e == errc::ok)
      rp.deliver(make_view(self->state, now(self)));
    else
      rp.deliver(make_error(e));
  });
  flush(self);
  return rp;
}

caf::result<item_view> on_barrier(item_pointer self) {
  if (waiters_full(self))
    return make_error(errc::busy);
  return answer_view_when_durable(self);
}

caf::result<item_view> on_admin(item_pointer self, admin_state wanted) {
  auto& st = self->state;
  auto d = decide_admin(st.book, wanted, now(self));
  if (d.code != errc::ok)
    return make_error(d.code);
  if (waiters_full(self) || (d.change && pending_full(self)))
    return make_error(errc::busy);
  if (d.change) {
    spdlog::info("item_admin item={} from={} to={}", st.book.rec.spec.item_id,
                 to_string(st.book.rec.admin), to_string(d.to));
    record(self, apply_admin(st.book, d.to), nullptr);
  }
  auto answer = answer_view_when_durable(self);
  publish_status(self);
  return answer;
}

stock_view make_stock(item_pointer self) {
  const auto& rec = self->state.book.rec;
  auto t = now(self);
  return stock_view{rec.spec.item_id, rec.spec.total, rec.counters,
                    status_at(rec, t), t};
}

void init(item_pointer self, bool fresh) {
  auto& st = self->state;
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& subs = self->state.subscribers;
    auto* dead = caf::actor_cast<caf::actor_control_block*>(dm.source);
    subs.erase(std::remove_if(
                 subs.begin(), subs.end(),
                 [&](const status_listener& x) {
                   return caf::actor_cast<caf::actor_control_block*>(x) == dead;
                 }),
               subs.end());
  });
  st.published = current_status(self);
  for (const auto& [id, o] : st.book.orders)
    track_expiry(self, o);
  if (fresh) // The item's record is written before anything is answered.
    record(self, apply_admin(st.book, st.book.rec.admin), nullptr);
  expire_due(self); // releases reservations that expired while we were down
  if (!fresh)
    announce_unpaid(self);
  arm_timer(self);
  flush(self);
}

} // namespace

item_view make_view(const item_state& st, int64_t now_ms) {
  item_view v;
  v.record = st.book.rec;
  v.status = status_at(st.book.rec, now_ms);
  v.orders = static_cast<int64_t>(st.book.orders.size());
  v.buyers = static_cast<int64_t>(st.book.held_by_user.size());
  v.batch_pending = static_cast<int64_t>(st.pending.undos.size());
  v.batch_inflight = static_cast<int64_t>(st.inflight.undos.size());
  v.commits = st.commits;
  v.commit_failures = st.commit_failures;
  v.recent.assign(st.recent.begin(), st.recent.end());
  return v;
}

item_actor::behavior_type item_impl(item_pointer self, item_book book,
                                    item_env env, bool fresh) {
  survive_strangers(self, "item");
  self->state.book = std::move(book);
  self->state.env = std::move(env);
  init(self, fresh);
  return {
    [self](purchase_atom, const purchase& p) { return on_purchase(self, p); },
    [self](pay_atom, const std::string& id) {
      return on_transition(self, id,
                           decide_pay(self->state.book, id, now(self)));
    },
    [self](cancel_atom, const std::string& id) {
      return on_transition(self, id, decide_cancel(self->state.book, id));
    },
    [self](order_atom, const std::string& id) -> caf::result<order> {
      // Never show an order that a failing commit could still take back.
      if (self->state.book.orders.count(id) == 0)
        return make_error(errc::unknown_order);
      if (waiters_full(self))
        return make_error(errc::busy);
      auto rp = self->make_response_promise<order>();
      answer_when_durable(self, id, rp);
      return rp;
    },
    [self](stock_atom) { return make_stock(self); },
    [self](view_atom) { return make_view(self->state, now(self)); },
    [self](pause_atom) { return on_admin(self, admin_state::paused); },
    [self](resume_atom) { return on_admin(self, admin_state::active); },
    [self](end_atom) { return on_admin(self, admin_state::ended); },
    [self](commit_atom) { return on_barrier(self); },
    [self](subscribe_atom, caf::actor& dyn) -> caf::result<status_update> {
      auto sub = caf::actor_cast<status_listener>(dyn);
      auto& subs = self->state.subscribers;
      // By object, not by ==: after a connection flap CAF's new proxy of a
      // queue compares equal to the dead one, which swallows messages.
      auto same = [&](const status_listener& x) {
        return caf::actor_cast<caf::actor_control_block*>(x)
               == caf::actor_cast<caf::actor_control_block*>(sub);
      };
      if (std::find_if(subs.begin(), subs.end(), same) == subs.end()) {
        if (subs.size() >= limits::item_subscribers_max)
          return make_error(errc::capacity_exceeded);
        subs.push_back(sub);
        // A queue on another node dies with its node or its connection:
        // drop it then, so restarts and flaps do not fill the list.
        self->monitor(sub);
      }
      return make_update(self);
    },
    [self](tick_atom) {
      // Any tick disarms: deadlines are on the wall clock, ticks on CAF's
      // steady clock, and a tick that comes "early" (the wall clock stepped
      // back) must not leave the timer armed for a tick that never comes.
      self->state.timer_due_ms = 0;
      expire_due(self);
      publish_status(self);
      arm_timer(self);
    },
    [self](unpaid_atom) { announce_unpaid(self); },
  };
}

} // namespace seckill
