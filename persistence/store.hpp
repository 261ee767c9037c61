// The store: one actor per node that owns the node's SQLite file (WAL) and
// makes item batches durable with group commit. Only persistence/ includes
// sqlite3.h.
//
// Order life cycle, as rows of the `orders` table:
//
//   order mode:    placed ---------------------------> confirmed
//   reserve mode:  placed -> reserved --pay----------> confirmed
//                               |  \--cancel-------> cancelled  (stock back)
//                               \----deadline------> expired    (stock back)
//   pay mode:      placed -> pending ---pay (stock)--> confirmed
//                               |  \--cancel-------> cancelled
//                               \----deadline------> expired
//
// Group commit: every `commit` that arrives while a transaction is being
// written joins the next transaction (the actor sends itself one `flush` per
// group; commits queued in the mailbox before that flush is processed all
// belong to the group). Each item batch carries the item's snapshot (its
// counters) and the orders it changed, so orders and counters are always
// written in the same transaction and can never disagree in the file.
//
// A commit is answered only after its transaction has committed (the reply is
// the number of rows written), or with `errc::store_unavailable` after the
// transaction was rolled back: then nothing of the whole group is in the file.
//
// Invariants asserted: `available + reserved + sold == total`, each >= 0, for
// every snapshot before it is written and for every item after recovery; the
// counters equal the sums over the item's order rows after recovery.
// It must never: answer a commit before its COMMIT returned, or leave a
// transaction open after an error.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "messages/type_ids.hpp"
#include "messages/types.hpp"

namespace seckill {

using store_actor = caf::typed_actor<
  // Makes one item's batch durable; replies with the rows written.
  caf::replies_to<commit_atom, item_batch>::with<int64_t>,
  // Internal: writes the current group as one transaction.
  caf::reacts_to<caf::flush_atom>,
  caf::replies_to<stats_atom>::with<store_stats>>;

struct store_config {
  std::string path;                  // the SQLite file
  std::string synchronous = "FULL";  // OFF, NORMAL, FULL or EXTRA
  /// Fault injection for tests and the simulation: called once per
  /// transaction; returning true rolls the transaction back after writing it,
  /// exactly as a failing COMMIT (disk full, I/O error) would.
  std::function<bool()> fail_transaction;
};

/// Spawn it detached in a node (it blocks on disk I/O); the deterministic
/// simulation spawns it as an ordinary actor.
store_actor::behavior_type store_impl(store_actor::pointer self,
                                      store_config cfg);

/// One item as found in the file.
struct recovered_item {
  item_record record;
  std::vector<order> orders;
};

struct recovery {
  std::string error; // empty when the file was read and checked
  std::vector<recovered_item> items;
  int64_t orders = 0;
  bool ok() const { return error.empty(); }
};

/// Opens (creating if missing) the file, checks every item's snapshot against
/// its order rows and the invariant, and returns what it found. A mismatch is
/// an error naming the item and the numbers; the caller refuses to start.
/// Releasing reservations that expired while the node was down is the item
/// actor's job at start (a normal, durable batch).
recovery recover(const std::string& path);

/// Validates `synchronous` ("OFF", "NORMAL", "FULL", "EXTRA").
bool valid_synchronous(const std::string& mode);

} // namespace seckill
