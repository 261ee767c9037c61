// Wiring of one node's actors (see runtime.hpp).
#include "node/runtime.hpp"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/base/clock.hpp"
#include "actors/base/placement.hpp"

namespace seckill {

std::string start_runtime(caf::actor_system& sys, const runtime_config& cfg,
                          runtime& out) {
  if (!valid_synchronous(cfg.synchronous))
    return "invalid synchronous mode: " + cfg.synchronous;
  auto rec = recover(cfg.db_path);
  if (!rec.ok())
    return rec.error;
  // Items never move: a file holding an item that cluster.nodes places on
  // another node would be served here while every other node routes it
  // there (its orders unreachable, its id free to create twice).
  for (const auto& r : rec.items) {
    const auto& id = r.record.spec.item_id;
    auto owner = item_owner(cfg.nodes, id);
    if (owner != cfg.self_node)
      return cfg.db_path + " holds item '" + id + "', which cluster.nodes "
             + "places on " + cfg.nodes[owner]
             + "; items never move between nodes: start this node with the "
               "member list its data was written under";
  }
  out.recovered_items = static_cast<int64_t>(rec.items.size());
  out.recovered_orders = rec.orders;
  spdlog::info("store_recovered path={} items={} orders={}", cfg.db_path,
               out.recovered_items, out.recovered_orders);
  store_config scfg;
  scfg.path = cfg.db_path;
  scfg.synchronous = cfg.synchronous;
  scfg.exclusive = cfg.exclusive_store;
  scfg.health = out.store_health;
  // The store blocks on disk I/O: it gets a thread of its own.
  out.store = sys.spawn<caf::detached>(store_impl, scfg);
  auto clock = system_clock_ms();
  out.cluster.self_node = cfg.self_node;
  out.cluster.nodes = std::make_shared<const std::vector<std::string>>(cfg.nodes);
  if (cfg.nodes.size() > 1) {
    relay_env renv;
    renv.self_node = cfg.self_node;
    renv.hop_timeout_ms = cfg.hop_timeout_ms;
    renv.counters = out.relay_stats;
    for (std::size_t i = 0; i < std::max<std::size_t>(1, cfg.relays); ++i)
      out.cluster.relays.push_back(sys.spawn(relay_impl, renv));
  }
  auto mcfg = cfg.sessions;
  mcfg.session.cluster = out.cluster;
  out.sessions = sys.spawn(session_manager_impl, mcfg, clock);
  out.directory = sys.spawn(directory_impl, cfg.directory, clock, out.store,
                            out.sessions, std::move(rec.items), out.cluster);
  return {};
}

void stop_runtime(caf::actor_system& sys, runtime& rt) {
  caf::scoped_actor self{sys};
  for (auto h : {caf::actor_cast<caf::actor>(rt.directory),
                 caf::actor_cast<caf::actor>(rt.sessions),
                 caf::actor_cast<caf::actor>(rt.store)})
    self->send_exit(h, caf::exit_reason::user_shutdown);
  for (const auto& r : rt.cluster.relays)
    self->send_exit(r, caf::exit_reason::user_shutdown);
}

} // namespace seckill
