// The user-session actor (see session.hpp).
#include "actors/sale/session.hpp"
#include "actors/base/strangers.hpp"

#include <chrono>

#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include "actors/base/hop.hpp"
#include "actors/sale/item.hpp"
#include "messages/limits.hpp"

namespace seckill {

int64_t ms_until_unpaid_frees(const session_book& book, int64_t now_ms) {
  int64_t first = 0;
  for (const auto& [id, u] : book.unpaid)
    if (first == 0 || u.expires_ms < first)
      first = u.expires_ms;
  return std::max<int64_t>(1, first - now_ms);
}

int64_t held_units(const session_item& x) {
  return std::max(x.held, x.held_floor);
}

errc decide_session(session_book& book, const purchase& p,
                    int64_t per_user_limit, int64_t unpaid_max,
                    int64_t now_ms) {
  if (!take_token(book.bucket, now_ms))
    return errc::rate_limited;
  auto i = book.items.find(p.item_id);
  if (i != book.items.end() && i->second.requests.count(p.request_id) != 0)
    return errc::ok; // a retry: the item answers it, whatever we believe
  // An unpaid order past its deadline has expired at the item (or is
  // refused payment there): its units are the user's no more.
  for (auto j = book.unpaid.begin(); j != book.unpaid.end();) {
    auto next = std::next(j);
    if (j->second.expires_ms <= now_ms)
      forget_unpaid(book, j->first, true);
    j = next;
  }
  i = book.items.find(p.item_id);
  if (static_cast<int64_t>(book.unpaid.size()) >= unpaid_max)
    return errc::unpaid_limit;
  // With its memory of request ids full, the session cannot tell a retry
  // from a new request: it leaves the limit to the item.
  if (i != book.items.end()
      && held_units(i->second) + p.quantity > per_user_limit
      && i->second.requests.size() < limits::session_requests_max)
    return errc::user_limit_exceeded;
  if (i == book.items.end() && book.items.size() >= limits::session_items_max)
    return errc::capacity_exceeded;
  return errc::ok;
}

void learn_order(session_book& book, const order& o) {
  auto& item = book.items[o.item_id];
  bool known = item.requests.count(o.request_id) != 0;
  if (!known && item.requests.size() < limits::session_requests_max)
    item.requests.insert(o.request_id);
  if (!known && counts_for_user(o.state))
    item.held += o.quantity;
  if (o.state == order_state::reserved || o.state == order_state::pending)
    book.unpaid.emplace(o.order_id,
                        unpaid_order{o.item_id, o.quantity, o.expires_ms});
}

void learn_error(session_book& book, const purchase& p, errc code,
                 int64_t per_user_limit) {
  // The item refused held + quantity > limit: so the user holds at least
  // limit - quantity + 1. That much is known; more would be invented (and
  // would refuse smaller purchases that fit). It is a bound, not a count
  // of orders: the orders it covers may be learned later (a retry's replay).
  if (code == errc::user_limit_exceeded && p.soft_refusal == 0) {
    auto& floor = book.items[p.item_id].held_floor;
    floor = std::max(floor, per_user_limit - p.quantity + 1);
  }
}

void forget_unpaid(session_book& book, const std::string& order_id,
                   bool released) {
  if (book.settled.size() >= limits::session_settled_max)
    book.settled.clear(); // the oldest matter least: their notes came long ago
  book.settled.insert(order_id);
  auto i = book.unpaid.find(order_id);
  if (i == book.unpaid.end())
    return;
  if (released) {
    // The bound falls too: it may have counted these units (lowering it
    // only leaves more to the item, which has the last word).
    auto& item = book.items[i->second.item_id];
    item.held = std::max<int64_t>(0, item.held - i->second.quantity);
    item.held_floor = std::max<int64_t>(0, item.held_floor - i->second.quantity);
  }
  book.unpaid.erase(i);
}

void learn_unpaid(session_book& book, const std::vector<unpaid_view>& notes,
                  int64_t now_ms) {
  for (const auto& n : notes) {
    if (n.expires_ms <= now_ms || book.settled.count(n.order_id) != 0
        || book.unpaid.size() >= static_cast<std::size_t>(
             limits::unpaid_per_user_max))
      continue;
    book.unpaid.emplace(n.order_id,
                        unpaid_order{n.item_id, n.quantity, n.expires_ms});
  }
}

std::vector<unpaid_view> unpaid_notes(const session_book& book) {
  std::vector<unpaid_view> out;
  out.reserve(book.unpaid.size());
  for (const auto& [id, u] : book.unpaid)
    out.push_back(unpaid_view{id, u.item_id, u.quantity, u.expires_ms});
  return out;
}

namespace {

int64_t now(session_pointer self) {
  return self->state.now_ms();
}

void send_next(session_pointer self, const std::string& item_id);

// Retired and idle: the unpaid orders go back to the manager, which keeps
// them for the user's next session.
void retire(session_pointer self) {
  auto& st = self->state;
  auto notes = unpaid_notes(st.book);
  if (!notes.empty())
    caf::anon_send(st.manager, unpaid_atom_v, st.user_id, std::move(notes));
  self->quit();
}

void finish_head(session_pointer self, const std::string& item_id) {
  auto& st = self->state;
  auto& line = st.lines[item_id];
  line.pop_front();
  st.queued -= 1;
  if (line.empty())
    st.lines.erase(item_id);
  else
    send_next(self, item_id);
  if (st.retiring && st.queued == 0)
    retire(self);
}

void send_next(session_pointer self, const std::string& item_id) {
  auto& st = self->state;
  auto& head = st.lines[item_id].front();
  const auto& cluster = st.cfg.cluster;
  hop_request(self, cluster, std::hash<std::string>{}(st.user_id),
              cluster.item_node(item_id), head.item, purchase_atom_v, head.p)
    .then(
      [self, item_id](order& o) {
        auto& head = self->state.lines[item_id].front();
        learn_order(self->state.book, o);
        head.rp.deliver(std::move(o));
        finish_head(self, item_id);
      },
      [self, item_id](caf::error& err) {
        auto& st = self->state;
        auto& head = st.lines[item_id].front();
        auto code = to_errc(err);
        learn_error(st.book, head.p, code, head.per_user_limit);
        if (code == errc::unpaid_limit)
          head.rp.deliver(
            make_error(code, ms_until_unpaid_frees(st.book, now(self))));
        else
          head.rp.deliver(std::move(err));
        finish_head(self, item_id);
      });
}

caf::result<order> on_purchase(session_pointer self, purchase p,
                               caf::actor item, int64_t limit) {
  auto& st = self->state;
  if (st.queued >= limits::session_queued_max)
    return make_error(errc::busy, limits::busy_full_table_retry_ms);
  auto code = decide_session(st.book, p, limit, st.cfg.unpaid_max, now(self));
  if (code == errc::rate_limited)
    return make_error(code, ms_until_token(st.book.bucket, now(self)));
  // A limit the session believes reached is the item's to apply: only the
  // item knows whether this request already has its order (a retry after a
  // restart, a retired session, a moved user), and a retry gets it back.
  p.soft_refusal = code == errc::unpaid_limit
                       || code == errc::user_limit_exceeded
                     ? static_cast<uint8_t>(code)
                     : 0;
  if (code != errc::ok && p.soft_refusal == 0)
    return make_error(code);
  auto rp = self->make_response_promise<order>();
  auto& line = st.lines[p.item_id];
  line.push_back(queued_purchase{p, std::move(item), limit, rp});
  st.queued += 1;
  if (line.size() == 1)
    send_next(self, p.item_id);
  return rp;
}

} // namespace

user_view make_user_view(const session_state& st) {
  user_view v;
  v.user_id = st.user_id;
  v.live = true;
  const auto& b = st.book.bucket;
  auto elapsed_ms = std::max<int64_t>(0, st.now_ms() - b.last_ms);
  v.tokens = std::min(b.burst, b.tokens + b.rate_per_s * elapsed_ms / 1000.0);
  for (const auto& [item_id, known] : st.book.items) {
    auto line = st.lines.find(item_id);
    auto queued = line == st.lines.end() ? 0 : line->second.size();
    v.items.push_back(user_item_view{
      item_id, held_units(known), static_cast<int64_t>(known.requests.size()),
      static_cast<int64_t>(queued)});
  }
  for (const auto& [order_id, u] : st.book.unpaid)
    v.unpaid.push_back(
      unpaid_view{order_id, u.item_id, u.quantity, u.expires_ms});
  return v;
}

session_actor::behavior_type session_impl(session_pointer self,
                                          std::string user_id,
                                          session_config cfg, clock_fn now_ms,
                                          caf::actor manager) {
  survive_strangers(self, "session");
  auto& st = self->state;
  st.user_id = std::move(user_id);
  st.cfg = cfg;
  st.now_ms = std::move(now_ms);
  st.manager = std::move(manager);
  st.book.bucket = make_bucket(cfg.rate_per_s, cfg.burst, st.now_ms());
  // A session lives no longer than its manager.
  self->monitor(st.manager);
  self->set_down_handler([self](caf::down_msg&) { self->quit(); });
  return {
    [self](purchase_atom, purchase& p, caf::actor& item, int64_t limit) {
      return on_purchase(self, std::move(p), std::move(item), limit);
    },
    [self](settled_atom, const std::string& order_id, bool released) {
      forget_unpaid(self->state.book, order_id, released);
    },
    [self](unpaid_atom, const std::vector<unpaid_view>& notes) {
      learn_unpaid(self->state.book, notes, now(self));
    },
    [self](end_atom) {
      self->state.retiring = true;
      if (self->state.queued == 0)
        retire(self);
    },
    [self](view_atom) { return make_user_view(self->state); },
  };
}

} // namespace seckill
