// A node's runtime: recovery, then spawn_node (see runtime.hpp).
#include "node/runtime.hpp"

#include <caf/all.hpp>

#include "actors/base/clock.hpp"
#include "node/wiring.hpp"

namespace seckill {

std::string start_runtime(caf::actor_system& sys, const runtime_config& cfg,
                          runtime& out) {
  if (!valid_synchronous(cfg.synchronous))
    return "invalid synchronous mode: " + cfg.synchronous;
  auto rec = recover(cfg.db_path); // logs store_recovered
  if (!rec.ok())
    return rec.error;
  node_wiring w;
  w.items = std::move(rec.items);
  w.store.path = cfg.db_path;
  w.store.synchronous = cfg.synchronous;
  w.store.exclusive = cfg.exclusive_store;
  w.store.health = out.store_health;
  w.store_detached = true; // the store blocks on disk I/O
  w.clock = system_clock_ms();
  w.self_node = cfg.self_node;
  w.nodes = std::make_shared<const std::vector<std::string>>(cfg.nodes);
  w.relays = cfg.relays;
  w.relay.hop_timeout_ms = cfg.hop_timeout_ms;
  w.relay.counters = out.relay_stats;
  w.sessions = cfg.sessions;
  w.directory = cfg.directory;
  auto items = static_cast<int64_t>(w.items.size());
  node_actors actors;
  if (auto problem = spawn_node(sys, std::move(w), actors); !problem.empty())
    return problem;
  out.store = actors.store;
  out.cluster = actors.cluster;
  out.sessions = actors.sessions;
  out.directory = actors.directory;
  out.recovered_items = items;
  out.recovered_orders = rec.orders;
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
