// The item actor: the single writer of one sale item's stock, and the last,
// strongly consistent layer of every purchase. Whatever the admission queue
// and the user session let through, it re-checks status, stock and the
// per-user limit (item_book.hpp holds the rules).
//
// Durable before acknowledged: a change is made in memory at once (so the
// next purchase sees it), recorded with its undo in the *pending* batch, and
// answered only when the store has committed the batch holding it. One batch
// at a time is in flight to the store; what arrives meanwhile forms the next
// one (group commit per item; the store groups items into transactions). If a
// commit fails, every change not yet durable (pending, then in flight) is
// undone in reverse order and its callers get `store_unavailable`.
//
// Invariant, asserted after every change: available + reserved + sold ==
// total, each >= 0. It must never: answer a purchase before its commit,
// block, or let a full batch grow (purchases are answered `busy` instead).
// Status changes (on_sale, sold_out, paused, ended) are pushed to subscribers
// (the admission queues) as `(status_atom, status_update)`.
#pragma once

#include <deque>
#include <string>
#include <unordered_set>
#include <vector>

#include <caf/replies_to.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_actor.hpp>

#include "actors/base/clock.hpp"
#include "actors/sale/item_book.hpp"
#include "messages/log_limiter.hpp"
#include "messages/type_ids.hpp"
#include "persistence/store.hpp"

namespace seckill {

/// What an item tells its admission queues.
using status_listener =
  caf::typed_actor<caf::reacts_to<status_atom, status_update>>;

/// Who an item tells that a user's unpaid order became final.
using settle_listener = caf::typed_actor<
  caf::reacts_to<settled_atom, std::string, std::string, bool>,
  // A user's unpaid orders here: sent after recovery and when asked.
  caf::reacts_to<unpaid_atom, std::string, std::vector<unpaid_view>>>;

/// Who keeps the node's item memory budget (the directory).
using tables_listener =
  caf::typed_actor<caf::reacts_to<tables_atom, std::string, int64_t>>;

using item_actor = caf::typed_actor<
  caf::replies_to<purchase_atom, purchase>::with<order>,
  caf::replies_to<pay_atom, std::string>::with<order>,
  caf::replies_to<cancel_atom, std::string>::with<order>,
  caf::replies_to<order_atom, std::string>::with<order>,
  caf::replies_to<stock_atom>::with<stock_view>,
  caf::replies_to<view_atom>::with<item_view>,
  // Admin: answered after the change is durable.
  caf::replies_to<pause_atom>::with<item_view>,
  caf::replies_to<resume_atom>::with<item_view>,
  caf::replies_to<end_atom>::with<item_view>,
  // A barrier: answers when everything received before it is durable.
  caf::replies_to<commit_atom>::with<item_view>,
  // Adds a status listener (an actor that takes (status_atom, status_update)).
  caf::replies_to<subscribe_atom, caf::actor>::with<status_update>,
  // Timer: expiries and the sale window's start and end.
  caf::reacts_to<tick_atom>,
  // Tell the settle listener every unpaid order (the members changed, so
  // users' sessions may have moved).
  caf::reacts_to<unpaid_atom>>;

struct item_env {
  store_actor store;
  clock_fn now_ms;
  /// Optional: told `(settled_atom, user_id, order_id, released)` when an
  /// unpaid order becomes final, so sessions free their caps; `released`:
  /// cancelled or expired (the user's units came back), not paid.
  settle_listener settled;
  /// Optional: the directory, told `(tables_atom, item_id, bytes)` once the
  /// sale has ended and the tables shrank to its orders, so that the node's
  /// item memory budget gets the rest back.
  tables_listener directory;
};

/// One waiting caller: called with ok once its change is durable, or with
/// the error that undid it.
using waiter = std::function<void(errc)>;

struct item_batch_state {
  std::vector<undo_record> undos;
  std::unordered_set<std::string> touched; // order ids changed in this batch
  std::unordered_set<std::string> placed;  // those of them created in it
  std::vector<waiter> waiters;
  bool empty() const { return undos.empty() && waiters.empty(); }
};

struct item_state {
  item_book book;
  item_env env;
  item_batch_state pending;
  item_batch_state inflight;
  bool commit_inflight = false;
  std::vector<status_listener> subscribers;
  item_status published = item_status::upcoming;
  std::vector<std::pair<int64_t, std::string>> expiry_heap; // min-heap
  int64_t timer_due_ms = 0;                                 // 0: no tick armed
  bool tables_released = false; // the sale ended and the tables shrank
  int64_t backoff_until_ms = 0; // after a failed commit, expiries wait
  int64_t commits = 0;
  int64_t commit_failures = 0;
  log_limiter commit_failed_log{
    limits::log_repeat_ms}; // a full disk fails every commit
  /// The latest purchase decisions, for the CLI (at most
  /// limits::item_recent_outcomes_max, oldest first).
  std::deque<outcome_event> recent;
  static inline const char* name = "seckill.item";
};

using item_pointer = item_actor::stateful_pointer<item_state>;

/// `fresh`: the item was just created and its record must be written first.
item_actor::behavior_type item_impl(item_pointer self, item_book book,
                                    item_env env, bool fresh);

item_view make_view(const item_state& st, int64_t now_ms);

} // namespace seckill
