// The bridge's pure HTTP rules: the admin token's check, ETags and
// If-None-Match, and an error code's problem+json response. No I/O.
#pragma once

#include <cstdint>
#include <string>

#include "messages/errors.hpp"
#include "messages/http.hpp"

namespace seckill {

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

} // namespace seckill
