// The session manager: one per node, the directory of the node's live user
// sessions. It spawns a session on a user's first purchase (at most
// `sessions_max`; beyond that it answers `busy`), delegates each purchase to
// it (the session answers the original caller directly), forwards
// settlement notices from items, and retires idle sessions: it knows each
// user's last purchase (it routes them all), and one sweep timer (not one
// per session) removes those idle for `idle_timeout_ms` from its map before
// telling them to end, so no purchase is ever routed to a stopped session.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>

#include <caf/typed_actor.hpp>
#include <caf/replies_to.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/session.hpp"

namespace seckill {

using session_manager_actor = caf::typed_actor<
  caf::replies_to<purchase_atom, purchase, caf::actor, int64_t>::with<order>,
  caf::reacts_to<settled_atom, std::string, std::string, bool>,
  caf::reacts_to<tick_atom>, // the idle sweep
  caf::replies_to<sessions_atom>::with<int64_t>,
  // Introspection: the count and the busiest users; one user's session.
  caf::replies_to<view_atom>::with<sessions_view>,
  caf::replies_to<user_atom, std::string>::with<user_view>>;

struct session_manager_config {
  session_config session;
  std::size_t sessions_max = 100'000;
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
  int64_t refused = 0; // new users answered busy: the table was full
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
