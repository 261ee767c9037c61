// The runtime of a seckill node: the state recovered from the node's SQLite
// file (checked, and counted for the start-up log and /healthz), and the
// node's actors started on it by spawn_node (wiring.hpp): the store on a
// thread of its own, the relays when there are other members, the session
// manager and the directory with its items and queues. node/startup.cpp
// starts it for the seckill-node program, with the REST bridge, the admin
// actor and the membership around it; the crowd demo starts it alone.
#pragma once

#include <string>

#include <caf/actor_system.hpp>

#include "actors/cluster/directory.hpp"
#include "actors/cluster/relay.hpp"
#include "actors/sale/session_manager.hpp"
#include "persistence/store.hpp"

namespace seckill {

struct runtime_config {
  std::string db_path = "./data/seckill.db";
  std::string synchronous = "FULL";
  /// SQLite's exclusive locking mode for the store (store_config); tests
  /// that read the file beside a running node in-process turn it off.
  bool exclusive_store = true;
  session_manager_config sessions;
  directory_config directory;
  /// The members' ids (cluster.nodes order) and this node's index; one
  /// member: a node alone, without relays.
  std::vector<std::string> nodes{"local"};
  uint32_t self_node = 0;
  std::size_t relays = 4; // with other members
  /// Milliseconds a hop to another node may take (the relays', and the
  /// membership's connect and hello).
  int64_t hop_timeout_ms = 5'000;
};

struct runtime {
  store_actor store;
  /// The store's health, for /healthz and the admin actor.
  std::shared_ptr<seckill::store_health> store_health =
    std::make_shared<seckill::store_health>();
  cluster_env cluster; // with the relays, if there are other members
  std::shared_ptr<relay_counters> relay_stats =
    std::make_shared<relay_counters>();
  session_manager_actor sessions;
  directory_actor directory;
  int64_t recovered_items = 0;
  int64_t recovered_orders = 0;
};

/// Recovers the file and starts the actors. Returns the error text instead
/// (and starts nothing) if the file cannot be read or fails its checks.
std::string start_runtime(caf::actor_system& sys, const runtime_config& cfg,
                          runtime& out);

/// Stops the actors; what is in flight is answered or failed first by CAF.
void stop_runtime(caf::actor_system& sys, runtime& rt);

} // namespace seckill
