// The wiring of one node's actors (see wiring.hpp).
#include "node/wiring.hpp"

#include <algorithm>

#include <caf/all.hpp>

#include "actors/base/placement.hpp"

namespace seckill {

namespace {

// Items never move: a file holding an item that cluster.nodes places on
// another node would be served here while every other node routes it there
// (its orders unreachable, its id free to create twice).
std::string check_owned(const node_wiring& w) {
  const auto& nodes = *w.nodes;
  for (const auto& r : w.items) {
    const auto& id = r.record.spec.item_id;
    auto owner = item_owner(nodes, id);
    if (owner != w.self_node)
      return w.store.path + " holds item '" + id + "', which cluster.nodes "
             + "places on " + nodes[owner]
             + "; items never move between nodes: start this node with the "
               "member list its data was written under";
  }
  return {};
}

} // namespace

std::string spawn_node(caf::actor_system& sys, node_wiring w,
                       node_actors& out) {
  if (auto problem = check_owned(w); !problem.empty())
    return problem;
  out.store = w.store_detached ? sys.spawn<caf::detached>(store_impl, w.store)
                               : sys.spawn(store_impl, w.store);
  out.cluster.self_node = w.self_node;
  out.cluster.nodes = w.nodes;
  out.cluster.relays.clear();
  if (w.nodes->size() > 1) {
    w.relay.self_node = w.self_node;
    for (std::size_t i = 0; i < std::max<std::size_t>(1, w.relays); ++i)
      out.cluster.relays.push_back(sys.spawn(relay_impl, w.relay));
  }
  w.sessions.session.cluster = out.cluster;
  out.sessions = sys.spawn(session_manager_impl, w.sessions, w.clock);
  out.directory = sys.spawn(directory_impl, w.directory, w.clock, out.store,
                            out.sessions, std::move(w.items), out.cluster);
  return {};
}

} // namespace seckill
