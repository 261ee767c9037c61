// Tests of messages/dto.hpp: structs survive struct -> proto -> JSON -> proto
// -> struct; the JSON out uses snake_case and prints zeros; camelCase input
// is accepted; hostile bodies (broken, truncated, mistyped, unknown or
// duplicate fields, deep nesting, bad UTF-8, huge strings, byte-flipped
// bodies) are result codes with a printable reason, never a crash, and leave
// the output untouched; every errc has its HTTP status and a problem body.
#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <caf/deep_to_string.hpp>
#include <google/protobuf/util/json_util.h>

#include "messages/dto.hpp"

using namespace seckill;

namespace {

item_spec sample_spec() {
  item_spec s;
  s.item_id = "sku-1";
  s.name = "Phone \xe6\x89\x8b\xe6\x9c\xba"; // UTF-8 survives
  s.total = 100;
  s.per_user_limit = 2;
  s.starts_at_ms = 1'700'000'000'000;
  s.ends_at_ms = 1'700'000'360'000;
  s.mode = deduction_mode::reserve;
  s.reserve_ttl_ms = 60'000;
  s.price_cents = 99'900;
  return s;
}

order sample_order(order_state state) {
  order o;
  o.order_id = "sku-1.7";
  o.item_id = "sku-1";
  o.user_id = "u42";
  o.request_id = "r-9";
  o.quantity = 3;
  o.state = state;
  o.created_ms = 1'700'000'000'001;
  o.expires_ms = 1'700'000'060'001;
  o.updated_ms = 1'700'000'000'002;
  return o;
}

template <class Proto>
Proto from_json(const std::string& json) {
  Proto msg;
  auto st = google::protobuf::util::JsonStringToMessage(json, &msg);
  INFO(json << " -> " << st.ToString());
  REQUIRE(st.ok());
  return msg;
}

bool printable_ascii(const std::string& text) {
  for (unsigned char ch : text)
    if (ch < 0x20 || ch >= 0x7f)
      return false;
  return true;
}

purchase sentinel_purchase() {
  purchase p;
  p.item_id = "untouched";
  p.user_id = "untouched";
  p.request_id = "untouched";
  p.quantity = -77;
  return p;
}

/// Parses `body`; on failure checks that `out` kept its sentinel and that
/// the reason is printable. Returns the code.
errc parse_purchase(const std::string& body, purchase& out) {
  out = sentinel_purchase();
  std::string why;
  auto code = parse_purchase_json(body, "sku-1", out, &why);
  if (code != errc::ok) {
    CHECK(caf::deep_to_string(out)
          == caf::deep_to_string(sentinel_purchase()));
    CHECK(!why.empty());
    CHECK(printable_ascii(why));
    CHECK(why.size() <= 256);
  }
  return code;
}

errc parse_purchase(const std::string& body) {
  purchase out;
  return parse_purchase(body, out);
}

} // namespace

TEST_CASE("an item survives struct -> proto -> JSON -> proto -> struct",
          "[dto]") {
  auto spec = sample_spec();
  auto json = to_json(to_proto(spec, item_status::on_sale));
  auto back = from_json<v1::Item>(json);
  CHECK(back.status() == "on_sale");
  CHECK(back.mode() == "reserve");
  item_spec out;
  REQUIRE(from_proto(back, out) == errc::ok);
  CHECK(caf::deep_to_string(out) == caf::deep_to_string(spec));
  // A GET answer posted back is the same item ("status" is ignored).
  item_spec posted;
  REQUIRE(parse_item_json(json, posted) == errc::ok);
  CHECK(caf::deep_to_string(posted) == caf::deep_to_string(spec));
}

TEST_CASE("an order survives the round trip in every state", "[dto]") {
  for (auto state : {order_state::reserved, order_state::pending,
                     order_state::confirmed, order_state::cancelled,
                     order_state::expired}) {
    auto o = sample_order(state);
    auto back = from_json<v1::Order>(to_json(to_proto(o)));
    CHECK(back.state() == to_string(state));
    order out;
    REQUIRE(from_proto(back, out) == errc::ok);
    CHECK(out == o);
  }
}

TEST_CASE("a stock view survives the round trip", "[dto]") {
  stock_view v;
  v.item_id = "sku-1";
  v.total = 100;
  v.counters = stock_counters{60, 15, 25};
  v.status = item_status::sold_out;
  v.server_time_ms = 1'700'000'000'123;
  auto back = from_json<v1::StockView>(to_json(to_proto(v)));
  CHECK(back.available() == 60);
  stock_view out;
  REQUIRE(from_proto(back, out) == errc::ok);
  CHECK(caf::deep_to_string(out) == caf::deep_to_string(v));
}

TEST_CASE("JSON out uses snake_case and prints zero fields", "[dto]") {
  auto spec = sample_spec();
  spec.ends_at_ms = 0;
  spec.price_cents = 0;
  auto json = to_json(to_proto(spec, item_status::upcoming));
  CHECK(json.find("\"per_user_limit\"") != std::string::npos);
  CHECK(json.find("perUserLimit") == std::string::npos);
  CHECK(json.find("\"reserve_ttl_ms\"") != std::string::npos);
  CHECK(json.find("\"ends_at_ms\"") != std::string::npos);
  CHECK(json.find("\"price_cents\"") != std::string::npos);
  auto order_json = to_json(to_proto(sample_order(order_state::confirmed)));
  CHECK(order_json.find("\"request_id\":\"r-9\"") != std::string::npos);
  // The proto3 JSON mapping writes int64 as a string.
  CHECK(order_json.find("\"quantity\":\"3\"") != std::string::npos);
}

TEST_CASE("JSON in accepts lowerCamelCase and snake_case", "[dto]") {
  purchase p;
  REQUIRE(parse_purchase(R"({"userId":"u1","requestId":"r1","quantity":2})",
                         p)
          == errc::ok);
  CHECK(p.item_id == "sku-1");
  CHECK(p.user_id == "u1");
  CHECK(p.request_id == "r1");
  CHECK(p.quantity == 2);
  REQUIRE(parse_purchase(R"({"user_id":"u1","request_id":"r1","quantity":"4"})",
                         p)
          == errc::ok);
  CHECK(p.quantity == 4);
  item_spec s;
  REQUIRE(parse_item_json(R"({"itemId":"a","total":5,"perUserLimit":3,
                              "reserveTtlMs":2000,"mode":"pay",
                              "startsAtMs":"10","endsAtMs":20,
                              "priceCents":7,"name":"n"})",
                          s)
          == errc::ok);
  CHECK(s.item_id == "a");
  CHECK(s.total == 5);
  CHECK(s.per_user_limit == 3);
  CHECK(s.reserve_ttl_ms == 2000);
  CHECK(s.mode == deduction_mode::pay);
  CHECK(s.starts_at_ms == 10);
  CHECK(s.ends_at_ms == 20);
  CHECK(s.price_cents == 7);
  CHECK(s.name == "n");
}

TEST_CASE("an absent quantity is 1, an explicit one is kept", "[dto]") {
  purchase p;
  REQUIRE(parse_purchase(R"({"user_id":"u","request_id":"r"})", p)
          == errc::ok);
  CHECK(p.quantity == 1);
  REQUIRE(parse_purchase(R"({"user_id":"u","request_id":"r","quantity":null})",
                         p)
          == errc::ok);
  CHECK(p.quantity == 1);
  // Explicit values are not replaced: validate_purchase judges them.
  REQUIRE(parse_purchase(R"({"user_id":"u","request_id":"r","quantity":0})", p)
          == errc::ok);
  CHECK(p.quantity == 0);
  REQUIRE(parse_purchase(R"({"user_id":"u","request_id":"r","quantity":-3})",
                         p)
          == errc::ok);
  CHECK(p.quantity == -3);
}

TEST_CASE("hostile purchase bodies are codes, not crashes", "[dto]") {
  struct bad {
    std::string body;
    errc code;
  };
  const std::string ok_ids = R"("user_id":"u","request_id":"r")";
  std::vector<bad> cases{
    {"", errc::invalid_item},
    {"   ", errc::invalid_item},
    {"null", errc::invalid_item},
    {"[]", errc::invalid_item},
    {R"([{"user_id":"u","request_id":"r"}])", errc::invalid_item},
    {"\"just a string\"", errc::invalid_item},
    {"{" + ok_ids + R"(,"quantity":)", errc::invalid_item}, // truncated
    {"{" + ok_ids, errc::invalid_item},                      // truncated
    {"{" + ok_ids + "} trailing", errc::invalid_item},
    {"{" + ok_ids + "}{}", errc::invalid_item},
    {"{" + ok_ids + R"(,"quantity":"abc"})", errc::invalid_quantity},
    {"{" + ok_ids + R"(,"quantity":1.5})", errc::invalid_quantity},
    {"{" + ok_ids + R"(,"quantity":99999999999999999999})",
     errc::invalid_quantity},
    {"{" + ok_ids + R"(,"quantity":9223372036854775808})",
     errc::invalid_quantity},
    {"{" + ok_ids + R"(,"quantity":true})", errc::invalid_quantity},
    {"{" + ok_ids + R"(,"quantity":[1]})", errc::invalid_quantity},
    {"{" + ok_ids + R"(,"quantity":{"n":1}})", errc::invalid_quantity},
    {"{" + ok_ids + R"(,"quantiy":2})", errc::invalid_item}, // typo
    {"{" + ok_ids + R"(,"item_id":"other"})", errc::invalid_item},
    {"{" + ok_ids + R"(,"quantity":1,"quantity":5})", errc::invalid_item},
    {R"({"user_id":"a","userId":"b","request_id":"r"})", errc::invalid_item},
    {R"({"user_id":{"a":[1,{"b":null}]},"request_id":"r"})",
     errc::invalid_id},
    {R"({"user_id":5,"request_id":"r"})", errc::invalid_id},
    {R"({"user_id":"u","request_id":["r"]})", errc::invalid_id},
    {R"({"request_id":"r"})", errc::invalid_id},
    {R"({"user_id":"","request_id":"r"})", errc::invalid_id},
    {R"({"user_id":"u"})", errc::invalid_id},
    {R"({"user_id":"u","request_id":null})", errc::invalid_id},
    {"{\"user_id\":\"\xff\xfe\",\"request_id\":\"r\"}", errc::invalid_item},
    {R"({"user_id":"\ud800","request_id":"r"})", errc::invalid_item},
    {std::string(100'000, '['), errc::invalid_item},
    {R"({"user_id":)" + std::string(100'000, '['), errc::invalid_item},
    {R"({"user_id":"u","request_id":"r","quantity":)"
       + std::string(500, '[') + "1" + std::string(500, ']') + "}",
     errc::invalid_item},
  };
  for (const auto& c : cases) {
    INFO("body: " << c.body.substr(0, 120));
    CHECK(parse_purchase(c.body) == c.code);
  }
}

TEST_CASE("odd but well-formed purchase bodies parse consistently", "[dto]") {
  // Valid UTF-8 and escapes are JSON-valid: parse succeeds, and the id is
  // refused later by validate_purchase. The same body always gives the same
  // answer.
  for (std::string user :
       {R"(\u0000x)", "\xe4\xb8\xad\xe6\x96\x87", R"(\ud83d\ude00)",
        "a\\nb"}) {
    auto body = R"({"user_id":")" + user + R"(","request_id":"r"})";
    INFO("body: " << body);
    purchase first;
    purchase second;
    REQUIRE(parse_purchase(body, first) == errc::ok);
    REQUIRE(parse_purchase(body, second) == errc::ok);
    CHECK(!first.user_id.empty());
    CHECK(caf::deep_to_string(first) == caf::deep_to_string(second));
  }
  // A very long id parses whole; its length is validate_purchase's concern.
  purchase p;
  std::string longest(1 << 20, 'x');
  REQUIRE(parse_purchase(R"({"user_id":")" + longest + R"(","request_id":"r"})",
                         p)
          == errc::ok);
  CHECK(p.user_id == longest);
}

TEST_CASE("every truncation of a valid body is refused", "[dto]") {
  const std::string body
    = R"({"user_id":"u1","request_id":"r1","quantity":2})";
  purchase p;
  REQUIRE(parse_purchase(body, p) == errc::ok);
  for (std::size_t n = 0; n < body.size(); ++n) {
    INFO("prefix: " << body.substr(0, n));
    CHECK(parse_purchase(body.substr(0, n)) == errc::invalid_item);
  }
}

TEST_CASE("byte-flipped bodies never crash and never buy by accident",
          "[dto]") {
  // Seeded: a failure replays. Every result is a known code, and a body
  // that still parses still spells out its quantity (a mangled key is an
  // unknown field, never a silent default of 1).
  const std::string body
    = R"({"user_id":"u1","request_id":"r1","quantity":2})";
  std::mt19937 rng{20240601};
  std::uniform_int_distribution<std::size_t> pos(0, body.size() - 1);
  std::uniform_int_distribution<int> byte(0, 255);
  for (int i = 0; i < 5000; ++i) {
    auto mutated = body;
    mutated[pos(rng)] = static_cast<char>(byte(rng));
    purchase p;
    auto code = parse_purchase(mutated, p);
    INFO("seed 20240601, step " << i << ", body: " << mutated);
    CHECK((code == errc::ok || code == errc::invalid_item
           || code == errc::invalid_id || code == errc::invalid_quantity));
    if (code == errc::ok)
      CHECK(mutated.find(R"("quantity":)") != std::string::npos);
  }
}

TEST_CASE("item bodies: defaults, types and modes", "[dto]") {
  item_spec s;
  REQUIRE(parse_item_json(R"({"item_id":"a","total":5})", s) == errc::ok);
  item_spec defaults;
  CHECK(s.per_user_limit == defaults.per_user_limit);
  CHECK(s.mode == defaults.mode);
  CHECK(s.reserve_ttl_ms == defaults.reserve_ttl_ms);
  REQUIRE(parse_item_json(R"({"item_id":"a","per_user_limit":0})", s)
          == errc::ok);
  CHECK(s.per_user_limit == 0); // given: validate_spec refuses it later
  struct bad {
    std::string body;
    errc code;
  };
  std::vector<bad> cases{
    {"", errc::invalid_item},
    {"[]", errc::invalid_item},
    {R"({"item_id":"a","mode":"fast"})", errc::invalid_item},
    {R"({"item_id":"a","mode":""})", errc::invalid_item},
    {R"({"item_id":"a","total":"x"})", errc::invalid_item},
    {R"({"item_id":"a","total":2.5})", errc::invalid_item},
    {R"({"item_id":"a","totl":5})", errc::invalid_item},
    {R"({"item_id":"a","total":1,"total":2})", errc::invalid_item},
    {R"({"item_id":7})", errc::invalid_id},
    {R"({"total":5})", errc::invalid_id},
    {R"({"item_id":""})", errc::invalid_id},
  };
  for (const auto& c : cases) {
    INFO("body: " << c.body);
    item_spec out = sample_spec();
    std::string why;
    CHECK(parse_item_json(c.body, out, &why) == c.code);
    CHECK(caf::deep_to_string(out) == caf::deep_to_string(sample_spec()));
    CHECK(printable_ascii(why));
  }
}

TEST_CASE("from_proto refuses unknown enum texts", "[dto]") {
  auto msg = to_proto(sample_spec(), item_status::on_sale);
  msg.set_mode("turbo");
  item_spec spec;
  CHECK(from_proto(msg, spec) == errc::invalid_item);
  CHECK(spec.item_id.empty()); // unchanged
  auto o = to_proto(sample_order(order_state::pending));
  o.set_state("lost");
  order out;
  CHECK(from_proto(o, out) == errc::invalid_item);
  CHECK(out.order_id.empty());
}

TEST_CASE("every errc has its HTTP status", "[dto]") {
  struct row {
    errc code;
    int status;
  };
  const std::vector<row> table{
    {errc::ok, 200},
    {errc::sold_out, 409},
    {errc::user_limit_exceeded, 409},
    {errc::not_started, 403},
    {errc::ended, 403},
    {errc::paused, 403},
    {errc::busy, 429},
    {errc::rate_limited, 429},
    {errc::unpaid_limit, 429},
    {errc::capacity_exceeded, 503},
    {errc::unknown_item, 404},
    {errc::unknown_order, 404},
    {errc::item_exists, 409},
    {errc::invalid_quantity, 400},
    {errc::invalid_id, 400},
    {errc::invalid_item, 400},
    {errc::expired, 410},
    {errc::not_cancellable, 409},
    {errc::not_payable, 409},
    {errc::request_conflict, 409},
    {errc::store_unavailable, 503},
    {errc::shard_unavailable, 503},
    {errc::corrupt_state, 500},
    {errc::bad_request, 400},
    {errc::unauthorized, 401},
    {errc::forbidden, 403},
    {errc::not_found, 404},
    {errc::method_not_allowed, 405},
    {errc::request_timeout, 408},
    {errc::payload_too_large, 413},
    {errc::uri_too_long, 414},
    {errc::headers_too_large, 431},
    {errc::overloaded, 503},
    {errc::timeout, 503},
  };
  // The table covers the enum exactly: a new code must be added here.
  REQUIRE(table.size() == static_cast<std::size_t>(errc_last) + 1);
  for (std::size_t i = 0; i < table.size(); ++i) {
    INFO(to_string(table[i].code));
    CHECK(static_cast<std::size_t>(table[i].code) == i);
    CHECK(http_status(table[i].code) == table[i].status);
  }
  CHECK(http_status(static_cast<errc>(200)) == 500);
}

TEST_CASE("problem bodies carry code, type, title and retry hint", "[dto]") {
  auto json = to_json(make_problem(errc::busy, 429, "waiting room full", 250));
  CHECK(json.find(R"("code":"busy")") != std::string::npos);
  CHECK(json.find(R"("type":"https://seckill.dev/problems/busy")")
        != std::string::npos);
  CHECK(json.find(R"("status":429)") != std::string::npos);
  CHECK(json.find(R"("retry_after_ms":"250")") != std::string::npos);
  auto back = from_json<v1::Problem>(json);
  CHECK(back.detail() == "waiting room full");
  for (int i = 0; i <= static_cast<int>(errc_last); ++i) {
    auto code = static_cast<errc>(i);
    auto p = make_problem(code, http_status(code), "d");
    INFO(to_string(code));
    CHECK(p.code() == to_string(code));
    CHECK(p.status() == http_status(code));
    CHECK(!p.title().empty());
    CHECK(p.retry_after_ms() == 0);
    CHECK(to_json(p).find("\"code\"") != std::string::npos);
  }
}

TEST_CASE("problem details quoting hostile input are made safe", "[dto]") {
  std::string hostile = "bad \xff\xfe\n\r\t\x01 byte";
  hostile += std::string(10'000, 'x');
  auto p = make_problem(errc::invalid_item, 400, hostile, -5);
  CHECK(printable_ascii(p.detail()));
  CHECK(p.detail().size() == 256);
  CHECK(p.detail().compare(0, 8, "bad ??  ") == 0);
  CHECK(p.detail().substr(253) == "...");
  CHECK(p.retry_after_ms() == 0);
  // A reason from the parser quoting invalid UTF-8 stays printable too.
  std::string why;
  purchase out;
  CHECK(parse_purchase_json("{\"user_id\":\"\xff\"}", "sku-1", out, &why)
        == errc::invalid_item);
  CHECK(printable_ascii(why));
}
