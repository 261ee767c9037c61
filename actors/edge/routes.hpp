// The HTTP API's routes (README.md, "The HTTP API with curl"), matched once per
// request: the front gate matches a request's method and target when it admits
// it and hands the route to the bridge with the exchange. Pure functions, no
// I/O; a target that matches no route is `unmatched` with 404 not_found or
// 405 method_not_allowed (and the methods the path takes, for Allow).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "messages/errors.hpp"

namespace seckill {

enum class route_kind : uint8_t {
  healthz,
  metrics,
  items_create,
  items_list,
  item_get,
  item_stock,
  item_purchase,
  item_token, // POST: a sale token (buyer_gate.hpp)
  item_quiz,  // GET: a challenge for a quiz item's token
  item_pause,
  item_resume,
  item_end,
  order_get,
  order_pay,
  order_cancel,
  unmatched, // 404 not_found or 405 method_not_allowed
};

constexpr std::size_t route_count =
  static_cast<std::size_t>(route_kind::unmatched) + 1;

/// The route's name in metrics and logs ("purchase", "stock", ...).
const char* to_string(route_kind x);

struct route {
  route_kind kind = route_kind::unmatched;
  std::string id;        // item or order id from the path, as sent
  std::string user_id;   // from the query's user_id, as sent
  errc error = errc::ok; // not_found or method_not_allowed when unmatched
  std::string allow;     // for 405: the methods the path takes
};

/// Matches method and target ("/api/v1/items/sku-1/stock?x=y").
route match_route(const std::string& method, const std::string& target);

/// Whether a route needs the admin token.
bool is_admin(route_kind x);

} // namespace seckill
