// Tests of the store (persistence/store.hpp): what a commit writes comes back
// from recover() field by field; an order updated in place recovers once, in
// its last state; an injected failed transaction answers store_unavailable
// and leaves nothing in the file; commits really share transactions, at most
// store_group_batches_max batches each; recover() refuses a file whose
// snapshot disagrees with its orders; bad settings and paths are errors.
//
// The store runs for real: a detached actor (as a node spawns it) on a SQLite
// file in a fresh directory under /tmp, removed afterwards. Tests never touch
// SQLite directly (only persistence/ may): tampered files are made by
// committing snapshots that pass the store's invariant but not recovery's
// cross-check.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <system_error>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/exit_reason.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "messages/errors.hpp"
#include "messages/limits.hpp"
#include "messages/type_ids.hpp"
#include "persistence/store.hpp"

using namespace seckill;

namespace {

/// Far above any commit's latency: a store that never answers fails the test
/// instead of hanging it.
constexpr auto reply_timeout = std::chrono::seconds(30);

/// How long the first transaction of a grouping test holds the store, so the
/// commits sent meanwhile are all queued when the next group forms.
constexpr auto first_transaction_delay = std::chrono::milliseconds(200);

class temp_dir {
public:
  temp_dir() {
    std::string pattern = "/tmp/seckill-store-test-XXXXXX";
    auto* made = mkdtemp(pattern.data());
    REQUIRE(made != nullptr);
    path_ = made;
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  ~temp_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

private:
  std::string path_;
};

caf::actor_system_config& registered(caf::actor_system_config& cfg) {
  register_types(cfg);
  return cfg;
}

struct reply {
  int64_t rows = -1;
  caf::error err;
};

/// A store on `path` that the test may read beside it (recover() while it
/// runs), without the 4 MiB reserve file unless a test asks for it.
store_config test_config(const std::string& path) {
  store_config config;
  config.path = path;
  config.exclusive = false;
  config.reserve_bytes = 0;
  return config;
}

/// A temp directory, an actor system with seckill's types, and the stores
/// spawned in it (stopped before the directory is removed).
struct fixture {
  temp_dir dir;
  std::string path = dir.file("store.db");
  caf::actor_system_config cfg;
  caf::actor_system sys{registered(cfg)};
  caf::scoped_actor self{sys};
  std::vector<store_actor> stores;

  ~fixture() {
    for (const auto& store : stores)
      stop(store);
  }

  store_actor spawn_store(store_config config) {
    auto store = sys.spawn<caf::detached>(store_impl, std::move(config));
    stores.push_back(store);
    return store;
  }

  store_actor spawn_store() { return spawn_store(test_config(path)); }

  void stop(const store_actor& store) {
    self->send_exit(store, caf::exit_reason::user_shutdown);
    self->wait_for(store);
  }

  reply commit(const store_actor& store, const item_batch& batch) {
    reply out;
    self->request(store, reply_timeout, commit_atom_v, batch)
      .receive([&](int64_t rows) { out.rows = rows; },
               [&](caf::error& err) { out.err = std::move(err); });
    return out;
  }

  using commit_handle = decltype(std::declval<caf::scoped_actor&>()->request(
    std::declval<const store_actor&>(), reply_timeout, commit_atom_v,
    std::declval<const item_batch&>()));

  /// Sends the commits without waiting for their replies.
  void send_commits(const store_actor& store,
                    const std::vector<item_batch>& batches,
                    std::vector<commit_handle>& handles) {
    for (const auto& batch : batches)
      handles.push_back(
        self->request(store, reply_timeout, commit_atom_v, batch));
  }

  std::vector<reply> replies(std::vector<commit_handle>& handles) {
    std::vector<reply> out(handles.size());
    for (std::size_t i = 0; i < handles.size(); ++i)
      handles[i].receive([&](int64_t rows) { out[i].rows = rows; },
                         [&](caf::error& err) { out[i].err = std::move(err); });
    return out;
  }

  /// Sends every batch before waiting for any reply.
  std::vector<reply> commit_all(const store_actor& store,
                                const std::vector<item_batch>& batches) {
    std::vector<commit_handle> handles;
    send_commits(store, batches, handles);
    return replies(handles);
  }

  store_stats stats(const store_actor& store) {
    store_stats out;
    self->request(store, reply_timeout, stats_atom_v)
      .receive(
        [&](const store_stats& x) { out = x; },
        [&](caf::error& err) { FAIL("stats failed: " << to_string(err)); });
    return out;
  }
};

item_record make_item(const std::string& id, int64_t total) {
  item_record x;
  x.spec.item_id = id;
  x.spec.name = "Item " + id;
  x.spec.total = total;
  x.spec.per_user_limit = 3;
  x.spec.starts_at_ms = 1'700'000'000'000;
  x.spec.ends_at_ms = 1'700'000'600'000;
  x.spec.mode = deduction_mode::reserve;
  x.spec.reserve_ttl_ms = 60'000;
  x.spec.price_cents = 1999;
  x.counters = stock_counters{total, 0, 0};
  x.admin = admin_state::paused;
  return x;
}

order make_order(const std::string& item_id, int64_t seq, order_state state,
                 int64_t quantity) {
  order x;
  auto n = std::to_string(seq);
  x.order_id = item_id + "." + n;
  x.item_id = item_id;
  x.user_id = "user-" + n;
  x.request_id = "req-" + n;
  x.quantity = quantity;
  x.state = state;
  x.created_ms = 1'700'000'001'000 + seq;
  bool open = state == order_state::reserved || state == order_state::pending;
  x.expires_ms = open ? x.created_ms + 60'000 : 0;
  x.updated_ms = x.created_ms + 7;
  return x;
}

/// A batch whose snapshot agrees with `orders` (all of the item's orders).
item_batch consistent_batch(item_record item, std::vector<order> orders) {
  stock_counters c;
  int64_t next_seq = 1;
  for (const auto& o : orders) {
    if (o.state == order_state::reserved)
      c.reserved += o.quantity;
    if (o.state == order_state::confirmed)
      c.sold += o.quantity;
    auto seq = static_cast<int64_t>(
      std::stoll(o.order_id.substr(o.order_id.rfind('.') + 1)));
    next_seq = std::max(next_seq, seq + 1);
  }
  c.available = item.spec.total - c.reserved - c.sold;
  item.counters = c;
  item.next_order_seq = next_seq;
  return item_batch{std::move(item), std::move(orders), {}};
}

/// The same snapshot, with `orders` as changes of orders already in the file.
item_batch changed_batch(item_record item, std::vector<order> orders) {
  auto batch = consistent_batch(std::move(item), std::move(orders));
  std::swap(batch.placed, batch.changed);
  return batch;
}

void require_same(const item_record& got, const item_record& want) {
  CHECK(got.spec.item_id == want.spec.item_id);
  CHECK(got.spec.name == want.spec.name);
  CHECK(got.spec.total == want.spec.total);
  CHECK(got.spec.per_user_limit == want.spec.per_user_limit);
  CHECK(got.spec.starts_at_ms == want.spec.starts_at_ms);
  CHECK(got.spec.ends_at_ms == want.spec.ends_at_ms);
  CHECK(got.spec.mode == want.spec.mode);
  CHECK(got.spec.reserve_ttl_ms == want.spec.reserve_ttl_ms);
  CHECK(got.spec.price_cents == want.spec.price_cents);
  CHECK(got.counters == want.counters);
  CHECK(got.admin == want.admin);
  CHECK(got.next_order_seq == want.next_order_seq);
}

/// Makes the first transaction slow (then never fails one), so that commits
/// sent right after the first are all waiting when the next group forms.
/// `entered`, if given, is set when the first transaction reaches the hook.
std::function<bool()>
delay_first_transaction(std::shared_ptr<std::atomic<bool>> entered = nullptr) {
  auto calls = std::make_shared<std::atomic<int>>(0);
  return [calls, entered] {
    if (calls->fetch_add(1) != 0)
      return false;
    if (entered)
      entered->store(true);
    std::this_thread::sleep_for(first_transaction_delay);
    return false;
  };
}

/// Waits (boundedly) until `flag` is set by another thread.
bool wait_until(const std::atomic<bool>& flag) {
  auto deadline = std::chrono::steady_clock::now() + reply_timeout;
  while (!flag.load()) {
    if (std::chrono::steady_clock::now() > deadline)
      return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

std::vector<item_batch> distinct_item_batches(std::size_t n) {
  std::vector<item_batch> out;
  for (std::size_t i = 0; i < n; ++i) {
    auto id = "sku-" + std::to_string(i);
    out.push_back(consistent_batch(
      make_item(id, 10), {make_order(id, 1, order_state::confirmed, 1)}));
  }
  return out;
}

} // namespace

TEST_CASE("store: a fresh file recovers empty", "[store]") {
  fixture f;
  auto found = recover(f.path);
  REQUIRE(found.ok());
  CHECK(found.items.empty());
  CHECK(found.orders == 0);
  CHECK(std::filesystem::exists(f.path));
}

TEST_CASE("store: committed items and orders recover exactly", "[store]") {
  fixture f;
  auto store = f.spawn_store();
  auto a = consistent_batch(make_item("sku-a", 10),
                            {make_order("sku-a", 1, order_state::confirmed, 2),
                             make_order("sku-a", 2, order_state::reserved, 1),
                             make_order("sku-a", 3, order_state::cancelled, 3),
                             make_order("sku-a", 4, order_state::pending, 1),
                             make_order("sku-a", 5, order_state::expired, 1)});
  auto b_item = make_item("sku-b", 5);
  b_item.spec.mode = deduction_mode::pay;
  b_item.admin = admin_state::ended;
  auto b = consistent_batch(b_item, {});
  REQUIRE(a.item.counters == (stock_counters{7, 1, 2}));
  auto ra = f.commit(store, a);
  auto rb = f.commit(store, b);
  REQUIRE_FALSE(ra.err);
  REQUIRE_FALSE(rb.err);
  CHECK(ra.rows == 6);
  CHECK(rb.rows == 1);
  auto found = recover(f.path);
  REQUIRE(found.ok());
  REQUIRE(found.items.size() == 2);
  CHECK(found.orders == 5);
  require_same(found.items[0].record, a.item);
  CHECK(found.items[0].orders == a.placed);
  require_same(found.items[1].record, b.item);
  CHECK(found.items[1].orders.empty());
}

TEST_CASE("store: an order updated by a later commit recovers once, last "
          "state",
          "[store]") {
  fixture f;
  auto reserved = make_order("sku-r", 1, order_state::reserved, 2);
  auto first = consistent_batch(make_item("sku-r", 10), {reserved});
  REQUIRE_FALSE(f.commit(f.spawn_store(), first).err);
  // The confirmation comes through a second store on the same file: the
  // schema and the rows must survive reopening.
  f.stop(f.stores.back());
  auto confirmed = reserved;
  confirmed.state = order_state::confirmed;
  confirmed.expires_ms = 0;
  confirmed.updated_ms = reserved.updated_ms + 5'000;
  auto second = changed_batch(make_item("sku-r", 10), {confirmed});
  REQUIRE(second.item.counters == (stock_counters{8, 0, 2}));
  auto r = f.commit(f.spawn_store(), second);
  REQUIRE_FALSE(r.err);
  CHECK(r.rows == 2);
  auto found = recover(f.path);
  REQUIRE(found.ok());
  REQUIRE(found.items.size() == 1);
  require_same(found.items[0].record, second.item);
  REQUIRE(found.items[0].orders.size() == 1);
  CHECK(found.items[0].orders[0] == confirmed);
  CHECK(found.items[0].orders[0].created_ms == reserved.created_ms);
}

TEST_CASE("store: a failed transaction answers store_unavailable and writes "
          "nothing",
          "[store]") {
  fixture f;
  auto fail = std::make_shared<std::atomic<bool>>(true);
  auto config = test_config(f.path);
  config.fail_transaction = [fail] { return fail->load(); };
  auto store = f.spawn_store(config);
  auto lost = f.commit_all(
    store,
    {consistent_batch(make_item("sku-lost-1", 10),
                      {make_order("sku-lost-1", 1, order_state::confirmed, 1)}),
     consistent_batch(make_item("sku-lost-2", 10), {})});
  for (const auto& r : lost) {
    CHECK(to_errc(r.err) == errc::store_unavailable);
    CHECK(r.rows == -1);
  }
  fail->store(false);
  auto kept =
    consistent_batch(make_item("sku-kept", 10),
                     {make_order("sku-kept", 1, order_state::confirmed, 1)});
  auto r = f.commit(store, kept);
  REQUIRE_FALSE(r.err);
  CHECK(r.rows == 2);
  auto st = f.stats(store);
  CHECK(st.failed_transactions >= 1);
  CHECK(st.failed_transactions == st.transactions - 1);
  CHECK(st.rows_written == 2);
  auto found = recover(f.path);
  REQUIRE(found.ok());
  REQUIRE(found.items.size() == 1);
  CHECK(found.items[0].record.spec.item_id == "sku-kept");
  CHECK(found.orders == 1);
}

TEST_CASE("store: a statement failing in a group fails the whole group",
          "[store]") {
  fixture f;
  auto config = test_config(f.path);
  auto entered = std::make_shared<std::atomic<bool>>(false);
  config.fail_transaction = delay_first_transaction(entered);
  auto store = f.spawn_store(config);
  std::vector<fixture::commit_handle> handles;
  // The first commit's transaction is held; the next two arrive meanwhile
  // and form the second group together.
  f.send_commits(store, {consistent_batch(make_item("sku-first", 10), {})},
                 handles);
  REQUIRE(wait_until(*entered));
  auto good =
    consistent_batch(make_item("sku-good", 10),
                     {make_order("sku-good", 1, order_state::confirmed, 1)});
  // Two orders of one item with one request_id break UNIQUE(item_id,
  // request_id): the second INSERT fails inside the transaction.
  auto dup = make_order("sku-bad", 2, order_state::confirmed, 1);
  dup.request_id = "req-1";
  auto bad = consistent_batch(
    make_item("sku-bad", 10),
    {make_order("sku-bad", 1, order_state::confirmed, 1), dup});
  f.send_commits(store, {good, bad}, handles);
  auto r = f.replies(handles);
  CHECK_FALSE(r[0].err);
  CHECK(to_errc(r[1].err) == errc::store_unavailable);
  CHECK(to_errc(r[2].err) == errc::store_unavailable);
  auto st = f.stats(store);
  CHECK(st.transactions == 2);
  CHECK(st.failed_transactions == 1);
  // A new order the file already holds (by id or by request) means the file
  // and memory disagree: the store stops acknowledging, for good.
  CHECK(to_errc(f.commit(store, good).err) == errc::store_unavailable);
  auto found = recover(f.path);
  REQUIRE(found.ok());
  REQUIRE(found.items.size() == 1);
  CHECK(found.items[0].record.spec.item_id == "sku-first");
  CHECK(found.orders == 0);
}

TEST_CASE("store: a new order never overwrites one in the file, a conflict "
          "stops the store",
          "[store]") {
  fixture f;
  auto config = test_config(f.path);
  config.health = std::make_shared<store_health>();
  auto health = config.health;
  auto store = f.spawn_store(config);
  auto ua = make_order("one", 1, order_state::confirmed, 1);
  ua.user_id = "ua";
  REQUIRE_FALSE(
    f.commit(store, consistent_batch(make_item("one", 1), {ua})).err);
  // Another writer's order one.1 (user ub): once an upsert kept one row
  // and lost the other's acknowledgement.
  auto ub = ua;
  ub.user_id = "ub";
  ub.request_id = "req-ub";
  ub.created_ms += 1'000;
  auto r = f.commit(store, consistent_batch(make_item("one", 1), {ub}));
  CHECK(to_errc(r.err) == errc::store_unavailable);
  CHECK(retry_after_ms(r.err) > 0);
  CHECK(health->fault.load() == store_fault::order_conflict);
  // Refused from now on, also what would fit.
  auto other = consistent_batch(make_item("two", 1), {});
  CHECK(to_errc(f.commit(store, other).err) == errc::store_unavailable);
  auto found = recover(f.path);
  REQUIRE(found.ok());
  REQUIRE(found.items.size() == 1);
  REQUIRE(found.items[0].orders.size() == 1);
  CHECK(found.items[0].orders[0] == ua);
}

TEST_CASE("store: a changed order missing from the file is a conflict",
          "[store]") {
  fixture f;
  auto config = test_config(f.path);
  config.health = std::make_shared<store_health>();
  auto store = f.spawn_store(config);
  auto ghost = make_order("sku-g", 1, order_state::confirmed, 1);
  auto r = f.commit(store, changed_batch(make_item("sku-g", 10), {ghost}));
  CHECK(to_errc(r.err) == errc::store_unavailable);
  CHECK(config.health->fault.load() == store_fault::order_conflict);
}

TEST_CASE("store: a file unlinked under the store stops it acknowledging, "
          "and a restart refuses the empty file",
          "[store]") {
  fixture f;
  auto config = test_config(f.path);
  config.health = std::make_shared<store_health>();
  auto store = f.spawn_store(config);
  auto a =
    consistent_batch(make_item("sku-a", 10),
                     {make_order("sku-a", 1, order_state::confirmed, 1)});
  REQUIRE_FALSE(f.commit(store, a).err);
  std::filesystem::remove(f.path);
  auto r = f.commit(store, consistent_batch(make_item("sku-b", 10), {}));
  CHECK(to_errc(r.err) == errc::store_unavailable);
  CHECK(config.health->fault.load() == store_fault::file_unlinked);
  CHECK_FALSE(config.health->healthy());
  f.stop(store);
  auto found = recover(f.path);
  REQUIRE_FALSE(found.ok());
  CHECK(found.error.find("is missing") != std::string::npos);
  CHECK(found.error.find(".id") != std::string::npos);
}

TEST_CASE("store: a file replaced by another store's file is refused",
          "[store]") {
  fixture f;
  auto other_path = f.dir.file("other.db");
  REQUIRE(recover(f.path).ok());
  REQUIRE(recover(other_path).ok());
  std::filesystem::remove(f.path);
  std::filesystem::copy_file(other_path, f.path);
  auto found = recover(f.path);
  REQUIRE_FALSE(found.ok());
  CHECK(found.error.find("another store's file") != std::string::npos);
  // Replaced under a running store: caught at the next commit.
  std::filesystem::remove(other_path + ".id");
  auto config = test_config(other_path);
  config.health = std::make_shared<store_health>();
  auto store = f.spawn_store(config);
  REQUIRE_FALSE(f.commit(store, consistent_batch(make_item("x", 1), {})).err);
  auto moved = f.dir.file("moved.db");
  std::filesystem::copy_file(other_path, moved);
  std::filesystem::rename(moved, other_path);
  CHECK(to_errc(f.commit(store, consistent_batch(make_item("y", 1), {})).err)
        == errc::store_unavailable);
  CHECK(config.health->fault.load() == store_fault::file_replaced);
}

TEST_CASE("store: a damaged index is refused at recovery", "[store]") {
  fixture f;
  {
    auto store = f.spawn_store();
    std::vector<order> orders;
    for (int i = 1; i <= 400; ++i)
      orders.push_back(make_order("sku-i", i, order_state::confirmed, 1));
    REQUIRE_FALSE(
      f.commit(store, consistent_batch(make_item("sku-i", 1000), orders)).err);
    f.stop(store);
    f.stores.clear();
  }
  REQUIRE(recover(f.path).ok()); // checkpoints the WAL into the file
  // Overwrite the last page (an index or table page) with garbage.
  auto size = std::filesystem::file_size(f.path);
  REQUIRE(size >= 8192);
  {
    std::fstream io{f.path, std::ios::in | std::ios::out | std::ios::binary};
    io.seekp(static_cast<std::streamoff>(size - 4096 + 8));
    std::string junk(2048, '\x5a');
    io.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  auto found = recover(f.path);
  REQUIRE_FALSE(found.ok());
  CHECK((found.error.find("damaged") != std::string::npos
         || found.error.find("malformed") != std::string::npos
         || found.error.find("cannot") != std::string::npos));
}

TEST_CASE("store: keeps a reserve beside the file for a full disk", "[store]") {
  fixture f;
  auto config = test_config(f.path);
  config.reserve_bytes = 1 << 20;
  config.health = std::make_shared<store_health>();
  auto store = f.spawn_store(config);
  REQUIRE_FALSE(f.commit(store, consistent_batch(make_item("a", 1), {})).err);
  CHECK(std::filesystem::file_size(f.path + "-reserve") == (1u << 20));
  CHECK(config.health->healthy());
}

TEST_CASE("store: concurrent commits share transactions", "[store]") {
  fixture f;
  auto config = test_config(f.path);
  config.fail_transaction = delay_first_transaction();
  auto store = f.spawn_store(config);
  auto replies = f.commit_all(store, distinct_item_batches(200));
  for (const auto& r : replies) {
    CHECK_FALSE(r.err);
    CHECK(r.rows == 2);
  }
  auto st = f.stats(store);
  CHECK(st.batches == 200);
  CHECK(st.transactions < st.batches);
  CHECK(st.largest_group > 1);
  CHECK(st.failed_transactions == 0);
  CHECK(st.rows_written == 400);
  auto found = recover(f.path);
  REQUIRE(found.ok());
  CHECK(found.items.size() == 200);
  CHECK(found.orders == 200);
}

TEST_CASE("store: a group holds at most store_group_batches_max batches",
          "[store]") {
  fixture f;
  auto config = test_config(f.path);
  config.fail_transaction = delay_first_transaction();
  auto store = f.spawn_store(config);
  // Whatever the first group takes, more than a full group waits behind it.
  auto n = 2 * limits::store_group_batches_max + 100;
  auto replies = f.commit_all(store, distinct_item_batches(n));
  std::size_t failed = 0;
  for (const auto& r : replies)
    failed += r.err ? 1 : 0;
  CHECK(failed == 0);
  auto st = f.stats(store);
  CHECK(st.batches == static_cast<int64_t>(n));
  CHECK(st.largest_group
        == static_cast<int64_t>(limits::store_group_batches_max));
  CHECK(st.transactions >= 3);
  auto found = recover(f.path);
  REQUIRE(found.ok());
  CHECK(found.items.size() == n);
}

TEST_CASE("store: recover refuses a snapshot that disagrees with its orders",
          "[store]") {
  fixture f;
  auto store = f.spawn_store();
  SECTION("counters against order sums") {
    // sold=2 holds the invariant (8 + 0 + 2 == 10) but the only order sold 1.
    auto batch =
      consistent_batch(make_item("sku-t", 10),
                       {make_order("sku-t", 1, order_state::confirmed, 1)});
    batch.item.counters = stock_counters{8, 0, 2};
    REQUIRE_FALSE(f.commit(store, batch).err);
    auto found = recover(f.path);
    REQUIRE_FALSE(found.ok());
    CHECK_THAT(found.error, Catch::Contains("sku-t"));
    CHECK_THAT(found.error, Catch::Contains("sold=2"));
    CHECK_THAT(found.error, Catch::Contains("orders say reserved=0 sold=1"));
  }
  SECTION("an order seq at or above next_order_seq") {
    auto batch =
      consistent_batch(make_item("sku-s", 10),
                       {make_order("sku-s", 5, order_state::cancelled, 1)});
    batch.item.next_order_seq = 5;
    REQUIRE_FALSE(f.commit(store, batch).err);
    auto found = recover(f.path);
    REQUIRE_FALSE(found.ok());
    CHECK_THAT(found.error, Catch::Contains("sku-s"));
    CHECK_THAT(found.error, Catch::Contains("next_order_seq=5"));
  }
  SECTION("an order id that does not name its item") {
    auto stray = make_order("sku-u", 1, order_state::cancelled, 1);
    stray.order_id = "sku-other.1";
    REQUIRE_FALSE(
      f.commit(store, consistent_batch(make_item("sku-u", 10), {stray})).err);
    auto found = recover(f.path);
    REQUIRE_FALSE(found.ok());
    CHECK_THAT(found.error, Catch::Contains("sku-u"));
    CHECK_THAT(found.error, Catch::Contains("sku-other.1"));
  }
}

TEST_CASE("store: synchronous must be one of SQLite's four levels", "[store]") {
  CHECK(valid_synchronous("OFF"));
  CHECK(valid_synchronous("NORMAL"));
  CHECK(valid_synchronous("FULL"));
  CHECK(valid_synchronous("EXTRA"));
  CHECK_FALSE(valid_synchronous(""));
  CHECK_FALSE(valid_synchronous("full"));
  CHECK_FALSE(valid_synchronous("2"));
  CHECK_FALSE(valid_synchronous("FULLY"));
  CHECK_FALSE(valid_synchronous("FULL; DROP TABLE items"));
  fixture f;
  auto config = test_config(f.path);
  config.synchronous = "SOMETIMES";
  auto r =
    f.commit(f.spawn_store(config), item_batch{make_item("sku-1", 1), {}, {}});
  CHECK(r.err);
  CHECK(r.rows == -1);
}

TEST_CASE("store: a path that cannot be created is an error", "[store]") {
  const std::string path = "/nonexistent/x/y.db";
  auto found = recover(path);
  CHECK_FALSE(found.ok());
  CHECK_THAT(found.error, Catch::Contains(path));
  fixture f;
  auto config = test_config(path);
  auto r =
    f.commit(f.spawn_store(config), item_batch{make_item("sku-1", 1), {}, {}});
  CHECK(r.err);
  CHECK(r.rows == -1);
}
