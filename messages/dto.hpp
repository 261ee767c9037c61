// Conversions between the protobuf DTOs of the HTTP API (seckill.proto,
// namespace seckill::v1) and the engine's structs (messages/types.hpp), and
// the API's JSON in and out (protobuf's JSON mapping).
//
// Invariants:
// - JSON out uses the proto field names (snake_case) and prints every field,
//   zeros included, so a client never has to guess a default. Note that the
//   proto3 JSON mapping prints int64 fields as JSON strings ("total": "100");
//   JSON in accepts both numbers and strings for them.
// - JSON in accepts snake_case and lowerCamelCase names (protobuf does both)
//   and checks only the body's shape: one JSON object, known fields, each
//   field once, each value of its field's type. Whether an id or a number is
//   acceptable is decided later by validate_purchase / validate_spec
//   (actors/sale/item_book.hpp), which this folder must not include.
// - Unknown fields are rejected, not ignored: a typo such as "quantiy": 5
//   would otherwise parse as "quantity absent" and silently buy 1.
// - The same field given twice ("quantity" twice, or "user_id" and "userId")
//   is rejected: protobuf would keep the last one silently, and a proxy in
//   front of us might have judged the first.
//
// Must never: throw, crash or log on bad input (every failure is an errc),
// or depend on actors/.
#pragma once

#include <cstdint>
#include <string>

#include "messages/errors.hpp"
#include "messages/types.hpp"
#include "seckill.pb.h"

namespace seckill {

// -- Struct -> DTO ------------------------------------------------------------

/// The item's static details and its status (an output-only field).
v1::Item to_proto(const item_spec& spec, item_status status);
v1::Order to_proto(const order& x);
v1::StockView to_proto(const stock_view& x);

// -- DTO -> struct ------------------------------------------------------------

/// Copies every field; `mode` must name a deduction_mode ("order", "reserve",
/// "pay"), else errc::invalid_item and `out` is unchanged. Ranges are not
/// checked here (validate_spec does). The output-only `status` is ignored.
errc from_proto(const v1::Item& x, item_spec& out);

/// For clients reading the API's answers (CLI, bench, tests): an unknown
/// `state` / `status` text is errc::invalid_item and `out` is unchanged.
errc from_proto(const v1::Order& x, order& out);
errc from_proto(const v1::StockView& x, stock_view& out);

// -- JSON in ------------------------------------------------------------------

/// Parses the body of `POST /api/v1/items/{item_id}/purchase`. `item_id`
/// comes from the path. An absent (or null) "quantity" means 1; an explicit
/// 0 stays 0 (and validate_purchase refuses it). On failure `out` is
/// unchanged and, if `why` is given, it receives a short printable reason.
///
/// Mapping:
///   body is not one JSON object (empty, "null", an array, truncated, broken,
///   trailing data), has an unknown field, or a field twice -> invalid_item
///   (the request body as a whole is invalid);
///   "quantity" not an integer in int64 range ("abc", 1.5, 1e30, true, {})
///                                                       -> invalid_quantity;
///   "user_id" / "request_id" not a string, missing or empty -> invalid_id.
///
/// With `extras`: an absent "user_id" is `extras->buyer` (the buyer JWT's
/// subject) when that is set, and "sale_token" is read into
/// `extras->sale_token`. Without, a "sale_token" is refused (invalid_item).
errc parse_purchase_json(const std::string& body, const std::string& item_id,
                         purchase& out, std::string* why = nullptr,
                         purchase_extras* extras = nullptr);

/// parse_purchase_json without its fast path (messages/json_fast.hpp): the
/// protobuf reading alone, which decides every body the fast path does not
/// take. Public so the tests can hold the fast path to it.
errc parse_purchase_json_protobuf(const std::string& body,
                                  const std::string& item_id, purchase& out,
                                  std::string* why = nullptr,
                                  purchase_extras* extras = nullptr);

/// Parses the body of `POST /api/v1/orders/{id}/pay` and `.../cancel`:
/// {"user_id": "..."}, with the same shape rules and codes as a purchase.
/// With `buyer` set (the buyer JWT's subject), "user_id" may be absent
/// and so may the whole body.
errc parse_user_json(const std::string& body, std::string& user_id,
                     std::string* why = nullptr, const std::string& buyer = {});

/// Parses the body of `POST /api/v1/items/{id}/token`: empty, or
/// {"challenge": "...", "answer": "..."} for a quiz item.
errc parse_token_json(const std::string& body, std::string& challenge,
                      std::string& answer, std::string* why = nullptr);

/// Parses the body of `POST /api/v1/items`. Absent (or null) fields keep
/// item_spec's defaults (per_user_limit 1, mode "order", reserve_ttl_ms
/// 15 min, the rest 0); present ones are taken as given. "status" is
/// output-only and ignored, so a GET answer can be posted back.
///
/// Mapping:
///   body is not one JSON object, has an unknown field or a field twice,
///   any field but item_id of the wrong type, or an unknown "mode"
///                                                       -> invalid_item;
///   "item_id" not a string, missing or empty             -> invalid_id.
errc parse_item_json(const std::string& body, item_spec& out,
                     std::string* why = nullptr);

// -- JSON out -----------------------------------------------------------------

/// The message as JSON: proto field names, every primitive field printed.
std::string to_json(const google::protobuf::Message& msg);

/// to_json(to_proto(o)), printed directly when the order's strings are plain
/// (they are for every order the engine makes; messages/json_fast.hpp).
std::string order_json(const order& o);

// -- Problems (RFC 9457) ------------------------------------------------------

/// type "https://seckill.dev/problems/<code>", a short title per code,
/// code = to_string(code). `detail` is made printable ASCII and capped, so a
/// reason quoting hostile input is safe to send back; a negative
/// `retry_after_ms` is sent as 0.
v1::Problem make_problem(errc code, int http_status, const std::string& detail,
                         int64_t retry_after_ms = 0);

/// A problem's type is this followed by the code's name.
constexpr const char* problem_type_base = "https://seckill.dev/problems/";

/// to_json(make_problem(...)), printed without protobuf when its texts are
/// plain (messages/json_fast.hpp): refusals are most answers under overload.
std::string problem_json(errc code, int http_status, const std::string& detail,
                         int64_t retry_after_ms);

} // namespace seckill
