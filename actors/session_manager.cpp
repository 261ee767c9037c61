// The session manager (see session_manager.hpp).
#include "actors/session_manager.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include "messages/assert.hpp"
#include "messages/limits.hpp"

namespace seckill {

namespace {

session_actor* find_or_spawn(session_manager_pointer self,
                             const std::string& user_id) {
  auto& st = self->state;
  if (auto i = st.sessions.find(user_id); i != st.sessions.end())
    return &i->second;
  if (st.sessions.size() >= st.cfg.sessions_max)
    return nullptr;
  auto s = self->spawn(session_impl, user_id, st.cfg.session, st.now_ms,
                       caf::actor_cast<caf::actor>(self));
  self->monitor(s);
  st.spawned += 1;
  return &st.sessions.emplace(user_id, std::move(s)).first->second;
}

} // namespace

session_manager_actor::behavior_type
session_manager_impl(session_manager_pointer self, session_manager_config cfg,
                     clock_fn now_ms) {
  SECKILL_ASSERT(cfg.sessions_max <= limits::sessions_per_node_max,
                 "sessions per node stay under the hard maximum");
  self->state.cfg = cfg;
  self->state.now_ms = std::move(now_ms);
  self->set_down_handler([self](caf::down_msg& dm) {
    // A session that stopped on its own (or crashed) leaves the map.
    auto& sessions = self->state.sessions;
    for (auto i = sessions.begin(); i != sessions.end(); ++i) {
      if (i->second.address() == dm.source) {
        sessions.erase(i);
        return;
      }
    }
  });
  return {
    [self](purchase_atom, purchase& p, caf::actor& item,
           int64_t limit) -> caf::result<order> {
      auto* s = find_or_spawn(self, p.user_id);
      if (s == nullptr)
        return make_error(errc::busy, 1000);
      return self->delegate(*s, purchase_atom_v, std::move(p), std::move(item),
                            limit);
    },
    [self](settled_atom, const std::string& user, const std::string& order,
           bool released) {
      auto& sessions = self->state.sessions;
      if (auto i = sessions.find(user); i != sessions.end())
        self->send(i->second, settled_atom_v, order, released);
    },
    [self](caf::idle_atom, const std::string& user, const caf::actor& s) {
      auto& sessions = self->state.sessions;
      auto i = sessions.find(user);
      if (i == sessions.end() || i->second.address() != s.address())
        return;
      self->send(i->second, end_atom_v);
      sessions.erase(i);
      self->state.retired += 1;
      spdlog::debug("session_retired user={}", user);
    },
    [self](sessions_atom) {
      return static_cast<int64_t>(self->state.sessions.size());
    },
  };
}

} // namespace seckill
