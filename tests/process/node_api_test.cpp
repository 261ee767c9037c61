// The HTTP API of the real seckill-node process, end to end: each test case
// starts its own node on free ports with a fresh data directory and talks
// to it over real sockets. A flash crowd sells exactly the stock; a retry
// gets its original order; reservations expire, are cancelled or paid; the
// sale window, pause and end are enforced; admin calls need the token; a
// node killed with SIGKILL in the middle of a crowd keeps every order it
// acknowledged and sells exactly the rest after a restart.
//
// Every loop is bounded; nothing asserts on wall-clock speed.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/node_harness.hpp"
#include "tests/support/sim_world.hpp"

using namespace seckill::test;

namespace {

constexpr int busy_retries_max = 200;

/// Limits lifted so that a test is never rate limited by accident; each
/// test adds what it needs.
std::vector<std::string> sale_args() {
  return {"--seckill.session-rate-per-s=1000",
          "--seckill.session-burst=1000",
          "--seckill.admission-rate-per-s=1000000",
          "--seckill.admission-burst=100000",
          "--seckill.waiting-room-max=100000",
          "--seckill.wait-ms-max=5000",
          "--seckill.unpaid-max=10",
          "--seckill.http-request-timeout-ms=5000",
          "--seckill.http-idle-timeout-ms=60000",
          "--seckill.http-connections-max=1000"};
}

item_def make_item(const std::string& id, int64_t total, int64_t limit,
                   const std::string& mode = "order",
                   int64_t reserve_ttl_ms = 60'000) {
  item_def d;
  d.item_id = id;
  d.total = total;
  d.per_user_limit = limit;
  d.mode = mode;
  d.reserve_ttl_ms = reserve_ttl_ms;
  return d;
}

void pause_ms(int64_t ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

/// A purchase retried with the same request_id while the answer is 429
/// busy (the waiting room was full), up to a bound: the final answer.
http_reply purchase_final(http_client& c, const std::string& item,
                          const std::string& user,
                          const std::string& request_id) {
  http_reply r;
  for (int i = 0; i < busy_retries_max; ++i) {
    r = purchase(c, item, user, 1, request_id);
    if (r.status != 429 || json_field(r.body, "code") != "busy")
      return r;
    pause_ms(std::clamp<int64_t>(json_int(r.body, "retry_after_ms"), 5, 100));
  }
  return r;
}

http_reply stock(http_client& c, const std::string& item) {
  return c.request("GET", "/api/v1/items/" + item + "/stock");
}

http_reply get_order(http_client& c, const std::string& order,
                     const std::string& user) {
  return c.request("GET", "/api/v1/orders/" + order + "?user_id=" + user);
}

/// available/reserved/sold of an item, "" on success else a description.
std::string stock_mismatch(http_client& c, const std::string& item,
                           int64_t available, int64_t reserved, int64_t sold) {
  auto r = stock(c, item);
  if (r.status == 200 && json_int(r.body, "available") == available
      && json_int(r.body, "reserved") == reserved
      && json_int(r.body, "sold") == sold)
    return {};
  return "expected available=" + std::to_string(available) + " reserved="
         + std::to_string(reserved) + " sold=" + std::to_string(sold) + "; got "
         + std::to_string(r.status) + " " + r.body;
}

std::string outcome_of(const http_reply& r) {
  return std::to_string(r.status) + " " + json_field(r.body, "code");
}

std::string summary(const std::map<std::string, int>& counts) {
  std::string out;
  for (const auto& [k, n] : counts)
    out += "[" + k + "]=" + std::to_string(n) + " ";
  return out;
}

struct bought {
  std::string order_id;
  std::string user;
};

} // namespace

TEST_CASE("node: a flash crowd of 1,000 users buys exactly 100 units",
          "[node]") {
  temp_dir tmp;
  node_process node((tmp.path / "data").string(), sale_args());
  http_client admin(node.http_port());
  REQUIRE(create_item(admin, make_item("sku-1", 100, 1)).status == 201);

  constexpr int users = 1'000;
  constexpr int threads = 32;
  std::vector<http_reply> answers(users);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      http_client c(node.http_port());
      for (int u = t; u < users; u += threads)
        answers[u] = purchase_final(c, "sku-1", "u" + std::to_string(u),
                                    "r" + std::to_string(u));
    });
  for (auto& th : pool)
    th.join();

  std::map<std::string, int> counts;
  std::set<std::string> order_ids;
  std::set<std::string> buyers;
  std::vector<bought> orders;
  for (int u = 0; u < users; ++u) {
    const auto& r = answers[u];
    counts[outcome_of(r)]++;
    if (r.status != 201)
      continue;
    auto user = "u" + std::to_string(u);
    CHECK(json_field(r.body, "user_id") == user);
    CHECK(json_field(r.body, "item_id") == "sku-1");
    CHECK(json_field(r.body, "state") == "confirmed");
    CHECK(json_int(r.body, "quantity") == 1);
    order_ids.insert(json_field(r.body, "order_id"));
    buyers.insert(json_field(r.body, "user_id"));
    orders.push_back({json_field(r.body, "order_id"), user});
  }
  INFO("outcomes: " << summary(counts));
  CHECK(counts["201 "] == 100);
  CHECK(counts["409 sold_out"] == users - 100);
  CHECK(order_ids.size() == 100);
  CHECK(buyers.size() == 100);
  CHECK(order_ids.count("") == 0);

  CHECK(stock_mismatch(admin, "sku-1", 0, 0, 100) == "");
  CHECK(json_field(stock(admin, "sku-1").body, "status") == "sold_out");
  for (const auto& o : orders) {
    auto r = get_order(admin, o.order_id, o.user);
    INFO(o.order_id << " " << o.user << ": " << r.status << " " << r.body);
    CHECK(r.status == 200);
    CHECK(json_field(r.body, "order_id") == o.order_id);
    CHECK(json_field(r.body, "user_id") == o.user);
  }
  CHECK(node.terminate() == 0);
}

TEST_CASE("node: a retried request_id returns the same order", "[node]") {
  temp_dir tmp;
  node_process node((tmp.path / "data").string(), sale_args());
  http_client c(node.http_port());
  REQUIRE(create_item(c, make_item("sku-r", 10, 5)).status == 201);

  auto first = purchase(c, "sku-r", "alice", 1, "req-1");
  INFO(first.body);
  REQUIRE(first.status == 201);
  auto order_id = json_field(first.body, "order_id");
  REQUIRE(!order_id.empty());
  CHECK(json_field(first.body, "request_id") == "req-1");

  for (int i = 0; i < 3; ++i) {
    auto again = purchase(c, "sku-r", "alice", 1, "req-1");
    INFO(again.body);
    CHECK(again.status == 200);
    CHECK(json_field(again.body, "order_id") == order_id);
  }
  CHECK(stock_mismatch(c, "sku-r", 9, 0, 1) == "");

  auto conflict = purchase(c, "sku-r", "alice", 2, "req-1");
  CHECK(problem_mismatch(conflict, 409, "request_conflict") == "");
  CHECK(stock_mismatch(c, "sku-r", 9, 0, 1) == "");

  // A new request_id is a new order.
  auto second = purchase(c, "sku-r", "alice", 1, "req-2");
  CHECK(second.status == 201);
  CHECK(json_field(second.body, "order_id") != order_id);
  CHECK(stock_mismatch(c, "sku-r", 8, 0, 2) == "");
}

TEST_CASE("node: reservations expire, are cancelled or paid", "[node]") {
  temp_dir tmp;
  node_process node((tmp.path / "data").string(), sale_args());
  http_client c(node.http_port());
  REQUIRE(create_item(c, make_item("sku-v", 5, 1, "reserve", 1'000)).status
          == 201);

  // 1. Reserved, then left to expire.
  auto r1 = purchase(c, "sku-v", "u1", 1, "r1");
  INFO(r1.body);
  REQUIRE(r1.status == 201);
  CHECK(json_field(r1.body, "state") == "reserved");
  CHECK(json_int(r1.body, "expires_ms") > json_int(r1.body, "created_ms"));
  auto o1 = json_field(r1.body, "order_id");
  CHECK(json_int(stock(c, "sku-v").body, "reserved") == 1);
  std::string s;
  for (int i = 0; i < 200; ++i) { // at most 10 s
    s = stock_mismatch(c, "sku-v", 5, 0, 0);
    if (s.empty())
      break;
    pause_ms(50);
  }
  CHECK(s == "");
  CHECK(problem_mismatch(order_action(c, o1, "pay", "u1"), 410, "expired")
        == "");
  CHECK(json_field(get_order(c, o1, "u1").body, "state") == "expired");
  CHECK(stock_mismatch(c, "sku-v", 5, 0, 0) == "");

  // 2. Reserved, then cancelled: the unit comes back.
  auto r2 = purchase(c, "sku-v", "u2", 1, "r2");
  REQUIRE(r2.status == 201);
  auto o2 = json_field(r2.body, "order_id");
  CHECK(stock_mismatch(c, "sku-v", 4, 1, 0) == "");
  auto cancelled = order_action(c, o2, "cancel", "u2");
  INFO(cancelled.body);
  CHECK(cancelled.status == 200);
  CHECK(json_field(cancelled.body, "state") == "cancelled");
  CHECK(stock_mismatch(c, "sku-v", 5, 0, 0) == "");
  // Cancelling twice answers the cancelled order again (item_book's
  // decide_cancel) and returns nothing twice; an expired order is not
  // cancellable.
  auto twice = order_action(c, o2, "cancel", "u2");
  CHECK(twice.status == 200);
  CHECK(json_field(twice.body, "state") == "cancelled");
  CHECK(stock_mismatch(c, "sku-v", 5, 0, 0) == "");
  CHECK(problem_mismatch(order_action(c, o1, "cancel", "u1"), 409,
                         "not_cancellable")
        == "");

  // 3. Reserved, then paid in time.
  auto r3 = purchase(c, "sku-v", "u3", 1, "r3");
  REQUIRE(r3.status == 201);
  auto o3 = json_field(r3.body, "order_id");
  auto paid = order_action(c, o3, "pay", "u3");
  INFO(paid.body);
  CHECK(paid.status == 200);
  CHECK(json_field(paid.body, "state") == "confirmed");
  CHECK(stock_mismatch(c, "sku-v", 4, 0, 1) == "");
  // A paid order is neither cancelled nor expired later.
  CHECK(problem_mismatch(order_action(c, o3, "cancel", "u3"), 409,
                         "not_cancellable")
        == "");
  pause_ms(1'500);
  CHECK(json_field(get_order(c, o3, "u3").body, "state") == "confirmed");
  CHECK(stock_mismatch(c, "sku-v", 4, 0, 1) == "");
}

TEST_CASE("node: pay mode takes stock at payment", "[node]") {
  temp_dir tmp;
  node_process node((tmp.path / "data").string(), sale_args());
  http_client c(node.http_port());
  REQUIRE(create_item(c, make_item("sku-p", 1, 1, "pay")).status == 201);

  auto a = purchase(c, "sku-p", "ua", 1, "ra");
  auto b = purchase(c, "sku-p", "ub", 1, "rb");
  INFO(a.body << " / " << b.body);
  REQUIRE(a.status == 201);
  REQUIRE(b.status == 201);
  CHECK(json_field(a.body, "state") == "pending");
  CHECK(json_field(b.body, "state") == "pending");
  CHECK(stock_mismatch(c, "sku-p", 1, 0, 0) == "");

  auto paid = order_action(c, json_field(a.body, "order_id"), "pay", "ua");
  INFO(paid.body);
  CHECK(paid.status == 200);
  CHECK(json_field(paid.body, "state") == "confirmed");
  CHECK(stock_mismatch(c, "sku-p", 0, 0, 1) == "");

  auto late = order_action(c, json_field(b.body, "order_id"), "pay", "ub");
  CHECK(problem_mismatch(late, 409, "sold_out") == "");
  CHECK(stock_mismatch(c, "sku-p", 0, 0, 1) == "");
}

TEST_CASE("node: the sale window, pause, resume, end and the admin token",
          "[node]") {
  temp_dir tmp;
  node_process node((tmp.path / "data").string(), sale_args());
  http_client c(node.http_port());
  auto now = epoch_ms();

  auto later = make_item("sku-later", 10, 1);
  later.starts_at_ms = now + 3'600'000;
  REQUIRE(create_item(c, later).status == 201);
  CHECK(problem_mismatch(purchase(c, "sku-later", "u1", 1, "r1"), 403,
                         "not_started")
        == "");
  CHECK(json_field(stock(c, "sku-later").body, "status") == "upcoming");

  // A sale whose end has passed. (The node refuses to create an item whose
  // end is already in the past, 400 invalid_item, so the window is made to
  // end shortly after creation.)
  auto past = make_item("sku-past", 10, 1);
  past.ends_at_ms = now + 1'000;
  REQUIRE(create_item(c, past).status == 201);
  for (int i = 0; i < 100 && epoch_ms() <= past.ends_at_ms + 50; ++i)
    pause_ms(50);
  CHECK(problem_mismatch(purchase(c, "sku-past", "u1", 1, "r2"), 403, "ended")
        == "");
  CHECK(json_field(stock(c, "sku-past").body, "status") == "ended");

  REQUIRE(create_item(c, make_item("sku-w", 10, 5)).status == 201);
  auto admin = [&](const std::string& action) {
    return c.request("POST", "/api/v1/items/sku-w/" + action, "",
                     {admin_header()});
  };
  // Admin calls without the token, and with a wrong one.
  CHECK(problem_mismatch(c.request("POST", "/api/v1/items/sku-w/pause"), 401,
                         "unauthorized")
        == "");
  CHECK(problem_mismatch(c.request("POST", "/api/v1/items/sku-w/pause", "",
                                   {"Authorization: Bearer wrong-token-xyz-1"}),
                         403, "forbidden")
        == "");
  auto other = make_item("sku-x", 10, 1);
  CHECK(problem_mismatch(c.request("POST", "/api/v1/items", other.json()), 401,
                         "unauthorized")
        == "");
  CHECK(problem_mismatch(c.request("POST", "/api/v1/items", other.json(),
                                   {"Authorization: Bearer wrong-token-xyz-1"}),
                         403, "forbidden")
        == "");
  CHECK(c.request("GET", "/api/v1/items/sku-x").status == 404);
  CHECK(problem_mismatch(create_item(c, make_item("sku-w", 10, 5)), 409,
                         "item_exists")
        == "");

  auto paused = admin("pause");
  INFO(paused.body);
  CHECK(paused.status == 200);
  CHECK(json_field(paused.body, "item_id") == "sku-w");
  CHECK(problem_mismatch(purchase(c, "sku-w", "u1", 1, "w1"), 403, "paused")
        == "");
  CHECK(json_field(stock(c, "sku-w").body, "status") == "paused");

  CHECK(admin("resume").status == 200);
  CHECK(purchase(c, "sku-w", "u1", 1, "w2").status == 201);
  CHECK(json_field(stock(c, "sku-w").body, "status") == "on_sale");

  CHECK(admin("end").status == 200);
  CHECK(problem_mismatch(purchase(c, "sku-w", "u1", 1, "w3"), 403, "ended")
        == "");
  CHECK(json_field(stock(c, "sku-w").body, "status") == "ended");
  CHECK(stock_mismatch(c, "sku-w", 9, 0, 1) == "");

  auto list = c.request("GET", "/api/v1/items");
  CHECK(list.status == 200);
  for (const char* id : {"sku-later", "sku-past", "sku-w"})
    CHECK(list.body.find(std::string("\"") + id + "\"") != std::string::npos);
}

TEST_CASE("node: item details carry an ETag and answer 304", "[node]") {
  temp_dir tmp;
  node_process node((tmp.path / "data").string(), sale_args());
  http_client c(node.http_port());
  REQUIRE(create_item(c, make_item("sku-e", 7, 2)).status == 201);

  auto r = c.request("GET", "/api/v1/items/sku-e");
  INFO(r.body);
  REQUIRE(r.status == 200);
  CHECK(json_field(r.body, "item_id") == "sku-e");
  CHECK(json_int(r.body, "total") == 7);
  CHECK(json_int(r.body, "per_user_limit") == 2);
  CHECK(json_field(r.body, "mode") == "order");
  auto etag = r.header("etag");
  CHECK(!etag.empty());
  CHECK(!r.header("cache-control").empty());

  auto cached =
    c.request("GET", "/api/v1/items/sku-e", "", {"If-None-Match: " + etag});
  CHECK(cached.status == 304);
  CHECK(cached.body.empty());
  // The connection stays usable after a 304 without a body.
  CHECK(c.request("GET", "/api/v1/items/sku-e").status == 200);
  CHECK(c.request("GET", "/api/v1/items/sku-e", "",
                  {"If-None-Match: \"not-the-etag\""})
          .status
        == 200);

  CHECK(problem_mismatch(c.request("GET", "/api/v1/items/nope"), 404,
                         "unknown_item")
        == "");
  CHECK(problem_mismatch(c.request("GET", "/api/v1/items/nope/stock"), 404,
                         "unknown_item")
        == "");
  CHECK(
    problem_mismatch(purchase(c, "nope", "u1", 1, "r1"), 404, "unknown_item")
    == "");
}

TEST_CASE("node: SIGKILL in a flash crowd loses no acknowledged order",
          "[node]") {
  constexpr int64_t total = 5'000;
  constexpr int threads = 16;
  constexpr int acked_before_kill = 300;
  temp_dir tmp;
  auto data = (tmp.path / "data").string();
  std::vector<bought> acked;
  {
    node_process node(data, sale_args());
    http_client admin(node.http_port());
    REQUIRE(create_item(admin, make_item("sku-k", total, 1)).status == 201);

    std::atomic<int> ok{0};
    std::atomic<bool> stop{false};
    std::mutex mtx;
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        http_client c(node.http_port());
        for (int u = t; u < total && !stop; u += threads) {
          auto user = "k" + std::to_string(u);
          auto r = purchase_final(c, "sku-k", user, "kr" + std::to_string(u));
          if (r.status == 0)
            break; // the node is gone
          if (r.status == 201) {
            std::lock_guard<std::mutex> guard(mtx);
            acked.push_back({json_field(r.body, "order_id"), user});
            ++ok;
          }
        }
      });
    for (int i = 0; i < 2'000 && ok < acked_before_kill; ++i) // at most 20 s
      pause_ms(10);
    node.kill9();
    stop = true;
    for (auto& th : pool)
      th.join();
  }
  INFO("orders acknowledged before SIGKILL: " << acked.size());
  REQUIRE(acked.size() >= static_cast<std::size_t>(acked_before_kill));
  REQUIRE(acked.size() < static_cast<std::size_t>(total));

  node_process node(data, sale_args());
  http_client c(node.http_port());
  for (const auto& o : acked) {
    auto r = get_order(c, o.order_id, o.user);
    INFO(o.order_id << " " << o.user << ": " << r.status << " " << r.body);
    REQUIRE(r.status == 200);
    CHECK(json_field(r.body, "item_id") == "sku-k");
    CHECK(json_field(r.body, "user_id") == o.user);
    CHECK(json_field(r.body, "state") == "confirmed");
  }
  auto s = stock(c, "sku-k");
  INFO(s.body);
  REQUIRE(s.status == 200);
  auto sold_before = json_int(s.body, "sold");
  CHECK(json_int(s.body, "available") + json_int(s.body, "reserved")
          + sold_before
        == total);
  CHECK(sold_before >= static_cast<int64_t>(acked.size()));

  // The sale goes on after the restart, to exactly the stock.
  std::atomic<int64_t> sold_after{0};
  std::vector<std::thread> pool;
  std::vector<std::map<std::string, int>> counts(threads);
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      http_client hc(node.http_port());
      for (int u = t; u < 2 * total; u += threads) {
        auto r = purchase_final(hc, "sku-k", "v" + std::to_string(u),
                                "vr" + std::to_string(u));
        counts[t][outcome_of(r)]++;
        if (r.status == 201)
          ++sold_after;
        else if (r.status == 409 || r.status == 0)
          break;
      }
    });
  for (auto& th : pool)
    th.join();
  std::map<std::string, int> all;
  for (const auto& m : counts)
    for (const auto& [k, n] : m)
      all[k] += n;
  INFO("after restart: " << summary(all));
  CHECK(all.count("409 sold_out") == 1);
  CHECK(sold_before + sold_after == total);
  CHECK(stock_mismatch(c, "sku-k", 0, 0, total) == "");
  CHECK(node.terminate() == 0);
}

TEST_CASE("node: SIGTERM exits 0 and a restart keeps the orders", "[node]") {
  temp_dir tmp;
  auto data = (tmp.path / "data").string();
  std::vector<bought> orders;
  {
    node_process node(data, sale_args());
    http_client c(node.http_port());
    REQUIRE(create_item(c, make_item("sku-t", 50, 1, "reserve")).status == 201);
    for (int u = 0; u < 10; ++u) {
      auto user = "t" + std::to_string(u);
      auto r = purchase(c, "sku-t", user, 1, "tr" + std::to_string(u));
      REQUIRE(r.status == 201);
      orders.push_back({json_field(r.body, "order_id"), user});
    }
    REQUIRE(order_action(c, orders[0].order_id, "pay", "t0").status == 200);
    REQUIRE(order_action(c, orders[1].order_id, "cancel", "t1").status == 200);
    auto code = node.terminate();
    auto log = node.log();
    INFO(log.substr(log.size() > 3'000 ? log.size() - 3'000 : 0));
    CHECK(code == 0);
  }
  node_process node(data, sale_args());
  http_client c(node.http_port());
  for (const auto& o : orders) {
    auto r = get_order(c, o.order_id, o.user);
    INFO(r.body);
    CHECK(r.status == 200);
    CHECK(json_field(r.body, "user_id") == o.user);
  }
  CHECK(json_field(get_order(c, orders[0].order_id, "t0").body, "state")
        == "confirmed");
  CHECK(json_field(get_order(c, orders[1].order_id, "t1").body, "state")
        == "cancelled");
  CHECK(json_field(get_order(c, orders[2].order_id, "t2").body, "state")
        == "reserved");
  CHECK(stock_mismatch(c, "sku-t", 41, 8, 1) == "");
  // A retry after the restart still finds its order.
  auto again = purchase(c, "sku-t", "t2", 1, "tr2");
  CHECK(again.status == 200);
  CHECK(json_field(again.body, "order_id") == orders[2].order_id);
  CHECK(node.terminate() == 0);
}

TEST_CASE("node: an order is visible only to its own user", "[node]") {
  temp_dir tmp;
  node_process node((tmp.path / "data").string(), sale_args());
  http_client c(node.http_port());
  REQUIRE(create_item(c, make_item("sku-o", 10, 1, "reserve")).status == 201);
  auto r = purchase(c, "sku-o", "owner", 1, "o1");
  REQUIRE(r.status == 201);
  auto id = json_field(r.body, "order_id");

  CHECK(problem_mismatch(get_order(c, id, "intruder"), 404, "unknown_order")
        == "");
  CHECK(problem_mismatch(order_action(c, id, "pay", "intruder"), 404,
                         "unknown_order")
        == "");
  CHECK(problem_mismatch(order_action(c, id, "cancel", "intruder"), 404,
                         "unknown_order")
        == "");
  // Without a buyer JWT nobody is anybody; with the owner's JWT a query
  // naming someone else is refused, not answered for either.
  auto anonymous = c.request("GET", "/api/v1/orders/" + id);
  CHECK(problem_mismatch(anonymous, 401, "unauthenticated") == "");
  CHECK(anonymous.header("www-authenticate").rfind("Bearer", 0) == 0);
  CHECK(problem_mismatch(c.request("GET",
                                   "/api/v1/orders/" + id + "?user_id=intruder",
                                   {}, {buyer_header("owner")}),
                         403, "user_mismatch")
        == "");
  // The JWT alone names the user: no query, no body.
  CHECK(
    c.request("GET", "/api/v1/orders/" + id, {}, {buyer_header("owner")}).status
    == 200);
  CHECK(problem_mismatch(c.request("POST", "/api/v1/orders/" + id + "/cancel",
                                   {}, {buyer_header("intruder")}),
                         404, "unknown_order")
        == "");
  CHECK(problem_mismatch(get_order(c, "no-such-order", "owner"), 404,
                         "unknown_order")
        == "");

  auto mine = get_order(c, id, "owner");
  CHECK(mine.status == 200);
  CHECK(json_field(mine.body, "state") == "reserved");
  CHECK(stock_mismatch(c, "sku-o", 9, 1, 0) == "");
}

TEST_CASE("node: /healthz and /metrics", "[node]") {
  temp_dir tmp;
  node_process node((tmp.path / "data").string(), sale_args());
  http_client c(node.http_port());
  CHECK(c.request("GET", "/healthz").status == 200);
  REQUIRE(create_item(c, make_item("sku-m", 1, 1)).status == 201);
  REQUIRE(purchase(c, "sku-m", "u1", 1, "m1").status == 201);
  CHECK(purchase(c, "sku-m", "u2", 1, "m2").status == 409);

  auto m = c.request("GET", "/metrics");
  INFO(m.body.substr(0, 3'000));
  CHECK(m.status == 200);
  CHECK(m.header("content-type").rfind("text/plain", 0) == 0);
  CHECK(m.body.find("seckill_purchases_total{") != std::string::npos);
  CHECK(m.body.find("seckill_purchases_total{outcome=\"ok\"} 1")
        != std::string::npos);
  CHECK(m.body.find("seckill_item_sold{item=\"sku-m\"} 1\n")
        != std::string::npos);
}

TEST_CASE("node: limits per user answer 409 and 429 with Retry-After",
          "[node]") {
  temp_dir tmp;
  auto args = sale_args();
  args.push_back("--seckill.unpaid-max=1");
  node_process node((tmp.path / "data").string(), args);
  http_client c(node.http_port());
  REQUIRE(create_item(c, make_item("sku-l", 10, 1)).status == 201);
  REQUIRE(create_item(c, make_item("sku-u", 10, 5, "reserve")).status == 201);

  REQUIRE(purchase(c, "sku-l", "lim", 1, "l1").status == 201);
  CHECK(problem_mismatch(purchase(c, "sku-l", "lim", 1, "l2"), 409,
                         "user_limit_exceeded")
        == "");
  CHECK(problem_mismatch(purchase(c, "sku-l", "other", 2, "l3"), 409,
                         "user_limit_exceeded")
        == "");
  CHECK(stock_mismatch(c, "sku-l", 9, 0, 1) == "");

  // One unpaid reservation allowed per user: the second waits for payment.
  auto first = purchase(c, "sku-u", "payer", 1, "p1");
  REQUIRE(first.status == 201);
  auto capped = purchase(c, "sku-u", "payer", 1, "p2");
  CHECK(problem_mismatch(capped, 429, "unpaid_limit") == "");
  CHECK(!capped.header("retry-after").empty());
  REQUIRE(
    order_action(c, json_field(first.body, "order_id"), "pay", "payer").status
    == 200);
  CHECK(purchase(c, "sku-u", "payer", 1, "p3").status == 201);
}

TEST_CASE("node: a user over the session rate gets 429 rate_limited",
          "[node]") {
  temp_dir tmp;
  auto args = sale_args();
  args.push_back("--seckill.session-rate-per-s=0.01");
  args.push_back("--seckill.session-burst=1");
  node_process node((tmp.path / "data").string(), args);
  http_client c(node.http_port());
  REQUIRE(create_item(c, make_item("sku-s", 10, 5)).status == 201);
  REQUIRE(purchase(c, "sku-s", "fast", 1, "f1").status == 201);
  auto limited = purchase(c, "sku-s", "fast", 1, "f2");
  CHECK(problem_mismatch(limited, 429, "rate_limited") == "");
  auto retry_after = limited.header("retry-after");
  CHECK(!retry_after.empty());
  CHECK(std::atoll(retry_after.c_str()) >= 1);
  CHECK(json_int(limited.body, "retry_after_ms") > 0);
  // Another user is not affected.
  CHECK(purchase(c, "sku-s", "slow", 1, "s1").status == 201);
  CHECK(stock_mismatch(c, "sku-s", 8, 0, 2) == "");
}

TEST_CASE("node: without a configured token the node writes one", "[node]") {
  temp_dir tmp;
  auto data = tmp.path / "data";
  auto args = sale_args();
  args.push_back("--seckill.admin-token="); // later arguments win
  node_process node(data.string(), args);
  std::ifstream in(data / "admin-token");
  std::string token;
  std::getline(in, token);
  REQUIRE(token.size() >= 16);
  http_client c(node.http_port());
  auto item = make_item("sku-g", 1, 1);
  CHECK(problem_mismatch(create_item(c, item), 403, "forbidden") == "");
  CHECK(c.request("POST", "/api/v1/items", item.json(),
                  {"Authorization: Bearer " + token})
          .status
        == 201);
}

TEST_CASE("node: a bad config value is refused with exit code 2", "[node]") {
  temp_dir tmp;
  std::string out;
  int code = run_process(SECKILL_NODE_BIN,
                         {"--seckill.data-dir=" + (tmp.path / "d").string(),
                          "--seckill.http-port=0", "--cluster.port=0",
                          "--seckill.session-burst=many"},
                         out, 10'000);
  INFO(out);
  CHECK(code == 2);
  CHECK(out.find("seckill.session-burst") != std::string::npos);
}

TEST_CASE("node: SIGTERM in a flash crowd keeps every acknowledged order",
          "[node]") {
  constexpr int64_t total = 3'000;
  constexpr int threads = 8;
  temp_dir tmp;
  auto data = (tmp.path / "data").string();
  std::vector<bought> acked;
  std::map<std::string, int> counts;
  {
    node_process node(data, sale_args());
    http_client admin(node.http_port());
    REQUIRE(create_item(admin, make_item("sku-q", total, 1)).status == 201);
    std::atomic<int> ok{0};
    std::mutex mtx;
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        http_client c(node.http_port());
        for (int u = t; u < total; u += threads) {
          auto user = "q" + std::to_string(u);
          auto r = purchase_final(c, "sku-q", user, "qr" + std::to_string(u));
          std::lock_guard<std::mutex> guard(mtx);
          counts[outcome_of(r)]++;
          if (r.status == 201) {
            acked.push_back({json_field(r.body, "order_id"), user});
            ++ok;
          }
          if (r.status == 0)
            break; // the node has closed
        }
      });
    for (int i = 0; i < 2'000 && ok < 200; ++i) // at most 20 s
      pause_ms(10);
    auto code = node.terminate();
    for (auto& th : pool)
      th.join();
    CHECK(code == 0);
  }
  INFO("answers during the crowd: " << summary(counts));
  // While draining, the node answers 201 or 503 overloaded, or closes.
  for (const auto& [outcome, n] : counts)
    CHECK(
      (outcome == "201 " || outcome == "503 overloaded" || outcome == "0 "));
  node_process node(data, sale_args());
  http_client c(node.http_port());
  for (const auto& o : acked) {
    auto r = get_order(c, o.order_id, o.user);
    INFO(o.order_id << " " << o.user << ": " << r.status << " " << r.body);
    REQUIRE(r.status == 200);
  }
  auto s = stock(c, "sku-q");
  CHECK(json_int(s.body, "sold") >= static_cast<int64_t>(acked.size()));
  CHECK(json_int(s.body, "available") + json_int(s.body, "sold") == total);
}
