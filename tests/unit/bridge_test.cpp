// The REST bridge's pure parts: routing (404 / 405 with Allow), the admin
// token (401 / 403, constant-time compare), ETags and If-None-Match, problem
// responses with Retry-After, and the Prometheus text of /metrics.
#include <catch2/catch.hpp>

#include <sstream>

#include "actors/edge/bridge.hpp"
#include "actors/edge/metrics.hpp"

using namespace seckill;

TEST_CASE("bridge: every route and its method", "[bridge]") {
  struct row {
    const char* method;
    const char* target;
    route_kind kind;
    const char* id;
  };
  const std::vector<row> table{
    {"GET", "/healthz", route_kind::healthz, ""},
    {"GET", "/metrics", route_kind::metrics, ""},
    {"POST", "/api/v1/items", route_kind::items_create, ""},
    {"GET", "/api/v1/items", route_kind::items_list, ""},
    {"GET", "/api/v1/items/sku-1", route_kind::item_get, "sku-1"},
    {"GET", "/api/v1/items/sku-1/stock", route_kind::item_stock, "sku-1"},
    {"POST", "/api/v1/items/sku-1/purchase", route_kind::item_purchase,
     "sku-1"},
    {"POST", "/api/v1/items/sku-1/pause", route_kind::item_pause, "sku-1"},
    {"POST", "/api/v1/items/sku-1/resume", route_kind::item_resume, "sku-1"},
    {"POST", "/api/v1/items/sku-1/end", route_kind::item_end, "sku-1"},
    {"GET", "/api/v1/orders/sku-1.7?user_id=u1", route_kind::order_get,
     "sku-1.7"},
    {"POST", "/api/v1/orders/sku-1.7/pay", route_kind::order_pay, "sku-1.7"},
    {"POST", "/api/v1/orders/sku-1.7/cancel", route_kind::order_cancel,
     "sku-1.7"},
  };
  for (const auto& r : table) {
    INFO(r.method << " " << r.target);
    auto m = match_route(r.method, r.target);
    CHECK(m.kind == r.kind);
    CHECK(m.id == r.id);
    CHECK(m.error == errc::ok);
  }
  CHECK(match_route("GET", "/api/v1/orders/o.1?a=b&user_id=u7&c").user_id
        == "u7");
  CHECK(match_route("GET", "/api/v1/orders/o.1").user_id.empty());
}

TEST_CASE("bridge: unknown paths are 404, wrong methods 405 with Allow",
          "[bridge]") {
  for (auto target :
       {"/", "", "x", "/api", "/api/v1", "/api/v2/items", "/api/v1/things",
        "/api/v1/items/a/b/c", "/api/v1/items/a/refund", "/api/v1/orders",
        "/api/v1/orders/o.1/refund", "/healthz/x"}) {
    INFO(target);
    auto m = match_route("GET", target);
    CHECK(m.kind == route_kind::unmatched);
    CHECK(m.error == errc::not_found);
  }
  auto m = match_route("GET", "/api/v1/items/sku-1/purchase");
  CHECK(m.error == errc::method_not_allowed);
  CHECK(m.allow == "POST");
  m = match_route("DELETE", "/api/v1/items");
  CHECK(m.error == errc::method_not_allowed);
  CHECK(m.allow == "GET, POST");
  CHECK(match_route("POST", "/healthz").error == errc::method_not_allowed);
  CHECK(match_route("get", "/healthz").error == errc::method_not_allowed);
}

TEST_CASE("bridge: admin routes need the bearer token", "[bridge]") {
  CHECK(is_admin(route_kind::items_create));
  CHECK(is_admin(route_kind::item_end));
  CHECK_FALSE(is_admin(route_kind::item_purchase));
  CHECK_FALSE(is_admin(route_kind::items_list));
  const std::string token = "0123456789abcdef";
  CHECK(check_token("Bearer 0123456789abcdef", token) == errc::ok);
  CHECK(check_token("", token) == errc::unauthorized);
  CHECK(check_token("Bearer ", token) == errc::unauthorized);
  CHECK(check_token("Basic 0123456789abcdef", token) == errc::unauthorized);
  CHECK(check_token("Bearer 0123456789abcdeF", token) == errc::forbidden);
  CHECK(check_token("Bearer 0123456789abcde", token) == errc::forbidden);
  CHECK(check_token("Bearer 0123456789abcdef0", token) == errc::forbidden);
}

TEST_CASE("bridge: ETags and If-None-Match", "[bridge]") {
  auto a = etag_of("{\"x\":1}");
  auto b = etag_of("{\"x\":2}");
  CHECK(a != b);
  CHECK(a == etag_of("{\"x\":1}"));
  CHECK(a.size() == 18);
  CHECK(a.front() == '"');
  CHECK(etag_matches(a, a));
  CHECK(etag_matches("W/" + a, a));
  CHECK(etag_matches(b + ", " + a, a));
  CHECK(etag_matches("*", a));
  CHECK_FALSE(etag_matches("", a));
  CHECK_FALSE(etag_matches(b, a));
  CHECK_FALSE(etag_matches(a.substr(1), a));
}

TEST_CASE("bridge: problems carry status, code and Retry-After", "[bridge]") {
  auto r = problem_response(errc::busy, "room full", 1'500);
  CHECK(r.status == 429);
  CHECK(r.content_type == "application/problem+json");
  CHECK(r.body.find("\"code\":\"busy\"") != std::string::npos);
  REQUIRE(r.headers.size() == 1);
  CHECK(r.headers[0].first == "Retry-After");
  CHECK(r.headers[0].second == "2"); // rounded up to whole seconds
  CHECK(problem_response(errc::busy, "", 1).headers[0].second == "1");
  CHECK(problem_response(errc::sold_out, "").headers.empty());
  auto u = problem_response(errc::unauthorized, "");
  CHECK(u.status == 401);
  REQUIRE(u.headers.size() == 1);
  CHECK(u.headers[0].first == "WWW-Authenticate");
}

TEST_CASE("bridge: /metrics text", "[bridge]") {
  bridge_counters c;
  c.requests[static_cast<std::size_t>(route_kind::item_purchase)]
            [static_cast<std::size_t>(errc::sold_out)] = 7;
  c.purchases[static_cast<std::size_t>(errc::ok)] = 3;
  node_status st;
  st.started_ms = 1'000;
  st.now_ms = 3'500;
  st.sessions = 4;
  st.store.transactions = 2;
  st.store.rows_written = 10;
  st.store.commit_us_total = 3'000;
  item_detail d;
  d.item.record.spec.item_id = "sku-1";
  d.item.record.counters = {5, 1, 94};
  d.item.status = item_status::on_sale;
  d.queue.waiting = 12;
  relay_counters remote;
  remote.calls[static_cast<std::size_t>(relay_kind::purchase_item)] = 6;
  remote.failed_down = 2;
  std::vector<member_view> members(3);
  members[0].node_id = "n1";
  members[0].state = "self";
  members[1].node_id = "n2";
  members[1].state = "up";
  members[2].node_id = "n3";
  members[2].state = "down";
  auto text = format_metrics(c, st, {d}, &remote, members);
  auto has = [&](const std::string& line) {
    INFO(line);
    CHECK(text.find(line + "\n") != std::string::npos);
  };
  has("seckill_http_requests_total{route=\"purchase\",outcome=\"sold_out\"} 7");
  has("seckill_purchases_total{outcome=\"ok\"} 3");
  has("seckill_sessions 4");
  has("seckill_uptime_seconds 2.5");
  has("seckill_commit_seconds_sum 0.003");
  has("seckill_commit_seconds_count 2");
  has("seckill_commit_rows_sum 10");
  has("seckill_item_available{item=\"sku-1\"} 5");
  has("seckill_item_reserved{item=\"sku-1\"} 1");
  has("seckill_item_sold{item=\"sku-1\"} 94");
  has("seckill_queue_waiting{item=\"sku-1\"} 12");
  has("seckill_item_status{item=\"sku-1\",status=\"on_sale\"} 1");
  has("# TYPE seckill_purchases_total counter");
  has("seckill_remote_calls_total{kind=\"purchase_item\"} 6");
  has("seckill_remote_calls_total{kind=\"purchase_session\"} 0");
  has("seckill_remote_failed_total{reason=\"node_down\"} 2");
  has("seckill_cluster_member_up{member=\"n1\"} 1");
  has("seckill_cluster_member_up{member=\"n2\"} 1");
  has("seckill_cluster_member_up{member=\"n3\"} 0");
  // Every sample line belongs to a family declared before it.
  std::istringstream lines{text};
  std::string line, family;
  for (int n = 0; std::getline(lines, line); ++n) {
    if (line.rfind("# TYPE ", 0) == 0) {
      family = line.substr(7, line.find(' ', 7) - 7);
      continue;
    }
    if (line.rfind("#", 0) == 0)
      continue;
    INFO(line);
    CHECK(line.rfind(family, 0) == 0);
  }
}
