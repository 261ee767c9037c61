// Hops between actors, and what an actor needs to reach another node.
//
// A hop to an actor on this node goes straight to it without a timeout: it
// cannot be lost, and in CAF 0.17 a request with a timeout costs about three
// times one without (docs/ARCHITECTURE.md, "A timeout costs"); the caller's own
// outer timeout bounds it. A hop to an actor on another node goes through one
// of the node's relays (relay.hpp), which bounds it by the hop timeout and
// fails it at once when that node goes down. "Another node" is decided by
// seckill's placement (node indexes), not by CAF's node ids, so the
// deterministic simulation can run several seckill nodes in one actor system.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <caf/actor.hpp>

#include "actors/base/placement.hpp"
#include "messages/type_ids.hpp"

namespace seckill {

/// This node's place in the cluster, shared by its actors (immutable after
/// start-up). A single node is a cluster of one, without relays.
struct cluster_env {
  uint32_t self_node = 0;
  /// The member ids in cluster.nodes order: the input of placement.
  std::shared_ptr<const std::vector<std::string>> nodes =
    std::make_shared<const std::vector<std::string>>(
      std::vector<std::string>{"local"});
  /// The node's relays; a caller picks one by a key of its own, so the
  /// calls in flight spread over them.
  std::vector<caf::actor> relays;

  bool single() const { return nodes->size() == 1; }
  uint32_t item_node(const std::string& item_id) const {
    return item_owner(*nodes, item_id);
  }
  const caf::actor& relay_for(std::size_t key) const {
    return relays[key % relays.size()];
  }
};

/// Who is live in `r`, by node index: the members it says are up, and
/// always this node.
inline std::vector<bool> live_members(const routes& r) {
  std::vector<bool> live(r.members.size(), false);
  for (std::size_t i = 0; i < r.members.size(); ++i)
    live[i] = r.members[i].up || i == r.self;
  return live;
}

/// A request to `dest` on node `node`: direct when it is this node, else
/// through a relay chosen by `key`. Either way the answer is guaranteed
/// (a local actor answers or dies, and CAF then answers for it).
template <class Self, class... Ts>
auto hop_request(Self* self, const cluster_env& env, std::size_t key,
                 uint32_t node, const caf::actor& dest, Ts&&... xs) {
  if (node == env.self_node || env.relays.empty())
    return self->request(dest, caf::infinite, std::forward<Ts>(xs)...);
  return self->request(env.relay_for(key), caf::infinite, relay_atom_v, node,
                       dest, std::forward<Ts>(xs)...);
}

} // namespace seckill
