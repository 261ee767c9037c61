// The store actor and recovery: item batches become rows of one SQLite file
// (WAL) through group commit, and `recover` reads them back and checks them.
// The order life cycle the `orders` rows follow is drawn in store.hpp.
//
// File layout (schema_version 1):
//   meta(key, value)          'schema_version' -> 1
//   items(item_id PK, ...)    the spec, the counters, admin, next_order_seq
//   orders(order_id PK, ...)  one row per order, updated in place;
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
// `sqlite::transaction` guard rolls back on every path; if even that fails the
// actor quits rather than write into a half-open transaction).
#include "persistence/store.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <deque>
#include <iterator>
#include <memory>
#include <utility>

#include <caf/actor_cast.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "messages/assert.hpp"
#include "messages/errors.hpp"
#include "messages/limits.hpp"
#include "persistence/sqlite_db.hpp"

namespace seckill {

namespace {

constexpr int64_t schema_version = 1;

/// How long a connection waits for another connection's write lock (recovery
/// and the store may open the same file) before its statement fails.
constexpr int busy_timeout_ms = 5'000;

/// Commits waiting for their group. Each item has at most one batch in
/// flight, so a node's store sees at most items_per_node_max at once; the
/// slack absorbs a burst. Beyond it a commit is answered store_unavailable.

// The highest value of each enum stored as an integer: anything above is a
// value this build does not know, and recovery refuses it.
constexpr int64_t deduction_mode_max =
    static_cast<int64_t>(deduction_mode::pay);
constexpr int64_t admin_state_max = static_cast<int64_t>(admin_state::ended);
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
  next_order_seq INTEGER NOT NULL
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
                   reserved, sold, admin, next_order_seq)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
ON CONFLICT (item_id) DO UPDATE SET
  name = excluded.name, total = excluded.total,
  per_user_limit = excluded.per_user_limit,
  starts_at_ms = excluded.starts_at_ms, ends_at_ms = excluded.ends_at_ms,
  mode = excluded.mode, reserve_ttl_ms = excluded.reserve_ttl_ms,
  price_cents = excluded.price_cents, available = excluded.available,
  reserved = excluded.reserved, sold = excluded.sold, admin = excluded.admin,
  next_order_seq = excluded.next_order_seq
)sql";

// Only the mutable columns of an order change after it was placed.
constexpr const char* upsert_order_sql = R"sql(
INSERT INTO orders (order_id, item_id, user_id, request_id, quantity, state,
                    created_ms, expires_ms, updated_ms)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
ON CONFLICT (order_id) DO UPDATE SET
  state = excluded.state, expires_ms = excluded.expires_ms,
  updated_ms = excluded.updated_ms
)sql";

constexpr const char* select_items_sql = R"sql(
SELECT item_id, name, total, per_user_limit, starts_at_ms, ends_at_ms, mode,
       reserve_ttl_ms, price_cents, available, reserved, sold, admin,
       next_order_seq
FROM items ORDER BY rowid
)sql";

// An updated order keeps its rowid (upsert), so rowid is placement order.
constexpr const char* select_orders_sql = R"sql(
SELECT order_id, item_id, user_id, request_id, quantity, state, created_ms,
       expires_ms, updated_ms
FROM orders WHERE item_id = ?1 ORDER BY rowid
)sql";

// -- opening the file ---------------------------------------------------------

/// Creates the tables if missing and checks the file's schema_version.
/// Returns an empty string on success, else what failed.
std::string apply_schema(sqlite::database& db, const std::string& path) {
  sqlite::transaction tx{db, sqlite::transaction::kind::immediate};
  if (!tx.begun() || !db.exec(schema_sql))
    return fmt::format("cannot create the schema in {}: {}", path, db.errmsg());
  auto insert = db.prepare("INSERT OR IGNORE INTO meta (key, value) "
                           "VALUES ('schema_version', ?1)");
  if (!insert.valid())
    return fmt::format("cannot write meta in {}: {}", path, db.errmsg());
  insert.bind(1, schema_version);
  std::string version;
  if (!insert.run() ||
      !db.query_text("SELECT value FROM meta WHERE key = 'schema_version'",
                     version))
    return fmt::format("cannot read schema_version in {}: {}", path,
                       db.errmsg());
  if (version != std::to_string(schema_version))
    return fmt::format("{} has schema_version {}, this build reads {}", path,
                       version, schema_version);
  if (!tx.commit())
    return fmt::format("cannot commit the schema in {}: {}", path, db.errmsg());
  return {};
}

/// Opens `path` in WAL mode with the given synchronous level and the schema.
/// Returns an empty string on success, else what failed.
std::string open_store_file(sqlite::database& db, const std::string& path,
                            const std::string& synchronous) {
  if (!valid_synchronous(synchronous))
    return fmt::format("invalid synchronous={} (OFF, NORMAL, FULL or EXTRA)",
                       synchronous);
  if (!db.open(path))
    return fmt::format("cannot open {}: {}", path, db.errmsg());
  db.busy_timeout_ms(busy_timeout_ms);
  std::string mode;
  if (!db.query_text("PRAGMA journal_mode=WAL", mode) || mode != "wal")
    return fmt::format("cannot use WAL for {}: {}", path,
                       mode.empty() ? db.errmsg() : "journal_mode=" + mode);
  // Safe to splice: `synchronous` is one of the four names checked above.
  auto pragma = "PRAGMA synchronous=" + synchronous;
  if (!db.exec(pragma.c_str()))
    return fmt::format("cannot set synchronous={} for {}: {}", synchronous,
                       path, db.errmsg());
  return apply_schema(db, path);
}

// -- the store actor ----------------------------------------------------------

struct pending_commit {
  item_batch batch;
  caf::typed_response_promise<int64_t> promise;
};

struct store_state {
  store_config cfg;
  sqlite::database db; // declared before the statements that use it
  sqlite::statement upsert_item;
  sqlite::statement upsert_order;
  std::deque<pending_commit> pending; // at most limits::store_pending_batches_max
  bool flush_scheduled = false;
  // transactions and batches count every attempt, failed ones included;
  // rows_written counts committed rows only.
  store_stats stats;
};

enum class group_outcome { committed, rolled_back, stuck };

/// The batch's promises to the file, checked where they are relied on.
void check_batch(const item_batch& batch) {
  const auto& spec = batch.item.spec;
  const auto& c = batch.item.counters;
  SECKILL_ASSERT(c.available >= 0 && c.reserved >= 0 && c.sold >= 0,
                 "store: snapshot counters are never negative");
  SECKILL_ASSERT(c.available + c.reserved + c.sold == spec.total,
                 "store: available + reserved + sold == total");
  for (const auto& o : batch.orders) {
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
  return stmt.run();
}

bool write_order(sqlite::statement& stmt, const order& o) {
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
  return stmt.run();
}

bool write_batch(store_state& st, const item_batch& batch) {
  check_batch(batch);
  if (!write_item(st.upsert_item, batch.item))
    return false;
  return std::all_of(
      batch.orders.begin(), batch.orders.end(),
      [&](const order& o) { return write_order(st.upsert_order, o); });
}

int64_t rows_of(const item_batch& batch) {
  return 1 + static_cast<int64_t>(batch.orders.size());
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

/// Writes `group` as one transaction and answers every promise in it.
group_outcome write_group(store_state& st, std::vector<pending_commit>& group) {
  auto started = std::chrono::steady_clock::now();
  std::string failure; // empty while everything succeeds
  int failure_rc = 0;
  bool left_open = false;
  {
    sqlite::transaction tx{st.db, sqlite::transaction::kind::immediate};
    bool ok = tx.begun();
    for (auto i = group.begin(); ok && i != group.end(); ++i)
      ok = write_batch(st, i->batch);
    if (!ok) {
      failure = st.db.errmsg();
      failure_rc = st.db.errcode();
    } else if (st.cfg.fail_transaction && st.cfg.fail_transaction()) {
      failure = "injected fault";
    } else if (!tx.commit()) {
      failure = st.db.errmsg();
      failure_rc = st.db.errcode();
    }
    if (!failure.empty())
      left_open = !tx.rollback();
  }
  auto elapsed_us = std::chrono::duration_cast<std::chrono::microseconds>(
                        std::chrono::steady_clock::now() - started)
                        .count();
  int64_t rows = 0;
  for (const auto& x : group)
    rows += rows_of(x.batch);
  update_stats(st.stats, group.size(), rows, elapsed_us, failure.empty());
  if (!failure.empty()) {
    spdlog::warn("store_commit_failed rc={} msg=\"{}\" batches={}", failure_rc,
                 failure, group.size());
    for (auto& x : group)
      x.promise.deliver(make_error(errc::store_unavailable));
    return left_open ? group_outcome::stuck : group_outcome::rolled_back;
  }
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
  if (write_group(st, group) == group_outcome::stuck) {
    spdlog::error("store_transaction_stuck path={} msg=\"{}\"", st.cfg.path,
                  st.db.errmsg());
    for (auto& x : st.pending)
      x.promise.deliver(make_error(errc::store_unavailable));
    st.pending.clear();
    self->quit(make_error(errc::store_unavailable));
    return;
  }
  // Batches beyond the group's maximum go to the following transaction.
  if (!st.pending.empty())
    schedule_flush(self, st);
}

/// Opens the file and prepares the statements; returns what failed, if any.
std::string open_store(store_state& st) {
  auto err = open_store_file(st.db, st.cfg.path, st.cfg.synchronous);
  if (!err.empty())
    return err;
  st.upsert_item = st.db.prepare(upsert_item_sql);
  st.upsert_order = st.db.prepare(upsert_order_sql);
  if (!st.upsert_item.valid() || !st.upsert_order.valid())
    return fmt::format("cannot prepare statements for {}: {}", st.cfg.path,
                       st.db.errmsg());
  return {};
}

// -- recovery -----------------------------------------------------------------

template <class Enum> bool to_enum(int64_t raw, int64_t max, Enum& out) {
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
    case sqlite::statement::step_result::done:
      select.reset();
      return {};
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
  if (dot == std::string::npos || order_id.compare(0, dot, item_id) != 0 ||
      dot != item_id.size())
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
  if (!in_range(r.spec.total) || !in_range(c.available) ||
      !in_range(c.reserved) || !in_range(c.sold) ||
      c.available + c.reserved + c.sold != r.spec.total)
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

} // namespace

store_actor::behavior_type store_impl(store_actor::pointer self,
                                      store_config cfg) {
  auto st = std::make_shared<store_state>();
  st->cfg = std::move(cfg);
  if (auto error = open_store(*st); !error.empty()) {
    spdlog::error("store_open_failed path={} error=\"{}\"", st->cfg.path,
                  error);
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

recovery recover(const std::string& path) {
  recovery out;
  sqlite::database db;
  out.error = open_store_file(db, path, "FULL");
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
    spdlog::error("store_recovery_failed path={} error=\"{}\"", path,
                  out.error);
    return out;
  }
  spdlog::info("store_recovered path={} items={} orders={}", path,
               out.items.size(), out.orders);
  return out;
}

bool valid_synchronous(const std::string& mode) {
  return mode == "OFF" || mode == "NORMAL" || mode == "FULL" || mode == "EXTRA";
}

} // namespace seckill
