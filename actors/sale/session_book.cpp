// A user session's pure rules (see session_book.hpp).
#include "actors/sale/session_book.hpp"

#include <algorithm>

#include "messages/limits.hpp"

namespace seckill {

int64_t ms_until_unpaid_frees(const session_book& book, int64_t now_ms) {
  int64_t first = 0;
  for (const auto& [id, u] : book.unpaid)
    if (first == 0 || u.expires_ms < first)
      first = u.expires_ms;
  return std::max<int64_t>(1, first - now_ms);
}

int64_t held_units(const session_item& x) {
  return std::max(x.held, x.held_floor);
}

errc decide_session(session_book& book, const purchase& p,
                    int64_t per_user_limit, int64_t unpaid_max,
                    int64_t now_ms) {
  if (!take_token(book.bucket, now_ms))
    return errc::rate_limited;
  auto i = book.items.find(p.item_id);
  if (i != book.items.end() && i->second.requests.count(p.request_id) != 0)
    return errc::ok; // a retry: the item answers it, whatever we believe
  // An unpaid order past its deadline has expired at the item (or is
  // refused payment there): its units are the user's no more.
  for (auto j = book.unpaid.begin(); j != book.unpaid.end();) {
    auto next = std::next(j);
    if (j->second.expires_ms <= now_ms)
      forget_unpaid(book, j->first, true);
    j = next;
  }
  i = book.items.find(p.item_id);
  if (static_cast<int64_t>(book.unpaid.size()) >= unpaid_max)
    return errc::unpaid_limit;
  // With its memory of request ids full, the session cannot tell a retry
  // from a new request: it leaves the limit to the item.
  if (i != book.items.end()
      && held_units(i->second) + p.quantity > per_user_limit
      && i->second.requests.size() < limits::session_requests_max)
    return errc::user_limit_exceeded;
  if (i == book.items.end() && book.items.size() >= limits::session_items_max)
    return errc::capacity_exceeded;
  return errc::ok;
}

void learn_order(session_book& book, const order& o) {
  auto& item = book.items[o.item_id];
  bool known = item.requests.count(o.request_id) != 0;
  if (!known && item.requests.size() < limits::session_requests_max)
    item.requests.insert(o.request_id);
  if (!known && counts_for_user(o.state))
    item.held += o.quantity;
  if (o.state == order_state::reserved || o.state == order_state::pending)
    book.unpaid.emplace(o.order_id,
                        unpaid_order{o.item_id, o.quantity, o.expires_ms});
}

void learn_error(session_book& book, const purchase& p, errc code,
                 int64_t per_user_limit) {
  // The item refused held + quantity > limit: so the user holds at least
  // limit - quantity + 1. That much is known; more would be invented (and
  // would refuse smaller purchases that fit). It is a bound, not a count
  // of orders: the orders it covers may be learned later (a retry's replay).
  if (code == errc::user_limit_exceeded && p.soft_refusal == 0) {
    auto& floor = book.items[p.item_id].held_floor;
    floor = std::max(floor, per_user_limit - p.quantity + 1);
  }
}

void forget_unpaid(session_book& book, const std::string& order_id,
                   bool released) {
  if (book.settled.size() >= limits::session_settled_max)
    book.settled.clear(); // the oldest matter least: their notes came long ago
  book.settled.insert(order_id);
  auto i = book.unpaid.find(order_id);
  if (i == book.unpaid.end())
    return;
  if (released) {
    // The bound falls too: it may have counted these units (lowering it
    // only leaves more to the item, which has the last word).
    auto& item = book.items[i->second.item_id];
    item.held = std::max<int64_t>(0, item.held - i->second.quantity);
    item.held_floor =
      std::max<int64_t>(0, item.held_floor - i->second.quantity);
  }
  book.unpaid.erase(i);
}

void learn_unpaid(session_book& book, const std::vector<unpaid_view>& notes,
                  int64_t now_ms) {
  for (const auto& n : notes) {
    if (n.expires_ms <= now_ms || book.settled.count(n.order_id) != 0
        || book.unpaid.size()
             >= static_cast<std::size_t>(limits::unpaid_per_user_max))
      continue;
    book.unpaid.emplace(n.order_id,
                        unpaid_order{n.item_id, n.quantity, n.expires_ms});
  }
}

std::vector<unpaid_view> unpaid_notes(const session_book& book) {
  std::vector<unpaid_view> out;
  out.reserve(book.unpaid.size());
  for (const auto& [id, u] : book.unpaid)
    out.push_back(unpaid_view{id, u.item_id, u.quantity, u.expires_ms});
  return out;
}

} // namespace seckill
