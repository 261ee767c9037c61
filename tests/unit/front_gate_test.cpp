// The front gate without a node: how it classifies requests, when it sheds
// (the in-flight bound; lag only when sustained over a window, with
// hysteresis, or a loop stalled past the window plus the bound), its node
// and per-address buckets (time injected), the in-flight count, the
// switches' names and ranges, the purchase time histogram, and the lag
// probe on a real actor system with a clock the test moves.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include "actors/base/clock.hpp"
#include "actors/edge/front_gate.hpp"
#include "actors/edge/lag_probe.hpp"
#include "messages/limits.hpp"
#include "messages/type_ids.hpp"

using namespace seckill;

namespace {

struct gate_fixture {
  std::shared_ptr<node_switches> sw = std::make_shared<node_switches>();
  std::shared_ptr<gate_counters> counters = std::make_shared<gate_counters>();
  front_gate gate{sw, counters};

  http::request from(const std::string& ip) {
    http::request r;
    r.method = "POST";
    r.target = "/api/v1/items/a/purchase";
    r.client_ip = ip;
    return r;
  }

  /// How many of `n` requests from `ip` at `now_us` pass (each answered
  /// at once, so none stays in flight).
  int passed(int n, const std::string& ip, int64_t now_us) {
    int ok = 0;
    for (int i = 0; i < n; ++i) {
      http::response refused;
      if (gate.admit(from(ip), gate_class::purchase, now_us, refused)) {
        ++ok;
        gate.done(gate_class::purchase, now_us, now_us + 10, 201);
      }
    }
    return ok;
  }

  int64_t refused(gate_verdict v) const {
    return counters->verdicts[static_cast<std::size_t>(v)].load();
  }
};

} // namespace

namespace {

const std::string token = "gate-test-admin-token";

gate_class class_of_request(const std::string& method,
                            const std::string& target,
                            const std::string& authorization = {}) {
  http::request r;
  r.method = method;
  r.target = target;
  r.authorization = authorization;
  return classify(match_route(r.method, r.target), r, token);
}

} // namespace

TEST_CASE("gate: requests are classified by route, admin ones by token",
          "[gate]") {
  auto c = [](auto&&... xs) { return class_of_request(xs...); };
  const std::string bearer = "Bearer " + token;
  CHECK(c("POST", "/api/v1/items/x/purchase") == gate_class::purchase);
  CHECK(c("POST", "/api/v1/items/x/purchase?a=b") == gate_class::purchase);
  CHECK(c("GET", "/api/v1/items/x/stock") == gate_class::api);
  CHECK(c("GET", "/api/v1/items") == gate_class::api);
  CHECK(c("POST", "/api/v1/orders/x.1/pay") == gate_class::settle);
  CHECK(c("POST", "/api/v1/orders/x.1/cancel") == gate_class::settle);
  CHECK(c("GET", "/healthz") == gate_class::exempt);
  // The admin routes and /metrics pass with the admin token only.
  CHECK(c("POST", "/api/v1/items", bearer) == gate_class::exempt);
  CHECK(c("POST", "/api/v1/items/x/pause", bearer) == gate_class::exempt);
  CHECK(c("POST", "/api/v1/items/x/resume", bearer) == gate_class::exempt);
  CHECK(c("POST", "/api/v1/items/x/end", bearer) == gate_class::exempt);
  CHECK(c("GET", "/metrics", bearer) == gate_class::exempt);
  CHECK(c("POST", "/api/v1/items") == gate_class::api);
  CHECK(c("POST", "/api/v1/items/x/pause", "Bearer wrong") == gate_class::api);
  CHECK(c("GET", "/metrics") == gate_class::api);
  // Nothing slips through by its path: look-alikes and 404s are requests.
  CHECK(c("GET", "/whatever") == gate_class::api);
  CHECK(c("POST", "/api/v1/zzz/pause", bearer) == gate_class::api);
  CHECK(c("POST", "/api/v1/orders/x/end", bearer) == gate_class::api);
  CHECK(c("GET", "/api/v1/items/x/pause", bearer) == gate_class::api);
  CHECK(c("POST", "/healthz") == gate_class::api);
}

TEST_CASE("gate: paying and cancelling are never shed, only rate-limited",
          "[gate]") {
  gate_fixture f;
  f.sw->node_rate_per_s = 0;
  f.sw->shed_inflight_max = 1;
  http::response r;
  REQUIRE(f.gate.admit(f.from("a"), gate_class::purchase, 1'000, r));
  CHECK_FALSE(f.gate.admit(f.from("a"), gate_class::purchase, 1'000, r));
  CHECK(f.gate.admit(f.from("a"), gate_class::settle, 1'000, r));
  f.sw->lag_sustained = true;
  f.sw->lag_due_us = 1; // and stalled for a long time
  CHECK_FALSE(f.gate.admit(f.from("c"), gate_class::api, 10'000'000, r));
  CHECK(f.gate.admit(f.from("a"), gate_class::settle, 10'000'000, r));
  f.sw->ip_rate_per_s = 1;
  f.sw->rate_burst_ms = 1'000; // a burst of 1
  CHECK(f.gate.admit(f.from("b"), gate_class::settle, 1'000, r));
  CHECK_FALSE(f.gate.admit(f.from("b"), gate_class::settle, 1'000, r));
  CHECK(r.status == 429);
}

TEST_CASE("gate: shedding by requests in flight and by sustained lag",
          "[gate]") {
  const lag_limits lim{100, 500, limits::gate_lag_release_ratio};
  const lag_limits off{0, 500, limits::gate_lag_release_ratio};
  CHECK(judge_load(0, 1, false, 0, lim) == gate_verdict::pass);
  CHECK(judge_load(1, 1, false, 0, lim) == gate_verdict::shed_inflight);
  CHECK(judge_load(1, 1, true, 0, lim) == gate_verdict::shed_inflight);
  CHECK(judge_load(5, 8192, true, 0, lim) == gate_verdict::shed_lag);
  // Stalled: shed past the window plus the bound, not before.
  CHECK(judge_load(5, 8192, false, 600'000, lim) == gate_verdict::pass);
  CHECK(judge_load(5, 8192, false, 600'001, lim) == gate_verdict::shed_lag);
  CHECK(judge_load(5, 8192, true, 10'000'000, off) == gate_verdict::pass);

  gate_fixture f;
  f.sw->shed_inflight_max = 2;
  f.sw->node_rate_per_s = 0;
  http::response r;
  REQUIRE(f.gate.admit(f.from("a"), gate_class::purchase, 1'000, r));
  REQUIRE(f.gate.admit(f.from("a"), gate_class::purchase, 1'000, r));
  CHECK_FALSE(f.gate.admit(f.from("a"), gate_class::purchase, 1'000, r));
  CHECK(r.status == 503);
  CHECK(r.body.find("\"code\":\"overloaded\"") != std::string::npos);
  bool retry_after = false;
  for (const auto& [k, v] : r.headers)
    retry_after |= k == "Retry-After" && v == "1";
  CHECK(retry_after);
  // Admin calls still pass, and count in flight.
  CHECK(f.gate.admit(f.from("a"), gate_class::exempt, 1'000, r));
  CHECK(f.counters->inflight == 3);
  f.gate.done(gate_class::purchase, 1'000, 2'000, 201);
  f.gate.done(gate_class::exempt, 1'000, 2'000, 200);
  CHECK(f.gate.admit(f.from("a"), gate_class::purchase, 1'000, r));
  CHECK(f.refused(gate_verdict::shed_inflight) == 1);

  // A stalled scheduler shows as time past the next tick's due point.
  f.sw->lag_last_us = 200;
  f.sw->lag_due_us = 10'000;
  CHECK(effective_lag_us(*f.sw, 5'000) == 200);
  CHECK(effective_lag_us(*f.sw, 250'000) == 240'000);
  CHECK(stalled_us(*f.sw, 5'000) == 0);
  CHECK(stalled_us(*f.sw, 250'000) == 240'000);
  // The HTTP event loop counts the same way; the longer lag wins.
  f.sw->io_lag_last_us = 7'000;
  CHECK(effective_lag_us(*f.sw, 5'000) == 7'000);
  CHECK(stalled_us(*f.sw, 5'000) == 0); // a measure is not a stall
  f.sw->io_lag_due_us = 1'000;
  CHECK(effective_lag_us(*f.sw, 250'000) == 249'000);
  CHECK(stalled_us(*f.sw, 250'000) == 249'000);
  f.sw->io_lag_last_us = 0;
  f.sw->io_lag_due_us = 0;
  f.sw->shed_inflight_max = 100;
  f.sw->shed_lag_ms = 100;
  // One late measure, however late, is not overload (issue 11): the gate
  // no longer sheds on the last measure alone.
  f.sw->lag_last_us = 10'000'000;
  CHECK(f.gate.admit(f.from("a"), gate_class::purchase, 250'000, r));
  CHECK(f.refused(gate_verdict::shed_lag) == 0);
  // Stalled for the window plus the bound (10 ms + 600 ms): shed.
  CHECK(f.gate.admit(f.from("a"), gate_class::purchase, 610'000, r));
  CHECK_FALSE(f.gate.admit(f.from("a"), gate_class::purchase, 610'001, r));
  CHECK(r.status == 503);
  CHECK(r.body.find("\"code\":\"overloaded\"") != std::string::npos);
  CHECK(r.body.find("it has run no work for 600 ms") != std::string::npos);
  CHECK(f.refused(gate_verdict::shed_lag) == 1);
  // The probe's detector says the lag is sustained: shed, saying so.
  f.sw->lag_due_us = 0;
  f.sw->lag_sustained = true;
  CHECK_FALSE(f.gate.admit(f.from("a"), gate_class::purchase, 50'000, r));
  CHECK(r.status == 503);
  CHECK(r.body.find("it has run work more than 100 ms late for 500 ms")
        != std::string::npos);
  // Lag shedding off: neither sheds.
  f.sw->shed_lag_ms = 0;
  f.sw->lag_due_us = 1;
  CHECK(f.gate.admit(f.from("a"), gate_class::purchase, 50'000'000, r));
  CHECK(f.refused(gate_verdict::shed_lag) == 2);
}

TEST_CASE("gate: one late measure does not shed, even a second late",
          "[gate]") {
  const lag_limits lim{100, 500, limits::gate_lag_release_ratio};
  lag_detector d;
  int64_t t = 1'000'000;
  CHECK_FALSE(feed_lag(d, lim, 1'000, t));
  t += 5'000;
  CHECK_FALSE(feed_lag(d, lim, 1'000'000, t)); // a host stalled for 1 s
  CHECK_FALSE(d.shedding);
  t += 5'000;
  CHECK_FALSE(feed_lag(d, lim, 800, t)); // and on time again
  CHECK(d.above_since_us == -1);
  // A late tick now and then, each followed by one on time, never sheds
  // however long it goes on.
  for (int i = 0; i < 1'000; ++i) {
    t += 150'000;
    CHECK_FALSE(feed_lag(d, lim, 150'000, t));
    t += 5'000;
    CHECK_FALSE(feed_lag(d, lim, 0, t));
  }
  // Lag at the bound exactly is not above it.
  for (int i = 0; i < 100; ++i)
    CHECK_FALSE(feed_lag(d, lim, 100'000, t += 105'000));
}

TEST_CASE("gate: lag above the bound for a whole window sheds", "[gate]") {
  const lag_limits lim{100, 500, limits::gate_lag_release_ratio};
  lag_detector d;
  int64_t t = 1'000'000;
  CHECK_FALSE(feed_lag(d, lim, 150'000, t)); // the run starts
  CHECK(d.above_since_us == t);
  for (int64_t at : {155'000, 310'000, 465'000, 499'999})
    CHECK_FALSE(feed_lag(d, lim, 150'000, t + at));
  CHECK(feed_lag(d, lim, 150'000, t + 500'000)); // the whole window
  CHECK(d.shedding);
  // A run broken by one measure at or under the bound starts afresh.
  lag_detector e;
  CHECK_FALSE(feed_lag(e, lim, 150'000, t));
  CHECK_FALSE(feed_lag(e, lim, 150'000, t + 300'000));
  CHECK_FALSE(feed_lag(e, lim, 100'000, t + 400'000));
  CHECK_FALSE(feed_lag(e, lim, 150'000, t + 550'000));
  CHECK_FALSE(feed_lag(e, lim, 150'000, t + 1'049'999));
  CHECK(feed_lag(e, lim, 150'000, t + 1'050'000));
  // Window 0: one measure above the bound is enough (the old behaviour).
  lag_detector g;
  CHECK(feed_lag(g, lag_limits{100, 0, limits::gate_lag_release_ratio}, 100'001,
                 t));
  // Off: never, and a bound set later starts from nothing.
  const lag_limits off{0, 500, limits::gate_lag_release_ratio};
  CHECK_FALSE(feed_lag(d, off, 10'000'000, t + 600'000));
  CHECK_FALSE(d.shedding);
  CHECK_FALSE(feed_lag(d, lim, 150'000, t + 700'000));
}

TEST_CASE("gate: once shedding for lag, only a lag under half the bound "
          "stops it",
          "[gate]") {
  const lag_limits lim{100, 500, limits::gate_lag_release_ratio};
  lag_detector d;
  int64_t t = 1'000'000;
  for (int i = 0; i <= 5; ++i)
    feed_lag(d, lim, 120'000, t + i * 100'000);
  REQUIRE(d.shedding);
  t += 600'000;
  // Just under the bound, and down to half of it: still shedding.
  for (int64_t lag : {99'999, 80'000, 60'000, 50'000, 99'000})
    CHECK(feed_lag(d, lim, lag, t += 100'000));
  CHECK(feed_lag(d, lim, 5'000'000, t += 5'000'000));
  // Under half the bound: it stops.
  CHECK_FALSE(feed_lag(d, lim, 49'999, t += 55'000));
  CHECK_FALSE(d.shedding);
  // And a new start needs a whole window again.
  CHECK_FALSE(feed_lag(d, lim, 150'000, t += 5'000));
  CHECK_FALSE(feed_lag(d, lim, 150'000, t += 155'000));
}

TEST_CASE("gate: a loop stalled past the window plus the bound sheds",
          "[gate]") {
  const lag_limits lim{100, 500, limits::gate_lag_release_ratio};
  CHECK_FALSE(lag_stalled(lim, 0));
  CHECK_FALSE(lag_stalled(lim, 600'000));
  CHECK(lag_stalled(lim, 600'001));
  CHECK_FALSE(lag_stalled(lag_limits{0, 500, 0.5}, 60'000'000)); // off
  CHECK(lag_stalled(lag_limits{100, 0, 0.5}, 100'001));

  // On the gate: no tick since the one due at 1 s.
  gate_fixture f;
  f.sw->node_rate_per_s = 0;
  f.sw->lag_due_us = 1'000'000;
  f.sw->io_lag_due_us = 1'590'000; // the event loop ticks on
  http::response r;
  CHECK(f.gate.admit(f.from("a"), gate_class::purchase, 1'600'000, r));
  f.gate.done(gate_class::purchase, 0, 0, 201);
  CHECK_FALSE(f.gate.admit(f.from("a"), gate_class::purchase, 1'700'000, r));
  CHECK(r.status == 503);
  CHECK(r.body.find("it has run no work for 700 ms") != std::string::npos);
  // The event loop stalled alike, the scheduler ticking: the same.
  f.sw->lag_due_us = 1'695'000;
  f.sw->io_lag_due_us = 1'000'000;
  CHECK_FALSE(f.gate.admit(f.from("a"), gate_class::purchase, 1'700'000, r));
  // Both tick again: it passes.
  f.sw->io_lag_due_us = 1'695'000;
  CHECK(f.gate.admit(f.from("a"), gate_class::purchase, 1'700'000, r));
  CHECK(f.refused(gate_verdict::shed_lag) == 2);
}

TEST_CASE("gate: the node's rate, then 429 with Retry-After", "[gate]") {
  gate_fixture f;
  f.sw->node_rate_per_s = 100;
  f.sw->rate_burst_ms = 100; // a burst of 10
  CHECK(f.passed(50, "a", 1'000'000) == 10);
  CHECK(f.refused(gate_verdict::node_rate) == 40);
  http::response r;
  CHECK_FALSE(f.gate.admit(f.from("b"), gate_class::purchase, 1'000'000, r));
  CHECK(r.status == 429);
  CHECK(r.body.find("\"code\":\"rate_limited\"") != std::string::npos);
  // 100 ms later, 10 more tokens; addresses do not matter to this limit.
  CHECK(f.passed(50, "c", 1'100'000) == 10);
  // Off: everything passes.
  f.sw->node_rate_per_s = 0;
  CHECK(f.passed(1000, "c", 1'100'000) == 1000);
  // A rate changed at run time applies at once.
  f.sw->node_rate_per_s = 1000; // burst 100
  CHECK(f.passed(500, "c", 1'200'000) == 100);
}

TEST_CASE("gate: each client address has its own budget", "[gate]") {
  gate_fixture f;
  f.sw->node_rate_per_s = 0;
  f.sw->ip_rate_per_s = 50;
  f.sw->rate_burst_ms = 200; // a burst of 10
  CHECK(f.passed(30, "10.0.0.1", 1'000'000) == 10);
  CHECK(f.passed(30, "10.0.0.2", 1'000'000) == 10);
  CHECK(f.refused(gate_verdict::ip_rate) == 40);
  http::response r;
  CHECK_FALSE(f.gate.admit(f.from("10.0.0.1"), gate_class::api, 1'000'000, r));
  CHECK(r.status == 429);
  bool retry_after = false;
  for (const auto& [k, v] : r.headers)
    retry_after |= k == "Retry-After" && v == "1"; // 20 ms, at least 1 s
  CHECK(retry_after);
  // Exempt requests never spend a token.
  CHECK(f.gate.admit(f.from("10.0.0.1"), gate_class::exempt, 1'000'000, r));
  f.gate.done(gate_class::exempt, 0, 0, 200);
  // 1,000 addresses at once: each gets its own burst (one bucket for all
  // would let 10 through).
  int ok = 0;
  for (int i = 0; i < 1000; ++i)
    ok += f.passed(
      1, "192.168." + std::to_string(i / 256) + "." + std::to_string(i % 256),
      2'000'000);
  CHECK(ok == 1000);
}

TEST_CASE("gate: a flooding address does not spend the node's budget",
          "[gate]") {
  gate_fixture f;
  f.sw->node_rate_per_s = 1'000;
  f.sw->ip_rate_per_s = 10;
  f.sw->rate_burst_ms = 1'000; // node burst 1,000, address burst 10
  CHECK(f.passed(5'000, "flooder", 1'000'000) == 10);
  // Everyone else still finds the node's bucket nearly full.
  int ok = 0;
  for (int i = 0; i < 100; ++i)
    ok += f.passed(1, "honest-" + std::to_string(i), 1'000'000);
  CHECK(ok == 100);
  CHECK(f.refused(gate_verdict::node_rate) == 0);
}

TEST_CASE("gate: a burst changed at run time applies at once", "[gate]") {
  gate_fixture f;
  f.sw->node_rate_per_s = 100;
  f.sw->rate_burst_ms = 100; // 10
  CHECK(f.passed(50, "a", 1'000'000) == 10);
  f.sw->rate_burst_ms = 2'000; // 200, from a full bucket
  CHECK(f.passed(500, "a", 1'000'000) == 200);
}

TEST_CASE("gate: switches by name, with their ranges", "[gate]") {
  std::string why;
  CHECK(check_switch("edge-reads-ms", "250", why) == errc::ok);
  CHECK(check_switch("edge-reads-ms", "250x", why) == errc::bad_request);
  CHECK(why == "edge-reads-ms = '250x': expected an integer from 0 to 60000");
  CHECK(check_switch("edge-reads-ms", "", why) == errc::bad_request);
  CHECK(check_switch("edge-reads-ms", "-1", why) == errc::bad_request);
  CHECK(check_switch("edge-reads-ms", "60001", why) == errc::bad_request);
  CHECK(check_switch("shed-inflight-max", "0", why) == errc::bad_request);
  CHECK(check_switch("essential-only", "yes", why) == errc::bad_request);
  CHECK(why == "essential-only = 'yes': expected on or off");
  CHECK(check_switch("nope", "1", why) == errc::bad_request);
  CHECK(why.find("unknown switch 'nope'") == 0);
  CHECK(switch_expectation("edge-reads-ms") == "an integer from 0 to 60000");
  CHECK(switch_expectation("essential-only") == "on or off");
  node_switches sw;
  set_switch(sw, "edge-reads-ms", "250");
  set_switch(sw, "essential-only", "on");
  set_switch(sw, "node-rate-per-s", "0");
  CHECK(sw.edge_reads_ms == 250);
  CHECK(sw.essential_only);
  CHECK(switch_value(sw, "essential-only") == "on");
  CHECK(switch_value(sw, "node-rate-per-s") == "0");
  gate_counters c;
  c.inflight = 3;
  auto v = view_of(sw, c, 0);
  CHECK(v.edge_reads_ms == 250);
  CHECK(v.essential_only);
  CHECK(v.inflight == 3);
  set_switch(sw, "essential-only", "off");
  CHECK_FALSE(sw.essential_only);
}

TEST_CASE("gate: purchase server time by class, in log2 buckets", "[gate]") {
  CHECK(class_of(201) == answer_class::admitted);
  CHECK(class_of(200) == answer_class::admitted);
  CHECK(class_of(409) == answer_class::refused);
  CHECK(class_of(429) == answer_class::refused);
  CHECK(class_of(503) == answer_class::shed);
  latency_histogram h;
  h.add(0);                // le 1 us
  h.add(1);                // le 1 us
  h.add(3);                // le 4 us
  h.add(1000);             // le 1024 us
  h.add(int64_t{1} << 40); // +Inf
  CHECK(h.counts[0] == 2);
  CHECK(h.counts[2] == 1);
  CHECK(h.counts[10] == 1);
  CHECK(h.counts[latency_histogram::buckets - 1] == 1);
  CHECK(latency_histogram::upper_us(10) == 1024);
  CHECK(latency_histogram::upper_us(latency_histogram::buckets - 1) == -1);

  gate_fixture f;
  http::response r;
  REQUIRE(f.gate.admit(f.from("a"), gate_class::purchase, 0, r));
  f.gate.done(gate_class::purchase, 0, 3'000, 201);
  REQUIRE(f.gate.admit(f.from("a"), gate_class::api, 0, r));
  f.gate.done(gate_class::api, 0, 3'000, 200); // not a purchase: not timed
  auto& admitted = f.counters->purchase_us[0];
  CHECK(admitted.sum_us == 3'000);
  CHECK(admitted.counts[12] == 1); // 2048 < 3000 <= 4096
  CHECK(f.counters->inflight == 0);
}

namespace {

/// Waits (boundedly: 10 s, enough on a busy machine) until `pred` holds.
template <class Pred>
bool wait_until(Pred pred) {
  for (int i = 0; i < 2'000 && !pred(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  return pred();
}

} // namespace

TEST_CASE("lag probe: one late tick is measured and does not shed, a "
          "sustained lag does, until it is over",
          "[gate]") {
  caf::actor_system_config cfg;
  register_types(cfg);
  caf::actor_system sys{cfg};
  auto sw = std::make_shared<node_switches>();
  // The probe reads its clock once per tick: every read adds `step_us` to
  // the skew, so each tick runs about that late.
  auto skew_us = std::make_shared<std::atomic<int64_t>>(0);
  auto step_us = std::make_shared<std::atomic<int64_t>>(0);
  auto real = steady_clock_us();
  steady_us_fn clock = [real, skew_us, step_us] {
    auto step = step_us->load();
    return real() + skew_us->fetch_add(step) + step;
  };
  auto probe = sys.spawn(lag_probe_impl, sw, clock, int64_t{5});
  REQUIRE(wait_until([&] { return sw->lag_due_us.load() > 0; }));
  // The clock jumps 1 s: the next tick runs 1 s "late", the one after is
  // on time again. Never sustained.
  skew_us->fetch_add(1'000'000);
  int64_t seen = 0;
  bool sustained = false;
  REQUIRE(wait_until([&] {
    seen = std::max(seen, sw->lag_last_us.load());
    sustained |= sw->lag_sustained.load();
    return seen >= 1'000'000 && sw->lag_last_us.load() < 100'000;
  }));
  CHECK_FALSE(sustained);
  CHECK_FALSE(sw->lag_sustained.load());
  // Every tick 150 ms late: after 500 ms of it (4 ticks or so), sustained.
  step_us->store(150'000);
  REQUIRE(wait_until([&] { return sw->lag_sustained.load(); }));
  CHECK(sw->lag_last_us.load() >= 100'000);
  auto counters = std::make_shared<gate_counters>();
  front_gate gate{sw, counters};
  http::request req;
  req.method = "POST";
  req.target = "/api/v1/items/a/purchase";
  http::response r;
  // At the due point itself: nothing stalled, only the detector's verdict.
  CHECK_FALSE(gate.admit(req, gate_class::purchase, sw->lag_due_us.load(), r));
  CHECK(r.status == 503);
  CHECK(r.body.find("more than 100 ms late for 500 ms") != std::string::npos);
  // On time again: the first tick under 50 ms ends it.
  step_us->store(0);
  REQUIRE(wait_until([&] { return !sw->lag_sustained.load(); }));
  CHECK(gate.admit(req, gate_class::purchase, sw->lag_due_us.load(), r));
  caf::anon_send_exit(probe, caf::exit_reason::user_shutdown);
}

TEST_CASE("lag probe: the HTTP event loop's sustained lag sheds too",
          "[gate]") {
  caf::actor_system_config cfg;
  register_types(cfg);
  caf::actor_system sys{cfg};
  auto sw = std::make_shared<node_switches>();
  auto clock = steady_clock_us();
  // The server's timer measured 200 ms; its next tick is far off, so only
  // that measure counts (a stall would be the gate's own business).
  sw->io_lag_due_us = clock() + 3'600'000'000;
  sw->io_lag_last_us = 200'000;
  sw->shed_lag_window_ms = 50; // 10 ticks of the probe at least
  auto probe = sys.spawn(lag_probe_impl, sw, clock, int64_t{5});
  REQUIRE(wait_until([&] { return sw->lag_sustained.load(); }));
  sw->io_lag_last_us = 60'000; // above half the bound: still shedding
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(sw->lag_sustained.load());
  sw->io_lag_last_us = 1'000;
  REQUIRE(wait_until([&] { return !sw->lag_sustained.load(); }));
  caf::anon_send_exit(probe, caf::exit_reason::user_shutdown);
}

TEST_CASE("gate: the in-flight bound follows the answer rate (Little's law)",
          "[gate]") {
  CHECK(adaptive_inflight_max(40'000, 25, 256, 8192) == 1000);
  CHECK(adaptive_inflight_max(1'000, 25, 256, 8192) == 256);  // the floor
  CHECK(adaptive_inflight_max(1e7, 25, 256, 8192) == 8192);   // the cap
  CHECK(adaptive_inflight_max(40'000, 0, 256, 8192) == 8192); // off
  CHECK(adaptive_inflight_max(40'000, 25, 256, 100) == 100);  // cap < floor

  gate_fixture f;
  f.sw->node_rate_per_s = 0;
  f.sw->shed_latency_ms = 100;
  http::response r;
  // Idle: the floor. Then 80,000 answers/s for a while: 8,000 in 100 ms.
  int64_t t = 1'000'000;
  REQUIRE(f.gate.admit(f.from("a"), gate_class::api, t, r));
  f.gate.done(gate_class::api, t, t, 200);
  CHECK(f.counters->inflight_limit == 256);
  for (int w = 0; w < 20; ++w) {
    t += limits::gate_rate_window_us;
    for (int i = 0; i < 1600; ++i) { // 1,600 per 20 ms window
      REQUIRE(f.gate.admit(f.from("a"), gate_class::api, t, r));
      f.gate.done(gate_class::api, t, t, 200);
    }
  }
  CHECK(f.counters->inflight_limit > 7'000);
  CHECK(f.counters->inflight_limit <= 8'192);
  // The node slows to 2,000 answers/s: the bound falls to the floor, and
  // the requests beyond it are shed.
  for (int w = 0; w < 20; ++w) {
    t += limits::gate_rate_window_us;
    for (int i = 0; i < 40; ++i) {
      REQUIRE(f.gate.admit(f.from("a"), gate_class::api, t, r));
      f.gate.done(gate_class::api, t, t, 200);
    }
  }
  CHECK(f.counters->inflight_limit == 256);
  int admitted = 0;
  for (int i = 0; i < 1000; ++i)
    admitted += f.gate.admit(f.from("a"), gate_class::api, t, r);
  CHECK(admitted == 256);
  CHECK(r.status == 503);
}
