// The directory (see directory.hpp).
#include "actors/directory.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include "messages/assert.hpp"
#include "messages/limits.hpp"

namespace seckill {

namespace {

item_actor spawn_item(directory_pointer self, item_book book, bool fresh) {
  auto& st = self->state;
  item_env env{st.store, st.now_ms, caf::actor_cast<settle_listener>(st.sessions)};
  // Items and queues live as long as the directory: linked, they fail
  // together instead of leaving a half-routed item behind.
  return self->spawn<caf::linked>(item_impl, std::move(book), std::move(env),
                                  fresh);
}

// Makes an item routable: its admission queue, then the entry.
void open_item(directory_pointer self, const std::string& id, item_actor item,
               std::vector<std::string> known_requests) {
  auto& st = self->state;
  auto queue = self->spawn<caf::linked>(
    queue_impl, id, st.cfg.queue, st.now_ms, caf::actor_cast<caf::actor>(item),
    caf::actor_cast<caf::actor>(st.sessions), std::move(known_requests));
  st.items.insert_or_assign(id, item_entry{std::move(item), queue});
}

const item_entry* find(directory_pointer self, const std::string& item_id) {
  auto i = self->state.items.find(item_id);
  return i == self->state.items.end() ? nullptr : &i->second;
}

caf::result<item_view> on_create(directory_pointer self, item_spec spec) {
  auto& st = self->state;
  if (auto code = validate_spec(spec); code != errc::ok)
    return make_error(code);
  if (spec.ends_at_ms != 0 && spec.ends_at_ms <= st.now_ms())
    return make_error(errc::invalid_item); // a sale that is over already
  auto id = spec.item_id;
  if (st.items.count(id) != 0 || st.creating.count(id) != 0)
    return make_error(errc::item_exists);
  if (st.items.size() + st.creating.size() >= st.cfg.items_max)
    return make_error(errc::capacity_exceeded);
  auto item = spawn_item(self, make_book(spec), true);
  st.creating.insert(id);
  auto rp = self->make_response_promise<item_view>();
  // The barrier answers once the item's record is durable. Nothing is routed
  // to the item before that, so on failure it has no one else to answer.
  self->request(item, caf::infinite, commit_atom_v)
    .then(
      [self, rp, id, item](item_view& v) mutable {
        self->state.creating.erase(id);
        open_item(self, id, item, {});
        spdlog::info("item_created item={} total={} mode={}", id,
                     v.record.spec.total, to_string(v.record.spec.mode));
        rp.deliver(std::move(v));
      },
      [self, rp, id, item](caf::error& err) mutable {
        self->state.creating.erase(id);
        self->unlink_from(item);
        self->send_exit(item, caf::exit_reason::user_shutdown);
        spdlog::warn("item_create_failed item={} error={}", id,
                     self->system().render(err));
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
  for (auto& r : recovered) {
    auto book = make_book(r.record, r.orders);
    std::vector<std::string> requests;
    requests.reserve(book.by_request.size());
    for (const auto& kvp : book.by_request)
      requests.push_back(kvp.first);
    auto id = book.rec.spec.item_id;
    open_item(self, id, spawn_item(self, std::move(book), false),
              std::move(requests));
  }
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
