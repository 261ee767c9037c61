// Error codes of seckill: every way a request can be refused, as one enum
// registered with CAF (category atom "seckill"), so actors return them as
// `caf::error` and every layer (HTTP, CLI, tests) maps them by name.
// Bad input is a code, never an exception and never a crash.
#pragma once

#include <cstdint>
#include <string>

#include <caf/atom.hpp>
#include <caf/error.hpp>
#include <caf/fwd.hpp>

namespace seckill {

enum class errc : uint8_t {
  ok = 0,
  // The sale.
  sold_out = 1,
  user_limit_exceeded,
  not_started,
  ended,
  paused,
  // Metering and overload.
  busy,              // waiting room full or waited too long: retry later
  rate_limited,      // this user sends faster than a human
  unpaid_limit,      // the user holds too many unpaid orders
  capacity_exceeded, // a bounded table is full (sessions, orders, items)
  // Lookups.
  unknown_item,
  unknown_order,
  item_exists,
  // Input.
  invalid_quantity,
  invalid_id,
  invalid_item,
  // Order life cycle.
  expired,          // paid after the reservation's deadline
  not_cancellable,  // order is already final
  not_payable,      // order is not waiting for payment
  request_conflict, // request_id reused for another user, item or quantity
  // Durability.
  store_unavailable, // the commit holding this change failed; nothing taken
  shard_unavailable, // a hop timed out or its actor is down
  // The HTTP front door (the REST bridge and its server).
  bad_request,        // malformed HTTP, or a body where none belongs
  unauthorized,       // admin call without a token
  forbidden,          // admin call with the wrong token
  not_found,          // no such route
  method_not_allowed, // the route exists, not with this method
  request_timeout,    // the request did not arrive in time
  payload_too_large,  // body over the limit
  uri_too_long,       // request line over the limit
  headers_too_large,  // headers over the limit
  overloaded,         // too many connections, or the node is shutting down
  timeout,            // no answer in time: retry with the same request_id
  // The front of the sale (actors/edge/buyer_gate.hpp).
  unauthenticated, // buyer route without a valid buyer JWT
  token_required,  // purchase of a token or quiz item without a sale token
  invalid_token,   // sale token forged, expired, of another user or item
  too_fast,        // quiz answered sooner than a person answers
  wrong_answer,    // quiz or proof of work answered wrongly
  challenge_used,  // a challenge redeemed twice
  user_mismatch,   // the body's user_id is not the buyer JWT's subject
  queued,          // behind a full waiting room: a ticket keeps the place
};

/// The last code: tables over every code end here.
constexpr errc errc_last = errc::queued;

/// What a `queued` answer carries beside its retry hint: the ticket's
/// number in its queue's line, the place in it, and whether the tickets
/// ahead already ask for the stock that is left.
struct queued_facts {
  int64_t ticket = 0;
  int64_t position = 0;
  int64_t eta_ms = 0;
  bool likely_sold_out = false;
};

caf::error make_queued(const queued_facts& q);

/// The facts of a `queued` error; false for any other error.
bool queued_of(const caf::error& err, queued_facts& out);

/// The error category of seckill's codes inside `caf::error`.
constexpr caf::atom_value errc_category = caf::atom("seckill");

/// What is known of a code, from the one table in errors.cpp.
struct errc_facts {
  errc code;
  const char* name;  // "sold_out": the stable, machine-readable form
  int http_status;   // the status a client sees
  const char* title; // the problem's short title ("The item is sold out.")
};

/// The facts of `x`; for a value that is no errc: "unknown_error", 500.
const errc_facts& facts_of(errc x);

/// The code's name, e.g. "sold_out": the stable, machine-readable form.
const char* to_string(errc x);

/// The problem's short title for a code ("The item is sold out.").
const char* problem_title(errc x);

/// The HTTP status of a code; 500 for a value that is not an errc.
int http_status(errc x);

/// Wraps a code as a CAF error (0.17 style: found by ADL for `caf::error`).
/// `store_unavailable` gets its retry hint (limits::store_retry_after_ms).
caf::error make_error(errc x);

/// `busy` or `rate_limited` with a hint: retry after this many milliseconds.
caf::error make_error(errc x, int64_t retry_after_ms);

/// The retry hint carried by `err`, 0 if it has none.
int64_t retry_after_ms(const caf::error& err);

/// The code inside `err` if it is one of ours, `errc::ok` for no error, and
/// `errc::shard_unavailable` for any CAF error (timeouts, dead receivers).
errc to_errc(const caf::error& err);

} // namespace seckill
