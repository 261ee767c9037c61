// The item's business rules as pure functions of state and input: no CAF, no
// clock, no I/O, so unit tests and the simulation drive them directly.
//
// An `item_book` is everything one item knows: its durable record (spec,
// counters, admin state, next order number), every order placed for it, the
// idempotency index (request_id -> order_id) and the units each user holds.
// Decisions (`decide_*`) read a book and say what should happen; `apply_*`
// make a change and return an `undo_record`; `undo` reverts one. Undoing a
// sequence of changes in reverse order restores the book exactly: that is how
// a failed commit gives back everything that was not durable.
//
// Invariants (checked by `check_invariants`, asserted after every change):
//   available + reserved + sold == total, each >= 0;
//   reserved == sum of quantities of reserved orders;
//   a user's held units <= per_user_limit.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>

#include "messages/errors.hpp"
#include "messages/types.hpp"

namespace seckill {

namespace testing {
/// Planted bugs for the simulations' self-test, each false unless a test
/// sets it (never outside tests); the auditor must catch every one.
/// Purchases skip the stock check: an oversell.
extern bool planted_skip_stock_check;
/// Purchases skip the per-user limit check: a user over the limit.
extern bool planted_skip_user_limit;
/// The item answers a change before the store's commit reply (item.cpp):
/// an acknowledged order that a failed commit then takes back.
extern bool planted_ack_before_commit;
/// The item keeps the changes of a failed commit in memory instead of
/// undoing them (item.cpp): memory and file part.
extern bool planted_skip_commit_undo;
} // namespace testing

struct item_book {
  item_record rec;
  std::unordered_map<std::string, order> orders;           // by order_id
  std::unordered_map<std::string, std::string> by_request; // request -> order
  std::unordered_map<std::string, int64_t> held_by_user;   // units held
};

/// Reverts one change; see `undo`.
struct undo_record {
  std::string order_id;              // empty for changes of the item alone
  std::optional<order> order_before; // nullopt: the change created the order
  stock_counters counters_before;
  admin_state admin_before = admin_state::active;
  int64_t next_order_seq_before = 1;
  int64_t user_held_before = 0;
};

// -- Validation ----------------------------------------------------------------

/// Ids are 1..64 characters of [A-Za-z0-9_-] (no '.', which separates the
/// item id from the sequence number in an order id).
bool valid_id(const std::string& id);
errc validate_spec(const item_spec& spec);
errc validate_purchase(const purchase& p);

/// The item id inside an order id ("<item_id>.<seq>"), empty if malformed.
std::string item_of_order(const std::string& order_id);

// -- Reading -------------------------------------------------------------------

item_book make_book(const item_spec& spec);
/// The order slots an item's tables are sized for (by its stock or the
/// orders it holds, at most limits::orders_reserved_max), and the bytes
/// they take (limits::item_table_bytes_per_slot each).
std::size_t table_slots(const item_spec& spec, std::size_t orders);
int64_t table_bytes(const item_spec& spec, std::size_t orders);
/// Rebuilds the indexes of a book from a recovered record and its orders.
/// `over`: the sale has ended, so no order will be added: the tables hold
/// the orders only (ended_table_bytes), not the stock up front.
item_book make_book(const item_record& rec, const std::vector<order>& orders,
                    bool over = false);
/// The bytes the tables of an ended item with `orders` orders take.
int64_t ended_table_bytes(std::size_t orders);
/// Shrinks the tables of an ended item to its orders (they stay readable,
/// payable until their deadline and cancellable); returns the bytes they
/// now take (ended_table_bytes).
int64_t release_tables(item_book& book);
item_status status_at(const item_record& rec, int64_t now_ms);
int64_t held_by(const item_book& book, const std::string& user_id);
/// Empty string if all invariants hold, else what is wrong.
std::string check_invariants(const item_book& book);

// -- Decisions -------------------------------------------------------------------

struct purchase_decision {
  errc code = errc::ok; // ok: place `placed` (or return `existing`)
  std::string existing; // a retry: the order placed for this request_id
  order placed;         // the new order, when code == ok and no existing
  bool is_retry() const { return !existing.empty(); }
};

purchase_decision decide_purchase(const item_book& book, const purchase& p,
                                  int64_t now_ms);

/// What paying, cancelling or expiring an order does.
struct transition_decision {
  errc code = errc::ok;
  bool change = false; // false: answer with the order as it is
  order_state to = order_state::confirmed;
};

transition_decision decide_pay(const item_book& book,
                               const std::string& order_id, int64_t now_ms);
transition_decision decide_cancel(const item_book& book,
                                  const std::string& order_id);
/// Whether the order's deadline has passed while it is still unpaid.
transition_decision decide_expire(const item_book& book,
                                  const std::string& order_id, int64_t now_ms);
/// Pause, resume or end: the admin state to go to, or the refusal. A sale
/// that has ended (by an operator or by its window) stays ended: pause and
/// resume are refused with `ended`; `end` is recorded (once).
struct admin_decision {
  errc code = errc::ok;
  bool change = false;
  admin_state to = admin_state::active;
};
admin_decision decide_admin(const item_book& book, admin_state wanted,
                            int64_t now_ms);

// -- Changes -----------------------------------------------------------------------

undo_record apply_place(item_book& book, const order& o);
undo_record apply_transition(item_book& book, const std::string& order_id,
                             order_state to, int64_t now_ms);
undo_record apply_admin(item_book& book, admin_state to);
void undo(item_book& book, const undo_record& u);

} // namespace seckill
