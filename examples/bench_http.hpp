// seckill-bench HTTP/1.1 client pieces: building a purchase request and
// parsing one response out of a byte buffer.
//
// The parser reads only what the bench needs: the status code, the
// Content-Length body, `Connection: close`, and from the JSON body the string
// members `code`, `order_id` and `user_id`. It never reads past the buffer it
// is given and never allocates more than the member values it returns. A
// response without Content-Length has an empty body (the node always sends
// one); chunked encoding is refused as malformed, since the node never uses it.
#pragma once

#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

namespace bench {

// Headers beyond this size are a broken server, not a slow one.
constexpr size_t response_head_max = 16 * 1024;
constexpr size_t response_body_max = 64 * 1024;

struct http_response {
  int status = 0;
  bool close = false;
  std::string body;
};

/// `jwt` (a buyer JWT, "" for none) goes in Authorization; `sale_token`
/// ("" for none) in the body.
inline std::string purchase_request(const std::string& host,
                                    const std::string& item,
                                    const std::string& user,
                                    const std::string& request_id,
                                    const std::string& jwt = {},
                                    const std::string& sale_token = {}) {
  std::string body = "{\"user_id\":\"" + user
                     + "\",\"quantity\":1,\"request_id\":\"" + request_id
                     + "\"";
  if (!sale_token.empty())
    body += ",\"sale_token\":\"" + sale_token + "\"";
  body += "}";
  std::string auth =
    jwt.empty() ? std::string{} : "\r\nAuthorization: Bearer " + jwt;
  return "POST /api/v1/items/" + item + "/purchase HTTP/1.1\r\nHost: " + host
         + auth + "\r\nContent-Type: application/json\r\nContent-Length: "
         + std::to_string(body.size()) + "\r\n\r\n" + body;
}

inline bool iequals_prefix(std::string_view line, std::string_view name) {
  if (line.size() < name.size())
    return false;
  for (size_t i = 0; i < name.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(line[i])) != name[i])
      return false;
  return true;
}

inline std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

enum class parse_result { complete, incomplete, malformed };

// Parses one response from the front of `buf`. On `complete`, `consumed` is
// the number of bytes it used.
inline parse_result parse_response(std::string_view buf, http_response& out,
                                   size_t& consumed) {
  size_t head_end = buf.find("\r\n\r\n");
  if (head_end == std::string_view::npos)
    return buf.size() > response_head_max ? parse_result::malformed
                                          : parse_result::incomplete;
  std::string_view head = buf.substr(0, head_end);
  if (head.size() < 12 || head.substr(0, 5) != "HTTP/")
    return parse_result::malformed;
  size_t sp = head.find(' ');
  if (sp == std::string_view::npos || sp + 4 > head.size())
    return parse_result::malformed;
  out.status = std::atoi(std::string(head.substr(sp + 1, 3)).c_str());
  if (out.status < 100 || out.status > 599)
    return parse_result::malformed;
  size_t length = 0;
  out.close = false;
  size_t pos = head.find("\r\n");
  while (pos != std::string_view::npos) {
    size_t next = head.find("\r\n", pos + 2);
    std::string_view line = head.substr(pos + 2, next == std::string_view::npos
                                                   ? std::string_view::npos
                                                   : next - pos - 2);
    if (iequals_prefix(line, "content-length:")) {
      length =
        std::strtoull(std::string(trim(line.substr(15))).c_str(), nullptr, 10);
    } else if (iequals_prefix(line, "transfer-encoding:")) {
      return parse_result::malformed;
    } else if (iequals_prefix(line, "connection:")) {
      out.close = iequals_prefix(trim(line.substr(11)), "close");
    }
    pos = next;
  }
  if (length > response_body_max)
    return parse_result::malformed;
  size_t total = head_end + 4 + length;
  if (buf.size() < total)
    return parse_result::incomplete;
  out.body.assign(buf.substr(head_end + 4, length));
  consumed = total;
  return parse_result::complete;
}

// The value of the JSON member `"name":"..."` or `"name":123` in a flat
// object, or "" if absent. Enough for the node's own answers, which never
// escape quotes in ids or codes.
inline std::string json_member(std::string_view body, std::string_view name) {
  std::string key = "\"" + std::string(name) + "\"";
  size_t at = body.find(key);
  if (at == std::string_view::npos)
    return {};
  at = body.find(':', at + key.size());
  if (at == std::string_view::npos)
    return {};
  ++at;
  while (at < body.size() && body[at] == ' ')
    ++at;
  if (at < body.size() && body[at] == '"') {
    size_t end = body.find('"', at + 1);
    if (end == std::string_view::npos)
      return {};
    return std::string(body.substr(at + 1, end - at - 1));
  }
  size_t end = at;
  while (end < body.size() && body[end] != ',' && body[end] != '}')
    ++end;
  return std::string(trim(body.substr(at, end - at)));
}

} // namespace bench
