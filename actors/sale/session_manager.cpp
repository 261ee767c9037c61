// The session manager (see session_manager.hpp).
#include "actors/sale/session_manager.hpp"
#include "actors/base/strangers.hpp"

#include <algorithm>
#include <chrono>

#include <caf/event_based_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include "messages/assert.hpp"
#include "messages/limits.hpp"

namespace seckill {

namespace {

void arm_sweep(session_manager_pointer self) {
  auto& st = self->state;
  if (st.sweep_armed || (st.sessions.empty() && st.parked.empty()))
    return;
  st.sweep_armed = true;
  auto every = std::max<int64_t>(1, st.cfg.session.idle_timeout_ms / 2);
  self->delayed_send(self, std::chrono::milliseconds(every), tick_atom_v);
}

void park(session_manager_pointer self, const std::string& user_id,
          const std::vector<unpaid_view>& notes) {
  auto& st = self->state;
  auto now = st.now_ms();
  auto dropped = st.parked.park(user_id, notes, now);
  int64_t skipped = 0;
  if (dropped > 0 && st.parked_full_log.allow(now, skipped))
    spdlog::warn("unpaid_parked_full user={} dropped={} parked={} skipped={}",
                 user_id, dropped, st.parked.count, skipped);
  arm_sweep(self);
}

// Retires every session idle for idle_timeout_ms. Bounded: the map is.
void sweep(session_manager_pointer self) {
  auto& st = self->state;
  st.sweep_armed = false;
  auto now = st.now_ms();
  for (auto i = st.sessions.begin(); i != st.sessions.end();) {
    if (now - i->second.last_active_ms < st.cfg.session.idle_timeout_ms) {
      ++i;
      continue;
    }
    // Retired: its exit is expected, and the down handler (a scan) is for
    // sessions that die unexpectedly.
    self->demonitor(i->second.handle.address());
    self->send(i->second.handle, end_atom_v);
    i = st.sessions.erase(i);
  }
  st.parked.expire(now);
  arm_sweep(self);
}

session_actor* find_or_spawn(session_manager_pointer self,
                             const std::string& user_id) {
  auto& st = self->state;
  auto now = st.now_ms();
  if (auto i = st.sessions.find(user_id); i != st.sessions.end()) {
    i->second.last_active_ms = now;
    ++i->second.requests;
    return &i->second.handle;
  }
  if (st.sessions.size() >= st.cfg.sessions_max) {
    ++st.refused;
    return nullptr;
  }
  auto s = self->spawn(session_impl, user_id, st.cfg.session, st.now_ms,
                       caf::actor_cast<caf::actor>(self));
  self->monitor(s);
  if (auto notes = st.parked.take(user_id); !notes.empty())
    self->send(s, unpaid_atom_v, std::move(notes));
  auto& entry = st.sessions[user_id];
  entry = live_session{std::move(s), now, 1};
  arm_sweep(self);
  return &entry.handle;
}

sessions_view make_sessions_view(const session_manager_state& st) {
  sessions_view v;
  v.count = static_cast<int64_t>(st.sessions.size());
  v.unpaid_parked = static_cast<int64_t>(st.parked.count);
  v.unpaid_parked_dropped = st.parked.dropped;
  v.sessions_max = static_cast<int64_t>(st.cfg.sessions_max);
  v.refused = st.refused;
  v.top = top_sessions(st.sessions, limits::sessions_top_max);
  return v;
}

// A user without a live session is answered at once; a live one is asked.
caf::result<user_view> on_user(session_manager_pointer self,
                               const std::string& user_id) {
  auto& sessions = self->state.sessions;
  auto i = sessions.find(user_id);
  if (i == sessions.end()) {
    user_view v;
    v.user_id = user_id;
    return v;
  }
  auto summary =
    session_summary{user_id, i->second.requests, i->second.last_active_ms};
  auto rp = self->make_response_promise<user_view>();
  self
    ->request(i->second.handle,
              std::chrono::milliseconds{self->state.cfg.session.hop_timeout_ms},
              view_atom_v)
    .then(
      [rp, summary](user_view& v) mutable {
        v.summary = summary;
        rp.deliver(std::move(v));
      },
      [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
  return rp;
}

const cluster_env& cluster(session_manager_pointer self) {
  return self->state.cfg.session.cluster;
}

// The node whose session manager serves this user now.
uint32_t user_node(session_manager_pointer self, const std::string& user_id) {
  const auto& env = cluster(self);
  if (env.single())
    return env.self_node;
  return user_owner(*env.nodes, self->state.live, user_id);
}

// The owner's session manager if it is another node and known, else null.
caf::actor remote_manager(session_manager_pointer self, uint32_t node) {
  const auto& st = self->state;
  if (node == cluster(self).self_node || node >= st.members.members.size()
      || cluster(self).relays.empty())
    return {};
  return st.members.members[node].sessions;
}

caf::result<order> serve_here(session_manager_pointer self, purchase& p,
                              caf::actor& item, int64_t limit) {
  auto* s = find_or_spawn(self, p.user_id);
  if (s == nullptr)
    return make_error(errc::busy, limits::busy_sessions_full_retry_ms);
  return self->delegate(*s, purchase_atom_v, std::move(p), std::move(item),
                        limit);
}

// A user's unpaid orders reach the user's session: the live one here, or
// the parking, or the user's node.
void keep_unpaid(session_manager_pointer self, const std::string& user_id,
                 std::vector<unpaid_view> notes) {
  auto& sessions = self->state.sessions;
  if (auto i = sessions.find(user_id); i != sessions.end())
    self->send(i->second.handle, unpaid_atom_v, std::move(notes));
  else
    park(self, user_id, notes);
}

void route_unpaid(session_manager_pointer self, const std::string& user_id,
                  std::vector<unpaid_view> notes) {
  if (auto peer = remote_manager(self, user_node(self, user_id))) {
    self->send(caf::actor_cast<session_manager_actor>(peer), unpaid_atom_v,
               owner_atom_v, user_id, std::move(notes));
    return;
  }
  keep_unpaid(self, user_id, std::move(notes));
}

void on_routes(session_manager_pointer self, routes r) {
  auto& st = self->state;
  SECKILL_ASSERT(r.self == cluster(self).self_node
                   && r.members.size() == cluster(self).nodes->size(),
                 "routes describe this node's cluster");
  st.live = live_members(r);
  st.members = std::move(r);
  // Parked orders follow their users to the node that serves them now.
  std::vector<std::string> moved;
  for (const auto& [user, notes] : st.parked.by_user)
    if (user_node(self, user) != cluster(self).self_node)
      moved.push_back(user);
  for (const auto& user : moved)
    route_unpaid(self, user, st.parked.take(user));
}

void settle_here(session_manager_pointer self, const std::string& user,
                 const std::string& order, bool released) {
  auto& st = self->state;
  if (auto i = st.sessions.find(user); i != st.sessions.end()) {
    self->send(i->second.handle, settled_atom_v, order, released);
    return;
  }
  st.parked.settle(user, order);
}

} // namespace

int64_t unpaid_parking::park(const std::string& user_id,
                             const std::vector<unpaid_view>& notes,
                             int64_t now_ms) {
  int64_t refused = 0;
  for (const auto& n : notes) {
    if (n.expires_ms <= now_ms)
      continue;
    auto& mine = by_user[user_id];
    auto same = [&](const unpaid_view& x) { return x.order_id == n.order_id; };
    if (std::any_of(mine.begin(), mine.end(), same))
      continue;
    if (count >= max
        || mine.size()
             >= static_cast<std::size_t>(limits::unpaid_per_user_max)) {
      ++refused;
      continue;
    }
    mine.push_back(n);
    ++count;
  }
  if (auto i = by_user.find(user_id); i != by_user.end() && i->second.empty())
    by_user.erase(i);
  dropped += refused;
  SECKILL_ASSERT(count <= max, "the parking stays within its bound");
  return refused;
}

std::vector<unpaid_view> unpaid_parking::take(const std::string& user_id) {
  auto i = by_user.find(user_id);
  if (i == by_user.end())
    return {};
  auto notes = std::move(i->second);
  by_user.erase(i);
  SECKILL_ASSERT(count >= notes.size(), "the parking's count adds up");
  count -= notes.size();
  return notes;
}

template <class Pred>
void unpaid_parking::remove_if(by_user_map::iterator i, Pred pred) {
  auto& notes = i->second;
  auto before = notes.size();
  notes.erase(std::remove_if(notes.begin(), notes.end(), pred), notes.end());
  count -= before - notes.size();
  if (notes.empty())
    by_user.erase(i);
}

void unpaid_parking::settle(const std::string& user_id,
                            const std::string& order_id) {
  if (auto i = by_user.find(user_id); i != by_user.end())
    remove_if(i, [&](const unpaid_view& n) { return n.order_id == order_id; });
}

void unpaid_parking::expire(int64_t now_ms) {
  for (auto i = by_user.begin(); i != by_user.end();)
    remove_if(
      i++, [now_ms](const unpaid_view& n) { return n.expires_ms <= now_ms; });
}

std::vector<session_summary>
top_sessions(const std::unordered_map<std::string, live_session>& sessions,
             std::size_t top) {
  std::vector<session_summary> all;
  all.reserve(sessions.size());
  for (const auto& [user, s] : sessions)
    all.push_back(session_summary{user, s.requests, s.last_active_ms});
  auto busier = [](const session_summary& a, const session_summary& b) {
    return a.requests != b.requests ? a.requests > b.requests
                                    : a.user_id < b.user_id;
  };
  auto n = std::min(top, all.size());
  std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(n),
                    all.end(), busier);
  all.resize(n);
  return all;
}

namespace {

// The manager's state from its config, and the down handler that drops a
// session that stopped.
void start_manager(session_manager_pointer self, session_manager_config& cfg,
                   clock_fn& now_ms) {
  survive_strangers(self, "sessions");
  SECKILL_ASSERT(cfg.sessions_max <= limits::sessions_per_node_max,
                 "sessions per node stay under the hard maximum");
  self->state.cfg = cfg;
  self->state.now_ms = std::move(now_ms);
  const auto& env = cfg.session.cluster;
  SECKILL_ASSERT(!env.nodes->empty() && env.self_node < env.nodes->size(),
                 "this node is one of the cluster's members");
  self->state.live.assign(env.nodes->size(), false);
  self->state.live[env.self_node] = true; // until the membership says more
  // Sized up front: a growing table rehashes all at once, stalling every
  // purchase routed through here (see limits::orders_reserved_max).
  self->state.sessions.reserve(
    std::min(cfg.sessions_max, limits::orders_reserved_max));
  self->set_down_handler([self](caf::down_msg& dm) {
    // A session that stopped on its own (or crashed) leaves the map.
    auto& sessions = self->state.sessions;
    for (auto i = sessions.begin(); i != sessions.end(); ++i) {
      if (i->second.handle.address() == dm.source) {
        sessions.erase(i);
        return;
      }
    }
  });
}

// A purchase routed to the user's home node: here, or through a relay.
caf::result<order> on_purchase(session_manager_pointer self, purchase& p,
                               caf::actor& item, int64_t limit) {
  auto node = user_node(self, p.user_id);
  if (auto peer = remote_manager(self, node)) {
    self->state.forwarded += 1;
    self->delegate(cluster(self).relay_for(std::hash<std::string>{}(p.user_id)),
                   relay_atom_v, node, peer, purchase_atom_v, std::move(p),
                   std::move(item), limit);
    return caf::delegated<order>{};
  }
  return serve_here(self, p, item, limit);
}

caf::result<user_view> route_user(session_manager_pointer self,
                                  const std::string& user_id) {
  auto node = user_node(self, user_id);
  if (auto peer = remote_manager(self, node)) {
    self->delegate(cluster(self).relay_for(0), relay_atom_v, node, peer,
                   user_atom_v, user_id);
    return caf::delegated<user_view>{};
  }
  return on_user(self, user_id);
}

} // namespace

session_manager_actor::behavior_type
session_manager_impl(session_manager_pointer self, session_manager_config cfg,
                     clock_fn now_ms) {
  start_manager(self, cfg, now_ms);
  return {
    [self](purchase_atom, purchase& p, caf::actor& item, int64_t limit) {
      return on_purchase(self, p, item, limit);
    },
    [self](purchase_atom, owner_atom, purchase& p, caf::actor& item,
           int64_t limit) { return serve_here(self, p, item, limit); },
    [self](settled_atom, const std::string& user, const std::string& order,
           bool released) {
      // Soft state: sent on without a receipt; the item keeps the truth.
      if (auto peer = remote_manager(self, user_node(self, user))) {
        self->send(caf::actor_cast<session_manager_actor>(peer), settled_atom_v,
                   owner_atom_v, user, order, released);
        return;
      }
      settle_here(self, user, order, released);
    },
    [self](settled_atom, owner_atom, const std::string& user,
           const std::string& order,
           bool released) { settle_here(self, user, order, released); },
    [self](unpaid_atom, const std::string& user,
           std::vector<unpaid_view>& notes) {
      route_unpaid(self, user, std::move(notes));
    },
    [self](unpaid_atom, owner_atom, const std::string& user,
           std::vector<unpaid_view>& notes) {
      keep_unpaid(self, user, std::move(notes));
    },
    [self](routes_atom, routes& r) { on_routes(self, std::move(r)); },
    [self](tick_atom) { sweep(self); },
    [self](sessions_atom) {
      return static_cast<int64_t>(self->state.sessions.size());
    },
    [self](view_atom) { return make_sessions_view(self->state); },
    [self](user_atom, const std::string& user_id) {
      return route_user(self, user_id);
    },
    [self](user_atom, owner_atom, const std::string& user_id) {
      return on_user(self, user_id);
    },
  };
}

} // namespace seckill
