// Fast paths for the two JSON texts of the purchase path: the purchase
// request body in, the order out. Protobuf's JSON mapping (messages/dto.hpp)
// took about a quarter of a node's CPU under a purchase load (profiled with
// perf, docs/BENCHMARKS.md: two JsonStringToMessage passes per body, one
// MessageToJsonString per answer); these read and write the common, plain
// form directly.
//
// Invariant: a fast path never decides anything protobuf would decide
// differently. Each one handles only a narrow, plain shape and answers
// "not mine" (false) for everything else, and the caller then runs the
// protobuf path, which stays the only judge of unusual input: escapes,
// non-ASCII bytes, null, numbers in any form but plain digits, a field given
// twice, an unknown or missing field, an empty id, any syntax error.
// tests/unit/dto_test.cpp compares both paths on many bodies and orders.
//
// Must never: accept a body protobuf would refuse, produce a value protobuf
// would not, or print an order differently from to_json(to_proto(o)).
#pragma once

#include <string>

#include "messages/errors.hpp"
#include "messages/types.hpp"

namespace seckill::json_fast {

/// Reads a purchase body of the plain shape: one JSON object (JSON
/// whitespace around tokens allowed) with "user_id"/"userId" and
/// "request_id"/"requestId" given once each as non-empty strings of
/// printable ASCII without '\\', and "quantity" at most once as an integer
/// of at most 18 digits (optional '-', no leading zero), and with `extras`
/// "sale_token"/"saleToken" at most once as such a string ("user_id" may
/// then be absent when extras->buyer is set). On success `out` (and
/// extras->sale_token) hold what parse_purchase_json would give; on false
/// both are unchanged.
bool read_purchase(const std::string& body, const std::string& item_id,
                   purchase& out, purchase_extras* extras = nullptr);

/// Appends the order as to_json(to_proto(o)) prints it and returns true when
/// every string field is plain (letters, digits, '-', '_', '.'); otherwise
/// returns false and leaves `out` unchanged.
bool write_order(const order& o, std::string& out);

/// Appends the problem body as to_json(make_problem(...)) prints it and
/// returns true when its texts (title, detail) are plain prose: letters,
/// digits, spaces and . , : ; ( ) / _ - ' ? only; otherwise returns false
/// and leaves `out` unchanged. A refusal is what a node answers most under
/// overload, so it must cost little.
bool write_problem(errc code, int http_status, const std::string& detail,
                   int64_t retry_after_ms, std::string& out);

} // namespace seckill::json_fast
