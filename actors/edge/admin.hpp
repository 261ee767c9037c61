// The admin actor: one per node, published on the cluster port (CAF's
// middleman) for seckill-cli, and asked by the REST bridge for /metrics and
// for the admin calls of the HTTP API. It only reads the other actors' state
// by asking them (never touches it) and forwards admin commands to the
// directory and the items, which decide and persist them.
//
// Answers are gathered from many actors (every item and its queue); each
// gathering is bounded by `gather_timeout_ms`, after which the actors that
// did not answer are left out (an item that is busy committing still shows
// with its last known counters: none; it is listed as missing). It must
// never: block, change state itself, or wait without a bound.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <caf/replies_to.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_actor.hpp>

#include "actors/cluster/directory.hpp"
#include "actors/edge/front_gate.hpp"
#include "actors/sale/session_manager.hpp"
#include "messages/log_limiter.hpp"
#include "messages/types.hpp"
#include "persistence/store.hpp"

namespace seckill {

/// Every command carries the node's admin token (`key`, compared in
/// constant time): the admin actor is reachable by anyone who reaches the
/// cluster port, so it trusts no sender. A missing token is unauthorized, a
/// wrong one forbidden; the command is then not run. Only a member's hello
/// and its status call (counts a member shows in `nodes`) take no token:
/// members prove who they are by the cluster port's TLS (cluster.conf
/// [openssl]).
using admin_key = std::string;

using admin_actor = caf::typed_actor<
  caf::replies_to<status_atom, admin_key>::with<node_status>,
  caf::replies_to<list_atom, admin_key>::with<std::vector<item_detail>>,
  caf::replies_to<view_atom, admin_key, std::string>::with<item_detail>,
  caf::replies_to<sessions_atom, admin_key>::with<sessions_view>,
  caf::replies_to<user_atom, admin_key, std::string>::with<user_view>,
  caf::replies_to<create_atom, admin_key, item_spec>::with<item_view>,
  caf::replies_to<pause_atom, admin_key, std::string>::with<item_view>,
  caf::replies_to<resume_atom, admin_key, std::string>::with<item_view>,
  caf::replies_to<end_atom, admin_key, std::string>::with<item_view>,
  // Every member, live or not, with its items and load.
  caf::replies_to<nodes_atom, admin_key>::with<std::vector<member_view>>,
  // The same members with their states only, without asking them (for
  // /metrics: cheap, answered by this node alone).
  caf::replies_to<nodes_atom, admin_key, bool>::with<std::vector<member_view>>,
  // The front gate's limits and the degrade switches
  // (actors/edge/front_gate.hpp): read them, or set one by name (the value as
  // check_switch reads it).
  caf::replies_to<switch_atom, admin_key>::with<switches_view>,
  caf::replies_to<switch_atom, admin_key, std::string,
                  std::string>::with<switches_view>,
  // A member's counts for `nodes` (items, sessions, HTTP connections and
  // requests; the rest of the status left empty), asked by other members.
  caf::replies_to<peer_atom, status_atom>::with<node_status>,
  // A peer connecting (the admin actor is what the cluster port publishes):
  // handed to the membership actor.
  caf::replies_to<hello_atom, peer_hello>::with<peer_hello>>;

/// What the admin actor knows of its node that no actor holds.
struct admin_env {
  node_status identity; // node_id, version, endpoints, recovered counts
  directory_actor directory;
  session_manager_actor sessions;
  store_actor store;
  caf::actor membership; // null: a node alone, without a membership actor
  clock_fn now_ms;
  /// The node's limits and switches, and its gate's counters; null: a node
  /// without a front gate (tests), whose switch calls answer not_found.
  std::shared_ptr<node_switches> switches;
  std::shared_ptr<gate_counters> gate_stats;
  /// Fills in what only the program knows and may change (the HTTP
  /// server's counters, the bound endpoints); thread-safe; may be empty.
  std::function<void(node_status&)> live;
  int64_t gather_timeout_ms = 1'000;
  /// The node's admin token: every command must carry it.
  std::string token;
};

struct admin_actor_state {
  admin_env env;
  log_limiter refusals; // admin_refused lines: at most one a second
  int64_t refused = 0;  // commands refused for their token, since start
  static inline const char* name = "seckill.admin";
};

using admin_pointer = admin_actor::stateful_pointer<admin_actor_state>;

admin_actor::behavior_type admin_impl(admin_pointer self, admin_env env);

} // namespace seckill
