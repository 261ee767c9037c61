// The bridge's pure HTTP rules (see http_rules.hpp).
#include "actors/edge/http_rules.hpp"

#include <cstdio>
#include <string_view>

#include "messages/dto.hpp"
#include "messages/secret.hpp"

namespace seckill {

errc check_token(const std::string& authorization, const std::string& token) {
  const std::string scheme = "Bearer ";
  if (authorization.size() <= scheme.size()
      || authorization.compare(0, scheme.size(), scheme) != 0)
    return errc::unauthorized;
  auto given = std::string_view{authorization}.substr(scheme.size());
  // A "Bearer " with nothing after it presents a credential: a wrong one.
  return check_secret(given, token) == errc::ok ? errc::ok : errc::forbidden;
}

std::string etag_of(const std::string& body) {
  uint64_t h = 14695981039346656037ull; // FNV-1a 64
  for (unsigned char ch : body) {
    h ^= ch;
    h *= 1099511628211ull;
  }
  char buf[24];
  std::snprintf(buf, sizeof(buf), "\"%016llx\"",
                static_cast<unsigned long long>(h));
  return buf;
}

bool etag_matches(const std::string& if_none_match, const std::string& etag) {
  if (if_none_match.empty())
    return false;
  std::size_t at = 0;
  while (at < if_none_match.size()) {
    auto comma = if_none_match.find(',', at);
    if (comma == std::string::npos)
      comma = if_none_match.size();
    auto tag = if_none_match.substr(at, comma - at);
    auto b = tag.find_first_not_of(" \t");
    auto e = tag.find_last_not_of(" \t");
    tag = b == std::string::npos ? "" : tag.substr(b, e - b + 1);
    if (tag.rfind("W/", 0) == 0) // weak comparison for If-None-Match
      tag = tag.substr(2);
    if (tag == "*" || tag == etag)
      return true;
    at = comma + 1;
  }
  return false;
}

http::response problem_response(errc code, const std::string& detail,
                                int64_t retry_after_ms) {
  http::response r;
  r.status = http_status(code);
  r.content_type = "application/problem+json";
  r.body = problem_json(code, r.status, detail, retry_after_ms);
  if (retry_after_ms > 0)
    r.headers.emplace_back("Retry-After",
                           std::to_string((retry_after_ms + 999) / 1000));
  if (code == errc::unauthorized)
    r.headers.emplace_back("WWW-Authenticate", "Bearer");
  return r;
}

} // namespace seckill
