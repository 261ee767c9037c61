// Placement: which node owns an item and which node runs a user's session,
// by rendezvous (highest-random-weight) hashing over the node ids of
// cluster.nodes. Every node computes the same answer from the same list, with
// no coordination; adding a node moves only the keys it now wins.
//
// Items never move: an item's owner holds its SQLite rows, so while it is
// down its items are unavailable (503 shard_unavailable), not re-homed.
// A user's session is soft state (the item re-checks every limit), so a user
// whose owner is down is served by the best-ranked live node instead.
// Pure functions, no I/O.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace seckill {

/// The weight of `key` on `node`: a 64-bit hash of both, well mixed.
uint64_t rendezvous_weight(const std::string& node, const std::string& key);

/// The index in `nodes` (not empty) of the item's owner.
uint32_t item_owner(const std::vector<std::string>& nodes,
                    const std::string& item_id);

/// The index of the node that runs the user's session: the best-ranked node
/// with `live[i]` set. `live` has one flag per node; if none is set, the
/// best-ranked node overall.
uint32_t user_owner(const std::vector<std::string>& nodes,
                    const std::vector<bool>& live, const std::string& user_id);

} // namespace seckill
