// The directory (see directory.hpp).
#include "actors/cluster/directory.hpp"
#include "actors/base/strangers.hpp"

#include <algorithm>

#include <caf/event_based_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include "messages/assert.hpp"
#include "messages/limits.hpp"
#include "messages/log_text.hpp"

namespace seckill {

namespace {

uint32_t self_node(directory_pointer self) {
  return self->state.cluster.self_node;
}

bool is_up(directory_pointer self, uint32_t node) {
  const auto& up = self->state.up;
  return node == self_node(self) || (node < up.size() && up[node]);
}

std::size_t live_nodes(directory_pointer self) {
  const auto& up = self->state.up;
  auto n = static_cast<std::size_t>(std::count(up.begin(), up.end(), true));
  return std::max<std::size_t>(1, n);
}

// This node's share of an item's admission rate: the item's rate divided
// among the live nodes, each of which meters its own edge.
queue_config queue_share(directory_pointer self) {
  auto q = self->state.cfg.queue;
  auto n = static_cast<double>(live_nodes(self));
  q.rate_per_s = std::max(1.0, q.rate_per_s / n);
  q.burst = std::max(1.0, q.burst / n);
  return q;
}

item_actor spawn_item(directory_pointer self, item_book book, bool fresh) {
  auto& st = self->state;
  item_env env{st.store, st.now_ms,
               caf::actor_cast<settle_listener>(st.sessions),
               caf::actor_cast<tables_listener>(self)};
  // Items and queues live as long as the directory: linked, they fail
  // together instead of leaving a half-routed item behind.
  return self->spawn<caf::linked>(item_impl, std::move(book), std::move(env),
                                  fresh);
}

// Makes an item routable: its admission queue, then the entry.
void open_item(directory_pointer self, const std::string& id, item_actor item,
               std::vector<std::string> known_requests, uint32_t owner) {
  auto& st = self->state;
  auto queue =
    self->spawn<caf::linked>(queue_impl, id, queue_share(self), st.now_ms,
                             caf::actor_cast<caf::actor>(item), st.sessions,
                             std::move(known_requests), st.cluster);
  st.items.insert_or_assign(id,
                            item_entry{std::move(item), queue, owner, true});
  if (owner == self_node(self))
    st.owned += 1;
}

const item_entry* find(directory_pointer self, const std::string& item_id) {
  auto i = self->state.items.find(item_id);
  return i == self->state.items.end() ? nullptr : &i->second;
}

// Sends a request for an item owned by `node` to that node's directory,
// through a relay; the relay answers the original caller.
template <class R, class... Ts>
caf::result<R> to_owner(directory_pointer self, uint32_t node, Ts&&... xs) {
  auto& st = self->state;
  if (!is_up(self, node) || node >= st.members.members.size()
      || !st.members.members[node].directory || st.cluster.relays.empty())
    return make_error(errc::shard_unavailable);
  self->delegate(st.cluster.relay_for(st.next_relay++), relay_atom_v, node,
                 st.members.members[node].directory, std::forward<Ts>(xs)...);
  return caf::delegated<R>{};
}

// Tells `peers` (node indexes) about `refs`, items this node owns.
void announce(directory_pointer self, const std::vector<uint32_t>& peers,
              const std::vector<item_ref>& refs) {
  auto& st = self->state;
  if (refs.empty())
    return;
  for (auto j : peers) {
    const auto& dir = st.members.members[j].directory;
    if (dir)
      self->send(caf::actor_cast<directory_actor>(dir), adopt_atom_v,
                 self_node(self), refs);
  }
}

std::vector<uint32_t> up_peers(directory_pointer self) {
  std::vector<uint32_t> out;
  for (uint32_t j = 0; j < self->state.members.members.size(); ++j)
    if (j != self_node(self) && is_up(self, j))
      out.push_back(j);
  return out;
}

caf::result<item_view> on_create(directory_pointer self, item_spec spec) {
  auto& st = self->state;
  if (auto code = validate_spec(spec); code != errc::ok)
    return make_error(code);
  auto owner = st.cluster.item_node(spec.item_id);
  if (owner != self_node(self))
    return to_owner<item_view>(self, owner, create_atom_v, std::move(spec));
  if (spec.ends_at_ms != 0 && spec.ends_at_ms <= st.now_ms())
    return make_error(errc::invalid_item); // a sale that is over already
  auto id = spec.item_id;
  if (st.items.count(id) != 0 || st.creating.count(id) != 0)
    return make_error(errc::item_exists);
  if (st.owned + st.creating.size() >= st.cfg.items_max)
    return make_error(errc::capacity_exceeded);
  auto bytes = table_bytes(spec, 0);
  if (st.table_bytes + bytes > st.cfg.items_memory_bytes) {
    spdlog::warn("item_refused_memory item={} needs_mib={} left_mib={} "
                 "budget_mib={}",
                 id, bytes >> 20,
                 (st.cfg.items_memory_bytes - st.table_bytes) >> 20,
                 st.cfg.items_memory_bytes >> 20);
    return make_error(errc::capacity_exceeded);
  }
  st.table_bytes += bytes; // given back if the creation fails
  auto item = spawn_item(self, make_book(spec), true);
  st.creating.insert(id);
  auto rp = self->make_response_promise<item_view>();
  // The barrier answers once the item's record is durable. Nothing is routed
  // to the item before that, so on failure it has no one else to answer.
  self->request(item, caf::infinite, commit_atom_v)
    .then(
      [self, rp, id, item, bytes](item_view& v) mutable {
        self->state.creating.erase(id);
        open_item(self, id, item, {}, self_node(self));
        self->state.items.at(id).table_bytes = bytes;
        announce(self, up_peers(self),
                 {item_ref{id, caf::actor_cast<caf::actor>(item)}});
        spdlog::info("item_created item={} total={} mode={}", id,
                     v.record.spec.total, to_string(v.record.spec.mode));
        rp.deliver(std::move(v));
      },
      [self, rp, id, item, bytes](caf::error& err) mutable {
        self->state.creating.erase(id);
        self->state.table_bytes -= bytes;
        self->unlink_from(item);
        self->send_exit(item, caf::exit_reason::user_shutdown);
        spdlog::warn("item_create_failed item={} error={}", id,
                     log_text(self->system().render(err)));
        rp.deliver(std::move(err));
      });
  return rp;
}

// An owned item's tables shrank (its sale ended): the budget gets the
// difference back. Believed only from that item itself, and only downward:
// the directory is reachable from the cluster port.
void on_tables(directory_pointer self, const std::string& id, int64_t bytes) {
  auto& st = self->state;
  auto i = st.items.find(id);
  auto sender = self->current_sender();
  if (i == st.items.end() || i->second.owner != self_node(self) || !sender
      || sender != caf::actor_cast<caf::strong_actor_ptr>(i->second.item)
      || bytes < 0 || bytes > i->second.table_bytes) {
    spdlog::warn("tables_refused item={} bytes={}",
                 valid_id(id) ? id : std::string{"(not an id)"}, bytes);
    return;
  }
  auto freed = i->second.table_bytes - bytes;
  st.table_bytes -= freed;
  i->second.table_bytes = bytes;
  SECKILL_ASSERT(st.table_bytes >= 0, "the items' table bytes never go "
                                      "below zero");
  spdlog::info("items_memory_freed item={} freed_bytes={} used_mib={} "
               "budget_mib={}",
               id, freed, st.table_bytes >> 20,
               st.cfg.items_memory_bytes >> 20);
}

// Requests that go to the item itself: here if this node owns it, else to
// the owner's directory.
template <class R, class Atom>
caf::result<R> to_item(directory_pointer self, Atom atom,
                       const std::string& item_id, const std::string& arg,
                       errc unknown) {
  auto owner = self->state.cluster.item_node(item_id);
  if (owner != self_node(self))
    return to_owner<R>(self, owner, atom, arg);
  const auto* e = find(self, item_id);
  if (e == nullptr)
    return make_error(unknown);
  if constexpr (std::is_same_v<Atom,
                               stock_atom> || std::is_same_v<Atom, view_atom>)
    return self->delegate(e->item, atom);
  else
    return self->delegate(e->item, atom, arg);
}

caf::result<order> on_purchase(directory_pointer self, purchase& p) {
  if (const auto* e = find(self, p.item_id))
    return self->delegate(e->queue, purchase_atom_v, std::move(p));
  auto owner = self->state.cluster.item_node(p.item_id);
  if (owner == self_node(self))
    return make_error(errc::unknown_item);
  // Not announced (yet): the owner decides, through its own queue.
  return to_owner<order>(self, owner, purchase_atom_v, std::move(p));
}

// An owner announced its items: open or refresh their edge queues.
void on_adopt(directory_pointer self, uint32_t node,
              std::vector<item_ref>& refs) {
  auto& st = self->state;
  if (node == self_node(self) || node >= st.cluster.nodes->size())
    return;
  auto edge_max = st.cfg.items_max * (st.cluster.nodes->size() - 1);
  std::size_t opened = 0, refreshed = 0, refused = 0;
  for (auto& ref : refs) {
    if (!ref.item || st.cluster.item_node(ref.item_id) != node) {
      ++refused; // not that node's item: a member list differs
      continue;
    }
    auto item = caf::actor_cast<item_actor>(ref.item);
    auto i = st.items.find(ref.item_id);
    if (i != st.items.end()) {
      i->second.item = item;
      i->second.fresh = true;
      self->send(i->second.queue, owner_atom_v, is_up(self, node), ref.item);
      ++refreshed;
      continue;
    }
    if (st.items.size() - st.owned >= edge_max) {
      ++refused;
      continue;
    }
    open_item(self, ref.item_id, item, {}, node);
    if (!is_up(self, node))
      self->send(st.items[ref.item_id].queue, owner_atom_v, false,
                 caf::actor{});
    ++opened;
  }
  spdlog::info("items_adopted from={} opened={} refreshed={} refused={}",
               (*st.cluster.nodes)[node], opened, refreshed, refused);
}

void on_routes(directory_pointer self, routes r) {
  auto& st = self->state;
  SECKILL_ASSERT(r.self == self_node(self)
                   && r.members.size() == st.cluster.nodes->size(),
                 "routes describe this node's cluster");
  auto before = st.up;
  auto live_before = live_nodes(self);
  st.members = std::move(r);
  st.up = live_members(st.members);
  std::vector<uint32_t> came_up;
  for (uint32_t j = 0; j < st.up.size(); ++j) {
    bool was = j < before.size() && before[j];
    if (j == self_node(self) || was == st.up[j])
      continue;
    if (st.up[j])
      came_up.push_back(j);
    for (auto& [id, e] : st.items) {
      if (e.owner != j)
        continue;
      if (!st.up[j]) {
        e.fresh = false; // it may come back as a new process
        self->send(e.queue, owner_atom_v, false, caf::actor{});
      } else if (e.fresh) {
        self->send(e.queue, owner_atom_v, true,
                   caf::actor_cast<caf::actor>(e.item));
      }
    }
  }
  // Every node that comes up learns this node's items (with their status,
  // which its edge queues ask the items for).
  std::vector<item_ref> mine;
  for (const auto& [id, e] : st.items)
    if (e.owner == self_node(self))
      mine.push_back(item_ref{id, caf::actor_cast<caf::actor>(e.item)});
  announce(self, came_up, mine);
  if (live_nodes(self) != live_before) {
    // Users' sessions may have moved: their unpaid orders follow them.
    for (const auto& [id, e] : st.items)
      if (e.owner == self_node(self))
        self->send(e.item, unpaid_atom_v);
    auto q = queue_share(self);
    for (auto& kvp : st.items)
      self->send(kvp.second.queue, rate_atom_v, q.rate_per_s, q.burst);
  }
}

// Opens the items recovered from the file, each with its table's size.
void open_recovered(directory_pointer self,
                    std::vector<recovered_item>& recovered) {
  auto& st = self->state;
  for (auto& r : recovered) {
    // An ended sale's tables hold its orders only, from the start.
    bool over = status_at(r.record, st.now_ms()) == item_status::ended;
    auto bytes = over ? ended_table_bytes(r.orders.size())
                      : table_bytes(r.record.spec, r.orders.size());
    st.table_bytes += bytes;
    auto book = make_book(r.record, r.orders, over);
    std::vector<std::string> requests;
    requests.reserve(book.by_request.size());
    for (const auto& kvp : book.by_request)
      requests.push_back(kvp.first);
    auto id = book.rec.spec.item_id;
    SECKILL_ASSERT(st.cluster.item_node(id) == st.cluster.self_node,
                   "a node recovers only items it owns (start_runtime checks)");
    open_item(self, id, spawn_item(self, std::move(book), false),
              std::move(requests), st.cluster.self_node);
    st.items.at(id).table_bytes = bytes;
  }
}

// Where an item's actor and queue are, if its owner is up.
caf::result<caf::actor, caf::actor> on_lookup(directory_pointer self,
                                              const std::string& id) {
  const auto* e = find(self, id);
  if (e == nullptr)
    return make_error(errc::unknown_item);
  if (!is_up(self, e->owner))
    return make_error(errc::shard_unavailable);
  return {caf::actor_cast<caf::actor>(e->item),
          caf::actor_cast<caf::actor>(e->queue)};
}

// The ids of the items known here, or only of those this node owns.
std::vector<std::string> item_ids(directory_pointer self, bool owned_only) {
  std::vector<std::string> ids;
  for (const auto& kvp : self->state.items)
    if (!owned_only || kvp.second.owner == self_node(self))
      ids.push_back(kvp.first);
  return ids;
}

} // namespace

directory_actor::behavior_type
directory_impl(directory_pointer self, directory_config cfg, clock_fn now_ms,
               store_actor store, session_manager_actor sessions,
               std::vector<recovered_item> recovered, cluster_env cluster) {
  survive_strangers(self, "directory");
  SECKILL_ASSERT(cfg.items_max <= limits::items_per_node_max,
                 "items per node stay under the hard maximum");
  auto& st = self->state;
  st.cfg = cfg;
  st.now_ms = std::move(now_ms);
  st.store = std::move(store);
  st.sessions = std::move(sessions);
  st.cluster = std::move(cluster);
  SECKILL_ASSERT(!st.cluster.nodes->empty()
                   && st.cluster.self_node < st.cluster.nodes->size()
                   && st.cluster.nodes->size() <= limits::cluster_nodes_max,
                 "this node is one of at most cluster_nodes_max members");
  st.up.assign(st.cluster.nodes->size(), false);
  st.up[st.cluster.self_node] = true;
  open_recovered(self, recovered);
  return {
    [self](create_atom, item_spec& spec) { return on_create(self, spec); },
    [self](lookup_atom, const std::string& id) { return on_lookup(self, id); },
    [self](list_atom) { return item_ids(self, false); },
    [self](list_atom, bool owned_only) { return item_ids(self, owned_only); },
    [self](routes_atom, routes& r) { on_routes(self, std::move(r)); },
    [self](adopt_atom, uint32_t node, std::vector<item_ref>& refs) {
      on_adopt(self, node, refs);
    },
    [self](purchase_atom, purchase& p) { return on_purchase(self, p); },
    [self](pay_atom a, const std::string& id) {
      return to_item<order>(self, a, item_of_order(id), id,
                            errc::unknown_order);
    },
    [self](cancel_atom a, const std::string& id) {
      return to_item<order>(self, a, item_of_order(id), id,
                            errc::unknown_order);
    },
    [self](order_atom a, const std::string& id) {
      return to_item<order>(self, a, item_of_order(id), id,
                            errc::unknown_order);
    },
    [self](stock_atom a, const std::string& id) {
      return to_item<stock_view>(self, a, id, id, errc::unknown_item);
    },
    [self](view_atom a, const std::string& id) {
      return to_item<item_view>(self, a, id, id, errc::unknown_item);
    },
    [self](tables_atom, const std::string& id, int64_t bytes) {
      on_tables(self, id, bytes);
    },
  };
}

} // namespace seckill
