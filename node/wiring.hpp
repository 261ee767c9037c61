// The wiring of one node's actors, in one place: the store, the relays (when
// there are other members), the session manager and the directory with the
// items recovered from the store's file, each given the handles and the
// cluster_env it needs. The node (runtime.cpp) and both simulations
// (tests/support/sim_world.cpp, sim_cluster.cpp) call it, so the simulations
// run the production wiring; what differs between them is a parameter here:
// the store's thread, the clock, the relays' link model, the configs.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>

#include "actors/base/clock.hpp"
#include "actors/base/hop.hpp"
#include "actors/cluster/directory.hpp"
#include "actors/cluster/relay.hpp"
#include "actors/sale/session_manager.hpp"
#include "persistence/store.hpp"

namespace seckill {

/// What a node's actors are started with.
struct node_wiring {
  /// The items recovered from the store's file (recover()).
  std::vector<recovered_item> items;
  store_config store;
  /// The store blocks on disk I/O: a node gives it a thread of its own. The
  /// simulation must not: its scheduler is deterministic and runs every
  /// actor by hand.
  bool store_detached = true;
  clock_fn clock;
  /// This node's index in `nodes`, the members' ids in cluster.nodes order.
  uint32_t self_node = 0;
  std::shared_ptr<const std::vector<std::string>> nodes =
    std::make_shared<const std::vector<std::string>>(
      std::vector<std::string>{"local"});
  /// How many relays, with other members (at least one then; none alone).
  std::size_t relays = 4;
  /// Each relay's environment (hop timeout, counters, the simulation's link
  /// model); its self_node is set from `self_node`.
  relay_env relay;
  session_manager_config sessions; // its session.cluster is set here
  directory_config directory;
};

/// The handles of a node's actors.
struct node_actors {
  store_actor store;
  cluster_env cluster; // with the relays, if there are other members
  session_manager_actor sessions;
  directory_actor directory;
};

/// Checks that the recovered items are all this node's (items never move
/// between nodes), then spawns and wires the actors into `out`. Returns the
/// error text instead, and spawns nothing, if an item is another node's.
std::string spawn_node(caf::actor_system& sys, node_wiring w, node_actors& out);

} // namespace seckill
