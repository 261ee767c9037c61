// Tests of messages/dto.hpp: structs survive struct -> proto -> JSON -> proto
// -> struct; the JSON out uses snake_case and prints zeros; camelCase input
// is accepted; hostile bodies (broken, truncated, mistyped, unknown or
// duplicate fields, deep nesting, bad UTF-8, huge strings, byte-flipped
// bodies) are result codes with a printable reason, never a crash, and leave
// the output untouched; every errc has its HTTP status and a problem body.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <caf/deep_to_string.hpp>
#include <google/protobuf/util/json_util.h>

#include "messages/dto.hpp"
#include "messages/json_fast.hpp"
#include "messages/limits.hpp"

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
    CHECK(caf::deep_to_string(out) == caf::deep_to_string(sentinel_purchase()));
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
  for (auto state :
       {order_state::reserved, order_state::pending, order_state::confirmed,
        order_state::cancelled, order_state::expired}) {
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
  REQUIRE(parse_purchase(R"({"userId":"u1","requestId":"r1","quantity":2})", p)
          == errc::ok);
  CHECK(p.item_id == "sku-1");
  CHECK(p.user_id == "u1");
  CHECK(p.request_id == "r1");
  CHECK(p.quantity == 2);
  REQUIRE(
    parse_purchase(R"({"user_id":"u1","request_id":"r1","quantity":"4"})", p)
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
  REQUIRE(parse_purchase(R"({"user_id":"u","request_id":"r"})", p) == errc::ok);
  CHECK(p.quantity == 1);
  REQUIRE(
    parse_purchase(R"({"user_id":"u","request_id":"r","quantity":null})", p)
    == errc::ok);
  CHECK(p.quantity == 1);
  // Explicit values are not replaced: validate_purchase judges them.
  REQUIRE(parse_purchase(R"({"user_id":"u","request_id":"r","quantity":0})", p)
          == errc::ok);
  CHECK(p.quantity == 0);
  REQUIRE(parse_purchase(R"({"user_id":"u","request_id":"r","quantity":-3})", p)
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
    {"{" + ok_ids, errc::invalid_item},                     // truncated
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
    {R"({"user_id":{"a":[1,{"b":null}]},"request_id":"r"})", errc::invalid_id},
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
    // A nested value is blamed on its field, before any parser nests.
    {R"({"user_id":"u","request_id":"r","quantity":)" + std::string(500, '[')
       + "1" + std::string(500, ']') + "}",
     errc::invalid_quantity},
    // Strict as the README says: protobuf's parser alone took these.
    {R"({'user_id':'u','request_id':'r'})", errc::invalid_item},
    {R"({user_id:"u",request_id:"r"})", errc::invalid_item},
    {R"({"user_id":"u","request_id":"r",})", errc::invalid_item},
    {R"({"user_id":"u","request_id":"r","quantity":2,})", errc::invalid_item},
    {R"({"user_id":"u",/* c */"request_id":"r"})", errc::invalid_item},
    {R"({"user_id":"u","request_id":"r","quantity":0x2})", errc::invalid_item},
    {R"({"user_id":"u","request_id":"r","quantity":+2})", errc::invalid_item},
    {R"({"user_id":"u","request_id":"r","quantity":NaN})", errc::invalid_item},
    // Over the JSON budget, whatever it holds.
    {R"({"request_id":"r","user_id":")"
       + std::string(limits::json_body_bytes_max, 'x') + R"("})",
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
       {R"(\u0000x)", "\xe4\xb8\xad\xe6\x96\x87", R"(\ud83d\ude00)", "a\\nb"}) {
    auto body = R"({"user_id":")" + user + R"(","request_id":"r"})";
    INFO("body: " << body);
    purchase first;
    purchase second;
    REQUIRE(parse_purchase(body, first) == errc::ok);
    REQUIRE(parse_purchase(body, second) == errc::ok);
    CHECK(!first.user_id.empty());
    CHECK(caf::deep_to_string(first) == caf::deep_to_string(second));
  }
  // A long id within the JSON budget parses whole (its length is
  // validate_purchase's concern); a body over the budget is refused.
  purchase p;
  std::string longest(limits::json_body_bytes_max - 40, 'x');
  REQUIRE(
    parse_purchase(R"({"user_id":")" + longest + R"(","request_id":"r"})", p)
    == errc::ok);
  CHECK(p.user_id == longest);
  CHECK(parse_purchase(R"({"user_id":")" + std::string(1 << 20, 'x')
                         + R"(","request_id":"r"})",
                       p)
        == errc::invalid_item);
}

TEST_CASE("a body with several faults gets the same reason every time",
          "[dto]") {
  // Found by tests/fuzz/fuzz_purchase_json: the unknown field named was
  // whichever a protobuf Map met first, and its order changes from one map
  // to the next (twenty reads of four unknown fields agreed by chance
  // almost never).
  const std::string body =
    R"({"Unknownuser_id":"\u0000x","requ0st_id":"r","zz":1,"aa":2})";
  std::string first;
  for (int i = 0; i < 20; ++i) {
    purchase p;
    std::string why;
    REQUIRE(parse_purchase_json(body, "sku-1", p, &why) == errc::invalid_item);
    if (i == 0)
      first = why;
    CHECK(why == first);
  }
  CHECK(first == "unknown field \"Unknownuser_id\"");
}

TEST_CASE("every truncation of a valid body is refused", "[dto]") {
  const std::string body = R"({"user_id":"u1","request_id":"r1","quantity":2})";
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
  const std::string body = R"({"user_id":"u1","request_id":"r1","quantity":2})";
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
    {errc::unauthenticated, 401},
    {errc::token_required, 403},
    {errc::invalid_token, 403},
    {errc::too_fast, 403},
    {errc::wrong_answer, 403},
    {errc::challenge_used, 403},
    {errc::user_mismatch, 403},
    {errc::queued, 429},
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

// -- The purchase path's fast JSON (messages/json_fast.hpp) ---------------------

namespace {

struct parse_result {
  errc code = errc::ok;
  std::string why;
  std::string out; // deep_to_string of the purchase
};

parse_result parse_with(bool fast_allowed, const std::string& body) {
  parse_result r;
  auto p = sentinel_purchase();
  r.code = fast_allowed
             ? parse_purchase_json(body, "sku-1", p, &r.why)
             : parse_purchase_json_protobuf(body, "sku-1", p, &r.why);
  r.out = caf::deep_to_string(p);
  return r;
}

/// The fast path may only agree with protobuf: whenever it takes a body,
/// protobuf accepts it with the same purchase; and the public parser, fast
/// path included, answers every body as protobuf alone (code, output and,
/// with `same_reason`, the reason). Returns whether the fast path took it.
///
/// `same_reason` is off for generated bodies: with several faults (two
/// unknown keys, say) protobuf names whichever its map iterates to first,
/// and that order differs between two parses of the same body.
bool check_same_as_protobuf(const std::string& body, bool same_reason = true) {
  INFO("body: " << body.substr(0, 200));
  auto reference = parse_with(false, body);
  auto full = parse_with(true, body);
  CHECK(full.code == reference.code);
  if (same_reason || reference.code == errc::ok)
    CHECK(full.why == reference.why);
  CHECK(full.out == reference.out);
  auto fast = sentinel_purchase();
  bool taken = json_fast::read_purchase(body, "sku-1", fast);
  if (taken) {
    CHECK(reference.code == errc::ok);
    CHECK(caf::deep_to_string(fast) == reference.out);
  } else {
    CHECK(caf::deep_to_string(fast)
          == caf::deep_to_string(sentinel_purchase()));
  }
  return taken;
}

/// A random order: plain ids mostly, and now and then a string protobuf
/// must escape or a number at the edge of int64.
order random_order(std::mt19937& rng) {
  static const std::vector<std::string> texts{
    "",         "sku-1",  "sku-1.7", "u42", "r-9_x", "A.b-c_d", "a\"b",
    "a\\b",     "a<b>&c", "a/b",     "a b", "\x01",  "\x7f",    "\xe4\xb8\xad",
    "\xc3\xa9", "tab\tx", "\u2028",  "a'b", "=",     "x:y",     "a<b",
    "a>b",      "a&b",    "a+b",     "a~b",
  };
  static const std::vector<int64_t> numbers{
    0, 1, -1, 3, 1'700'000'000'001, INT64_MAX, INT64_MIN, 999'999'999'999,
  };
  auto text = [&] {
    std::uniform_int_distribution<std::size_t> plain(0, 5);
    std::uniform_int_distribution<std::size_t> any(0, texts.size() - 1);
    // Four in five strings are plain, as the engine's ids are.
    return std::uniform_int_distribution<int>(0, 4)(rng) != 0
             ? texts[plain(rng)]
             : texts[any(rng)];
  };
  auto number = [&] {
    std::uniform_int_distribution<std::size_t> i(0, numbers.size() - 1);
    return numbers[i(rng)];
  };
  order o;
  o.order_id = text();
  o.item_id = text();
  o.user_id = text();
  o.request_id = text();
  o.quantity = number();
  o.state = static_cast<order_state>(
    std::uniform_int_distribution<int>(0, 5)(rng)); // 5: not a state
  o.created_ms = number();
  o.expires_ms = number();
  o.updated_ms = number();
  return o;
}

} // namespace

TEST_CASE("the purchase fast path takes plain bodies, as protobuf reads them",
          "[dto]") {
  std::vector<std::string> plain{
    R"({"user_id":"u1","request_id":"r1"})",
    R"({"user_id":"u1","request_id":"r1","quantity":1})",
    R"({"request_id":"r1","quantity":2,"user_id":"u1"})",
    R"({"userId":"u1","requestId":"r1","quantity":3})",
    R"({"quantity":0,"userId":"u1","request_id":"r1"})",
    R"({"user_id":"u1","request_id":"r1","quantity":-3})",
    R"({"user_id":"u1","request_id":"r1","quantity":999999999999999999})",
    R"({"user_id":"u1","request_id":"r1","quantity":-999999999999999999})",
    " \t\r\n{ \"user_id\" : \"u 1\" ,\n\"request_id\"\t:\"r/1\" } \n",
    R"x({"user_id":"<script>&'","request_id":"~!@#$%^*()"})x",
    R"({"user_id":"u1","request_id":"r1","quantity":10})",
  };
  for (const auto& body : plain) {
    INFO("body: " << body);
    CHECK(check_same_as_protobuf(body));
  }
}

TEST_CASE("the purchase fast path leaves odd bodies to protobuf", "[dto]") {
  const std::string ids = R"("user_id":"u","request_id":"r")";
  std::vector<std::string> odd{
    "",
    "{}",
    "null",
    "[]",
    "{" + ids + "",
    "{" + ids + "}x",
    "{" + ids + "}{}",
    "{" + ids + ",}",
    "{," + ids + "}",
    "{" + ids + ",,\"quantity\":1}",
    // Escapes and non-ASCII, valid and invalid.
    R"({"user_id":"a\"b","request_id":"r"})",
    R"({"user_id":"a\\b","request_id":"r"})",
    R"({"user_id":"\u0041","request_id":"r"})",
    R"({"user_id":"\ud83d\ude00","request_id":"r"})",
    R"({"user_id":"\ud800","request_id":"r"})",
    R"({"user_id":"a\nb","request_id":"r"})",
    R"({"user_\u0069d":"u","request_id":"r"})",
    "{\"user_id\":\"\xe4\xb8\xad\",\"request_id\":\"r\"}",
    "{\"user_id\":\"\xff\",\"request_id\":\"r\"}",
    "{\"user_id\":\"a\tb\",\"request_id\":\"r\"}",
    "{\"user_id\":\"a\x7f\",\"request_id\":\"r\"}",
    "\xef\xbb\xbf{" + ids + "}",
    // Whitespace JSON does not have.
    "\v{" + ids + "}",
    "{" + ids + "}\f",
    "{\v" + ids + "}",
    // Names: unknown, other cases, duplicates across the two spellings.
    "{" + ids + R"(,"item_id":"x"})",
    "{" + ids + R"(,"Quantity":1})",
    R"({"UserId":"u","request_id":"r"})",
    R"({"user_Id":"u","request_id":"r"})",
    R"({"user_id":"u","request_id":"r","":1})",
    R"({"user_id":"u","userId":"u","request_id":"r"})",
    R"({"user_id":"u","request_id":"r","requestId":"r"})",
    R"({"user_id":"u","user_id":"v","request_id":"r"})",
    "{" + ids + R"(,"quantity":1,"quantity":1})",
    R"({user_id:"u","request_id":"r"})",
    R"({'user_id':'u','request_id':'r'})",
    // Missing, empty or null ids.
    R"({"user_id":"u"})",
    R"({"request_id":"r"})",
    R"({"user_id":"","request_id":"r"})",
    R"({"user_id":"u","request_id":""})",
    R"({"user_id":null,"request_id":"r"})",
    "{" + ids + R"(,"quantity":null})",
    // Wrong types.
    R"({"user_id":5,"request_id":"r"})",
    R"({"user_id":true,"request_id":"r"})",
    R"({"user_id":["u"],"request_id":"r"})",
    R"({"user_id":{},"request_id":"r"})",
    "{" + ids + R"(,"quantity":"5"})",
    "{" + ids + R"(,"quantity":"-5"})",
    "{" + ids + R"(,"quantity":true})",
    "{" + ids + R"(,"quantity":[1]})",
    "{" + ids + R"(,"quantity":{}})",
    // Numbers in every other form.
    "{" + ids + R"(,"quantity":1.0})",
    "{" + ids + R"(,"quantity":1.5})",
    "{" + ids + R"(,"quantity":1e2})",
    "{" + ids + R"(,"quantity":1E0})",
    "{" + ids + R"(,"quantity":01})",
    "{" + ids + R"(,"quantity":00})",
    "{" + ids + R"(,"quantity":-0})",
    "{" + ids + R"(,"quantity":+1})",
    "{" + ids + R"(,"quantity":-})",
    "{" + ids + R"(,"quantity":0x10})",
    "{" + ids + R"(,"quantity":Infinity})",
    "{" + ids + R"(,"quantity":NaN})",
    "{" + ids + R"(,"quantity":9999999999999999999})",
    "{" + ids + R"(,"quantity":9223372036854775807})",
    "{" + ids + R"(,"quantity":-9223372036854775808})",
    "{" + ids + R"(,"quantity":1234567890123456789})",
  };
  for (const auto& body : odd) {
    INFO("body: " << body);
    CHECK_FALSE(check_same_as_protobuf(body));
  }
}

TEST_CASE("the purchase fast path agrees with protobuf on random bodies",
          "[dto]") {
  // Seeded: a failure replays. Half the bodies are near-plain (the three
  // fields in any order and spelling, a value now and then swapped for an
  // odd one), half are put together from any keys, values and spaces.
  const std::vector<std::string> keys{
    "user_id",  "userId",  "request_id", "requestId", "quantity",
    "Quantity", "item_id", "",           "user_id ",  "us\xc3\xa9rId",
  };
  const std::vector<std::string> values{
    R"("u1")",
    R"("r-2")",
    R"("x y")",
    R"("")",
    R"("a\"b")",
    R"("\u0041")",
    "\"\xc3\xa9\"",
    "\"\xff\"",
    "1",
    "2",
    "-1",
    "0",
    "-0",
    "01",
    "1.0",
    "1e2",
    R"("5")",
    "true",
    "null",
    "[]",
    "{}",
    "999999999999999999",
    "9999999999999999999",
    "-999999999999999999",
    "12345678901234567890",
  };
  const std::vector<std::string> plain_spaces{"",   "",   "",  " ",
                                              "\n", "\t", "\r"};
  const std::vector<std::string> odd_spaces{"", " ", "\v", "\f", "\xc2\xa0"};
  std::mt19937 rng{20250207};
  auto pick = [&](const std::vector<std::string>& from) {
    return from[std::uniform_int_distribution<std::size_t>(0, from.size()
                                                                - 1)(rng)];
  };
  auto one_in = [&](int n) {
    return std::uniform_int_distribution<int>(0, n - 1)(rng) == 0;
  };
  auto near_plain = [&](int step) {
    std::vector<std::pair<std::string, std::string>> members{
      {one_in(2) ? "user_id" : "userId", "\"u" + std::to_string(step) + "\""},
      {one_in(2) ? "request_id" : "requestId",
       "\"r-" + std::to_string(step) + "\""},
    };
    if (!one_in(3))
      members.emplace_back(
        "quantity",
        std::to_string(std::uniform_int_distribution<int>(-5, 50)(rng)));
    std::shuffle(members.begin(), members.end(), rng);
    std::string body = pick(plain_spaces) + "{";
    for (std::size_t m = 0; m < members.size(); ++m) {
      auto key = one_in(10) ? pick(keys) : members[m].first;
      auto value = one_in(10) ? pick(values) : members[m].second;
      body += (m > 0 ? "," : "") + pick(plain_spaces) + "\"" + key + "\""
              + pick(plain_spaces) + ":" + pick(plain_spaces) + value
              + pick(plain_spaces);
    }
    return body + "}" + pick(one_in(10) ? odd_spaces : plain_spaces);
  };
  auto anything = [&] {
    auto space = [&] { return pick(one_in(2) ? plain_spaces : odd_spaces); };
    std::string body = space() + "{";
    int members = std::uniform_int_distribution<int>(0, 4)(rng);
    for (int m = 0; m < members; ++m)
      body += (m > 0 ? space() + "," : "") + space() + "\"" + pick(keys) + "\""
              + space() + ":" + space() + pick(values);
    return body + space() + "}" + space();
  };
  int taken = 0;
  const int bodies = 4000;
  for (int i = 0; i < bodies; ++i) {
    auto body = one_in(2) ? near_plain(i) : anything();
    if (one_in(20))
      body.resize(std::uniform_int_distribution<std::size_t>(0, body.size())(
        rng)); // truncated
    INFO("seed 20250207, step " << i);
    if (check_same_as_protobuf(body, false))
      ++taken;
  }
  // Near-plain bodies are often plain: the fast path must take many.
  CHECK(taken > bodies / 8);
}

TEST_CASE("orders print the same with and without protobuf", "[dto]") {
  for (auto state :
       {order_state::reserved, order_state::pending, order_state::confirmed,
        order_state::cancelled, order_state::expired}) {
    auto o = sample_order(state);
    std::string fast;
    REQUIRE(json_fast::write_order(o, fast));
    CHECK(fast == to_json(to_proto(o)));
    CHECK(order_json(o) == fast);
  }
  std::string empty;
  REQUIRE(json_fast::write_order(order{}, empty));
  CHECK(empty == to_json(to_proto(order{})));
  // Seeded: a failure replays.
  std::mt19937 rng{20250208};
  int written = 0;
  for (int i = 0; i < 3000; ++i) {
    auto o = random_order(rng);
    INFO("seed 20250208, step " << i << ": " << caf::deep_to_string(o));
    auto reference = to_json(to_proto(o));
    CHECK(order_json(o) == reference);
    std::string fast = "prefix";
    if (json_fast::write_order(o, fast)) {
      ++written;
      CHECK(fast == "prefix" + reference);
    } else {
      CHECK(fast == "prefix");
    }
  }
  CHECK(written > 100);
}

TEST_CASE("json_fast: a problem body prints as protobuf prints it, for every "
          "code",
          "[dto]") {
  const std::vector<std::string> details{
    "",
    "the node is shedding load: 300 requests in flight, the bound now",
    "over this node's rate of 100000 requests/s",
    "see the item fields' ranges in the README",
    "a (plain) reason; with / and _ and - and ?",
    "x<y", // protobuf escapes these: the fast path must step aside
    "say \"hi\"",
    "back\\slash",
    "tab\there",
    "caf\xc3\xa9",
    "a&b=c",
    "100%",
  };
  const std::vector<int64_t> retries{
    0, 1, 999, 5'000, -7, std::numeric_limits<int64_t>::max()};
  int fast = 0;
  for (int c = 0; c <= static_cast<int>(errc_last); ++c) {
    auto code = static_cast<errc>(c);
    for (const auto& detail : details)
      for (auto retry : retries) {
        auto status = http_status(code);
        auto expected = to_json(make_problem(code, status, detail, retry));
        std::string got = "kept:";
        if (json_fast::write_problem(code, status, detail, retry, got)) {
          ++fast;
          INFO("code " << to_string(code) << ", detail '" << detail << "'");
          CHECK(got == "kept:" + expected);
        } else {
          CHECK(got == "kept:"); // untouched when it steps aside
        }
      }
  }
  // Every code's title is plain: with a plain detail the fast path is taken.
  for (int c = 0; c <= static_cast<int>(errc_last); ++c) {
    std::string out;
    INFO("code " << to_string(static_cast<errc>(c)));
    CHECK(json_fast::write_problem(static_cast<errc>(c), 503,
                                   "shedding: 5 in flight", 1'000, out));
  }
  CHECK(fast > 0);
}
