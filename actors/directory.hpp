// The directory: one per node, the registry of the node's items. It creates
// items durably: a new item is routable (and answered to its creator) only
// once its record is committed; until then its id is reserved and nothing
// reaches it, so a failed creation leaves nothing behind. It
// owns the item actors and their admission queues, and routes requests by
// item id (and by order id, whose prefix is the item id). On a cluster it will
// also know which node owns an item; on one node every item is local.
// At most `items_max` items; creating more is `capacity_exceeded`.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <caf/typed_actor.hpp>
#include <caf/replies_to.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/admission_queue.hpp"
#include "actors/item.hpp"
#include "actors/session_manager.hpp"
#include "persistence/store.hpp"

namespace seckill {

using directory_actor = caf::typed_actor<
  caf::replies_to<create_atom, item_spec>::with<item_view>,
  // The item actor and its admission queue.
  caf::replies_to<lookup_atom, std::string>::with<caf::actor, caf::actor>,
  caf::replies_to<list_atom>::with<std::vector<std::string>>,
  // Routed: a purchase to the item's queue, the rest to the item.
  caf::replies_to<purchase_atom, purchase>::with<order>,
  caf::replies_to<pay_atom, std::string>::with<order>,
  caf::replies_to<cancel_atom, std::string>::with<order>,
  caf::replies_to<order_atom, std::string>::with<order>,
  caf::replies_to<stock_atom, std::string>::with<stock_view>,
  caf::replies_to<view_atom, std::string>::with<item_view>>;

struct directory_config {
  queue_config queue;
  std::size_t items_max = 1'000;
};

struct item_entry {
  item_actor item;
  queue_actor queue;
};

struct directory_state {
  directory_config cfg;
  clock_fn now_ms;
  store_actor store;
  session_manager_actor sessions;
  std::map<std::string, item_entry> items;
  std::set<std::string> creating; // ids whose record is being committed
  static inline const char* name = "seckill.directory";
};

using directory_pointer = directory_actor::stateful_pointer<directory_state>;

/// Starts with the items found by recovery, each resuming where it stopped.
directory_actor::behavior_type
directory_impl(directory_pointer self, directory_config cfg, clock_fn now_ms,
               store_actor store, session_manager_actor sessions,
               std::vector<recovered_item> recovered);

} // namespace seckill
