// Plan B on the real seckill-node process: the front gate's rate limits
// (node, client address) answer 429 with Retry-After and let admin calls
// through; shedding at the in-flight bound answers 503 at once and loses
// nothing; the degrade switches change at run time through seckill-cli
// (pause, edge stock reads with bounded staleness, essential-only); and the
// purchase server time and the sold-out notice are measured where /metrics
// and the CLI show them.
//
// Every loop is bounded; nothing asserts on wall-clock speed (the staleness
// bound is checked by what a read returns, not by how fast).
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/node_harness.hpp"
#include "tests/support/sim_world.hpp"

using namespace seckill::test;

namespace {

/// Limits that keep the per-user and per-item meters out of the way, so
/// that what a test sees is the front gate's doing.
std::vector<std::string> open_args(std::vector<std::string> extra = {}) {
  std::vector<std::string> args{"--seckill.session-rate-per-s=100000",
                                "--seckill.session-burst=100000",
                                "--seckill.admission-rate-per-s=1000000",
                                "--seckill.admission-burst=100000",
                                "--seckill.waiting-room-max=100000",
                                "--seckill.log-level=info"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

item_def item(const std::string& id, int64_t total, int64_t limit = 1) {
  item_def d;
  d.item_id = id;
  d.total = total;
  d.per_user_limit = limit;
  return d;
}

int cli(const node_process& node, std::vector<std::string> args,
        std::string& out) {
  args.push_back("--node=127.0.0.1:" + std::to_string(node.cluster_port()));
  int rc = run_cli(args, out);
  UNSCOPED_INFO("seckill-cli " << args.front() << ": " << out);
  return rc;
}

void set_switch(const node_process& node, const std::string& name,
                const std::string& value) {
  std::string out;
  REQUIRE(cli(node, {"switch", name, value}, out) == 0);
}

std::string outcome(const http_reply& r) {
  return std::to_string(r.status) + " " + json_field(r.body, "code");
}

/// The value of a /metrics sample, by its whole name with labels; -1 if
/// absent. Scraped with the admin token, so the gate lets it through.
double metric(http_client& c, const std::string& sample) {
  auto r = c.request("GET", "/metrics", "", {admin_header()});
  REQUIRE(r.status == 200);
  auto at = r.body.find("\n" + sample + " ");
  if (at == std::string::npos)
    return -1;
  return std::stod(r.body.substr(at + sample.size() + 2));
}

int64_t sold(http_client& c, const std::string& id) {
  auto r = c.request("GET", "/api/v1/items/" + id + "/stock");
  REQUIRE(r.status == 200);
  return json_int(r.body, "sold");
}

} // namespace

TEST_CASE("plan B: the node's and a client's rate answer 429 with "
          "Retry-After, admin calls pass",
          "[planb]") {
  temp_dir tmp;
  // 2 requests/s, a bucket of 5 s: a burst of 10, and a refill slow
  // enough that a slow disk cannot make the crowd fit.
  node_process node(
    (tmp.path / "data").string(),
    open_args({"--seckill.node-rate-per-s=2", "--seckill.rate-burst-ms=5000"}));
  http_client c(node.http_port());
  REQUIRE(create_item(c, item("rl", 1000)).status == 201);
  std::map<std::string, int> seen;
  http_reply limited;
  for (int i = 0; i < 40; ++i) {
    auto r =
      purchase(c, "rl", "u" + std::to_string(i), 1, "r" + std::to_string(i));
    seen[outcome(r)] += 1;
    if (r.status == 429)
      limited = r;
  }
  INFO("outcomes: 201=" << seen["201 "] << " 429=" << seen["429 rate_limited"]);
  CHECK(seen["201 "] + seen["429 rate_limited"] == 40);
  CHECK(seen["201 "] >= 10);             // the burst at least
  CHECK(seen["429 rate_limited"] >= 20); // 40 at once against 10 + 2/s
  CHECK(problem_mismatch(limited, 429, "rate_limited") == "");
  CHECK(!limited.header("retry-after").empty());
  CHECK(json_field(limited.body, "detail").find("this node's rate")
        != std::string::npos);
  // /healthz, and the admin routes with the token, are never limited;
  // without the token an admin route is a request like any other.
  for (int i = 0; i < 30; ++i)
    REQUIRE(c.request("GET", "/healthz").status == 200);
  REQUIRE(
    c.request("POST", "/api/v1/items/rl/pause", "", {admin_header()}).status
    == 200);
  REQUIRE(
    c.request("POST", "/api/v1/items/rl/resume", "", {admin_header()}).status
    == 200);
  int no_token_limited = 0;
  for (int i = 0; i < 20; ++i) {
    auto r = c.request("POST", "/api/v1/items/rl/pause");
    CHECK((r.status == 429 || r.status == 401));
    no_token_limited += r.status == 429;
  }
  CHECK(no_token_limited >= 10);                // the bucket refills 2/s
  seen["429 rate_limited"] += no_token_limited; // the gate counts them all
  // Every 201 is sold, nothing else.
  set_switch(node, "node-rate-per-s", "0");
  CHECK(sold(c, "rl") == seen["201 "]);

  // Per client address, set at run time: 1/s with a burst of 5.
  set_switch(node, "ip-rate-per-s", "1");
  std::map<std::string, int> by_ip;
  http_reply ip_limited;
  for (int i = 0; i < 30; ++i) {
    auto r = c.request("GET", "/api/v1/items/rl/stock");
    by_ip[outcome(r)] += 1;
    if (r.status == 429)
      ip_limited = r;
  }
  CHECK(by_ip["200 "] >= 5);
  CHECK(by_ip["429 rate_limited"] >= 15);
  CHECK(json_field(ip_limited.body, "detail").find("per client address")
        != std::string::npos);
  set_switch(node, "ip-rate-per-s", "0");
  for (int i = 0; i < 30; ++i)
    REQUIRE(c.request("GET", "/api/v1/items/rl/stock").status == 200);
  CHECK(metric(c, "seckill_gate_refused_total{reason=\"node_rate\"}")
        == seen["429 rate_limited"]);
  CHECK(metric(c, "seckill_gate_refused_total{reason=\"ip_rate\"}")
        == by_ip["429 rate_limited"]);
}

TEST_CASE("plan B: at the in-flight bound new requests are shed with 503, "
          "nothing is lost",
          "[planb]") {
  temp_dir tmp;
  node_process node((tmp.path / "data").string(),
                    open_args({"--seckill.shed-inflight-max=4"}));
  http_client c(node.http_port());
  // More stock than five rounds can buy: every answer is a 201 or a 503.
  REQUIRE(create_item(c, item("shed", 3'000)).status == 201);
  constexpr int threads = 24;
  constexpr int per_thread = 20;
  std::atomic<int> created{0}, shed{0}, other{0}, unanswered{0};
  std::atomic<int> shed_without_hint{0};
  // Rounds until something was shed (one is nearly always enough: 24
  // buyers at once against 4 in flight), at most 5.
  for (int round = 0; round < 5 && shed == 0; ++round) {
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&, t, round] {
        http_client mine(node.http_port());
        for (int i = 0; i < per_thread; ++i) {
          auto id = std::to_string(round) + "-" + std::to_string(t) + "-"
                    + std::to_string(i);
          auto r = purchase(mine, "shed", "u" + id, 1, "r" + id);
          if (r.status == 201)
            ++created;
          else if (r.status == 503
                   && json_field(r.body, "code") == "overloaded") {
            ++shed;
            if (r.header("retry-after") != "1")
              ++shed_without_hint;
          } else if (r.status == 0)
            ++unanswered;
          else
            ++other;
        }
      });
    for (auto& th : pool)
      th.join();
  }
  INFO("201=" << created << " 503=" << shed << " other=" << other
              << " unanswered=" << unanswered);
  CHECK(shed > 0);
  CHECK(unanswered == 0);
  CHECK(other == 0);
  CHECK(shed_without_hint == 0);
  // Nothing oversold, nothing lost: every 201 and only those are sold.
  CHECK(sold(c, "shed") == created);
  // The count of requests in flight went back to 0: a new one passes.
  CHECK(purchase(c, "shed", "late", 1, "late").status == 201);
  CHECK(metric(c, "seckill_requests_inflight") == 1); // this scrape itself
  CHECK(metric(c, "seckill_gate_refused_total{reason=\"shed_inflight\"}")
        == shed);
  CHECK(metric(c, "seckill_purchase_server_seconds_count{class=\"shed\"}")
        == shed);
  CHECK(metric(c, "seckill_purchase_server_seconds_count{class=\"admitted\"}")
        == created + 1);
}

TEST_CASE("plan B: switches at run time through the CLI: pause, edge reads, "
          "essential-only",
          "[planb]") {
  temp_dir tmp;
  node_process node((tmp.path / "data").string(), open_args());
  http_client c(node.http_port());
  REQUIRE(create_item(c, item("sw", 100)).status == 201);
  std::string out;

  SECTION("pause and resume a sale") {
    REQUIRE(cli(node, {"pause", "sw"}, out) == 0);
    CHECK(problem_mismatch(purchase(c, "sw", "a", 1, "ra"), 403, "paused")
          == "");
    REQUIRE(cli(node, {"resume", "sw"}, out) == 0);
    CHECK(purchase(c, "sw", "a", 1, "ra").status == 201);
  }

  SECTION("edge reads: the stock from the bridge's copy, at most N ms old") {
    REQUIRE(purchase(c, "sw", "a", 1, "ra").status == 201);
    set_switch(node, "edge-reads-ms", "60000");
    // Round robin over the node's bridges: 8 reads fill each one's copy.
    for (int i = 0; i < 8; ++i) {
      auto r = c.request("GET", "/api/v1/items/sw/stock");
      REQUIRE(r.status == 200);
      CHECK(json_int(r.body, "sold") == 1);
    }
    REQUIRE(purchase(c, "sw", "b", 1, "rb").status == 201);
    int from_copy = 0;
    for (int i = 0; i < 8; ++i) {
      auto r = c.request("GET", "/api/v1/items/sw/stock");
      REQUIRE(r.status == 200);
      CHECK(json_int(r.body, "sold") == 1); // stale, within the bound
      from_copy += !r.header("x-stock-age-ms").empty();
    }
    CHECK(from_copy == 8);
    // A short bound: once it has passed, the read goes to the item again.
    set_switch(node, "edge-reads-ms", "50");
    std::this_thread::sleep_for(std::chrono::milliseconds(120));
    auto fresh = c.request("GET", "/api/v1/items/sw/stock");
    CHECK(json_int(fresh.body, "sold") == 2);
    CHECK(fresh.header("x-stock-age-ms").empty());
    // Off: every read asks the item.
    set_switch(node, "edge-reads-ms", "0");
    REQUIRE(purchase(c, "sw", "c", 1, "rc").status == 201);
    for (int i = 0; i < 8; ++i) {
      auto r = c.request("GET", "/api/v1/items/sw/stock");
      CHECK(json_int(r.body, "sold") == 3);
      CHECK(r.header("x-stock-age-ms").empty());
    }
    CHECK(metric(c, "seckill_switch{name=\"edge-reads-ms\"}") == 0);
  }

  SECTION("essential-only: the item list and per-item metrics are off") {
    set_switch(node, "essential-only", "on");
    auto list = c.request("GET", "/api/v1/items");
    CHECK(problem_mismatch(list, 503, "overloaded") == "");
    CHECK(!list.header("retry-after").empty());
    CHECK(metric(c, "seckill_item_sold{item=\"sw\"}") == -1);
    CHECK(metric(c, "seckill_switch{name=\"essential-only\"}") == 1);
    // What buyers need goes on.
    CHECK(purchase(c, "sw", "a", 1, "ra").status == 201);
    CHECK(c.request("GET", "/api/v1/items/sw").status == 200);
    CHECK(c.request("GET", "/api/v1/items/sw/stock").status == 200);
    set_switch(node, "essential-only", "off");
    CHECK(c.request("GET", "/api/v1/items").status == 200);
    CHECK(metric(c, "seckill_item_sold{item=\"sw\"}") == 1);
  }

  SECTION("a bad switch or value is refused, naming it, and changes nothing") {
    CHECK(cli(node, {"switch", "edge-reads-ms", "soon"}, out) == 2);
    CHECK(out.find("edge-reads-ms = 'soon'") != std::string::npos);
    CHECK(cli(node, {"switch", "turbo", "on"}, out) == 2);
    CHECK(out.find("unknown switch 'turbo'") != std::string::npos);
    REQUIRE(cli(node, {"switch", "--json"}, out) == 0);
    CHECK(out.find("\"edge_reads_ms\":0") != std::string::npos);
    CHECK(out.find("\"essential_only\":false") != std::string::npos);
  }
}

TEST_CASE("plan B: the sold-out notice and the purchase server time are "
          "measured",
          "[planb]") {
  temp_dir tmp;
  node_process node(
    (tmp.path / "data").string(),
    open_args({"--seckill.admission-rate-per-s=200",
               "--seckill.admission-burst=5", "--seckill.wait-ms-max=2000"}));
  http_client c(node.http_port());
  REQUIRE(create_item(c, item("so", 20)).status == 201);
  // 60 buyers at once against 20 units, metered: most of them wait in the
  // room when the last unit goes, and are answered sold_out then.
  constexpr int buyers = 60;
  std::vector<http_reply> answers(buyers);
  std::vector<std::thread> pool;
  for (int t = 0; t < 12; ++t)
    pool.emplace_back([&, t] {
      http_client mine(node.http_port());
      for (int u = t; u < buyers; u += 12)
        answers[u] = purchase(mine, "so", "u" + std::to_string(u), 1,
                              "r" + std::to_string(u));
    });
  for (auto& th : pool)
    th.join();
  std::map<std::string, int> seen;
  for (const auto& r : answers)
    seen[outcome(r)] += 1;
  CHECK(seen["201 "] == 20);
  CHECK(seen["201 "] + seen["409 sold_out"] + seen["429 busy"] == buyers);
  CHECK(sold(c, "so") == 20);
  std::string out;
  REQUIRE(cli(node, {"item", "so", "--json"}, out) == 0);
  auto notice = json_int(out, "sold_out_notice_ms");
  CHECK(notice >= 0);
  CHECK(node.log().find("sold_out_known item=so") != std::string::npos);
  CHECK(metric(c, "seckill_queue_sold_out_notice_seconds{item=\"so\"}")
        == Approx(notice / 1000.0));
  CHECK(metric(c, "seckill_purchase_server_seconds_count{class=\"admitted\"}")
        == 20);
  CHECK(metric(c, "seckill_purchase_server_seconds_count{class=\"refused\"}")
        == buyers - 20);
}
