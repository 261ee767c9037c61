// The error codes' one table (name, HTTP status, title) and the bridge
// between `errc` and `caf::error`.
#include "messages/errors.hpp"

#include <caf/make_message.hpp>
#include <caf/message.hpp>

#include "messages/limits.hpp"

namespace seckill {

namespace {

// One row per code, in the enum's order: its name, its HTTP status and the
// problem's title. The only place these facts are written.
constexpr errc_facts errc_table[] = {
  {errc::ok, "ok", 200, "OK."},
  {errc::sold_out, "sold_out", 409, "The item is sold out."},
  {errc::user_limit_exceeded, "user_limit_exceeded", 409,
   "This purchase would exceed the per-user limit."},
  {errc::not_started, "not_started", 403, "The sale has not started yet."},
  {errc::ended, "ended", 403, "The sale has ended."},
  {errc::paused, "paused", 403, "The sale is paused."},
  {errc::busy, "busy", 429, "Too many buyers right now; retry later."},
  {errc::rate_limited, "rate_limited", 429,
   "Too many requests from this user."},
  {errc::unpaid_limit, "unpaid_limit", 429,
   "Too many unpaid orders; pay or cancel one first."},
  {errc::capacity_exceeded, "capacity_exceeded", 503,
   "The service is at capacity."},
  {errc::unknown_item, "unknown_item", 404, "No such item."},
  {errc::unknown_order, "unknown_order", 404, "No such order."},
  {errc::item_exists, "item_exists", 409,
   "An item with this id already exists."},
  {errc::invalid_quantity, "invalid_quantity", 400, "The quantity is invalid."},
  {errc::invalid_id, "invalid_id", 400, "An id is missing or invalid."},
  {errc::invalid_item, "invalid_item", 400,
   "The request body or item definition is invalid."},
  {errc::expired, "expired", 410, "The reservation has expired."},
  {errc::not_cancellable, "not_cancellable", 409,
   "The order can no longer be cancelled."},
  {errc::not_payable, "not_payable", 409,
   "The order is not waiting for payment."},
  {errc::request_conflict, "request_conflict", 409,
   "This request_id was already used for another purchase."},
  {errc::store_unavailable, "store_unavailable", 503,
   "The order could not be stored; nothing was taken."},
  {errc::shard_unavailable, "shard_unavailable", 503,
   "The item's node is unavailable; retry later."},
  {errc::bad_request, "bad_request", 400, "The request is malformed."},
  {errc::unauthorized, "unauthorized", 401, "This call needs the admin token."},
  {errc::forbidden, "forbidden", 403, "The admin token is wrong."},
  {errc::not_found, "not_found", 404, "No such resource."},
  {errc::method_not_allowed, "method_not_allowed", 405,
   "This method is not allowed here."},
  {errc::request_timeout, "request_timeout", 408,
   "The request did not arrive in time."},
  {errc::payload_too_large, "payload_too_large", 413,
   "The request body is too large."},
  {errc::uri_too_long, "uri_too_long", 414, "The request line is too long."},
  {errc::headers_too_large, "headers_too_large", 431,
   "The request headers are too large."},
  {errc::overloaded, "overloaded", 503,
   "The node is overloaded or shutting down; retry later."},
  {errc::timeout, "timeout", 503,
   "No answer in time; retry with the same request_id."},
  {errc::unauthenticated, "unauthenticated", 401,
   "This call needs a valid buyer token (Authorization: Bearer JWT)."},
  {errc::token_required, "token_required", 403,
   "This item's purchase needs a sale token."},
  {errc::invalid_token, "invalid_token", 403, "The sale token is not valid."},
  {errc::too_fast, "too_fast", 403, "The answer came too fast."},
  {errc::wrong_answer, "wrong_answer", 403, "The answer is wrong."},
  {errc::challenge_used, "challenge_used", 403,
   "This challenge was already used."},
  {errc::user_mismatch, "user_mismatch", 403,
   "The body's user_id is not the authenticated buyer."},
  {errc::queued, "queued", 429,
   "The waiting room is full; your ticket keeps your place in line."},
};

constexpr std::size_t errc_count = static_cast<std::size_t>(errc_last) + 1;
static_assert(sizeof(errc_table) / sizeof(errc_table[0]) == errc_count,
              "one row of errc_table per error code");

constexpr bool table_in_enum_order() {
  for (std::size_t i = 0; i < errc_count; ++i)
    if (static_cast<std::size_t>(errc_table[i].code) != i)
      return false;
  return true;
}
static_assert(table_in_enum_order(), "errc_table's rows follow the enum");

// For a value that is no errc (a corrupt or foreign number).
constexpr errc_facts unknown_facts{errc_last, "unknown_error", 500,
                                   "Internal error."};

} // namespace

const errc_facts& facts_of(errc x) {
  auto i = static_cast<std::size_t>(x);
  return i < errc_count ? errc_table[i] : unknown_facts;
}

const char* to_string(errc x) {
  return facts_of(x).name;
}

const char* problem_title(errc x) {
  return facts_of(x).title;
}

int http_status(errc x) {
  return facts_of(x).http_status;
}

caf::error make_error(errc x) {
  // A failed commit took nothing and may pass (a full disk freed): every
  // layer that passes it on keeps the hint, so a buyer sees Retry-After.
  if (x == errc::store_unavailable)
    return make_error(x, limits::store_retry_after_ms);
  return caf::error{static_cast<uint8_t>(x), errc_category};
}

caf::error make_error(errc x, int64_t retry_after_ms) {
  return caf::error{static_cast<uint8_t>(x), errc_category,
                    caf::make_message(retry_after_ms)};
}

int64_t retry_after_ms(const caf::error& err) {
  if (!err)
    return 0; // CAF 0.17: context() of an empty error reads a null pointer
  const auto& ctx = err.context();
  if (ctx.size() >= 1 && ctx.match_element<int64_t>(0))
    return ctx.get_as<int64_t>(0);
  return 0;
}

caf::error make_queued(const queued_facts& q) {
  return caf::error{
    static_cast<uint8_t>(errc::queued), errc_category,
    caf::make_message(q.eta_ms, q.ticket, q.position, q.likely_sold_out)};
}

bool queued_of(const caf::error& err, queued_facts& out) {
  if (!err || err.category() != errc_category
      || err.code() != static_cast<uint8_t>(errc::queued))
    return false;
  const auto& ctx = err.context();
  if (ctx.size() != 4 || !ctx.match_element<int64_t>(0)
      || !ctx.match_element<int64_t>(1) || !ctx.match_element<int64_t>(2)
      || !ctx.match_element<bool>(3))
    return false;
  out.eta_ms = ctx.get_as<int64_t>(0);
  out.ticket = ctx.get_as<int64_t>(1);
  out.position = ctx.get_as<int64_t>(2);
  out.likely_sold_out = ctx.get_as<bool>(3);
  return true;
}

errc to_errc(const caf::error& err) {
  if (!err)
    return errc::ok;
  if (err.category() == errc_category)
    return static_cast<errc>(err.code());
  return errc::shard_unavailable;
}

} // namespace seckill
