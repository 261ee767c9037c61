// The gate every JSON request body passes before any other parser sees it.
// Every body of the API (an item, a purchase, an order action) is one flat
// JSON object: keys with strings, numbers, booleans or null. This check
// reads the body once, in time linear in its size and with constant memory
// for nesting, and stops at the first fault: strict RFC 8259 syntax (no
// single quotes, unquoted keys, trailing commas or comments, which
// protobuf's JSON parser lets through), no nested object or array, at most
// limits::json_body_bytes_max bytes and limits::json_keys_max keys. So a
// body built to be expensive (16,000 levels of `[` cost protobuf 31 s of
// CPU) is refused in microseconds, and protobuf only ever parses a small
// flat object.
//
// Pure: no I/O, no allocation beyond the parser's tokens (nlohmann/json's
// SAX reader, Debian's nlohmann-json3-dev).
#pragma once

#include <string>
#include <string_view>

#include "messages/errors.hpp"

namespace seckill {

/// ok, or `invalid_item` (syntax, nesting, too many keys, over the budget)
/// with the reason in `why` (if not null), naming the byte offset of a
/// syntax fault; `field` (if not null) is then the key whose value was
/// refused (a nested one), empty if the fault is not in one field's value.
errc check_flat_json_object(std::string_view body, std::string* why,
                            std::string* field = nullptr);

} // namespace seckill
