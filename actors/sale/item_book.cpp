// The item's business rules (see item_book.hpp). Every change asserts the
// invariants it relies on and the ones it makes.
#include "actors/sale/item_book.hpp"

#include <algorithm>

#include <string>

#include "messages/assert.hpp"
#include "messages/limits.hpp"

namespace seckill {

bool testing::planted_skip_stock_check = false;
bool testing::planted_skip_user_limit = false;
bool testing::planted_ack_before_commit = false;
bool testing::planted_skip_commit_undo = false;

namespace {

void assert_counters(const item_book& book) {
  const auto& c = book.rec.counters;
  SECKILL_ASSERT(c.available >= 0 && c.reserved >= 0 && c.sold >= 0,
                 "stock counters are never negative");
  SECKILL_ASSERT(c.available + c.reserved + c.sold == book.rec.spec.total,
                 "available + reserved + sold == total");
}

// Units an order holds in the counters: reserved ones in `reserved`,
// confirmed ones in `sold`, the rest nowhere.
void add_to_counters(stock_counters& c, order_state s, int64_t q) {
  if (s == order_state::reserved)
    c.reserved += q;
  else if (s == order_state::confirmed)
    c.sold += q;
  else
    return;
  c.available -= q;
}

void remove_from_counters(stock_counters& c, order_state s, int64_t q) {
  add_to_counters(c, s, -q);
}

undo_record make_undo(const item_book& book, const std::string& order_id,
                      const std::string& user_id) {
  undo_record u;
  u.order_id = order_id;
  if (auto i = book.orders.find(order_id); i != book.orders.end())
    u.order_before = i->second;
  u.counters_before = book.rec.counters;
  u.admin_before = book.rec.admin;
  u.next_order_seq_before = book.rec.next_order_seq;
  u.user_held_before = held_by(book, user_id);
  return u;
}

void set_held(item_book& book, const std::string& user_id, int64_t units) {
  if (units == 0)
    book.held_by_user.erase(user_id);
  else
    book.held_by_user[user_id] = units;
}

const order* find_order(const item_book& book, const std::string& order_id) {
  auto i = book.orders.find(order_id);
  return i == book.orders.end() ? nullptr : &i->second;
}

} // namespace

bool valid_id(const std::string& id) {
  if (id.empty() || id.size() > limits::id_length_max)
    return false;
  for (char ch : id) {
    bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')
              || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-';
    if (!ok)
      return false;
  }
  return true;
}

errc validate_spec(const item_spec& s) {
  if (!valid_id(s.item_id))
    return errc::invalid_id;
  bool ttl_ok = s.reserve_ttl_ms >= limits::reserve_ttl_ms_min
                && s.reserve_ttl_ms <= limits::reserve_ttl_ms_max;
  bool ok =
    s.total >= 1 && s.total <= limits::item_total_max && s.per_user_limit >= 1
    && s.per_user_limit <= limits::per_user_limit_max && s.starts_at_ms >= 0
    && (s.ends_at_ms == 0 || s.ends_at_ms > s.starts_at_ms)
    && (s.mode == deduction_mode::order || ttl_ok) && s.price_cents >= 0
    && s.name.size() <= limits::item_name_bytes_max;
  return ok ? errc::ok : errc::invalid_item;
}

errc validate_purchase(const purchase& p) {
  if (!valid_id(p.item_id) || !valid_id(p.user_id) || !valid_id(p.request_id))
    return errc::invalid_id;
  if (p.quantity < 1 || p.quantity > limits::quantity_max)
    return errc::invalid_quantity;
  return errc::ok;
}

std::string item_of_order(const std::string& order_id) {
  auto dot = order_id.rfind('.');
  if (dot == std::string::npos || dot == 0 || dot + 1 == order_id.size())
    return {};
  for (auto i = dot + 1; i < order_id.size(); ++i)
    if (order_id[i] < '0' || order_id[i] > '9')
      return {};
  auto item = order_id.substr(0, dot);
  return valid_id(item) ? item : std::string{};
}

namespace {

// Sized for the stock up front: growing a hash table rehashes it all at
// once, and the item (the single writer) would stall every buyer meanwhile
// (measured: up to a second at 800k orders). A pay-mode item may hold more
// orders than units; then a table grows, rarely.
void reserve_tables(item_book& book, std::size_t orders) {
  auto n = table_slots(book.rec.spec, orders);
  book.orders.reserve(n);
  book.by_request.reserve(n);
  book.held_by_user.reserve(n);
}

} // namespace

std::size_t table_slots(const item_spec& spec, std::size_t orders) {
  return std::min<std::size_t>(
    std::max<std::size_t>(orders, static_cast<std::size_t>(spec.total)),
    limits::orders_reserved_max);
}

int64_t table_bytes(const item_spec& spec, std::size_t orders) {
  return static_cast<int64_t>(table_slots(spec, orders))
         * limits::item_table_bytes_per_slot;
}

item_book make_book(const item_spec& spec) {
  item_book book;
  book.rec.spec = spec;
  reserve_tables(book, 0);
  book.rec.counters.available = spec.total;
  assert_counters(book);
  return book;
}

int64_t ended_table_bytes(std::size_t orders) {
  return static_cast<int64_t>(orders) * limits::item_table_bytes_per_slot;
}

int64_t release_tables(item_book& book) {
  book.orders.rehash(0); // as few buckets as the entries need
  book.by_request.rehash(0);
  book.held_by_user.rehash(0);
  return ended_table_bytes(book.orders.size());
}

item_book make_book(const item_record& rec, const std::vector<order>& orders,
                    bool over) {
  item_book book;
  book.rec = rec;
  if (!over)
    reserve_tables(book, orders.size());
  for (const auto& o : orders) {
    book.orders.emplace(o.order_id, o);
    book.by_request.emplace(o.request_id, o.order_id);
    if (counts_for_user(o.state))
      book.held_by_user[o.user_id] += o.quantity;
  }
  auto problem = check_invariants(book);
  SECKILL_ASSERT(problem.empty(), "a recovered item is consistent");
  return book;
}

item_status status_at(const item_record& rec, int64_t now_ms) {
  const auto& s = rec.spec;
  if (rec.admin == admin_state::ended
      || (s.ends_at_ms != 0 && now_ms >= s.ends_at_ms))
    return item_status::ended;
  if (rec.admin == admin_state::paused)
    return item_status::paused;
  if (now_ms < s.starts_at_ms)
    return item_status::upcoming;
  if (rec.counters.available == 0)
    return item_status::sold_out;
  return item_status::on_sale;
}

int64_t held_by(const item_book& book, const std::string& user_id) {
  auto i = book.held_by_user.find(user_id);
  return i == book.held_by_user.end() ? 0 : i->second;
}

std::string check_invariants(const item_book& book) {
  const auto& c = book.rec.counters;
  if (c.available < 0 || c.reserved < 0 || c.sold < 0
      || c.available + c.reserved + c.sold != book.rec.spec.total)
    return "counters do not add up to total";
  stock_counters sum;
  sum.available = book.rec.spec.total;
  std::unordered_map<std::string, int64_t> held;
  for (const auto& [id, o] : book.orders) {
    add_to_counters(sum, o.state, o.quantity);
    if (counts_for_user(o.state))
      held[o.user_id] += o.quantity;
  }
  if (!(sum == c))
    return "counters disagree with the orders";
  for (const auto& [user, units] : held)
    if (units > book.rec.spec.per_user_limit || units != held_by(book, user))
      return "user " + user + " holds more than the limit or the index says";
  if (book.by_request.size() != book.orders.size())
    return "request index and orders differ in size";
  for (const auto& [id, o] : book.orders)
    if (id != o.order_id)
      return "order " + o.order_id + " is filed under " + id;
  for (const auto& [req, id] : book.by_request) {
    auto i = book.orders.find(id);
    if (i == book.orders.end() || i->second.request_id != req)
      return "request " + req + " points to the wrong order";
  }
  for (const auto& [user, units] : book.held_by_user)
    if (held.count(user) == 0 || held[user] != units)
      return "user " + user + " is said to hold units they do not hold";
  return {};
}

purchase_decision decide_purchase(const item_book& book, const purchase& p,
                                  int64_t now_ms) {
  purchase_decision d;
  if (d.code = validate_purchase(p); d.code != errc::ok)
    return d;
  if (p.item_id != book.rec.spec.item_id) {
    d.code = errc::unknown_item;
    return d;
  }
  // A retry first: it returns the original order whatever happened since.
  if (auto i = book.by_request.find(p.request_id); i != book.by_request.end()) {
    const auto& o = book.orders.at(i->second);
    if (o.user_id != p.user_id || o.quantity != p.quantity)
      d.code = errc::request_conflict;
    else
      d.existing = o.order_id;
    return d;
  }
  auto stock_check = !testing::planted_skip_stock_check;
  switch (status_at(book.rec, now_ms)) {
    case item_status::upcoming: d.code = errc::not_started; return d;
    case item_status::ended: d.code = errc::ended; return d;
    case item_status::paused: d.code = errc::paused; return d;
    case item_status::sold_out:
      if (!stock_check)
        break;
      d.code = errc::sold_out;
      return d;
    case item_status::on_sale: break;
  }
  if (stock_check && book.rec.counters.available < p.quantity) {
    d.code = errc::sold_out;
    return d;
  }
  // The front door checked the token's signature; the item, which knows its
  // admission, refuses a purchase that came without one.
  if (book.rec.spec.admission != admission_mode::open && !p.sale_token_ok) {
    d.code = errc::token_required;
    return d;
  }
  if (!testing::planted_skip_user_limit
      && held_by(book, p.user_id) + p.quantity > book.rec.spec.per_user_limit) {
    d.code = errc::user_limit_exceeded;
    return d;
  }
  if (book.orders.size() >= limits::orders_per_item_max) {
    d.code = errc::capacity_exceeded;
    return d;
  }
  const auto& spec = book.rec.spec;
  auto& o = d.placed;
  o.order_id = spec.item_id + "." + std::to_string(book.rec.next_order_seq);
  o.item_id = spec.item_id;
  o.user_id = p.user_id;
  o.request_id = p.request_id;
  o.quantity = p.quantity;
  o.created_ms = o.updated_ms = now_ms;
  switch (spec.mode) {
    case deduction_mode::order: o.state = order_state::confirmed; break;
    case deduction_mode::reserve: o.state = order_state::reserved; break;
    case deduction_mode::pay: o.state = order_state::pending; break;
  }
  if (spec.mode != deduction_mode::order)
    o.expires_ms = now_ms + spec.reserve_ttl_ms;
  return d;
}

transition_decision decide_pay(const item_book& book,
                               const std::string& order_id, int64_t now_ms) {
  transition_decision d;
  const auto* o = find_order(book, order_id);
  if (o == nullptr) {
    d.code = errc::unknown_order;
    return d;
  }
  switch (o->state) {
    case order_state::confirmed: return d; // paying twice is answered, once
    case order_state::cancelled: d.code = errc::not_payable; return d;
    case order_state::expired: d.code = errc::expired; return d;
    case order_state::reserved:
    case order_state::pending: break;
  }
  if (now_ms >= o->expires_ms) {
    // Late: the deadline is a state change like any other, made now.
    d.code = errc::expired;
    d.change = true;
    d.to = order_state::expired;
    return d;
  }
  if (o->state == order_state::pending
      && book.rec.counters.available < o->quantity) {
    d.code = errc::sold_out;
    return d;
  }
  d.change = true;
  d.to = order_state::confirmed;
  return d;
}

transition_decision decide_cancel(const item_book& book,
                                  const std::string& order_id) {
  transition_decision d;
  const auto* o = find_order(book, order_id);
  if (o == nullptr) {
    d.code = errc::unknown_order;
    return d;
  }
  switch (o->state) {
    case order_state::cancelled: return d; // cancelling twice is answered
    case order_state::confirmed:
    case order_state::expired: d.code = errc::not_cancellable; return d;
    case order_state::reserved:
    case order_state::pending: break;
  }
  d.change = true;
  d.to = order_state::cancelled;
  return d;
}

transition_decision decide_expire(const item_book& book,
                                  const std::string& order_id, int64_t now_ms) {
  transition_decision d;
  const auto* o = find_order(book, order_id);
  if (o == nullptr || is_final(o->state) || now_ms < o->expires_ms)
    return d;
  d.change = true;
  d.to = order_state::expired;
  return d;
}

admin_decision decide_admin(const item_book& book, admin_state wanted,
                            int64_t now_ms) {
  admin_decision d;
  // The end of a sale is final, whether an operator or its window ended it.
  if (wanted != admin_state::ended
      && status_at(book.rec, now_ms) == item_status::ended) {
    d.code = errc::ended;
    return d;
  }
  if (book.rec.admin == wanted)
    return d;
  d.change = true;
  d.to = wanted;
  return d;
}

undo_record apply_place(item_book& book, const order& o) {
  SECKILL_ASSERT(book.orders.count(o.order_id) == 0, "order ids are unique");
  SECKILL_ASSERT(book.by_request.count(o.request_id) == 0,
                 "one order per request_id");
  SECKILL_ASSERT(o.quantity >= 1, "orders hold at least one unit");
  auto u = make_undo(book, o.order_id, o.user_id);
  add_to_counters(book.rec.counters, o.state, o.quantity);
  if (counts_for_user(o.state))
    set_held(book, o.user_id, u.user_held_before + o.quantity);
  SECKILL_ASSERT(held_by(book, o.user_id) <= book.rec.spec.per_user_limit,
                 "a user never holds more than the per-user limit");
  book.orders.emplace(o.order_id, o);
  book.by_request.emplace(o.request_id, o.order_id);
  book.rec.next_order_seq += 1;
  assert_counters(book);
  return u;
}

undo_record apply_transition(item_book& book, const std::string& order_id,
                             order_state to, int64_t now_ms) {
  auto& o = book.orders.at(order_id);
  SECKILL_ASSERT(!is_final(o.state), "final orders never change");
  auto u = make_undo(book, order_id, o.user_id);
  remove_from_counters(book.rec.counters, o.state, o.quantity);
  add_to_counters(book.rec.counters, to, o.quantity);
  if (counts_for_user(o.state) && !counts_for_user(to))
    set_held(book, o.user_id, u.user_held_before - o.quantity);
  o.state = to;
  o.updated_ms = now_ms;
  if (is_final(to))
    o.expires_ms = 0;
  assert_counters(book);
  return u;
}

undo_record apply_admin(item_book& book, admin_state to) {
  auto u = make_undo(book, {}, {});
  book.rec.admin = to;
  return u;
}

void undo(item_book& book, const undo_record& u) {
  book.rec.counters = u.counters_before;
  book.rec.admin = u.admin_before;
  book.rec.next_order_seq = u.next_order_seq_before;
  if (!u.order_id.empty()) {
    auto i = book.orders.find(u.order_id);
    SECKILL_ASSERT(i != book.orders.end(), "an undone change's order exists");
    auto user = i->second.user_id;
    if (u.order_before) {
      i->second = *u.order_before;
    } else {
      book.by_request.erase(i->second.request_id);
      book.orders.erase(i);
    }
    set_held(book, user, u.user_held_before);
  }
  assert_counters(book);
}

} // namespace seckill
