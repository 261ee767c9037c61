// Route matching (see routes.hpp): split the path, match it, then the method.
#include "actors/edge/routes.hpp"

#include <vector>

namespace seckill {

const char* to_string(route_kind x) {
  switch (x) {
    case route_kind::healthz: return "healthz";
    case route_kind::metrics: return "metrics";
    case route_kind::items_create: return "items_create";
    case route_kind::items_list: return "items_list";
    case route_kind::item_get: return "item";
    case route_kind::item_stock: return "stock";
    case route_kind::item_purchase: return "purchase";
    case route_kind::item_token: return "token";
    case route_kind::item_quiz: return "quiz";
    case route_kind::item_pause: return "pause";
    case route_kind::item_resume: return "resume";
    case route_kind::item_end: return "end";
    case route_kind::order_get: return "order";
    case route_kind::order_pay: return "pay";
    case route_kind::order_cancel: return "cancel";
    case route_kind::unmatched: return "unmatched";
  }
  return "unmatched";
}

namespace {

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> out;
  std::size_t at = 1; // past the leading '/'
  while (at <= path.size()) {
    auto slash = path.find('/', at);
    if (slash == std::string::npos)
      slash = path.size();
    out.push_back(path.substr(at, slash - at));
    at = slash + 1;
  }
  return out;
}

// The raw value of `key` in a query string ("a=1&user_id=u7"), "" if absent.
std::string query_value(const std::string& query, const std::string& key) {
  std::size_t at = 0;
  while (at <= query.size()) {
    auto amp = query.find('&', at);
    if (amp == std::string::npos)
      amp = query.size();
    auto pair = query.substr(at, amp - at);
    auto eq = pair.find('=');
    if (eq != std::string::npos && pair.substr(0, eq) == key)
      return pair.substr(eq + 1);
    at = amp + 1;
  }
  return {};
}

route matched(route_kind kind, const std::string& id = {}) {
  route r;
  r.kind = kind;
  r.id = id;
  return r;
}

route refused(errc code, const char* allow = "") {
  route r;
  r.error = code;
  r.allow = allow;
  return r;
}

// Picks the route for `want` if the method is the one the path takes.
route by_method(const std::string& method, const char* allowed, route_kind kind,
                const std::string& id = {}) {
  if (method != allowed)
    return refused(errc::method_not_allowed, allowed);
  return matched(kind, id);
}

route match_item_path(const std::string& method,
                      const std::vector<std::string>& seg) {
  // seg: api v1 items {id} [action]
  if (seg.size() == 4)
    return by_method(method, "GET", route_kind::item_get, seg[3]);
  if (seg.size() != 5)
    return refused(errc::not_found);
  const auto& action = seg[4];
  if (action == "stock")
    return by_method(method, "GET", route_kind::item_stock, seg[3]);
  if (action == "purchase")
    return by_method(method, "POST", route_kind::item_purchase, seg[3]);
  if (action == "token")
    return by_method(method, "POST", route_kind::item_token, seg[3]);
  if (action == "quiz")
    return by_method(method, "GET", route_kind::item_quiz, seg[3]);
  if (action == "pause")
    return by_method(method, "POST", route_kind::item_pause, seg[3]);
  if (action == "resume")
    return by_method(method, "POST", route_kind::item_resume, seg[3]);
  if (action == "end")
    return by_method(method, "POST", route_kind::item_end, seg[3]);
  return refused(errc::not_found);
}

route match_order_path(const std::string& method,
                       const std::vector<std::string>& seg) {
  // seg: api v1 orders {id} [action]
  if (seg.size() == 4)
    return by_method(method, "GET", route_kind::order_get, seg[3]);
  if (seg.size() != 5)
    return refused(errc::not_found);
  if (seg[4] == "pay")
    return by_method(method, "POST", route_kind::order_pay, seg[3]);
  if (seg[4] == "cancel")
    return by_method(method, "POST", route_kind::order_cancel, seg[3]);
  return refused(errc::not_found);
}

} // namespace

route match_route(const std::string& method, const std::string& target) {
  auto q = target.find('?');
  auto path = target.substr(0, q);
  auto query = q == std::string::npos ? std::string{} : target.substr(q + 1);
  if (path.empty() || path[0] != '/')
    return refused(errc::not_found);
  if (path == "/healthz")
    return by_method(method, "GET", route_kind::healthz);
  if (path == "/metrics")
    return by_method(method, "GET", route_kind::metrics);
  auto seg = split_path(path);
  if (seg.size() < 3 || seg[0] != "api" || seg[1] != "v1")
    return refused(errc::not_found);
  route r;
  if (seg[2] == "items" && seg.size() == 3) {
    if (method == "GET")
      r = matched(route_kind::items_list);
    else if (method == "POST")
      r = matched(route_kind::items_create);
    else
      r = refused(errc::method_not_allowed, "GET, POST");
  } else if (seg[2] == "items" && seg.size() >= 4) {
    r = match_item_path(method, seg);
  } else if (seg[2] == "orders" && seg.size() >= 4) {
    r = match_order_path(method, seg);
  } else {
    r = refused(errc::not_found);
  }
  r.user_id = query_value(query, "user_id");
  return r;
}

bool is_admin(route_kind x) {
  return x == route_kind::items_create || x == route_kind::item_pause
         || x == route_kind::item_resume || x == route_kind::item_end;
}

} // namespace seckill
