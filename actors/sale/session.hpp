// The user-session actor: the single writer of one user's soft state. It
// rejects early what it can (a user faster than a human, too many unpaid
// orders, a limit it already knows is reached) and serializes the user's
// purchases of one item: while one is in flight to the item, the next waits
// behind it, so a double click reaches the item as two requests in order and
// the item's idempotency turns the second into the first's order.
//
// It never has the last word: the item actor re-checks stock and limits.
// A request_id the session has seen before skips the early checks, so a retry
// always reaches the item and gets its original order back. A purchase the
// session would refuse by a limit (unpaid orders, units held) still goes to
// the item, marked `soft_refusal`: the session cannot know every request id
// (it may be new after a restart, a retirement or a move), the item can; it
// returns a retry's order and refuses the rest with the session's code. The
// session never refuses what only the item knows, and learns from a refusal
// only what it proves (held >= limit - quantity + 1), never a count it made
// up.
// The session manager retires it after `idle_timeout_ms` without work, so
// memory follows active users; it then finishes what is in flight, hands its
// unpaid orders back to the manager (which keeps them for the user's next
// session until their deadlines) and stops. A new session is seeded with
// those and with what items announce after a restart or a move, so the
// unpaid cap counts the user's real unpaid orders, not only this session's.
// Its rules are pure functions of its book (session_book.hpp); this file
// is the actor around them. Every map here is bounded.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <caf/replies_to.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "actors/base/clock.hpp"
#include "actors/base/hop.hpp"
#include "actors/sale/session_book.hpp"
#include "messages/errors.hpp"
#include "messages/type_ids.hpp"

namespace seckill {

using session_actor = caf::typed_actor<
  // A purchase, the item actor to send it to, and the item's per-user limit.
  caf::replies_to<purchase_atom, purchase, caf::actor, int64_t>::with<order>,
  // An unpaid order of this user became final; true: its units came back.
  caf::reacts_to<settled_atom, std::string, bool>,
  // Unpaid orders of this user it did not place itself (parked by an earlier
  // session, announced by an item after a restart or a move).
  caf::reacts_to<unpaid_atom, std::vector<unpaid_view>>,
  // The manager retired this session: finish what is in flight, then stop.
  caf::reacts_to<end_atom>,
  // Introspection: what this session knows (summary left to the manager).
  caf::replies_to<view_atom>::with<user_view>>;

struct session_config {
  double rate_per_s = 5; // purchase attempts per user per second
  double burst = 10;
  int64_t unpaid_max = 3; // unpaid orders one user may hold, all items
  int64_t idle_timeout_ms = 60'000; // retired by the manager after this
  int64_t hop_timeout_ms = 5'000;   // the manager's view request to it
  cluster_env cluster; // where items live; the relays to reach them
};

struct queued_purchase {
  purchase p;
  caf::actor item;
  int64_t per_user_limit = 1;
  caf::typed_response_promise<order> rp;
};

struct session_state {
  std::string user_id;
  session_config cfg;
  clock_fn now_ms;
  caf::actor manager;
  session_book book;
  // Per item: the purchase in flight first, then those waiting behind it.
  std::unordered_map<std::string, std::deque<queued_purchase>> lines;
  std::size_t queued = 0;
  bool retiring = false;
  static inline const char* name = "seckill.session";
};

using session_pointer = session_actor::stateful_pointer<session_state>;

/// What `seckill-cli user ID` shows of a live session.
user_view make_user_view(const session_state& st);

session_actor::behavior_type session_impl(session_pointer self,
                                          std::string user_id,
                                          session_config cfg, clock_fn now_ms,
                                          caf::actor manager);

} // namespace seckill
