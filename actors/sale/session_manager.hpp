// The session manager: one per node, the directory of the node's live user
// sessions. On a cluster it routes each purchase to the session manager of
// the user's node (placement.hpp: the best-ranked live node), so one user's
// purchases meet in one session whichever node's bridge took them; a
// purchase routed to it by another node is served here, never sent on. It
// spawns a session on a user's first purchase (at most `sessions_max`; beyond
// that it answers `busy`), delegates each purchase to it (the session answers
// the original caller directly), forwards settlement notices from items, and
// retires idle sessions: it knows each user's last purchase (it routes them
// all), and one sweep timer (not one per session) removes those idle for
// `idle_timeout_ms` from its map before telling them to end, so no purchase is
// ever routed to a stopped session. A retiring session hands back its unpaid
// orders, and items announce theirs after a restart and when the members
// change; the manager of the user's node keeps them for users without a live
// session (bounded by limits::unpaid_parked_max, each until its deadline) and
// seeds the user's next session with them, so the unpaid cap survives
// retirement, restarts and moves. When the members change, parked orders of
// users who now live on another node are sent there.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>

#include <caf/replies_to.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_actor.hpp>

#include "actors/sale/session.hpp"
#include "messages/limits.hpp"
#include "messages/log_limiter.hpp"

namespace seckill {

using session_manager_actor = caf::typed_actor<
  // A purchase from this node's queue: served here or by the user's owner.
  caf::replies_to<purchase_atom, purchase, caf::actor, int64_t>::with<order>,
  // A purchase another node routed here: served here.
  caf::replies_to<purchase_atom, owner_atom, purchase, caf::actor,
                  int64_t>::with<order>,
  caf::reacts_to<settled_atom, std::string, std::string, bool>,
  caf::reacts_to<settled_atom, owner_atom, std::string, std::string, bool>,
  // A user's unpaid orders, from a retiring session or an item: kept for the
  // user's session, here or on the user's node.
  caf::reacts_to<unpaid_atom, std::string, std::vector<unpaid_view>>,
  caf::reacts_to<unpaid_atom, owner_atom, std::string,
                 std::vector<unpaid_view>>,
  caf::reacts_to<routes_atom, routes>,
  caf::reacts_to<tick_atom>, // the idle sweep
  caf::replies_to<sessions_atom>::with<int64_t>,
  // Introspection: the count and the busiest users; one user's session.
  caf::replies_to<view_atom>::with<sessions_view>,
  caf::replies_to<user_atom, std::string>::with<user_view>,
  caf::replies_to<user_atom, owner_atom, std::string>::with<user_view>>;

struct session_manager_config {
  session_config session; // its `cluster` is this node's place
  std::size_t sessions_max = 100'000;
};

/// The pure part of keeping unpaid orders for users without a live session:
/// bounded by `max` entries (all users) and limits::unpaid_per_user_max per
/// user; an entry lives until its deadline.
struct unpaid_parking {
  using by_user_map = std::unordered_map<std::string, std::vector<unpaid_view>>;
  std::size_t max = limits::unpaid_parked_max;
  by_user_map by_user;
  std::size_t count = 0; // entries, all users
  int64_t dropped = 0;   // not kept: the parking was full

  /// Keeps the user's notes not past their deadline and not kept already;
  /// returns how many were dropped because the parking was full.
  int64_t park(const std::string& user_id,
               const std::vector<unpaid_view>& notes, int64_t now_ms);
  /// Takes the user's notes out (for a new session, or another node).
  std::vector<unpaid_view> take(const std::string& user_id);
  /// The order became final: it is no longer kept.
  void settle(const std::string& user_id, const std::string& order_id);
  /// Drops every note at or past its deadline.
  void expire(int64_t now_ms);
  bool empty() const { return by_user.empty(); }

private:
  /// Removes the user's notes that `pred` takes, and the user if none is
  /// left (which invalidates `i`: callers step past it first).
  template <class Pred>
  void remove_if(by_user_map::iterator i, Pred pred);
};

struct live_session {
  session_actor handle;
  int64_t last_active_ms = 0;
  int64_t requests = 0; // purchases routed to it
};

struct session_manager_state {
  session_manager_config cfg;
  clock_fn now_ms;
  std::unordered_map<std::string, live_session> sessions;
  bool sweep_armed = false;
  int64_t refused = 0;    // new users answered busy: the table was full
  routes members;         // who is up, and their session managers
  std::vector<bool> live; // by node index, this node always
  int64_t forwarded = 0;  // purchases sent on to another node's sessions
  unpaid_parking parked;
  log_limiter parked_full_log{limits::log_repeat_ms};
  static inline const char* name = "seckill.sessions";
};

using session_manager_pointer =
  session_manager_actor::stateful_pointer<session_manager_state>;

/// The `top` busiest of `sessions`, by requests (ties by user id).
std::vector<session_summary>
top_sessions(const std::unordered_map<std::string, live_session>& sessions,
             std::size_t top);

session_manager_actor::behavior_type
session_manager_impl(session_manager_pointer self, session_manager_config cfg,
                     clock_fn now_ms);

} // namespace seckill
