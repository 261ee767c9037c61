// The REST bridge actor: turns HTTP requests (handed over by the HTTP
// server's I/O threads as `http_exchange`s) into typed requests to the
// directory and the admin actor, and their answers into HTTP responses
// (DESIGN.md, HTTP API). A node runs several bridges and spreads requests
// over them, because CAF keeps an actor's pending replies in a list searched
// linearly (CAF-0.17.md).
//
// What a bridge decides by itself, before any hop: the route (404 / 405),
// the admin token (401 / 403), the body's shape and the ids (400). Every hop
// it makes is bounded by `hop_timeout_ms`; a hop that fails or times out is
// answered 503 (shard_unavailable), and a purchase answered so may still
// have been placed: its retry with the same request_id returns the order.
//
// Orders are looked up, paid and cancelled only by their user: the order id
// is sequential, so the user_id (query for GET, body for POST) must match,
// and another user's order is 404, as if it did not exist.
//
// Degrade switches (actors/front_gate.hpp, set by seckill-cli): with
// edge-reads-ms set, a stock read is answered from this bridge's last read
// of that item when it is at most that old (header X-Stock-Age-Ms), so a
// crowd refreshing the stock costs the owner one read per bridge per period;
// with essential-only on, the item list answers 503 and /metrics leaves out
// the per-item series.
//
// It must never: block, trust a byte of the request, answer a request twice,
// or hold a request without a bound in time.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/event_based_actor.hpp>

#include "actors/admin.hpp"
#include "actors/directory.hpp"
#include "actors/front_gate.hpp"
#include "actors/relay.hpp"
#include "messages/errors.hpp"
#include "messages/http.hpp"

namespace seckill {

// -- Routes (pure) --------------------------------------------------------------

enum class route_kind : uint8_t {
  healthz,
  metrics,
  items_create,
  items_list,
  item_get,
  item_stock,
  item_purchase,
  item_pause,
  item_resume,
  item_end,
  order_get,
  order_pay,
  order_cancel,
  unmatched, // 404 not_found or 405 method_not_allowed
};

constexpr std::size_t route_count = static_cast<std::size_t>(route_kind::unmatched) + 1;

/// The route's name in metrics and logs ("purchase", "stock", ...).
const char* to_string(route_kind x);

struct route {
  route_kind kind = route_kind::unmatched;
  std::string id;      // item or order id from the path, as sent
  std::string user_id; // from the query's user_id, as sent
  errc error = errc::ok; // not_found or method_not_allowed when unmatched
  std::string allow;     // for 405: the methods the path takes
};

/// Matches method and target ("/api/v1/items/sku-1/stock?x=y").
route match_route(const std::string& method, const std::string& target);

/// Whether a route needs the admin token.
bool is_admin(route_kind x);

/// "Bearer TOKEN" against the configured token: ok, unauthorized (absent or
/// not a bearer token) or forbidden (wrong token). Compares in constant time.
errc check_token(const std::string& authorization, const std::string& token);

/// A strong ETag ("\"<16 hex>\"") over a response body.
std::string etag_of(const std::string& body);

/// Whether an If-None-Match header value matches `etag` ("*", a list, W/).
bool etag_matches(const std::string& if_none_match, const std::string& etag);

/// The response for an error code: problem+json, its status, and a
/// Retry-After header (whole seconds, at least 1) when a hint is given.
http::response problem_response(errc code, const std::string& detail,
                                int64_t retry_after_ms = 0);

// -- Counters shared by the node's bridges --------------------------------------

/// Requests by route and outcome, purchases by outcome. Atomics: every
/// bridge adds, /metrics reads; no actor state is shared.
struct bridge_counters {
  static constexpr std::size_t outcomes = static_cast<std::size_t>(errc_last) + 1;
  std::array<std::array<std::atomic<int64_t>, outcomes>, route_count> requests{};
  std::array<std::atomic<int64_t>, outcomes> purchases{};
  /// Purchases answered 201 (new order) and 200 (a retry's order).
  std::atomic<int64_t> orders_created{0};
  std::atomic<int64_t> orders_replayed{0};
  /// Renders of /metrics and of the item list (each may answer many
  /// requests: see shared_answer).
  std::atomic<int64_t> metrics_renders{0};
  std::atomic<int64_t> items_list_renders{0};
};

// -- The actor ------------------------------------------------------------------

/// One HTTP request in flight and the function that answers it.
struct http_exchange {
  http::request request;
  http::reply_fn reply;
};

struct bridge_env {
  std::string node_id;
  std::string admin_token;
  directory_actor directory;
  admin_actor admin;
  clock_fn now_ms;
  int64_t hop_timeout_ms = 5'000;
  std::shared_ptr<bridge_counters> counters;
  /// The node's relay counters for /metrics; null: a node alone.
  std::shared_ptr<relay_counters> remote;
  /// The degrade switches (edge reads, essential-only) and the front
  /// gate's counters for /metrics; null in tests without a gate.
  std::shared_ptr<node_switches> switches;
  std::shared_ptr<gate_counters> gate_stats;
  /// The store's health: /healthz answers 503 while commits fail or after
  /// the store stopped acknowledging. Null: always healthy (tests).
  std::shared_ptr<const seckill::store_health> store_health;
};

/// A stock read kept for edge reads: what the owner answered, and when the
/// question was sent (steady clock, so its age is never under-counted).
struct edge_stock {
  stock_view view;
  int64_t asked_ms = 0;
};

/// An answer that costs work in proportion to the items (/metrics, the item
/// list) and is the same for every client: one render serves every request
/// that arrives while it is under way, so N scrapers cost one render, not N
/// (8 scrapers slowed purchases from 1 ms to 90 ms when each rendered its
/// own). At most limits::shared_answer_waiters_max wait; beyond, 503 busy.
struct shared_answer {
  bool rendering = false;
  std::vector<std::shared_ptr<http_exchange>> waiting;
};

struct bridge_state {
  bridge_env env;
  shared_answer metrics;
  shared_answer items_list;
  /// Edge reads (switch edge-reads-ms): the last stock read of each item.
  /// At most items_per_node_max entries; when full it is dropped and
  /// filled again (only reads hop more often).
  std::unordered_map<std::string, edge_stock> edge_stocks;
  static inline const char* name = "seckill.bridge";
};

using bridge_pointer = caf::stateful_actor<bridge_state>*;

/// Takes `http_exchange` messages.
caf::behavior bridge_impl(bridge_pointer self, bridge_env env);

} // namespace seckill

// An exchange never leaves its node: it holds a function, not data.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(seckill::http_exchange)
