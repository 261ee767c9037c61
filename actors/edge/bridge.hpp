// The REST bridge actor: turns HTTP requests (handed over by the HTTP
// server's I/O threads as `http_exchange`s) into typed requests to the
// directory and the admin actor, and their answers into HTTP responses
// (README.md, "The HTTP API with curl"). A node runs several bridges and
// spreads requests over them, because CAF keeps an actor's pending replies in a
// list searched linearly (docs/ARCHITECTURE.md, "Pending replies are a linear
// list").
//
// What a bridge decides by itself, before any hop: the route (404 / 405),
// the admin token (401 / 403), the body's shape and the ids (400). Every hop
// it makes is bounded by `hop_timeout_ms`; a hop that fails or times out is
// answered 503 (shard_unavailable), and a purchase answered so may still
// have been placed: its retry with the same request_id returns the order.
//
// Orders are looked up, paid and cancelled only by their user: the buyer
// JWT's subject (or, with buyer-auth open, the user_id of the query for GET
// and of the body for POST) must be the order's user, and another user's
// order is 404, as if it did not exist. A user_id given beside a JWT must be
// its subject (403 user_mismatch).
//
// Sale tokens and challenges (buyer_gate.hpp): POST .../token asks the item
// (its view, through the directory) whether it is on sale and answers a
// token only then (403 not_started with the start and a Retry-After, 403
// ended or paused, 409 sold_out); for a quiz item it first redeems the
// challenge its body carries. GET .../quiz gives a quiz item's challenge,
// once it is on sale.
//
// Degrade switches (actors/edge/front_gate.hpp, set by seckill-cli): with
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
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_actor.hpp>

#include "actors/cluster/directory.hpp"
#include "actors/cluster/relay.hpp"
#include "actors/edge/admin.hpp"
#include "actors/edge/buyer_gate.hpp"
#include "actors/edge/counters.hpp"
#include "actors/edge/front_gate.hpp"
#include "actors/edge/http_rules.hpp"
#include "actors/edge/routes.hpp"
#include "messages/errors.hpp"
#include "messages/http.hpp"

namespace seckill {

// -- The actor ------------------------------------------------------------------

/// One HTTP request in flight and the function that answers it.
struct http_exchange {
  http::request request;
  /// Matched once, by the front door (routes.hpp), not again here.
  route rt;
  http::reply_fn reply;
  /// On a buyer route: the buyer the front door authenticated (the JWT's
  /// subject; "" with buyer-auth open, where the body or query names the
  /// user).
  std::string buyer;
  /// On the purchase route: the body, parsed, validated and its sale token
  /// checked by the front door (node/front_door.hpp).
  purchase parsed;
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
  /// Sale tokens and challenges (the token and quiz routes); null: those
  /// routes answer 404 (tests without a gate).
  std::shared_ptr<buyer_gate> buyers;
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

/// The bridge's interface: one HTTP exchange at a time, answered through
/// the exchange's reply function (never as a CAF response).
using bridge_actor = caf::typed_actor<caf::reacts_to<http_exchange>>;

using bridge_pointer = bridge_actor::stateful_pointer<bridge_state>;

bridge_actor::behavior_type bridge_impl(bridge_pointer self, bridge_env env);

} // namespace seckill

// An exchange never leaves its node: it holds a function, not data.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(seckill::http_exchange)
