// Free text as a value of a key=value log event (spdlog lines such as
// `store_open_failed path=... error=...`): a value that a parser splitting at
// spaces and '=' would cut is quoted, with '"' and '\' escaped and control
// characters written as \n, \r, \t or \xHH. A plain value (an id, a number,
// a code name) is written as it is. So every event stays one line that
// `key=value` tools can parse, whatever a CAF error string, a path or a
// client-supplied reason holds.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

namespace seckill {

inline bool plain_log_text(std::string_view s) {
  if (s.empty())
    return false;
  for (unsigned char c : s)
    if (c <= ' ' || c == '"' || c == '\\' || c == '=' || c >= 0x7f)
      return false;
  return true;
}

inline std::string log_text(std::string_view s) {
  if (plain_log_text(s))
    return std::string{s};
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < ' ' || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\x%02x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

} // namespace seckill
