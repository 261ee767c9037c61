// Tests of the user session's pure rules (actors/sale/session_book.hpp):
// its early checks (decide_session) and what it learns from the item's
// answers and the items' announcements (learn_order, learn_error,
// forget_unpaid, learn_unpaid), and the bounds on what it remembers.
//
// No clocks and no actors run here: time is a plain int64 ms argument.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <string>

#include "actors/sale/session_book.hpp"
#include "actors/sale/token_bucket.hpp"
#include "messages/errors.hpp"
#include "messages/limits.hpp"
#include "messages/types.hpp"

using namespace seckill;

// -- Session rules ------------------------------------------------------------

namespace {

session_book make_session(double burst = 100, int64_t now_ms = 0) {
  session_book s;
  s.bucket = make_bucket(10, burst, now_ms);
  return s;
}

purchase buy(const std::string& item, const std::string& request,
             int64_t quantity = 1) {
  purchase p;
  p.item_id = item;
  p.user_id = "u1";
  p.request_id = request;
  p.quantity = quantity;
  return p;
}

order made(const std::string& item, int64_t seq, const std::string& request,
           int64_t quantity, order_state state, int64_t expires_ms = 0) {
  order o;
  o.order_id = item + "." + std::to_string(seq);
  o.item_id = item;
  o.user_id = "u1";
  o.request_id = request;
  o.quantity = quantity;
  o.state = state;
  o.expires_ms = expires_ms;
  return o;
}

} // namespace

TEST_CASE("decide_session: rate_limited when the bucket is empty", "[rules]") {
  auto s = make_session(2);
  CHECK(decide_session(s, buy("i", "r1"), 5, 3, 0) == errc::ok);
  CHECK(decide_session(s, buy("i", "r2"), 5, 3, 0) == errc::ok);
  CHECK(decide_session(s, buy("i", "r3"), 5, 3, 0) == errc::rate_limited);
  // 10/s: a token is back 100 ms later.
  CHECK(decide_session(s, buy("i", "r3"), 5, 3, 99) == errc::rate_limited);
  CHECK(decide_session(s, buy("i", "r3"), 5, 3, 100) == errc::ok);
}

TEST_CASE("decide_session: unpaid_limit counts live unpaid orders only",
          "[rules]") {
  auto s = make_session();
  learn_order(s, made("a", 1, "r1", 1, order_state::reserved, 5'000));
  learn_order(s, made("b", 1, "r2", 1, order_state::pending, 6'000));
  REQUIRE(s.unpaid.size() == 2u);

  CHECK(decide_session(s, buy("c", "r3"), 5, 3, 0) == errc::ok);
  CHECK(decide_session(s, buy("c", "r3"), 5, 2, 0) == errc::unpaid_limit);
  CHECK(decide_session(s, buy("c", "r3"), 5, 2, 4'999) == errc::unpaid_limit);
  // At its deadline the first no longer counts.
  CHECK(decide_session(s, buy("c", "r3"), 5, 2, 5'000) == errc::ok);
  CHECK(s.unpaid.size() == 1u);
  CHECK(s.unpaid.count("b.1") == 1u);
  CHECK(decide_session(s, buy("c", "r3"), 5, 1, 5'999) == errc::unpaid_limit);
  CHECK(decide_session(s, buy("c", "r3"), 5, 1, 6'000) == errc::ok);
  CHECK(s.unpaid.empty());
}

TEST_CASE("decide_session: user_limit_exceeded from what the session holds",
          "[rules]") {
  auto s = make_session();
  learn_order(s, made("i", 1, "r1", 2, order_state::confirmed));
  CHECK(s.items.at("i").held == 2);
  CHECK(decide_session(s, buy("i", "r2", 1), 3, 3, 0) == errc::ok);
  CHECK(decide_session(s, buy("i", "r2", 2), 3, 3, 0)
        == errc::user_limit_exceeded);
  // Another item is not limited by this one.
  CHECK(decide_session(s, buy("j", "r2", 3), 3, 3, 0) == errc::ok);
}

TEST_CASE("decide_session: a request answered before skips the early checks",
          "[rules]") {
  auto s = make_session(2);
  learn_order(s, made("i", 1, "r1", 3, order_state::reserved, 10'000));
  // At the limit and at the unpaid cap, the retry still goes on to the item.
  CHECK(decide_session(s, buy("i", "r2", 1), 3, 1, 0) == errc::unpaid_limit);
  CHECK(decide_session(s, buy("i", "r1", 3), 3, 1, 0) == errc::ok);
  // But it still costs a token: both were spent above.
  CHECK(decide_session(s, buy("i", "r1", 3), 3, 1, 0) == errc::rate_limited);
  // The same request id on another item is a new request.
  CHECK(decide_session(s, buy("j", "r1", 1), 3, 1, 100) == errc::unpaid_limit);
}

TEST_CASE("decide_session: capacity_exceeded for one item too many",
          "[rules]") {
  auto s = make_session();
  for (std::size_t k = 0; k + 1 < limits::session_items_max; ++k)
    s.items["item" + std::to_string(k)];
  CHECK(decide_session(s, buy("new1", "r1"), 3, 3, 0) == errc::ok);
  s.items["last"];
  REQUIRE(s.items.size() == limits::session_items_max);
  CHECK(decide_session(s, buy("new2", "r2"), 3, 3, 0)
        == errc::capacity_exceeded);
  // Items it already tracks are still served.
  CHECK(decide_session(s, buy("item0", "r3"), 3, 3, 0) == errc::ok);
}

TEST_CASE("learn_order counts each request once and tracks unpaid orders",
          "[rules]") {
  auto s = make_session();
  auto o = made("i", 1, "r1", 2, order_state::reserved, 9'000);
  learn_order(s, o);
  learn_order(s, o); // the retry's answer is the same order
  CHECK(s.items.at("i").held == 2);
  CHECK(s.unpaid.size() == 1u);
  CHECK(s.unpaid.at("i.1").quantity == 2);
  CHECK(s.unpaid.at("i.1").item_id == "i");
  CHECK(s.unpaid.at("i.1").expires_ms == 9'000);

  learn_order(s, made("i", 2, "r2", 1, order_state::pending, 9'500));
  CHECK(s.items.at("i").held == 3);
  CHECK(s.unpaid.size() == 2u);

  learn_order(s, made("i", 3, "r3", 1, order_state::confirmed));
  CHECK(s.items.at("i").held == 4);
  CHECK(s.unpaid.size() == 2u);

  // A request answered with a final order that holds nothing.
  learn_order(s, made("i", 4, "r4", 1, order_state::cancelled));
  learn_order(s, made("i", 5, "r5", 1, order_state::expired));
  CHECK(s.items.at("i").held == 4);
  CHECK(s.unpaid.size() == 2u);
  CHECK(s.items.at("i").requests.size() == 5u);
}

TEST_CASE("learn_error remembers that the user is at the limit", "[rules]") {
  auto s = make_session();
  learn_error(s, buy("i", "r1"), errc::sold_out, 3);
  learn_error(s, buy("i", "r1"), errc::busy, 3);
  CHECK(decide_session(s, buy("i", "r1", 3), 3, 3, 0) == errc::ok);
  learn_error(s, buy("i", "r1"), errc::user_limit_exceeded, 3);
  CHECK(held_units(s.items.at("i")) == 3);
  CHECK(decide_session(s, buy("i", "r2", 1), 3, 3, 0)
        == errc::user_limit_exceeded);
}

TEST_CASE("a replay after a limit refusal is not counted twice: the units "
          "come back when the reservation is cancelled",
          "[rules]") {
  // Limit 2. The user holds a reservation of 2 this session does not know
  // (another session's: a partition split them, or a retirement). A new
  // request is refused by the item; the retry of the old one replays it.
  auto s = make_session();
  learn_error(s, buy("i", "r2", 1), errc::user_limit_exceeded, 2);
  learn_order(s, made("i", 1, "r1", 2, order_state::reserved, 9'000));
  CHECK(held_units(s.items.at("i")) == 2); // not 4
  CHECK(decide_session(s, buy("i", "r3", 1), 2, 3, 0)
        == errc::user_limit_exceeded);
  // Cancelled: the user holds nothing, and may buy again.
  forget_unpaid(s, "i.1", true);
  CHECK(held_units(s.items.at("i")) == 0);
  CHECK(decide_session(s, buy("i", "r3", 1), 2, 3, 0) == errc::ok);
}

TEST_CASE("forget_unpaid frees the units and the unpaid slot", "[rules]") {
  auto s = make_session();
  learn_order(s, made("i", 1, "r1", 2, order_state::reserved, 9'000));
  learn_order(s, made("i", 2, "r2", 1, order_state::confirmed));
  REQUIRE(s.items.at("i").held == 3);
  CHECK(decide_session(s, buy("i", "r3", 1), 3, 3, 0)
        == errc::user_limit_exceeded);
  CHECK(decide_session(s, buy("j", "r3", 1), 3, 1, 0) == errc::unpaid_limit);

  forget_unpaid(s, "i.1", true); // cancelled or expired: units come back
  CHECK(s.items.at("i").held == 1);
  CHECK(s.unpaid.empty());
  CHECK(decide_session(s, buy("i", "r3", 2), 3, 1, 0) == errc::ok);

  // Unknown or already forgotten ids change nothing.
  forget_unpaid(s, "i.1", true);
  forget_unpaid(s, "nope.7", true);
  CHECK(s.items.size() == 1u);
  CHECK(s.items.at("i").held == 1);
}

TEST_CASE("forget_unpaid of a paid order frees the slot, not the units",
          "[rules]") {
  auto s = make_session();
  learn_order(s, made("i", 1, "r1", 2, order_state::reserved, 9'000));
  forget_unpaid(s, "i.1", false);
  CHECK(s.unpaid.empty());
  CHECK(s.items.at("i").held == 2);
  CHECK(decide_session(s, buy("i", "r2", 2), 3, 3, 0)
        == errc::user_limit_exceeded);
}

TEST_CASE("an expired reservation no longer counts against the user's limit",
          "[rules]") {
  // Limit 1: a reservation of 1 expiring at 5000 blocks until 5000, then the
  // session must let the user buy again (the item expired it).
  auto s = make_session();
  learn_order(s, made("i", 1, "r1", 1, order_state::reserved, 5'000));
  CHECK(decide_session(s, buy("i", "r2", 1), 1, 3, 4'999)
        == errc::user_limit_exceeded);
  CHECK(decide_session(s, buy("i", "r2", 1), 1, 3, 5'000) == errc::ok);
  CHECK(s.items.at("i").held == 0);
}

TEST_CASE("retry_after_ms of an empty error is 0", "[rules]") {
  CHECK(retry_after_ms(caf::error{}) == 0);
}

TEST_CASE("learn_unpaid counts orders placed elsewhere, once, unless settled "
          "or past their deadline",
          "[rules]") {
  auto s = make_session();
  learn_order(s, made("a", 1, "r1", 1, order_state::reserved, 5'000));
  forget_unpaid(s, "b.4", false); // paid before its announcement arrived
  learn_unpaid(s,
               {{"a.1", "a", 1, 5'000},  // known already
                {"b.2", "b", 2, 7'000},  // placed by an earlier session
                {"b.3", "b", 1, 1'000},  // past its deadline
                {"b.4", "b", 1, 9'000}}, // settled
               2'000);
  CHECK(s.unpaid.size() == 2u);
  CHECK(s.unpaid.count("b.2") == 1u);
  CHECK(s.unpaid.at("b.2").quantity == 2);
  CHECK(decide_session(s, buy("c", "r9"), 5, 2, 2'000) == errc::unpaid_limit);
  // What it hands back when it retires: exactly what it counts.
  auto notes = unpaid_notes(s);
  REQUIRE(notes.size() == 2u);
  std::sort(notes.begin(), notes.end(), [](const auto& x, const auto& y) {
    return x.order_id < y.order_id;
  });
  CHECK(notes[0].order_id == "a.1");
  CHECK(notes[1].order_id == "b.2");
  CHECK(notes[1].item_id == "b");
  CHECK(notes[1].expires_ms == 7'000);
}

TEST_CASE("a session's memory of settled orders stays bounded", "[rules]") {
  auto s = make_session();
  for (std::size_t k = 0; k < 3 * limits::session_settled_max; ++k)
    forget_unpaid(s, "i." + std::to_string(k), true);
  CHECK(s.settled.size() <= limits::session_settled_max);
  CHECK(
    s.settled.count("i." + std::to_string(3 * limits::session_settled_max - 1))
    == 1u);
}
