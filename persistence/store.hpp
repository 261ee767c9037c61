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

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "messages/limits.hpp"
#include "messages/type_ids.hpp"
#include "messages/types.hpp"

namespace seckill {

using store_actor = caf::typed_actor<
  // Makes one item's batch durable; replies with the rows written.
  caf::replies_to<commit_atom, item_batch>::with<int64_t>,
  // Internal: writes the current group as one transaction.
  caf::reacts_to<caf::flush_atom>,
  caf::replies_to<stats_atom>::with<store_stats>>;

/// Why a store stopped acknowledging for good (until an operator acts and
/// the node restarts): the file it writes is no longer the file recovery
/// would read, or the file disagrees with what the items hold in memory.
enum class store_fault : uint8_t {
  none = 0,
  file_unlinked,  // the path no longer exists: the writes go nowhere
  file_replaced,  // the path names another file now
  order_conflict, // a new order's id is already in the file, or a changed
                  // order is missing from it
  stuck,          // a transaction could not even be rolled back
};

const char* to_string(store_fault x);

/// The store's health, written by the store's thread and read by anyone
/// (the bridges for /healthz, the admin actor): lock-free atomics.
struct store_health {
  std::atomic<store_fault> fault{store_fault::none};
  /// Commits that failed in a row (0 after a success): a full disk or an
  /// I/O error that may pass.
  std::atomic<int64_t> failing{0};
  /// The last failure's SQLite message is logged, not kept here.
  bool healthy() const {
    return fault.load(std::memory_order_relaxed) == store_fault::none
           && failing.load(std::memory_order_relaxed) == 0;
  }
};

struct store_config {
  std::string path;                 // the SQLite file
  std::string synchronous = "FULL"; // OFF, NORMAL, FULL or EXTRA
  /// SQLite's exclusive locking mode: no other connection, in this process
  /// or another, can read or write the file while the store has it open.
  /// The node always sets it; tests that read the file beside a running
  /// store turn it off.
  bool exclusive = true;
  /// Bytes kept in `<path>-reserve` so that a full disk can always be given
  /// room for a checkpoint (released on SQLITE_FULL, made again when there
  /// is room). 0: no reserve.
  int64_t reserve_bytes = limits::store_reserve_bytes;
  /// Where the store reports its health; optional.
  std::shared_ptr<store_health> health;
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

/// Opens (creating if missing) the file, runs SQLite's quick_check, checks
/// that it is the file this data dir made (`<path>.id`, see below), checks
/// every item's snapshot against its order rows and the invariant, and
/// returns what it found. A mismatch is an error naming the item and the
/// numbers; the caller refuses to start. Releasing reservations that
/// expired while the node was down is the item actor's job at start (a
/// normal, durable batch).
///
/// The file's identity: the first open writes a random id into the file's
/// `meta` table and into `<path>.id` beside it. A later open refuses a
/// missing file while `<path>.id` exists (it was lost: restore it from a
/// backup, or delete `<path>.id` to start empty on purpose), and a file
/// whose id differs (another store's file put in its place).
recovery recover(const std::string& path);

/// Validates `synchronous` ("OFF", "NORMAL", "FULL", "EXTRA").
bool valid_synchronous(const std::string& mode);

} // namespace seckill
