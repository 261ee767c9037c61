// Names of the error codes and the bridge between `errc` and `caf::error`.
#include "messages/errors.hpp"

#include <caf/message.hpp>
#include <caf/make_message.hpp>

#include "messages/limits.hpp"

namespace seckill {

const char* to_string(errc x) {
  switch (x) {
    case errc::ok: return "ok";
    case errc::sold_out: return "sold_out";
    case errc::user_limit_exceeded: return "user_limit_exceeded";
    case errc::not_started: return "not_started";
    case errc::ended: return "ended";
    case errc::paused: return "paused";
    case errc::busy: return "busy";
    case errc::rate_limited: return "rate_limited";
    case errc::unpaid_limit: return "unpaid_limit";
    case errc::capacity_exceeded: return "capacity_exceeded";
    case errc::unknown_item: return "unknown_item";
    case errc::unknown_order: return "unknown_order";
    case errc::item_exists: return "item_exists";
    case errc::invalid_quantity: return "invalid_quantity";
    case errc::invalid_id: return "invalid_id";
    case errc::invalid_item: return "invalid_item";
    case errc::expired: return "expired";
    case errc::not_cancellable: return "not_cancellable";
    case errc::not_payable: return "not_payable";
    case errc::request_conflict: return "request_conflict";
    case errc::store_unavailable: return "store_unavailable";
    case errc::shard_unavailable: return "shard_unavailable";
    case errc::corrupt_state: return "corrupt_state";
    case errc::bad_request: return "bad_request";
    case errc::unauthorized: return "unauthorized";
    case errc::forbidden: return "forbidden";
    case errc::not_found: return "not_found";
    case errc::method_not_allowed: return "method_not_allowed";
    case errc::request_timeout: return "request_timeout";
    case errc::payload_too_large: return "payload_too_large";
    case errc::uri_too_long: return "uri_too_long";
    case errc::headers_too_large: return "headers_too_large";
    case errc::overloaded: return "overloaded";
    case errc::timeout: return "timeout";
  }
  return "unknown_error";
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
  if (ctx.size() == 1 && ctx.match_element<int64_t>(0))
    return ctx.get_as<int64_t>(0);
  return 0;
}

errc to_errc(const caf::error& err) {
  if (!err)
    return errc::ok;
  if (err.category() == errc_category)
    return static_cast<errc>(err.code());
  return errc::shard_unavailable;
}

} // namespace seckill
