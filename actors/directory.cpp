// The directory (see directory.hpp).
#include "actors/directory.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include "messages/assert.hpp"
#include "messages/limits.hpp"

namespace seckill {

namespace {

item_entry& start_item(directory_pointer self, item_book book, bool fresh) {
  auto& st = self->state;
  auto id = book.rec.spec.item_id;
  std::vector<std::string> requests;
  requests.reserve(book.by_request.size());
  for (const auto& kvp : book.by_request)
    requests.push_back(kvp.first);
  item_env env{st.store, st.now_ms, caf::actor_cast<settle_listener>(st.sessions)};
  // Items and queues live as long as the directory: linked, they fail
  // together instead of leaving a half-routed item behind.
  auto item = self->spawn<caf::linked>(item_impl, std::move(book),
                                       std::move(env), fresh);
  auto queue = self->spawn<caf::linked>(queue_impl, id, st.cfg.queue,
                                        st.now_ms,
                                        caf::actor_cast<caf::actor>(item),
                                        caf::actor_cast<caf::actor>(st.sessions),
                                        std::move(requests));
  return st.items.insert_or_assign(id, item_entry{item, queue}).first->second;
}

const item_entry* find(directory_pointer self, const std::string& item_id) {
  auto i = self->state.items.find(item_id);
  return i == self->state.items.end() ? nullptr : &i->second;
}

caf::result<item_view> on_create(directory_pointer self, item_spec spec) {
  auto& st = self->state;
  if (auto code = validate_spec(spec); code != errc::ok)
    return make_error(code);
  if (st.items.count(spec.item_id) != 0)
    return make_error(errc::item_exists);
  if (st.items.size() >= st.cfg.items_max)
    return make_error(errc::capacity_exceeded);
  auto& entry = start_item(self, make_book(spec), true);
  auto rp = self->make_response_promise<item_view>();
  auto id = spec.item_id;
  // The commit barrier answers once the item's record is durable.
  self->request(entry.item, caf::infinite, commit_atom_v)
    .then(
      [rp, id](item_view& v) mutable {
        spdlog::info("item_created item={} total={} mode={}", id,
                     v.record.spec.total, to_string(v.record.spec.mode));
        rp.deliver(std::move(v));
      },
      [self, rp, id](caf::error& err) mutable {
        // Not durable: the item never existed.
        if (auto i = self->state.items.find(id); i != self->state.items.end()) {
          self->unlink_from(i->second.item);
          self->unlink_from(i->second.queue);
          self->send_exit(i->second.item, caf::exit_reason::user_shutdown);
          self->send_exit(i->second.queue, caf::exit_reason::user_shutdown);
          self->state.items.erase(i);
        }
        rp.deliver(std::move(err));
      });
  return rp;
}

template <class Atom>
caf::result<order> route_order(directory_pointer self, Atom atom,
                               const std::string& order_id) {
  const auto* e = find(self, item_of_order(order_id));
  if (e == nullptr)
    return make_error(errc::unknown_order);
  return self->delegate(e->item, atom, order_id);
}

} // namespace

directory_actor::behavior_type
directory_impl(directory_pointer self, directory_config cfg, clock_fn now_ms,
               store_actor store, session_manager_actor sessions,
               std::vector<recovered_item> recovered) {
  SECKILL_ASSERT(cfg.items_max <= limits::items_per_node_max,
                 "items per node stay under the hard maximum");
  auto& st = self->state;
  st.cfg = cfg;
  st.now_ms = std::move(now_ms);
  st.store = std::move(store);
  st.sessions = std::move(sessions);
  for (auto& r : recovered)
    start_item(self, make_book(r.record, r.orders), false);
  return {
    [self](create_atom, item_spec& spec) { return on_create(self, spec); },
    [self](lookup_atom,
           const std::string& id) -> caf::result<caf::actor, caf::actor> {
      const auto* e = find(self, id);
      if (e == nullptr)
        return make_error(errc::unknown_item);
      return {caf::actor_cast<caf::actor>(e->item),
              caf::actor_cast<caf::actor>(e->queue)};
    },
    [self](list_atom) {
      std::vector<std::string> ids;
      for (const auto& kvp : self->state.items)
        ids.push_back(kvp.first);
      return ids;
    },
    [self](purchase_atom, purchase& p) -> caf::result<order> {
      const auto* e = find(self, p.item_id);
      if (e == nullptr)
        return make_error(errc::unknown_item);
      return self->delegate(e->queue, purchase_atom_v, std::move(p));
    },
    [self](pay_atom a, const std::string& id) { return route_order(self, a, id); },
    [self](cancel_atom a, const std::string& id) {
      return route_order(self, a, id);
    },
    [self](order_atom a, const std::string& id) {
      return route_order(self, a, id);
    },
    [self](stock_atom, const std::string& id) -> caf::result<stock_view> {
      const auto* e = find(self, id);
      if (e == nullptr)
        return make_error(errc::unknown_item);
      return self->delegate(e->item, stock_atom_v);
    },
    [self](view_atom, const std::string& id) -> caf::result<item_view> {
      const auto* e = find(self, id);
      if (e == nullptr)
        return make_error(errc::unknown_item);
      return self->delegate(e->item, view_atom_v);
    },
  };
}

} // namespace seckill
