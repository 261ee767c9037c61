// The store actor and recovery: item batches become rows of one SQLite file
// (WAL) through group commit, and `recover` reads them back and checks them.
// The order life cycle the `orders` rows follow is drawn in store.hpp.
//
// File layout (schema_version 2; a version 1 file gains items.admission,
// 0 = open, when it is opened):
//   meta(key, value)          'schema_version' -> 2
//   items(item_id PK, ...)    the spec, the counters, admin, next_order_seq
//   meta(key, value)          'store_id' -> the file's identity (store.hpp)
//   orders(order_id PK, ...)  one row per order, inserted once, then updated
//                             in place;
//                             UNIQUE(item_id, request_id), indexed by item_id
//
// Invariants: every transaction holds whole item batches, each an item's
// snapshot written together with the orders it changed; a snapshot keeps
// `available + reserved + sold == total`, each >= 0 (asserted before it is
// written); after recovery the counters equal the sums over the item's orders
// and every order's seq is below the item's next_order_seq (checked, and
// reported as an error naming the item and the numbers).
// It must never: answer a commit before COMMIT returned, answer success for a
// group that was rolled back, or leave a transaction open after an error (the
// `sqlite::transaction` guard rolls back on every path; if even that fails,
// the store stops acknowledging, store_fault::stuck, rather than write into a
// half-open transaction).
#include "persistence/store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <random>
#include <utility>

#include <caf/actor_cast.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "messages/assert.hpp"
#include "messages/errors.hpp"
#include "messages/limits.hpp"
#include "messages/log_limiter.hpp"
#include "messages/log_text.hpp"
#include "persistence/sqlite_db.hpp"

namespace seckill {

namespace {

constexpr int64_t schema_version = 2;

/// How long a connection waits for another connection's write lock (recovery
/// and the store may open the same file) before its statement fails.
constexpr int busy_timeout_ms = 5'000;

// The highest value of each enum stored as an integer: anything above is a
// value this build does not know, and recovery refuses it.
constexpr int64_t deduction_mode_max =
  static_cast<int64_t>(deduction_mode::pay);
constexpr int64_t admin_state_max = static_cast<int64_t>(admin_state::ended);
constexpr int64_t admission_max = static_cast<int64_t>(admission_mode::quiz);
constexpr int64_t order_state_max = static_cast<int64_t>(order_state::expired);

constexpr const char* schema_sql = R"sql(
CREATE TABLE IF NOT EXISTS meta (
  key TEXT PRIMARY KEY,
  value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS items (
  item_id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  total INTEGER NOT NULL,
  per_user_limit INTEGER NOT NULL,
  starts_at_ms INTEGER NOT NULL,
  ends_at_ms INTEGER NOT NULL,
  mode INTEGER NOT NULL,
  reserve_ttl_ms INTEGER NOT NULL,
  price_cents INTEGER NOT NULL,
  available INTEGER NOT NULL,
  reserved INTEGER NOT NULL,
  sold INTEGER NOT NULL,
  admin INTEGER NOT NULL,
  next_order_seq INTEGER NOT NULL,
  admission INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS orders (
  order_id TEXT PRIMARY KEY,
  item_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  request_id TEXT NOT NULL,
  quantity INTEGER NOT NULL,
  state INTEGER NOT NULL,
  created_ms INTEGER NOT NULL,
  expires_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL,
  UNIQUE (item_id, request_id)
);
CREATE INDEX IF NOT EXISTS orders_by_item ON orders (item_id);
)sql";

constexpr const char* upsert_item_sql = R"sql(
INSERT INTO items (item_id, name, total, per_user_limit, starts_at_ms,
                   ends_at_ms, mode, reserve_ttl_ms, price_cents, available,
                   reserved, sold, admin, next_order_seq, admission)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
ON CONFLICT (item_id) DO UPDATE SET
  name = excluded.name, total = excluded.total,
  per_user_limit = excluded.per_user_limit,
  starts_at_ms = excluded.starts_at_ms, ends_at_ms = excluded.ends_at_ms,
  mode = excluded.mode, reserve_ttl_ms = excluded.reserve_ttl_ms,
  price_cents = excluded.price_cents, available = excluded.available,
  reserved = excluded.reserved, sold = excluded.sold, admin = excluded.admin,
  next_order_seq = excluded.next_order_seq, admission = excluded.admission
)sql";

// A new order is a new row: an order id already in the file is a conflict
// (the file holds an order this store's memory does not), never an overwrite.
constexpr const char* insert_order_sql = R"sql(
INSERT INTO orders (order_id, item_id, user_id, request_id, quantity, state,
                    created_ms, expires_ms, updated_ms)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
)sql";

// Only the mutable columns of an order change after it was placed, and only
// the order this store placed: the row must match it on everything else.
constexpr const char* update_order_sql = R"sql(
UPDATE orders SET state = ?6, expires_ms = ?8, updated_ms = ?9
WHERE order_id = ?1 AND item_id = ?2 AND user_id = ?3 AND request_id = ?4
  AND quantity = ?5 AND created_ms = ?7
)sql";

constexpr const char* select_items_sql = R"sql(
SELECT item_id, name, total, per_user_limit, starts_at_ms, ends_at_ms, mode,
       reserve_ttl_ms, price_cents, available, reserved, sold, admin,
       next_order_seq, admission
FROM items ORDER BY rowid
)sql";

// An updated order keeps its rowid (UPDATE), so rowid is placement order.
constexpr const char* select_orders_sql = R"sql(
SELECT order_id, item_id, user_id, request_id, quantity, state, created_ms,
       expires_ms, updated_ms
FROM orders WHERE item_id = ?1 ORDER BY rowid
)sql";

// -- opening the file ---------------------------------------------------------

/// A fresh random identity for a new store file (63 bits, positive).
int64_t new_store_id() {
  std::random_device rd;
  uint64_t x = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  return static_cast<int64_t>(x >> 1) | 1;
}

/// Creates the tables if missing, checks the file's schema_version and
/// returns its store id in `id`. Returns an empty string on success, else
/// what failed.
std::string quick_check(sqlite::database& db, const std::string& path);

std::string apply_schema(sqlite::database& db, const std::string& path,
                         int64_t& id) {
  sqlite::transaction tx{db, sqlite::transaction::kind::immediate};
  if (!tx.begun() || !db.exec(schema_sql))
    return fmt::format("cannot create the schema in {}: {}", path, db.errmsg());
  auto insert = db.prepare("INSERT OR IGNORE INTO meta (key, value) "
                           "VALUES (?1, ?2)");
  if (!insert.valid())
    return fmt::format("cannot write meta in {}: {}", path, db.errmsg());
  insert.bind(1, std::string{"schema_version"});
  insert.bind(2, schema_version);
  bool ok = insert.run();
  insert.reset();
  insert.bind(1, std::string{"store_id"});
  insert.bind(2, new_store_id());
  ok = ok && insert.run();
  std::string version, id_text;
  if (!ok
      || !db.query_text("SELECT value FROM meta WHERE key = 'schema_version'",
                        version)
      || !db.query_text("SELECT value FROM meta WHERE key = 'store_id'",
                        id_text)) {
    // A file whose pages are damaged fails here first, often with no SQLite
    // error ("not an error"): say what SQLite's own check finds.
    if (auto damage = quick_check(db, path); !damage.empty())
      return damage;
    return fmt::format("cannot read meta in {}: {}", path, db.errmsg());
  }
  if (version == "1") { // before admission: every item was open
    if (!db.exec("ALTER TABLE items ADD COLUMN admission INTEGER NOT NULL "
                 "DEFAULT 0; UPDATE meta SET value = 2 "
                 "WHERE key = 'schema_version';"))
      return fmt::format("cannot upgrade {} to schema_version 2: {}", path,
                         db.errmsg());
    version = "2";
  }
  if (version != std::to_string(schema_version))
    return fmt::format("{} has schema_version {}, this build reads {}", path,
                       version, schema_version);
  if (!tx.commit())
    return fmt::format("cannot commit the schema in {}: {}", path, db.errmsg());
  id = std::strtoll(id_text.c_str(), nullptr, 10);
  return {};
}

std::string id_path_of(const std::string& path) {
  return path + ".id";
}

/// The id in `<path>.id`: 0 if there is no such file, -1 if it is unreadable.
int64_t read_id_file(const std::string& path) {
  std::ifstream in{id_path_of(path)};
  if (!in)
    return 0;
  int64_t id = 0;
  if (!(in >> id) || id <= 0)
    return -1;
  return id;
}

/// Writes `<path>.id` durably (the file, then its directory).
std::string write_id_file(const std::string& path, int64_t id) {
  auto id_path = id_path_of(path);
  int fd =
    ::open(id_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return fmt::format("cannot create {}: {}", id_path, std::strerror(errno));
  auto line = std::to_string(id) + "\n";
  bool ok =
    ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size())
    && ::fsync(fd) == 0;
  ::close(fd);
  auto dir = std::filesystem::path{path}.parent_path().string();
  if (int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_CLOEXEC);
      dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return ok ? std::string{} : fmt::format("cannot write {}", id_path);
}

/// The file must be the one this data dir made: see recover() in store.hpp.
/// `existed`: the file was there before SQLite opened (or created) it.
std::string check_identity(const std::string& path, bool existed, int64_t id) {
  auto expected = read_id_file(path);
  if (expected < 0)
    return fmt::format("{} is unreadable; it should hold the id of {}",
                       id_path_of(path), path);
  if (expected > 0 && !existed)
    return fmt::format("{} is missing, but {} says a store was made here "
                       "(id {}): the file was lost. Restore it from a "
                       "backup, or delete {} to start an empty store on "
                       "purpose (every order in the lost file stays lost)",
                       path, id_path_of(path), expected, id_path_of(path));
  if (expected > 0 && expected != id)
    return fmt::format("{} has store id {}, but {} says {}: another store's "
                       "file was put in its place. Put the right file back, "
                       "or delete {} to adopt this one on purpose",
                       path, id, id_path_of(path), expected, id_path_of(path));
  if (expected == 0)
    return write_id_file(path, id);
  return {};
}

/// Opens `path` in WAL mode with the given synchronous level, locking mode
/// and the schema, and checks its identity. Returns an empty string on
/// success, else what failed.
std::string open_store_file(sqlite::database& db, const std::string& path,
                            const std::string& synchronous, bool exclusive) {
  if (!valid_synchronous(synchronous))
    return fmt::format("invalid synchronous={} (OFF, NORMAL, FULL or EXTRA)",
                       synchronous);
  std::error_code ec;
  bool existed = std::filesystem::exists(path, ec);
  // Before SQLite creates an empty file in the lost one's place.
  if (!existed && read_id_file(path) != 0)
    return check_identity(path, existed, 0);
  if (!db.open(path))
    return fmt::format("cannot open {}: {}", path, db.errmsg());
  db.busy_timeout_ms(busy_timeout_ms);
  // Before WAL is chosen: an exclusive WAL connection keeps its index in
  // its own memory, and no other connection can open the file meanwhile.
  if (exclusive && !db.exec("PRAGMA locking_mode=EXCLUSIVE"))
    return fmt::format("cannot lock {} exclusively: {}", path, db.errmsg());
  std::string mode;
  if (!db.query_text("PRAGMA journal_mode=WAL", mode) || mode != "wal")
    return fmt::format("cannot use WAL for {}: {}", path,
                       mode.empty() ? db.errmsg() : "journal_mode=" + mode);
  // Safe to splice: `synchronous` is one of the four names checked above,
  // the numbers are the named limits.
  auto pragmas =
    fmt::format("PRAGMA synchronous={}; PRAGMA wal_autocheckpoint={}; "
                "PRAGMA journal_size_limit={};",
                synchronous, limits::store_wal_checkpoint_pages,
                limits::store_wal_bytes_max);
  if (!db.exec(pragmas.c_str()))
    return fmt::format("cannot set synchronous={} for {}: {}", synchronous,
                       path, db.errmsg());
  int64_t id = 0;
  if (auto err = apply_schema(db, path, id); !err.empty())
    return err;
  return check_identity(path, existed, id);
}

// -- the store actor ----------------------------------------------------------

struct pending_commit {
  item_batch batch;
  caf::typed_response_promise<int64_t> promise;
};

/// Which file the store opened: the path must keep naming it.
struct file_identity {
  dev_t dev = 0;
  ino_t ino = 0;
};

struct store_state {
  store_config cfg;
  sqlite::database db; // declared before the statements that use it
  sqlite::statement upsert_item;
  sqlite::statement insert_order;
  sqlite::statement update_order;
  std::deque<pending_commit>
    pending; // at most limits::store_pending_batches_max
  bool flush_scheduled = false;
  file_identity opened;
  /// Set once the store must not acknowledge again (store_fault): every
  /// commit is then refused at once.
  store_fault fault = store_fault::none;
  bool reserve_held = false;
  int64_t reserve_tried_ms = 0;
  log_limiter failure_log{limits::log_repeat_ms};
  // transactions and batches count every attempt, failed ones included;
  // rows_written counts committed rows only.
  store_stats stats;
};

enum class group_outcome { committed, rolled_back, fatal };

/// What writing one batch's rows found.
enum class write_result { ok, failed, conflict };

int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::steady_clock::now().time_since_epoch())
    .count();
}

/// The batch's promises to the file, checked where they are relied on.
void check_batch(const item_batch& batch) {
  const auto& spec = batch.item.spec;
  const auto& c = batch.item.counters;
  SECKILL_ASSERT(c.available >= 0 && c.reserved >= 0 && c.sold >= 0,
                 "store: snapshot counters are never negative");
  SECKILL_ASSERT(c.available + c.reserved + c.sold == spec.total,
                 "store: available + reserved + sold == total");
  for (const auto* orders : {&batch.placed, &batch.changed})
    for (const auto& o : *orders) {
      SECKILL_ASSERT(o.quantity > 0, "store: an order's quantity is positive");
      SECKILL_ASSERT(o.item_id == spec.item_id,
                     "store: a batch holds only its own item's orders");
      SECKILL_ASSERT(static_cast<int64_t>(o.state) <= order_state_max,
                     "store: an order's state is a known value");
    }
}

bool write_item(sqlite::statement& stmt, const item_record& item) {
  const auto& s = item.spec;
  const auto& c = item.counters;
  stmt.reset();
  stmt.bind(1, s.item_id);
  stmt.bind(2, s.name);
  stmt.bind(3, s.total);
  stmt.bind(4, s.per_user_limit);
  stmt.bind(5, s.starts_at_ms);
  stmt.bind(6, s.ends_at_ms);
  stmt.bind(7, static_cast<int64_t>(s.mode));
  stmt.bind(8, s.reserve_ttl_ms);
  stmt.bind(9, s.price_cents);
  stmt.bind(10, c.available);
  stmt.bind(11, c.reserved);
  stmt.bind(12, c.sold);
  stmt.bind(13, static_cast<int64_t>(item.admin));
  stmt.bind(14, item.next_order_seq);
  stmt.bind(15, static_cast<int64_t>(s.admission));
  return stmt.run();
}

void bind_order(sqlite::statement& stmt, const order& o) {
  stmt.reset();
  stmt.bind(1, o.order_id);
  stmt.bind(2, o.item_id);
  stmt.bind(3, o.user_id);
  stmt.bind(4, o.request_id);
  stmt.bind(5, o.quantity);
  stmt.bind(6, static_cast<int64_t>(o.state));
  stmt.bind(7, o.created_ms);
  stmt.bind(8, o.expires_ms);
  stmt.bind(9, o.updated_ms);
}

write_result write_orders(store_state& st, const item_batch& batch) {
  for (const auto& o : batch.placed) {
    bind_order(st.insert_order, o);
    if (!st.insert_order.run())
      return st.db.primary_errcode() == sqlite::code_constraint
               ? write_result::conflict
               : write_result::failed;
  }
  for (const auto& o : batch.changed) {
    bind_order(st.update_order, o);
    if (!st.update_order.run())
      return write_result::failed;
    if (st.db.changes() != 1)
      return write_result::conflict; // the order this store placed is gone
  }
  return write_result::ok;
}

write_result write_batch(store_state& st, const item_batch& batch) {
  check_batch(batch);
  if (!write_item(st.upsert_item, batch.item))
    return write_result::failed;
  return write_orders(st, batch);
}

int64_t rows_of(const item_batch& batch) {
  return 1 + static_cast<int64_t>(batch.placed.size() + batch.changed.size());
}

void update_stats(store_stats& stats, std::size_t batches, int64_t rows,
                  int64_t elapsed_us, bool committed) {
  auto group_size = static_cast<int64_t>(batches);
  stats.transactions += 1;
  stats.batches += group_size;
  stats.largest_group = std::max(stats.largest_group, group_size);
  stats.commit_us_total += elapsed_us;
  stats.commit_us_max = std::max(stats.commit_us_max, elapsed_us);
  if (committed)
    stats.rows_written += rows;
  else
    stats.failed_transactions += 1;
}

// -- the file and its reserve -----------------------------------------------------

std::string reserve_path_of(const store_state& st) {
  return st.cfg.path + "-reserve";
}

/// Makes the reserve file if it is missing; false if there is no room.
bool make_reserve(store_state& st) {
  if (st.cfg.reserve_bytes <= 0 || st.reserve_held)
    return true;
  auto path = reserve_path_of(st);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0)
    return false;
  bool ok =
    ::posix_fallocate(fd, 0, st.cfg.reserve_bytes) == 0 && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok)
    ::unlink(path.c_str()); // a partial reserve only takes room
  st.reserve_held = ok;
  return ok;
}

/// A full disk: gives the reserve's room to a checkpoint, so that the WAL
/// moves into the file and is truncated (it must not stay full forever).
void on_disk_full(store_state& st) {
  bool released = st.reserve_held;
  if (released) {
    ::unlink(reserve_path_of(st).c_str());
    st.reserve_held = false;
  }
  bool checkpointed = st.db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  st.reserve_tried_ms = steady_ms();
  spdlog::warn("store_disk_full path={} reserve_released={} checkpoint={}",
               st.cfg.path, released, checkpointed ? "done" : "failed");
}

/// After a success: the reserve again, once there is room (tried at most
/// once per store_reserve_retry_ms).
void restore_reserve(store_state& st) {
  if (st.reserve_held || st.cfg.reserve_bytes <= 0)
    return;
  auto now = steady_ms();
  if (now - st.reserve_tried_ms < limits::store_reserve_retry_ms)
    return;
  st.reserve_tried_ms = now;
  if (make_reserve(st))
    spdlog::info("store_reserve_restored path={} bytes={}", st.cfg.path,
                 st.cfg.reserve_bytes);
}

/// Whether the path still names the file the store opened.
store_fault check_file(const store_state& st) {
  struct stat now {};
  if (::stat(st.cfg.path.c_str(), &now) != 0)
    return errno == ENOENT ? store_fault::file_unlinked : store_fault::none;
  if (now.st_dev != st.opened.dev || now.st_ino != st.opened.ino)
    return store_fault::file_replaced;
  return store_fault::none;
}

void set_fault(store_state& st, store_fault fault, const std::string& detail) {
  if (st.fault != store_fault::none)
    return;
  st.fault = fault;
  if (st.cfg.health)
    st.cfg.health->fault.store(fault);
  spdlog::error("store_failed path={} fault={} detail=\"{}\" action=\"no "
                "commit is acknowledged from now on; see README, "
                "Durability\"",
                st.cfg.path, to_string(fault), detail);
}

void note_failure(store_state& st, int rc, bool disk_full,
                  const std::string& msg, std::size_t batches) {
  if (st.cfg.health)
    st.cfg.health->failing.fetch_add(1);
  int64_t skipped = 0;
  if (st.failure_log.allow(steady_ms(), skipped))
    spdlog::warn("store_commit_failed rc={} msg=\"{}\" batches={} "
                 "failed_since_last_line={}",
                 rc, msg, batches, skipped);
  if (disk_full)
    on_disk_full(st);
}

void note_success(store_state& st) {
  if (st.cfg.health)
    st.cfg.health->failing.store(0);
  restore_reserve(st);
}

// -- group commit -------------------------------------------------------------------

/// What one transaction attempt found.
struct attempt {
  std::string failure; // empty while everything succeeds
  int rc = 0;          // SQLite's extended code, for the log
  bool disk_full = false;
  bool conflict = false;
  bool left_open = false;
};

attempt try_group(store_state& st, std::vector<pending_commit>& group) {
  attempt a;
  sqlite::transaction tx{st.db, sqlite::transaction::kind::immediate};
  auto result = tx.begun() ? write_result::ok : write_result::failed;
  for (auto i = group.begin(); result == write_result::ok && i != group.end();
       ++i)
    result = write_batch(st, i->batch);
  if (result == write_result::conflict) {
    a.conflict = true;
    a.failure = "an order's row disagrees with the order in memory";
  } else if (result == write_result::failed) {
    a.failure = st.db.errmsg();
    a.rc = st.db.errcode();
  } else if (st.cfg.fail_transaction && st.cfg.fail_transaction()) {
    a.failure = "injected fault";
  } else if (!tx.commit()) {
    a.failure = st.db.errmsg();
    a.rc = st.db.errcode();
  }
  a.disk_full = st.db.primary_errcode() == sqlite::code_full;
  if (!a.failure.empty())
    a.left_open = !tx.rollback();
  return a;
}

/// Writes `group` as one transaction and answers every promise in it.
group_outcome write_group(store_state& st, std::vector<pending_commit>& group) {
  // Checked on every commit (one stat): a file unlinked or replaced under
  // the node would take every later "durable" order with it.
  if (auto fault = check_file(st); fault != store_fault::none)
    set_fault(st, fault, "checked before a commit");
  if (st.fault != store_fault::none) {
    for (auto& x : group)
      x.promise.deliver(make_error(errc::store_unavailable));
    return group_outcome::fatal;
  }
  auto started = std::chrono::steady_clock::now();
  auto a = try_group(st, group);
  auto elapsed_us = std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::steady_clock::now() - started)
                      .count();
  int64_t rows = 0;
  for (const auto& x : group)
    rows += rows_of(x.batch);
  update_stats(st.stats, group.size(), rows, elapsed_us, a.failure.empty());
  if (!a.failure.empty()) {
    if (a.conflict)
      set_fault(st, store_fault::order_conflict, a.failure);
    else if (a.left_open)
      set_fault(st, store_fault::stuck, st.db.errmsg());
    else
      note_failure(st, a.rc, a.disk_full, a.failure, group.size());
    for (auto& x : group)
      x.promise.deliver(make_error(errc::store_unavailable));
    return st.fault != store_fault::none ? group_outcome::fatal
                                         : group_outcome::rolled_back;
  }
  note_success(st);
  spdlog::debug("store_commit batches={} rows={} us={}", group.size(), rows,
                elapsed_us);
  for (auto& x : group)
    x.promise.deliver(rows_of(x.batch));
  return group_outcome::committed;
}

void schedule_flush(store_actor::pointer self, store_state& st) {
  if (st.flush_scheduled)
    return;
  st.flush_scheduled = true;
  // Lands behind the commits already queued: they all join this group.
  self->send(caf::actor_cast<store_actor>(self), caf::flush_atom_v);
}

caf::typed_response_promise<int64_t>
on_commit(store_actor::pointer self, store_state& st, item_batch& batch) {
  auto promise = self->make_response_promise<int64_t>();
  if (st.fault != store_fault::none) {
    promise.deliver(make_error(errc::store_unavailable));
    return promise;
  }
  if (st.pending.size() >= limits::store_pending_batches_max) {
    spdlog::warn("store_overloaded item={} pending={}", batch.item.spec.item_id,
                 st.pending.size());
    promise.deliver(make_error(errc::store_unavailable));
    return promise;
  }
  st.pending.push_back(pending_commit{std::move(batch), promise});
  schedule_flush(self, st);
  return promise;
}

void on_flush(store_actor::pointer self, store_state& st) {
  st.flush_scheduled = false;
  auto n = std::min(st.pending.size(), limits::store_group_batches_max);
  if (n == 0)
    return;
  auto first = st.pending.begin();
  auto last = first + static_cast<std::ptrdiff_t>(n);
  std::vector<pending_commit> group{std::make_move_iterator(first),
                                    std::make_move_iterator(last)};
  st.pending.erase(first, last);
  if (write_group(st, group) == group_outcome::fatal) {
    // Nothing waiting can be made durable any more: answer it now. The
    // actor stays, refusing, so that callers get store_unavailable (not a
    // dead actor) and /healthz can say why.
    for (auto& x : st.pending)
      x.promise.deliver(make_error(errc::store_unavailable));
    st.pending.clear();
    return;
  }
  // Batches beyond the group's maximum go to the following transaction.
  if (!st.pending.empty())
    schedule_flush(self, st);
}

/// Opens the file and prepares the statements; returns what failed, if any.
std::string open_store(store_state& st) {
  auto err =
    open_store_file(st.db, st.cfg.path, st.cfg.synchronous, st.cfg.exclusive);
  if (!err.empty())
    return err;
  st.upsert_item = st.db.prepare(upsert_item_sql);
  st.insert_order = st.db.prepare(insert_order_sql);
  st.update_order = st.db.prepare(update_order_sql);
  if (!st.upsert_item.valid() || !st.insert_order.valid()
      || !st.update_order.valid())
    return fmt::format("cannot prepare statements for {}: {}", st.cfg.path,
                       st.db.errmsg());
  struct stat opened {};
  if (::stat(st.cfg.path.c_str(), &opened) != 0)
    return fmt::format("cannot stat {}: {}", st.cfg.path, std::strerror(errno));
  st.opened = file_identity{opened.st_dev, opened.st_ino};
  // A stale reserve from an earlier run counts as held.
  struct stat reserve {};
  st.reserve_held = ::stat(reserve_path_of(st).c_str(), &reserve) == 0
                    && reserve.st_size >= st.cfg.reserve_bytes;
  if (!make_reserve(st))
    spdlog::warn("store_reserve_missing path={} bytes={} reason=\"no room: "
                 "a full disk may then stop commits until space is freed\"",
                 reserve_path_of(st), st.cfg.reserve_bytes);
  return {};
}

// -- recovery -----------------------------------------------------------------

template <class Enum>
bool to_enum(int64_t raw, int64_t max, Enum& out) {
  if (raw < 0 || raw > max)
    return false;
  out = static_cast<Enum>(raw);
  return true;
}

/// Reads the current row of select_items_sql; false on an unknown enum.
bool read_item(const sqlite::statement& row, item_record& out,
               std::string& error) {
  auto& s = out.spec;
  s.item_id = row.column_text(0);
  s.name = row.column_text(1);
  s.total = row.column_int(2);
  s.per_user_limit = row.column_int(3);
  s.starts_at_ms = row.column_int(4);
  s.ends_at_ms = row.column_int(5);
  s.reserve_ttl_ms = row.column_int(7);
  s.price_cents = row.column_int(8);
  out.counters =
    stock_counters{row.column_int(9), row.column_int(10), row.column_int(11)};
  out.next_order_seq = row.column_int(13);
  if (!to_enum(row.column_int(6), deduction_mode_max, s.mode)) {
    error =
      fmt::format("item {}: unknown mode {}", s.item_id, row.column_int(6));
    return false;
  }
  if (!to_enum(row.column_int(14), admission_max, s.admission)) {
    error = fmt::format("item {}: unknown admission {}", s.item_id,
                        row.column_int(14));
    return false;
  }
  if (!to_enum(row.column_int(12), admin_state_max, out.admin)) {
    error = fmt::format("item {}: unknown admin state {}", s.item_id,
                        row.column_int(12));
    return false;
  }
  return true;
}

/// Reads the current row of select_orders_sql; false on an unknown state.
bool read_order(const sqlite::statement& row, order& out, std::string& error) {
  out.order_id = row.column_text(0);
  out.item_id = row.column_text(1);
  out.user_id = row.column_text(2);
  out.request_id = row.column_text(3);
  out.quantity = row.column_int(4);
  out.created_ms = row.column_int(6);
  out.expires_ms = row.column_int(7);
  out.updated_ms = row.column_int(8);
  if (!to_enum(row.column_int(5), order_state_max, out.state)) {
    error = fmt::format("item {}: order {} has unknown state {}", out.item_id,
                        out.order_id, row.column_int(5));
    return false;
  }
  return true;
}

/// Reads every order row of `item` into it; returns what failed, if any.
std::string load_orders(sqlite::database& db, sqlite::statement& select,
                        recovered_item& item) {
  select.reset();
  select.bind(1, item.record.spec.item_id);
  std::string error;
  for (;;) {
    switch (select.step()) {
      case sqlite::statement::step_result::done: select.reset(); return {};
      case sqlite::statement::step_result::error:
        error = fmt::format("cannot read the orders of item {}: {}",
                            item.record.spec.item_id, db.errmsg());
        select.reset();
        return error;
      case sqlite::statement::step_result::row:
        if (!read_order(select, item.orders.emplace_back(), error)) {
          select.reset();
          return error;
        }
        break;
    }
  }
}

/// Parses the seq of "<item_id>.<seq>"; false unless the id has that form.
bool parse_seq(const std::string& order_id, const std::string& item_id,
               int64_t& seq) {
  auto dot = order_id.rfind('.');
  if (dot == std::string::npos || order_id.compare(0, dot, item_id) != 0
      || dot != item_id.size())
    return false;
  auto first = order_id.data() + dot + 1;
  auto last = order_id.data() + order_id.size();
  auto [end, ec] = std::from_chars(first, last, seq);
  return first != last && ec == std::errc{} && end == last && seq >= 1;
}

/// Checks one order of `item` and adds its quantity to the sums.
std::string check_order(const item_record& item, const order& o,
                        stock_counters& sums) {
  const auto& id = item.spec.item_id;
  if (o.quantity <= 0 || o.quantity > limits::quantity_max)
    return fmt::format("item {}: order {} has quantity={}", id, o.order_id,
                       o.quantity);
  int64_t seq = 0;
  if (!parse_seq(o.order_id, id, seq))
    return fmt::format("item {}: order id {} is not <item_id>.<seq>", id,
                       o.order_id);
  if (seq >= item.next_order_seq)
    return fmt::format("item {}: order {} has seq={} but next_order_seq={}", id,
                       o.order_id, seq, item.next_order_seq);
  if (o.state == order_state::reserved)
    sums.reserved += o.quantity;
  else if (o.state == order_state::confirmed)
    sums.sold += o.quantity;
  return {};
}

/// Checks an item's snapshot against the invariant and its order rows.
std::string check_item(const recovered_item& item) {
  const auto& r = item.record;
  const auto& c = r.counters;
  auto in_range = [](int64_t x) {
    return x >= 0 && x <= limits::item_total_max;
  };
  if (!in_range(r.spec.total) || !in_range(c.available) || !in_range(c.reserved)
      || !in_range(c.sold) || c.available + c.reserved + c.sold != r.spec.total)
    return fmt::format("item {}: snapshot available={} reserved={} sold={} "
                       "does not add up to total={}",
                       r.spec.item_id, c.available, c.reserved, c.sold,
                       r.spec.total);
  stock_counters sums;
  for (const auto& o : item.orders)
    if (auto error = check_order(r, o, sums); !error.empty())
      return error;
  if (sums.reserved != c.reserved || sums.sold != c.sold)
    return fmt::format("item {}: snapshot available={} reserved={} sold={} "
                       "but orders say reserved={} sold={}",
                       r.spec.item_id, c.available, c.reserved, c.sold,
                       sums.reserved, sums.sold);
  return {};
}

/// Loads and checks every item with its orders into `out`.
std::string load_items(sqlite::database& db, recovery& out) {
  auto items = db.prepare(select_items_sql);
  auto orders = db.prepare(select_orders_sql);
  if (!items.valid() || !orders.valid())
    return fmt::format("cannot prepare the recovery queries: {}", db.errmsg());
  std::string error;
  for (;;) {
    auto step = items.step();
    if (step == sqlite::statement::step_result::done)
      return {};
    if (step == sqlite::statement::step_result::error)
      return fmt::format("cannot read the items: {}", db.errmsg());
    auto& item = out.items.emplace_back();
    if (!read_item(items, item.record, error))
      return error;
    if (error = load_orders(db, orders, item); !error.empty())
      return error;
    if (error = check_item(item); !error.empty())
      return error;
    out.orders += static_cast<int64_t>(item.orders.size());
  }
}

/// Every order row must belong to an item row (they are written together).
std::string check_orphans(sqlite::database& db, int64_t orders_loaded) {
  std::string count;
  if (!db.query_text("SELECT count(*) FROM orders", count))
    return fmt::format("cannot count the orders: {}", db.errmsg());
  if (count != std::to_string(orders_loaded))
    return fmt::format("the file holds {} orders but its items own {}", count,
                       orders_loaded);
  return {};
}

/// SQLite's own check of the file's structure (pages, indexes): a damaged
/// index would otherwise show only when a purchase touches it.
std::string quick_check(sqlite::database& db, const std::string& path) {
  std::string verdict;
  if (!db.query_text("PRAGMA quick_check", verdict))
    return fmt::format("{} cannot be checked: {}; restore it from a backup",
                       path, db.errmsg());
  if (verdict != "ok")
    return fmt::format("{} is damaged (SQLite's quick_check: {}); restore it "
                       "from a backup",
                       path, verdict);
  return {};
}

} // namespace

store_actor::behavior_type store_impl(store_actor::pointer self,
                                      store_config cfg) {
  auto st = std::make_shared<store_state>();
  st->cfg = std::move(cfg);
  if (auto error = open_store(*st); !error.empty()) {
    spdlog::error("store_open_failed path={} error={}", log_text(st->cfg.path),
                  log_text(error));
    if (st->cfg.health)
      st->cfg.health->failing.fetch_add(1);
    self->quit(make_error(errc::store_unavailable));
    return store_actor::behavior_type::make_empty_behavior();
  }
  spdlog::info("store_opened path={} synchronous={}", st->cfg.path,
               st->cfg.synchronous);
  return {
    [self, st](commit_atom, item_batch& batch) {
      return on_commit(self, *st, batch);
    },
    [self, st](caf::flush_atom) { on_flush(self, *st); },
    [st](stats_atom) { return st->stats; },
  };
}

const char* to_string(store_fault x) {
  switch (x) {
    case store_fault::none: return "none";
    case store_fault::file_unlinked: return "file_unlinked";
    case store_fault::file_replaced: return "file_replaced";
    case store_fault::order_conflict: return "order_conflict";
    case store_fault::stuck: return "stuck";
  }
  return "?";
}

recovery recover(const std::string& path) {
  recovery out;
  sqlite::database db;
  // Not exclusive: recovery closes the file before the store opens it, and
  // the node's data-dir lock keeps other processes out.
  out.error = open_store_file(db, path, "FULL", false);
  if (out.ok())
    out.error = quick_check(db, path);
  if (out.ok()) {
    // One read transaction: every query sees the same committed state.
    sqlite::transaction tx{db, sqlite::transaction::kind::deferred};
    if (!tx.begun())
      out.error = fmt::format("cannot begin reading {}: {}", path, db.errmsg());
    if (out.ok())
      out.error = load_items(db, out);
    if (out.ok())
      out.error = check_orphans(db, out.orders);
  }
  if (!out.ok()) {
    spdlog::error("store_recovery_failed path={} error={}", log_text(path),
                  log_text(out.error));
    return out;
  }
  spdlog::info("store_recovered path={} items={} orders={}", log_text(path),
               out.items.size(), out.orders);
  return out;
}

bool valid_synchronous(const std::string& mode) {
  return mode == "OFF" || mode == "NORMAL" || mode == "FULL" || mode == "EXTRA";
}

} // namespace seckill
