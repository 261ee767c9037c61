// A user session's rules as pure functions of its book (the way item_book
// is split from the item actor): what the session knows of the user's
// items, unpaid orders and recently settled ones, whether a purchase may go
// on to the item (decide_session), and what it learns from the item's
// answers and the items' announcements. No CAF, no clock but the one passed
// in, so tests drive every rule without an actor.
//
// A book never claims more than it can prove: it learns a floor of units
// from a limit refusal, never a count it made up, and a request id it has
// seen before always passes, so a retry reaches the item. Every map is
// bounded (limits::session_settled_max, the user's items and unpaid orders).
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "actors/sale/token_bucket.hpp"
#include "messages/errors.hpp"
#include "messages/types.hpp"

namespace seckill {

/// What the session knows of one item for its user.
struct session_item {
  int64_t held = 0; // units of the orders this session learned
  // Units the item's user_limit_exceeded proved the user holds (orders this
  // session may not know: another session's, before a retirement or a
  // move). Kept apart from `held`: a known order replayed later is in the
  // bound already, and adding it to it would count it twice.
  int64_t held_floor = 0;
  std::unordered_set<std::string> requests; // request ids answered before
};

/// The units the session can prove the user holds of one item: what its own
/// orders add up to, or the item's bound, whichever is more.
int64_t held_units(const session_item& x);

struct unpaid_order {
  std::string item_id;
  int64_t quantity = 0;
  int64_t expires_ms = 0;
};

/// The pure part: may this purchase go on to the item?
struct session_book {
  token_bucket bucket;
  std::unordered_map<std::string, session_item> items;
  std::unordered_map<std::string, unpaid_order> unpaid; // by order id
  /// Recently settled order ids (at most limits::session_settled_max), so an
  /// announcement that crossed the settlement does not count it again.
  std::unordered_set<std::string> settled;
};

errc decide_session(session_book& book, const purchase& p,
                    int64_t per_user_limit, int64_t unpaid_max, int64_t now_ms);
/// The retry hint of `unpaid_limit`: milliseconds until the user's first
/// unpaid order reaches its deadline and frees a place (at least 1). Paying
/// or cancelling one frees a place sooner.
int64_t ms_until_unpaid_frees(const session_book& book, int64_t now_ms);

/// Learns from the item's answer.
void learn_order(session_book& book, const order& o);
void learn_error(session_book& book, const purchase& p, errc code,
                 int64_t per_user_limit);
/// An unpaid order became final: paid (`released` false: the units stay
/// the user's) or cancelled / expired (`released` true: they came back).
void forget_unpaid(session_book& book, const std::string& order_id,
                   bool released);
/// Counts unpaid orders placed elsewhere (an earlier session, before a
/// restart); past deadlines, settled and known ones are skipped.
void learn_unpaid(session_book& book, const std::vector<unpaid_view>& notes,
                  int64_t now_ms);
/// The unpaid orders this session counts, to hand back when it retires.
std::vector<unpaid_view> unpaid_notes(const session_book& book);

} // namespace seckill
