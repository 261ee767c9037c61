// Wiring of one node's actors (see runtime.hpp).
#include "node/runtime.hpp"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/clock.hpp"

namespace seckill {

std::string start_runtime(caf::actor_system& sys, const runtime_config& cfg,
                          runtime& out) {
  if (!valid_synchronous(cfg.synchronous))
    return "invalid synchronous mode: " + cfg.synchronous;
  auto rec = recover(cfg.db_path);
  if (!rec.ok())
    return rec.error;
  out.recovered_items = static_cast<int64_t>(rec.items.size());
  out.recovered_orders = rec.orders;
  spdlog::info("store_recovered path={} items={} orders={}", cfg.db_path,
               out.recovered_items, out.recovered_orders);
  store_config scfg;
  scfg.path = cfg.db_path;
  scfg.synchronous = cfg.synchronous;
  // The store blocks on disk I/O: it gets a thread of its own.
  out.store = sys.spawn<caf::detached>(store_impl, scfg);
  auto clock = system_clock_ms();
  out.sessions = sys.spawn(session_manager_impl, cfg.sessions, clock);
  out.directory = sys.spawn(directory_impl, cfg.directory, clock, out.store,
                            out.sessions, std::move(rec.items));
  return {};
}

void stop_runtime(caf::actor_system& sys, runtime& rt) {
  caf::scoped_actor self{sys};
  for (auto h : {caf::actor_cast<caf::actor>(rt.directory),
                 caf::actor_cast<caf::actor>(rt.sessions),
                 caf::actor_cast<caf::actor>(rt.store)})
    self->send_exit(h, caf::exit_reason::user_shutdown);
}

} // namespace seckill
