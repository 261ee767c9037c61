// The directory: one per node, the registry of the node's items. It creates
// items durably: a new item is routable (and answered to its creator) only
// once its record is committed; until then its id is reserved and nothing
// reaches it, so a failed creation leaves nothing behind. It
// owns the item actors and their admission queues, and routes requests by
// item id (and by order id, whose prefix is the item id).
//
// On a cluster (routes pushed by the membership actor) an item lives on its
// owner (placement.hpp). Its owner announces it to every node that comes up
// (adopt), and each of them opens an edge admission queue for it, so a
// purchase is metered, and refused when the item is sold out, on the node
// that took it. Everything else for an item (pay, cancel, order, stock,
// view, create) goes to the owner's directory through a relay. While the
// owner is down, its items are answered shard_unavailable at once. When the
// live nodes change, every queue gets its new share of the admission rate.
// At most `items_max` owned items (creating more is `capacity_exceeded`) and
// `items_max` edge items per other member.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <caf/replies_to.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_actor.hpp>

#include "actors/base/hop.hpp"
#include "actors/sale/admission_queue.hpp"
#include "actors/sale/item.hpp"
#include "actors/sale/session_manager.hpp"
#include "persistence/store.hpp"

namespace seckill {

using directory_actor = caf::typed_actor<
  caf::replies_to<create_atom, item_spec>::with<item_view>,
  // The item actor and its admission queue.
  caf::replies_to<lookup_atom, std::string>::with<caf::actor, caf::actor>,
  // Every item this node knows (owned and edge), or (true) only its own.
  caf::replies_to<list_atom>::with<std::vector<std::string>>,
  caf::replies_to<list_atom, bool>::with<std::vector<std::string>>,
  // The cluster changed; an owner announces its items.
  caf::reacts_to<routes_atom, routes>,
  caf::reacts_to<adopt_atom, uint32_t, std::vector<item_ref>>,
  // Routed: a purchase to the item's queue, the rest to the item.
  caf::replies_to<purchase_atom, purchase>::with<order>,
  caf::replies_to<pay_atom, std::string>::with<order>,
  caf::replies_to<cancel_atom, std::string>::with<order>,
  caf::replies_to<order_atom, std::string>::with<order>,
  caf::replies_to<stock_atom, std::string>::with<stock_view>,
  caf::replies_to<view_atom, std::string>::with<item_view>,
  // An owned item's tables shrank (its sale ended): their bytes now. Only
  // from the item itself.
  caf::reacts_to<tables_atom, std::string, int64_t>>;

struct directory_config {
  queue_config queue;
  std::size_t items_max = 1'000;
  /// The owned items' tables at most (see limits::items_memory_mib_default).
  int64_t items_memory_bytes = limits::items_memory_mib_default << 20;
};

struct item_entry {
  item_actor item;   // on the owner: local, or a remote handle
  queue_actor queue; // always on this node
  uint32_t owner = 0;
  /// Edge items: the handle came from the owner since it last came up.
  bool fresh = true;
  /// Owned items: the bytes of its tables counted in table_bytes.
  int64_t table_bytes = 0;
};

struct directory_state {
  directory_config cfg;
  clock_fn now_ms;
  store_actor store;
  session_manager_actor sessions;
  std::map<std::string, item_entry> items;
  std::set<std::string> creating; // ids whose record is being committed
  cluster_env cluster;
  routes members;          // empty until the membership pushes them
  std::vector<bool> up;    // by node index; this node always
  std::size_t owned = 0;   // entries this node owns
  int64_t table_bytes = 0; // their tables (and those being created)
  std::size_t next_relay = 0;
  static inline const char* name = "seckill.directory";
};

using directory_pointer = directory_actor::stateful_pointer<directory_state>;

/// Starts with the items found by recovery, each resuming where it stopped.
directory_actor::behavior_type
directory_impl(directory_pointer self, directory_config cfg, clock_fn now_ms,
               store_actor store, session_manager_actor sessions,
               std::vector<recovered_item> recovered, cluster_env cluster = {});

} // namespace seckill
