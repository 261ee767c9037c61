// The purchase path's JSON fast paths (see json_fast.hpp). A small cursor
// reads the body once, with no allocation but the ids' own strings; the
// writer prints the order with one reservation.
#include "messages/json_fast.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <string_view>

#include "messages/assert.hpp"
#include "messages/dto.hpp"

namespace seckill::json_fast {

namespace {

/// Digits a fast-path quantity may have: 18 always fit in int64 and parse
/// the same way in protobuf (no double rounding). Longer: protobuf decides.
constexpr std::size_t quantity_digits_max = 18;

struct cursor {
  const char* at;
  const char* end;

  void skip_space() {
    // JSON's four whitespace bytes; protobuf's parser skips them too.
    while (at < end
           && (*at == ' ' || *at == '\t' || *at == '\n' || *at == '\r'))
      ++at;
  }

  bool eat(char ch) {
    skip_space();
    if (at == end || *at != ch)
      return false;
    ++at;
    return true;
  }

  /// A string of printable ASCII with no escape; `out` views its bytes.
  bool plain_string(std::string_view& out) {
    if (!eat('"'))
      return false;
    const char* start = at;
    for (; at < end; ++at) {
      auto ch = static_cast<unsigned char>(*at);
      if (ch == '"') {
        out = std::string_view{start, static_cast<std::size_t>(at - start)};
        ++at;
        return true;
      }
      if (ch < 0x20 || ch > 0x7e || ch == '\\')
        return false;
    }
    return false;
  }

  /// -?(0|[1-9][0-9]{0,17}); what follows is checked by the caller (a ',' or
  /// '}' must come next, so "1.5" and "1e3" are not taken).
  bool plain_integer(int64_t& out) {
    skip_space();
    bool negative = at < end && *at == '-';
    const char* digits = negative ? at + 1 : at;
    const char* stop = digits;
    while (stop < end && *stop >= '0' && *stop <= '9')
      ++stop;
    auto n = static_cast<std::size_t>(stop - digits);
    if (n == 0 || n > quantity_digits_max || (n > 1 && *digits == '0')
        || (negative && *digits == '0'))
      return false;
    int64_t value = 0;
    for (const char* p = digits; p < stop; ++p)
      value = value * 10 + (*p - '0');
    out = negative ? -value : value;
    at = stop;
    return true;
  }
};

enum class purchase_key {
  user_id,
  quantity,
  request_id,
  sale_token,
  ticket,
  unknown
};

purchase_key key_of(std::string_view key) {
  if (key == "user_id" || key == "userId")
    return purchase_key::user_id;
  if (key == "request_id" || key == "requestId")
    return purchase_key::request_id;
  if (key == "quantity")
    return purchase_key::quantity;
  if (key == "sale_token" || key == "saleToken")
    return purchase_key::sale_token;
  if (key == "ticket")
    return purchase_key::ticket;
  return purchase_key::unknown;
}

/// Reads one "key": value member into the views; false on anything unusual,
/// a field given twice included.
bool read_member(cursor& c, std::string_view& user, std::string_view& request,
                 std::string_view& sale, std::string_view& ticket,
                 bool& quantity_given, int64_t& quantity) {
  std::string_view key;
  if (!c.plain_string(key) || !c.eat(':'))
    return false;
  switch (key_of(key)) {
    case purchase_key::user_id:
      return user.empty() && c.plain_string(user) && !user.empty();
    case purchase_key::request_id:
      return request.empty() && c.plain_string(request) && !request.empty();
    case purchase_key::sale_token:
      return sale.empty() && c.plain_string(sale) && !sale.empty();
    case purchase_key::ticket:
      return ticket.empty() && c.plain_string(ticket) && !ticket.empty();
    case purchase_key::quantity:
      if (quantity_given)
        return false;
      quantity_given = true;
      return c.plain_integer(quantity);
    case purchase_key::unknown: return false;
  }
  return false;
}

bool plain_text(const std::string& text) {
  for (char ch : text) {
    bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')
              || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_'
              || ch == '.';
    if (!ok)
      return false;
  }
  return true;
}

// Prose that protobuf's JSON printer writes as it is (no escapes).
bool plain_prose(std::string_view text) {
  for (char ch : text) {
    bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')
              || (ch >= '0' && ch <= '9') || ch == ' ' || ch == '.' || ch == ','
              || ch == ':' || ch == ';' || ch == '(' || ch == ')' || ch == '/'
              || ch == '_' || ch == '-' || ch == '\'' || ch == '?';
    if (!ok)
      return false;
  }
  return true;
}

void put_string(std::string& out, const char* key, const std::string& value) {
  out += '"';
  out += key;
  out += "\":\"";
  out += value;
  out += '"';
}

/// The proto3 JSON mapping prints int64 as a decimal string.
void put_int64(std::string& out, const char* key, int64_t value) {
  std::array<char, 24> buf{};
  auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), value);
  SECKILL_ASSERT(ec == std::errc{}, "an int64 fits in 24 characters");
  out += '"';
  out += key;
  out += "\":\"";
  out.append(buf.data(), end);
  out += '"';
}

} // namespace

bool read_purchase(const std::string& body, const std::string& item_id,
                   purchase& out, purchase_extras* extras) {
  cursor c{body.data(), body.data() + body.size()};
  std::string_view user;
  std::string_view request;
  std::string_view sale;
  std::string_view ticket;
  bool quantity_given = false;
  int64_t quantity = 0;
  if (!c.eat('{'))
    return false;
  do {
    if (!read_member(c, user, request, sale, ticket, quantity_given, quantity))
      return false;
  } while (c.eat(','));
  if (!c.eat('}'))
    return false;
  c.skip_space();
  if (user.empty() && extras != nullptr)
    user = extras->buyer; // the buyer JWT names the user
  if (c.at != c.end || user.empty() || request.empty()
      || ((!sale.empty() || !ticket.empty()) && extras == nullptr))
    return false;
  if (extras != nullptr) {
    extras->sale_token.assign(sale.data(), sale.size());
    extras->ticket.assign(ticket.data(), ticket.size());
  }
  out.item_id = item_id;
  out.user_id.assign(user.data(), user.size());
  out.request_id.assign(request.data(), request.size());
  out.quantity = quantity_given ? quantity : purchase{}.quantity;
  return true;
}

bool write_order(const order& o, std::string& out) {
  if (!plain_text(o.order_id) || !plain_text(o.item_id)
      || !plain_text(o.user_id) || !plain_text(o.request_id))
    return false;
  out.reserve(out.size() + 200 + o.order_id.size() + o.item_id.size()
              + o.user_id.size() + o.request_id.size());
  out += '{';
  put_string(out, "order_id", o.order_id);
  out += ',';
  put_string(out, "item_id", o.item_id);
  out += ',';
  put_string(out, "user_id", o.user_id);
  out += ',';
  put_string(out, "request_id", o.request_id);
  out += ',';
  put_int64(out, "quantity", o.quantity);
  out += ",\"state\":\"";
  out += to_string(o.state); // a fixed lower-case word
  out += "\",";
  put_int64(out, "created_ms", o.created_ms);
  out += ',';
  put_int64(out, "expires_ms", o.expires_ms);
  out += ',';
  put_int64(out, "updated_ms", o.updated_ms);
  out += '}';
  return true;
}

bool write_problem(errc code, int http_status, const std::string& detail,
                   int64_t retry_after_ms, std::string& out) {
  std::string_view title = problem_title(code);
  if (!plain_prose(title) || !plain_prose(detail))
    return false;
  out.reserve(out.size() + 160 + title.size() + detail.size());
  out += "{\"type\":\"";
  out += problem_type_base;
  out += to_string(code);
  out += "\",\"title\":\"";
  out += title;
  out += "\",\"status\":";
  out += std::to_string(http_status); // int32: a JSON number
  out += ",\"detail\":\"";
  out += detail; // plain prose: printable() leaves it as it is
  out += "\",\"code\":\"";
  out += to_string(code);
  out += "\",";
  put_int64(out, "retry_after_ms", std::max<int64_t>(retry_after_ms, 0));
  out += '}';
  return true;
}

} // namespace seckill::json_fast
