// Tests of the item's pure rules (actors/sale/item_book.hpp): validation of
// ids, specs and purchases; the shown status and its precedence; every refusal
// decide_purchase can give and the order it places in each deduction mode;
// the counters and the per-user index after each change; pay, cancel, expire
// and admin decisions; check_invariants finding hand-made corruption; and a
// seeded random walk that checks the invariants after every change and then
// undoes it all, proving undo restores the book exactly.
//
// Nothing here triggers a SECKILL_ASSERT (it would abort the test process):
// every apply_* gets a change its decide_* allowed. Time is a plain int64 ms.
#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "actors/sale/item_book.hpp"
#include "messages/limits.hpp"

using namespace seckill;

namespace {

constexpr int64_t start_ms = 1'000;
constexpr int64_t end_ms = 100'000;
constexpr int64_t ttl_ms = 5'000;

item_spec make_spec(deduction_mode mode, int64_t total = 10,
                    int64_t per_user_limit = 3) {
  item_spec s;
  s.item_id = "sku-1";
  s.name = "A phone";
  s.total = total;
  s.per_user_limit = per_user_limit;
  s.starts_at_ms = start_ms;
  s.ends_at_ms = end_ms;
  s.mode = mode;
  s.reserve_ttl_ms = ttl_ms;
  s.price_cents = 100;
  return s;
}

purchase buy(const std::string& user, const std::string& request,
             int64_t quantity = 1, const std::string& item = "sku-1") {
  purchase p;
  p.item_id = item;
  p.user_id = user;
  p.request_id = request;
  p.quantity = quantity;
  return p;
}

// Decides and places a purchase that must succeed; returns the new order.
order place(item_book& book, const purchase& p, int64_t now_ms) {
  auto d = decide_purchase(book, p, now_ms);
  REQUIRE(d.code == errc::ok);
  REQUIRE_FALSE(d.is_retry());
  apply_place(book, d.placed);
  REQUIRE(check_invariants(book).empty());
  return d.placed;
}

stock_counters counters(int64_t available, int64_t reserved, int64_t sold) {
  stock_counters c;
  c.available = available;
  c.reserved = reserved;
  c.sold = sold;
  return c;
}

item_record record_at(admin_state admin, int64_t available,
                      int64_t ends_at_ms = end_ms) {
  item_record rec;
  rec.spec = make_spec(deduction_mode::order);
  rec.spec.ends_at_ms = ends_at_ms;
  rec.admin = admin;
  rec.counters = counters(available, 0, rec.spec.total - available);
  return rec;
}

// Every field the undo records must restore.
void require_same_book(const item_book& a, const item_book& b) {
  REQUIRE(a.rec.counters == b.rec.counters);
  REQUIRE(a.rec.admin == b.rec.admin);
  REQUIRE(a.rec.next_order_seq == b.rec.next_order_seq);
  REQUIRE(a.orders == b.orders);
  REQUIRE(a.by_request == b.by_request);
  REQUIRE(a.held_by_user == b.held_by_user);
}

} // namespace

// -- Validation ---------------------------------------------------------------

TEST_CASE("valid_id accepts 1..64 characters of [A-Za-z0-9_-] only",
          "[item_book]") {
  CHECK(valid_id("a"));
  CHECK(valid_id("sku-1_AZaz09"));
  CHECK(valid_id(std::string(limits::id_length_max, 'x')));
  CHECK_FALSE(valid_id(""));
  CHECK_FALSE(valid_id(std::string(limits::id_length_max + 1, 'x')));
  CHECK_FALSE(valid_id("sku.1"));
  CHECK_FALSE(valid_id("."));
  CHECK_FALSE(valid_id("a/b"));
  CHECK_FALSE(valid_id("../etc"));
  CHECK_FALSE(valid_id("a b"));
  CHECK_FALSE(valid_id(" a"));
  CHECK_FALSE(valid_id("a\n"));
  CHECK_FALSE(valid_id(std::string("a\0b", 3)));
  CHECK_FALSE(valid_id("caf\xc3\xa9"));  // UTF-8 "café"
  CHECK_FALSE(valid_id("\xe5\x95\x86")); // UTF-8 CJK character
  CHECK_FALSE(valid_id("a+b"));
  CHECK_FALSE(valid_id("a%20"));
}

TEST_CASE("validate_spec refuses each bad field", "[item_book]") {
  auto good = make_spec(deduction_mode::reserve);
  REQUIRE(validate_spec(good) == errc::ok);

  SECTION("item id") {
    good.item_id = "sku.1";
    CHECK(validate_spec(good) == errc::invalid_id);
    good.item_id = "";
    CHECK(validate_spec(good) == errc::invalid_id);
  }
  SECTION("total") {
    good.total = 0;
    CHECK(validate_spec(good) == errc::invalid_item);
    good.total = -1;
    CHECK(validate_spec(good) == errc::invalid_item);
    good.total = limits::item_total_max + 1;
    CHECK(validate_spec(good) == errc::invalid_item);
    good.total = limits::item_total_max;
    CHECK(validate_spec(good) == errc::ok);
    good.total = 1;
    CHECK(validate_spec(good) == errc::ok);
  }
  SECTION("per-user limit") {
    good.per_user_limit = 0;
    CHECK(validate_spec(good) == errc::invalid_item);
    good.per_user_limit = limits::per_user_limit_max + 1;
    CHECK(validate_spec(good) == errc::invalid_item);
    good.per_user_limit = limits::per_user_limit_max;
    CHECK(validate_spec(good) == errc::ok);
    good.per_user_limit = 1;
    CHECK(validate_spec(good) == errc::ok);
  }
  SECTION("sale window") {
    good.ends_at_ms = good.starts_at_ms;
    CHECK(validate_spec(good) == errc::invalid_item);
    good.ends_at_ms = good.starts_at_ms - 1;
    CHECK(validate_spec(good) == errc::invalid_item);
    good.ends_at_ms = good.starts_at_ms + 1;
    CHECK(validate_spec(good) == errc::ok);
    good.ends_at_ms = 0; // no end
    CHECK(validate_spec(good) == errc::ok);
    good.starts_at_ms = -1;
    CHECK(validate_spec(good) == errc::invalid_item);
  }
  SECTION("reserve TTL counts in reserve and pay modes, not in order mode") {
    for (auto mode : {deduction_mode::reserve, deduction_mode::pay}) {
      INFO("mode " << to_string(mode));
      good.mode = mode;
      good.reserve_ttl_ms = limits::reserve_ttl_ms_min - 1;
      CHECK(validate_spec(good) == errc::invalid_item);
      good.reserve_ttl_ms = limits::reserve_ttl_ms_max + 1;
      CHECK(validate_spec(good) == errc::invalid_item);
      good.reserve_ttl_ms = limits::reserve_ttl_ms_min;
      CHECK(validate_spec(good) == errc::ok);
      good.reserve_ttl_ms = limits::reserve_ttl_ms_max;
      CHECK(validate_spec(good) == errc::ok);
    }
    good.mode = deduction_mode::order;
    for (int64_t ttl : {int64_t{0}, limits::reserve_ttl_ms_min - 1,
                        limits::reserve_ttl_ms_max + 1}) {
      good.reserve_ttl_ms = ttl;
      CHECK(validate_spec(good) == errc::ok);
    }
  }
  SECTION("price") {
    good.price_cents = -1;
    CHECK(validate_spec(good) == errc::invalid_item);
    good.price_cents = 0;
    CHECK(validate_spec(good) == errc::ok);
  }
  SECTION("name") {
    good.name = std::string(256, 'n');
    CHECK(validate_spec(good) == errc::ok);
    good.name = std::string(257, 'n');
    CHECK(validate_spec(good) == errc::invalid_item);
  }
}

TEST_CASE("validate_purchase refuses bad ids and quantities", "[item_book]") {
  CHECK(validate_purchase(buy("u1", "r1", 1)) == errc::ok);
  CHECK(validate_purchase(buy("u1", "r1", limits::quantity_max)) == errc::ok);
  CHECK(validate_purchase(buy("u1", "r1", 0)) == errc::invalid_quantity);
  CHECK(validate_purchase(buy("u1", "r1", -1)) == errc::invalid_quantity);
  CHECK(validate_purchase(buy("u1", "r1", limits::quantity_max + 1))
        == errc::invalid_quantity);
  CHECK(validate_purchase(buy("u1", "r1", INT64_MIN))
        == errc::invalid_quantity);
  CHECK(validate_purchase(buy("", "r1")) == errc::invalid_id);
  CHECK(validate_purchase(buy("u1", "")) == errc::invalid_id);
  CHECK(validate_purchase(buy("u1", "r1", 1, "")) == errc::invalid_id);
  CHECK(validate_purchase(buy("u 1", "r1")) == errc::invalid_id);
  CHECK(validate_purchase(buy("u1", "r.1")) == errc::invalid_id);
  CHECK(validate_purchase(buy("u1", "r1", 1, "sku/1")) == errc::invalid_id);
  CHECK(validate_purchase(buy(std::string(65, 'u'), "r1")) == errc::invalid_id);
  // Ids are checked before the quantity.
  CHECK(validate_purchase(buy("", "r1", 0)) == errc::invalid_id);
}

TEST_CASE("item_of_order finds the item id or returns empty", "[item_book]") {
  CHECK(item_of_order("sku-1.7") == "sku-1");
  CHECK(item_of_order("sku-1.1234567890") == "sku-1");
  CHECK(item_of_order("a.0") == "a");
  CHECK(item_of_order("sku") == "");
  CHECK(item_of_order("") == "");
  CHECK(item_of_order(".7") == "");
  CHECK(item_of_order("sku.") == "");
  CHECK(item_of_order("sku.x7") == "");
  CHECK(item_of_order("sku.7x") == "");
  CHECK(item_of_order("sku.-7") == "");
  CHECK(item_of_order("a.b.7") == ""); // the item "a.b" has a dot
  CHECK(item_of_order("sk u.7") == "");
  CHECK(item_of_order(std::string(64, 'i') + ".1") == std::string(64, 'i'));
  CHECK(item_of_order(std::string(65, 'i') + ".1") == "");
}

// -- Status -------------------------------------------------------------------

TEST_CASE("status_at follows time, stock and the operator", "[item_book]") {
  auto rec = record_at(admin_state::active, 5);
  CHECK(status_at(rec, start_ms - 1) == item_status::upcoming);
  CHECK(status_at(rec, start_ms) == item_status::on_sale);
  CHECK(status_at(rec, end_ms - 1) == item_status::on_sale);
  CHECK(status_at(rec, end_ms) == item_status::ended);
  CHECK(status_at(rec, end_ms + 1) == item_status::ended);

  SECTION("sold out at available 0 only") {
    CHECK(status_at(record_at(admin_state::active, 0), start_ms)
          == item_status::sold_out);
    CHECK(status_at(record_at(admin_state::active, 1), start_ms)
          == item_status::on_sale);
  }
  SECTION("paused and ended by the operator") {
    CHECK(status_at(record_at(admin_state::paused, 5), start_ms)
          == item_status::paused);
    CHECK(status_at(record_at(admin_state::ended, 5), start_ms)
          == item_status::ended);
  }
  SECTION("ends_at 0 means no end") {
    auto open = record_at(admin_state::active, 5, 0);
    CHECK(status_at(open, start_ms) == item_status::on_sale);
    CHECK(status_at(open, INT64_MAX) == item_status::on_sale);
  }
  SECTION("precedence: ended > paused > upcoming > sold_out") {
    // Everything at once before the start: the admin end wins.
    CHECK(status_at(record_at(admin_state::ended, 0), start_ms - 1)
          == item_status::ended);
    // The window's end beats a pause.
    CHECK(status_at(record_at(admin_state::paused, 0), end_ms)
          == item_status::ended);
    // A pause beats upcoming and sold out.
    CHECK(status_at(record_at(admin_state::paused, 0), start_ms - 1)
          == item_status::paused);
    // Upcoming beats sold out.
    CHECK(status_at(record_at(admin_state::active, 0), start_ms - 1)
          == item_status::upcoming);
  }
}

// -- decide_purchase ----------------------------------------------------------

TEST_CASE("decide_purchase refuses with each code", "[item_book]") {
  auto book = make_book(make_spec(deduction_mode::order, 10, 3));
  const int64_t now = start_ms + 1;

  SECTION("input") {
    CHECK(decide_purchase(book, buy("u1", "r1", 0), now).code
          == errc::invalid_quantity);
    CHECK(decide_purchase(book, buy("u1", "r1", -3), now).code
          == errc::invalid_quantity);
    CHECK(
      decide_purchase(book, buy("u1", "r1", limits::quantity_max + 1), now).code
      == errc::invalid_quantity);
    CHECK(decide_purchase(book, buy("u.1", "r1"), now).code
          == errc::invalid_id);
    CHECK(decide_purchase(book, buy("u1", "r1", 1, "sku-2"), now).code
          == errc::unknown_item);
  }
  SECTION("the sale window and the operator") {
    CHECK(decide_purchase(book, buy("u1", "r1"), start_ms - 1).code
          == errc::not_started);
    CHECK(decide_purchase(book, buy("u1", "r1"), start_ms).code == errc::ok);
    CHECK(decide_purchase(book, buy("u1", "r1"), end_ms).code == errc::ended);
    CHECK(decide_purchase(book, buy("u1", "r1"), end_ms - 1).code == errc::ok);
    apply_admin(book, admin_state::paused);
    CHECK(decide_purchase(book, buy("u1", "r1"), now).code == errc::paused);
    apply_admin(book, admin_state::ended);
    CHECK(decide_purchase(book, buy("u1", "r1"), now).code == errc::ended);
  }
  SECTION("sold out when nothing is left or less than asked") {
    auto small = make_book(make_spec(deduction_mode::order, 3, 3));
    place(small, buy("u1", "r1", 1), now);
    // Exactly what is left is sold.
    auto last = decide_purchase(small, buy("u2", "r2", 2), now);
    REQUIRE(last.code == errc::ok);
    CHECK(decide_purchase(small, buy("u2", "r2", 3), now).code
          == errc::sold_out);
    apply_place(small, last.placed);
    CHECK(small.rec.counters.available == 0);
    CHECK(decide_purchase(small, buy("u3", "r3", 1), now).code
          == errc::sold_out);
  }
  SECTION("request_conflict for a reused request_id") {
    place(book, buy("u1", "r1", 2), now);
    CHECK(decide_purchase(book, buy("u2", "r1", 2), now).code
          == errc::request_conflict);
    CHECK(decide_purchase(book, buy("u1", "r1", 1), now).code
          == errc::request_conflict);
  }
}

TEST_CASE("the per-user limit counts reserved, pending and confirmed units",
          "[item_book]") {
  const int64_t now = start_ms;

  SECTION("reserve mode: reserved and confirmed count; cancelled, expired "
          "don't") {
    auto book = make_book(make_spec(deduction_mode::reserve, 100, 3));
    place(book, buy("u1", "held", 1), now);
    auto paid = place(book, buy("u1", "paid", 1), now);
    apply_transition(book, paid.order_id, order_state::confirmed, now);
    auto gone = place(book, buy("u1", "gone", 1), now);
    apply_transition(book, gone.order_id, order_state::cancelled, now);
    auto late = place(book, buy("u1", "late", 1), now);
    apply_transition(book, late.order_id, order_state::expired, now);
    REQUIRE(check_invariants(book).empty());
    CHECK(held_by(book, "u1") == 2);
    CHECK(decide_purchase(book, buy("u1", "more", 2), now).code
          == errc::user_limit_exceeded);
    CHECK(decide_purchase(book, buy("u1", "more", 1), now).code == errc::ok);
    // Another user has their own limit.
    CHECK(decide_purchase(book, buy("u2", "more", 3), now).code == errc::ok);
    CHECK(decide_purchase(book, buy("u2", "more", 4), now).code
          == errc::user_limit_exceeded);
  }
  SECTION("pay mode: pending counts") {
    auto book = make_book(make_spec(deduction_mode::pay, 100, 2));
    place(book, buy("u1", "r1", 2), now);
    CHECK(held_by(book, "u1") == 2);
    CHECK(decide_purchase(book, buy("u1", "r2", 1), now).code
          == errc::user_limit_exceeded);
  }
  SECTION("order mode: confirmed counts") {
    auto book = make_book(make_spec(deduction_mode::order, 100, 2));
    place(book, buy("u1", "r1", 1), now);
    CHECK(decide_purchase(book, buy("u1", "r2", 2), now).code
          == errc::user_limit_exceeded);
    place(book, buy("u1", "r2", 1), now);
    CHECK(decide_purchase(book, buy("u1", "r3", 1), now).code
          == errc::user_limit_exceeded);
  }
}

TEST_CASE("a retry returns the original order whatever happened since",
          "[item_book]") {
  auto book = make_book(make_spec(deduction_mode::order, 2, 2));
  auto first = place(book, buy("u1", "r1", 2), start_ms);
  auto seq = book.rec.next_order_seq;
  REQUIRE(book.rec.counters.available == 0);

  auto check_retry = [&](int64_t now) {
    auto d = decide_purchase(book, buy("u1", "r1", 2), now);
    CHECK(d.code == errc::ok);
    CHECK(d.is_retry());
    CHECK(d.existing == first.order_id);
  };
  check_retry(start_ms);   // sold out now, and at the user's limit
  check_retry(end_ms + 5); // the window has ended
  apply_admin(book, admin_state::paused);
  check_retry(start_ms);
  apply_admin(book, admin_state::ended);
  check_retry(start_ms);
  CHECK(book.rec.next_order_seq == seq);
  // Even before the start (a clock that went back) the retry is answered.
  check_retry(0);
}

TEST_CASE("decide_purchase places an order shaped by the mode", "[item_book]") {
  const int64_t now = start_ms + 42;
  SECTION("order mode: confirmed, no deadline") {
    auto book = make_book(make_spec(deduction_mode::order));
    auto d = decide_purchase(book, buy("u1", "r1", 2), now);
    REQUIRE(d.code == errc::ok);
    REQUIRE_FALSE(d.is_retry());
    const auto& o = d.placed;
    CHECK(o.order_id == "sku-1.1");
    CHECK(o.item_id == "sku-1");
    CHECK(o.user_id == "u1");
    CHECK(o.request_id == "r1");
    CHECK(o.quantity == 2);
    CHECK(o.state == order_state::confirmed);
    CHECK(o.created_ms == now);
    CHECK(o.updated_ms == now);
    CHECK(o.expires_ms == 0);
  }
  SECTION("reserve mode: reserved until now + ttl") {
    auto book = make_book(make_spec(deduction_mode::reserve));
    auto d = decide_purchase(book, buy("u1", "r1", 1), now);
    REQUIRE(d.code == errc::ok);
    CHECK(d.placed.state == order_state::reserved);
    CHECK(d.placed.expires_ms == now + ttl_ms);
  }
  SECTION("pay mode: pending until now + ttl") {
    auto book = make_book(make_spec(deduction_mode::pay));
    auto d = decide_purchase(book, buy("u1", "r1", 1), now);
    REQUIRE(d.code == errc::ok);
    CHECK(d.placed.state == order_state::pending);
    CHECK(d.placed.expires_ms == now + ttl_ms);
  }
  SECTION("the order id is item_id.next_order_seq") {
    auto book = make_book(make_spec(deduction_mode::order));
    place(book, buy("u1", "r1"), now);
    CHECK(decide_purchase(book, buy("u2", "r2"), now).placed.order_id
          == "sku-1.2");
    book.rec.next_order_seq = 41;
    CHECK(decide_purchase(book, buy("u2", "r2"), now).placed.order_id
          == "sku-1.41");
  }
  SECTION("deciding changes nothing") {
    auto book = make_book(make_spec(deduction_mode::reserve));
    auto before = book;
    decide_purchase(book, buy("u1", "r1"), now);
    require_same_book(book, before);
  }
}

// -- Changes and their counters -----------------------------------------------

TEST_CASE("apply_place takes stock by mode and tracks the user",
          "[item_book]") {
  const int64_t now = start_ms;
  SECTION("order mode sells at once") {
    auto book = make_book(make_spec(deduction_mode::order, 10, 3));
    place(book, buy("u1", "r1", 2), now);
    CHECK(book.rec.counters == counters(8, 0, 2));
    CHECK(held_by(book, "u1") == 2);
    CHECK(book.rec.next_order_seq == 2);
    place(book, buy("u1", "r2", 1), now);
    CHECK(book.rec.counters == counters(7, 0, 3));
    CHECK(held_by(book, "u1") == 3);
    CHECK(book.rec.next_order_seq == 3);
    CHECK(book.orders.size() == 2u);
    CHECK(book.by_request.at("r2") == "sku-1.2");
  }
  SECTION("reserve mode holds") {
    auto book = make_book(make_spec(deduction_mode::reserve, 10, 3));
    place(book, buy("u1", "r1", 2), now);
    CHECK(book.rec.counters == counters(8, 2, 0));
    CHECK(held_by(book, "u1") == 2);
  }
  SECTION("pay mode takes nothing") {
    auto book = make_book(make_spec(deduction_mode::pay, 10, 3));
    place(book, buy("u1", "r1", 2), now);
    CHECK(book.rec.counters == counters(10, 0, 0));
    CHECK(held_by(book, "u1") == 2);
    CHECK(book.rec.next_order_seq == 2);
  }
}

TEST_CASE("apply_transition moves counters for each transition",
          "[item_book]") {
  const int64_t now = start_ms;
  const int64_t later = start_ms + 10;

  SECTION("reserve: reserved -> confirmed moves reserved to sold") {
    auto book = make_book(make_spec(deduction_mode::reserve, 10, 3));
    auto o = place(book, buy("u1", "r1", 2), now);
    apply_transition(book, o.order_id, order_state::confirmed, later);
    CHECK(book.rec.counters == counters(8, 0, 2));
    CHECK(held_by(book, "u1") == 2);
    const auto& after = book.orders.at(o.order_id);
    CHECK(after.state == order_state::confirmed);
    CHECK(after.updated_ms == later);
    CHECK(after.created_ms == now);
    CHECK(after.expires_ms == 0);
    CHECK(check_invariants(book).empty());
  }
  for (auto to : {order_state::cancelled, order_state::expired}) {
    DYNAMIC_SECTION("reserve: reserved -> " << to_string(to)
                                            << " returns to available") {
      auto book = make_book(make_spec(deduction_mode::reserve, 10, 3));
      auto keep = place(book, buy("u1", "keep", 1), now);
      auto o = place(book, buy("u1", "r1", 2), now);
      apply_transition(book, o.order_id, to, later);
      CHECK(book.rec.counters == counters(9, 1, 0));
      CHECK(held_by(book, "u1") == 1);
      CHECK(book.orders.at(o.order_id).state == to);
      CHECK(book.orders.at(o.order_id).expires_ms == 0);
      CHECK(book.orders.at(keep.order_id).state == order_state::reserved);
      // Releasing the last units drops the user from the index.
      apply_transition(book, keep.order_id, to, later);
      CHECK(book.rec.counters == counters(10, 0, 0));
      CHECK(held_by(book, "u1") == 0);
      CHECK(book.held_by_user.count("u1") == 0u);
      CHECK(check_invariants(book).empty());
    }
  }
  SECTION("pay: pending -> confirmed takes available to sold") {
    auto book = make_book(make_spec(deduction_mode::pay, 10, 3));
    auto o = place(book, buy("u1", "r1", 3), now);
    apply_transition(book, o.order_id, order_state::confirmed, later);
    CHECK(book.rec.counters == counters(7, 0, 3));
    CHECK(held_by(book, "u1") == 3);
    CHECK(check_invariants(book).empty());
  }
  for (auto to : {order_state::cancelled, order_state::expired}) {
    DYNAMIC_SECTION("pay: pending -> " << to_string(to)
                                       << " changes no counters") {
      auto book = make_book(make_spec(deduction_mode::pay, 10, 3));
      auto o = place(book, buy("u1", "r1", 3), now);
      apply_transition(book, o.order_id, to, later);
      CHECK(book.rec.counters == counters(10, 0, 0));
      CHECK(held_by(book, "u1") == 0);
      CHECK(book.orders.at(o.order_id).state == to);
      CHECK(check_invariants(book).empty());
    }
  }
  SECTION("a transition keeps next_order_seq and the request index") {
    auto book = make_book(make_spec(deduction_mode::reserve, 10, 3));
    auto o = place(book, buy("u1", "r1", 1), now);
    apply_transition(book, o.order_id, order_state::confirmed, later);
    CHECK(book.rec.next_order_seq == 2);
    CHECK(book.by_request.size() == 1u);
    CHECK(book.by_request.at("r1") == o.order_id);
  }
}

// -- Pay, cancel, expire, admin -----------------------------------------------

TEST_CASE("decide_pay", "[item_book]") {
  const int64_t now = start_ms;
  auto book = make_book(make_spec(deduction_mode::reserve, 10, 3));
  auto o = place(book, buy("u1", "r1", 1), now);
  REQUIRE(o.expires_ms == now + ttl_ms);

  SECTION("unknown order") {
    CHECK(decide_pay(book, "sku-1.99", now).code == errc::unknown_order);
    CHECK(decide_pay(book, "", now).code == errc::unknown_order);
  }
  SECTION("in time: confirm; paying again is answered without a change") {
    auto d = decide_pay(book, o.order_id, o.expires_ms - 1);
    CHECK(d.code == errc::ok);
    REQUIRE(d.change);
    REQUIRE(d.to == order_state::confirmed);
    apply_transition(book, o.order_id, d.to, o.expires_ms - 1);
    auto again = decide_pay(book, o.order_id, o.expires_ms + 1000);
    CHECK(again.code == errc::ok);
    CHECK_FALSE(again.change);
  }
  SECTION("late: expired, and the expiry is a change made now") {
    for (int64_t late : {o.expires_ms, o.expires_ms + 1}) {
      auto d = decide_pay(book, o.order_id, late);
      CHECK(d.code == errc::expired);
      CHECK(d.change);
      CHECK(d.to == order_state::expired);
    }
  }
  SECTION("cancelled: not payable; expired: expired without a change") {
    apply_transition(book, o.order_id, order_state::cancelled, now);
    auto d = decide_pay(book, o.order_id, now);
    CHECK(d.code == errc::not_payable);
    CHECK_FALSE(d.change);
    auto e = place(book, buy("u1", "r2", 1), now);
    apply_transition(book, e.order_id, order_state::expired, e.expires_ms);
    auto de = decide_pay(book, e.order_id, now);
    CHECK(de.code == errc::expired);
    CHECK_FALSE(de.change);
  }
}

TEST_CASE("decide_pay in pay mode needs the stock at payment", "[item_book]") {
  const int64_t now = start_ms;
  auto book = make_book(make_spec(deduction_mode::pay, 3, 3));
  auto a = place(book, buy("u1", "r1", 2), now);
  auto b = place(book, buy("u2", "r2", 1), now);
  auto c = place(book, buy("u3", "r3", 2), now);
  REQUIRE(book.rec.counters == counters(3, 0, 0));

  auto pay_a = decide_pay(book, a.order_id, now);
  REQUIRE(pay_a.code == errc::ok);
  REQUIRE(pay_a.change);
  apply_transition(book, a.order_id, pay_a.to, now);
  CHECK(book.rec.counters == counters(1, 0, 2));

  // Two wanted, one left: sold out, the order stays pending.
  auto pay_c = decide_pay(book, c.order_id, now);
  CHECK(pay_c.code == errc::sold_out);
  CHECK_FALSE(pay_c.change);

  // Exactly what is left can be paid.
  auto pay_b = decide_pay(book, b.order_id, now);
  REQUIRE(pay_b.code == errc::ok);
  REQUIRE(pay_b.change);
  REQUIRE(pay_b.to == order_state::confirmed);
  apply_transition(book, b.order_id, pay_b.to, now);
  CHECK(book.rec.counters == counters(0, 0, 3));
  CHECK(check_invariants(book).empty());
}

TEST_CASE("decide_cancel", "[item_book]") {
  const int64_t now = start_ms;
  for (auto mode : {deduction_mode::reserve, deduction_mode::pay}) {
    DYNAMIC_SECTION("mode " << to_string(mode)) {
      auto book = make_book(make_spec(mode, 10, 3));
      auto o = place(book, buy("u1", "r1", 1), now);
      CHECK(decide_cancel(book, "sku-1.77").code == errc::unknown_order);

      auto d = decide_cancel(book, o.order_id);
      CHECK(d.code == errc::ok);
      REQUIRE(d.change);
      REQUIRE(d.to == order_state::cancelled);
      apply_transition(book, o.order_id, d.to, now);
      auto again = decide_cancel(book, o.order_id);
      CHECK(again.code == errc::ok);
      CHECK_FALSE(again.change);

      auto paid = place(book, buy("u1", "r2", 1), now);
      apply_transition(book, paid.order_id, order_state::confirmed, now);
      auto dp = decide_cancel(book, paid.order_id);
      CHECK(dp.code == errc::not_cancellable);
      CHECK_FALSE(dp.change);

      auto late = place(book, buy("u1", "r3", 1), now);
      apply_transition(book, late.order_id, order_state::expired, now);
      auto dl = decide_cancel(book, late.order_id);
      CHECK(dl.code == errc::not_cancellable);
      CHECK_FALSE(dl.change);
    }
  }
  SECTION("order mode: a confirmed order is not cancellable") {
    auto book = make_book(make_spec(deduction_mode::order, 10, 3));
    auto o = place(book, buy("u1", "r1", 1), now);
    CHECK(decide_cancel(book, o.order_id).code == errc::not_cancellable);
  }
}

TEST_CASE("decide_expire only expires unpaid orders at or after the deadline",
          "[item_book]") {
  const int64_t now = start_ms;
  for (auto mode : {deduction_mode::reserve, deduction_mode::pay}) {
    DYNAMIC_SECTION("mode " << to_string(mode)) {
      auto book = make_book(make_spec(mode, 10, 3));
      auto o = place(book, buy("u1", "r1", 1), now);
      auto before = decide_expire(book, o.order_id, o.expires_ms - 1);
      CHECK(before.code == errc::ok);
      CHECK_FALSE(before.change);
      for (int64_t at : {o.expires_ms, o.expires_ms + 1}) {
        auto d = decide_expire(book, o.order_id, at);
        CHECK(d.code == errc::ok);
        CHECK(d.change);
        CHECK(d.to == order_state::expired);
      }
      // Final orders never expire, however late.
      for (auto final_state : {order_state::confirmed, order_state::cancelled,
                               order_state::expired}) {
        auto copy = book;
        apply_transition(copy, o.order_id, final_state, now);
        CHECK_FALSE(decide_expire(copy, o.order_id, INT64_MAX).change);
      }
      CHECK_FALSE(decide_expire(book, "sku-1.99", INT64_MAX).change);
    }
  }
  SECTION("order mode orders never expire") {
    auto book = make_book(make_spec(deduction_mode::order, 10, 3));
    auto o = place(book, buy("u1", "r1", 1), now);
    CHECK_FALSE(decide_expire(book, o.order_id, INT64_MAX).change);
  }
}

TEST_CASE("decide_admin", "[item_book]") {
  auto book = make_book(make_spec(deduction_mode::order));
  using A = admin_state;
  const int64_t now = start_ms;

  auto same = decide_admin(book, A::active, now);
  CHECK(same.code == errc::ok);
  CHECK_FALSE(same.change);

  auto pause = decide_admin(book, A::paused, now);
  CHECK(pause.code == errc::ok);
  CHECK(pause.change);
  CHECK(pause.to == A::paused);
  apply_admin(book, A::paused);
  CHECK(book.rec.admin == A::paused);
  CHECK_FALSE(decide_admin(book, A::paused, now).change);

  auto resume = decide_admin(book, A::active, now);
  CHECK(resume.code == errc::ok);
  CHECK(resume.change);
  CHECK(resume.to == A::active);

  // Before the start an operator may still pause and end.
  CHECK(decide_admin(book, A::active, start_ms - 1).change);
  CHECK(decide_admin(book, A::ended, start_ms - 1).change);

  auto end = decide_admin(book, A::ended, now);
  CHECK(end.code == errc::ok);
  CHECK(end.change);
  CHECK(end.to == A::ended);
  apply_admin(book, A::ended);

  for (auto wanted : {A::active, A::paused}) {
    auto d = decide_admin(book, wanted, now);
    CHECK(d.code == errc::ended);
    CHECK_FALSE(d.change);
  }
  auto end_again = decide_admin(book, A::ended, now);
  CHECK(end_again.code == errc::ok);
  CHECK_FALSE(end_again.change);

  SECTION("active -> ended directly") {
    auto fresh = make_book(make_spec(deduction_mode::order));
    auto d = decide_admin(fresh, A::ended, now);
    CHECK(d.change);
    CHECK(d.to == A::ended);
  }
}

TEST_CASE("decide_admin after the sale window closed", "[item_book]") {
  using A = admin_state;
  for (auto admin : {A::active, A::paused}) {
    DYNAMIC_SECTION("admin " << to_string(admin)) {
      auto book = make_book(make_spec(deduction_mode::order));
      if (admin != A::active)
        apply_admin(book, admin);
      REQUIRE(status_at(book.rec, end_ms) == item_status::ended);
      // The window's end is as final as an operator's.
      auto other = admin == A::active ? A::paused : A::active;
      auto d = decide_admin(book, other, end_ms);
      CHECK(d.code == errc::ended);
      CHECK_FALSE(d.change);
      // Recording the end is allowed.
      auto e = decide_admin(book, A::ended, end_ms);
      CHECK(e.code == errc::ok);
      CHECK(e.change);
      CHECK(e.to == A::ended);
      // One ms earlier the window is open and the operator decides.
      auto open = decide_admin(book, other, end_ms - 1);
      CHECK(open.code == errc::ok);
      CHECK(open.change);
    }
  }
}

// -- Invariants ---------------------------------------------------------------

TEST_CASE("check_invariants finds hand-made corruption", "[item_book]") {
  const int64_t now = start_ms;
  auto book = make_book(make_spec(deduction_mode::reserve, 10, 3));
  place(book, buy("u1", "r1", 2), now);
  auto paid = place(book, buy("u2", "r2", 1), now);
  apply_transition(book, paid.order_id, order_state::confirmed, now);
  REQUIRE(book.rec.counters == counters(7, 2, 1));
  REQUIRE(check_invariants(book).empty());

  SECTION("counters do not sum to total") {
    book.rec.counters.available += 1;
    CHECK_FALSE(check_invariants(book).empty());
  }
  SECTION("a negative counter") {
    book.rec.counters = counters(11, -1, 0);
    CHECK_FALSE(check_invariants(book).empty());
  }
  SECTION("counters sum right but disagree with the orders") {
    book.rec.counters = counters(6, 2, 2);
    CHECK_FALSE(check_invariants(book).empty());
    book.rec.counters = counters(8, 1, 1);
    CHECK_FALSE(check_invariants(book).empty());
  }
  SECTION("an order's state changed behind the counters' back") {
    book.orders.at(paid.order_id).state = order_state::cancelled;
    CHECK_FALSE(check_invariants(book).empty());
  }
  SECTION("held_by_user wrong") {
    book.held_by_user["u1"] = 1;
    CHECK_FALSE(check_invariants(book).empty());
  }
  SECTION("held_by_user missing a user") {
    book.held_by_user.erase("u2");
    CHECK_FALSE(check_invariants(book).empty());
  }
  SECTION("a user over the limit") {
    book.rec.spec.per_user_limit = 1;
    CHECK_FALSE(check_invariants(book).empty());
  }
  SECTION("request index larger than the orders") {
    book.by_request["r-ghost"] = "sku-1.1";
    CHECK_FALSE(check_invariants(book).empty());
  }
  SECTION("request index smaller than the orders") {
    book.by_request.erase("r1");
    CHECK_FALSE(check_invariants(book).empty());
  }
}

TEST_CASE("make_book rebuilds the indexes from a record and its orders",
          "[item_book]") {
  const int64_t now = start_ms;
  auto book = make_book(make_spec(deduction_mode::reserve, 10, 3));
  place(book, buy("u1", "r1", 2), now);
  auto paid = place(book, buy("u2", "r2", 1), now);
  apply_transition(book, paid.order_id, order_state::confirmed, now);
  auto gone = place(book, buy("u1", "r3", 1), now);
  apply_transition(book, gone.order_id, order_state::cancelled, now);
  std::vector<order> orders;
  for (const auto& kv : book.orders)
    orders.push_back(kv.second);
  auto rebuilt = make_book(book.rec, orders);
  require_same_book(rebuilt, book);
  CHECK(rebuilt.held_by_user.at("u1") == 2);
}

// -- Undo: a seeded random walk -----------------------------------------------

namespace {

struct walk {
  std::mt19937 rng;
  item_book book;
  int64_t now_ms = 0;
  std::vector<undo_record> undos;
  int steps_done = 0;
  static constexpr int end_allowed_step = 160;

  explicit walk(uint32_t seed) : rng(seed) {
    item_spec s;
    s.item_id = "walk";
    s.mode = static_cast<deduction_mode>(seed % 3);
    s.total = pick(4, 30);
    s.per_user_limit = pick(1, 5);
    s.starts_at_ms = 0;
    s.ends_at_ms = 0;
    s.reserve_ttl_ms = pick(1'000, 3'000);
    REQUIRE(validate_spec(s) == errc::ok);
    book = make_book(s);
  }

  int64_t pick(int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  }

  std::string some_order_id() {
    // Mostly existing orders, sometimes one that does not exist.
    return "walk." + std::to_string(pick(1, book.rec.next_order_seq));
  }

  void try_purchase() {
    purchase p;
    p.item_id = "walk";
    p.user_id = "u" + std::to_string(pick(1, 6));
    // A small pool of request ids makes retries and conflicts common.
    p.request_id = "r" + std::to_string(pick(1, 60));
    p.quantity = pick(1, 3);
    auto d = decide_purchase(book, p, now_ms);
    if (d.code == errc::ok && !d.is_retry())
      undos.push_back(apply_place(book, d.placed));
  }

  void try_transition(const std::string& id, const transition_decision& d) {
    if (d.change)
      undos.push_back(apply_transition(book, id, d.to, now_ms));
  }

  void step() {
    ++steps_done;
    now_ms += pick(0, 700);
    switch (pick(0, 9)) {
      case 0:
      case 1:
      case 2:
      case 3: try_purchase(); break;
      case 4:
      case 5: {
        auto id = some_order_id();
        try_transition(id, decide_pay(book, id, now_ms));
        break;
      }
      case 6: {
        auto id = some_order_id();
        try_transition(id, decide_cancel(book, id));
        break;
      }
      case 7:
      case 8: {
        auto id = some_order_id();
        try_transition(id, decide_expire(book, id, now_ms));
        break;
      }
      default: {
        // Pauses are short and the end comes late, so walks keep selling.
        auto roll = pick(0, 9);
        auto wanted = steps_done >= end_allowed_step && roll == 0
                        ? admin_state::ended
                      : roll < 4 ? admin_state::paused
                                 : admin_state::active;
        auto d = decide_admin(book, wanted, now_ms);
        if (d.change)
          undos.push_back(apply_admin(book, d.to));
      }
    }
  }
};

} // namespace

TEST_CASE("undo in reverse order restores the book exactly (random walk)",
          "[item_book]") {
  constexpr uint32_t seeds = 50;
  constexpr int steps = 200;
  constexpr int snapshot_step = 120;
  static_assert(snapshot_step < walk::end_allowed_step);
  for (uint32_t seed = 1; seed <= seeds; ++seed) {
    INFO("seed " << seed << " (replay: construct walk{" << seed << "})");
    walk w{seed};
    const auto original = w.book;
    item_book snapshot;
    std::size_t snapshot_undos = 0;
    for (int i = 0; i < steps; ++i) {
      if (i == snapshot_step) {
        snapshot = w.book;
        snapshot_undos = w.undos.size();
      }
      w.step();
      INFO("step " << i);
      REQUIRE(check_invariants(w.book) == "");
    }
    // The walk must really exercise the book on both sides of the snapshot.
    REQUIRE(snapshot_undos > 0);
    REQUIRE(w.undos.size() > snapshot_undos);

    // Undo the suffix after the snapshot: back to the snapshot exactly.
    while (w.undos.size() > snapshot_undos) {
      undo(w.book, w.undos.back());
      w.undos.pop_back();
      REQUIRE(check_invariants(w.book) == "");
    }
    require_same_book(w.book, snapshot);

    // Undo the rest: back to the fresh item.
    while (!w.undos.empty()) {
      undo(w.book, w.undos.back());
      w.undos.pop_back();
      REQUIRE(check_invariants(w.book) == "");
    }
    require_same_book(w.book, original);
  }
}

TEST_CASE("the random walk reaches every order state and the stock's end",
          "[item_book]") {
  // Guards the walk above: a walk that never pays, cancels or sells out
  // would prove little about undo.
  bool seen[5] = {};
  bool sold_out = false;
  bool ended = false;
  for (uint32_t seed = 1; seed <= 50; ++seed) {
    walk w{seed};
    for (int i = 0; i < 200; ++i) {
      w.step();
      sold_out = sold_out || w.book.rec.counters.available == 0;
    }
    ended = ended || w.book.rec.admin == admin_state::ended;
    for (const auto& kv : w.book.orders)
      seen[static_cast<int>(kv.second.state)] = true;
  }
  for (int s = 0; s < 5; ++s) {
    INFO("order state " << to_string(static_cast<order_state>(s)));
    CHECK(seen[s]);
  }
  CHECK(sold_out);
  CHECK(ended);
}

TEST_CASE("undo of each single change restores the book", "[item_book]") {
  const int64_t now = start_ms;
  for (auto mode :
       {deduction_mode::order, deduction_mode::reserve, deduction_mode::pay}) {
    DYNAMIC_SECTION("mode " << to_string(mode)) {
      auto book = make_book(make_spec(mode, 10, 3));
      place(book, buy("u1", "r0", 1), now);
      auto before = book;

      auto d = decide_purchase(book, buy("u1", "r1", 2), now);
      REQUIRE(d.code == errc::ok);
      auto u = apply_place(book, d.placed);
      CHECK(held_by(book, "u1") == 3);
      undo(book, u);
      require_same_book(book, before);

      auto u2 = apply_place(book, d.placed);
      if (mode != deduction_mode::order) {
        auto before_pay = book;
        auto pay = apply_transition(book, d.placed.order_id,
                                    order_state::confirmed, now + 1);
        undo(book, pay);
        require_same_book(book, before_pay);
        auto cancel = apply_transition(book, d.placed.order_id,
                                       order_state::cancelled, now + 1);
        CHECK(held_by(book, "u1") == 1);
        undo(book, cancel);
        require_same_book(book, before_pay);
      }
      auto admin = apply_admin(book, admin_state::paused);
      undo(book, admin);
      CHECK(book.rec.admin == admin_state::active);
      undo(book, u2);
      require_same_book(book, before);
    }
  }
}

TEST_CASE("release_tables shrinks an ended item's tables to its orders and "
          "keeps every order",
          "[item_book]") {
  auto spec = make_spec(deduction_mode::order, 200'000);
  auto book = make_book(spec);
  // Reserved for the stock up front.
  CHECK(book.orders.bucket_count() >= 200'000);
  CHECK(book.by_request.bucket_count() >= 200'000);
  CHECK(table_bytes(spec, 0) == 200'000 * limits::item_table_bytes_per_slot);
  for (int i = 0; i < 3; ++i)
    place(book, buy("u" + std::to_string(i), "r" + std::to_string(i)),
          start_ms + 1);
  auto before = book.orders;
  auto bytes = release_tables(book);
  CHECK(bytes == 3 * limits::item_table_bytes_per_slot);
  CHECK(bytes == ended_table_bytes(3));
  CHECK(book.orders.bucket_count() < 100);
  CHECK(book.by_request.bucket_count() < 100);
  CHECK(book.held_by_user.bucket_count() < 100);
  CHECK(book.orders == before);
  CHECK(check_invariants(book).empty());
  // A recovered ended item does not reserve for the stock at all.
  std::vector<order> orders;
  for (const auto& kvp : book.orders)
    orders.push_back(kvp.second);
  auto over = make_book(book.rec, orders, true);
  CHECK(over.orders.bucket_count() < 100);
  CHECK(over.orders == book.orders);
  auto open = make_book(book.rec, orders, false);
  CHECK(open.orders.bucket_count() >= 200'000);
}
