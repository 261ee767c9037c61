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
  p.soft_refusal =
    code == errc::unpaid_limit || code == errc::user_limit_exceeded
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
