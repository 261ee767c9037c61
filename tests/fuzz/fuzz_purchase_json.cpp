// libFuzzer target: arbitrary bytes as the body of a purchase, read by all
// four readers of the purchase path: the strict gate
// (check_flat_json_object), the fast reader (json_fast::read_purchase), the
// protobuf reader (parse_purchase_json_protobuf) and the one the bridge
// calls (parse_purchase_json: fast path within the JSON budget, else
// protobuf).
//
// What agreement really holds, from the code: the fast reader takes only a
// narrow plain shape and says "not mine" to everything else, so it may
// refuse what protobuf accepts, never the other way round, and its value is
// protobuf's. Asserted (an abort is a finding):
// - no crash, hang or sanitizer report;
// - a refusing reader leaves its output as it was;
// - fast accepts a body within the budget => protobuf accepts it with the
//   same purchase (so: where both accept they agree, and where the gate and
//   the fast reader accept, protobuf does too);
// - parse_purchase_json gives exactly protobuf's answer: code, purchase and
//   reason (the fast path is invisible);
// - protobuf accepts => the gate accepts, both ids are non-empty, every key
//   is a known field given once (counting both spellings), and each value
//   is what an independent JSON reader (nlohmann/json's SAX) reads: the same
//   decoded strings, and the quantity as written (1 when absent or null);
// - a refusal is one of invalid_item, invalid_id, invalid_quantity.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "messages/dto.hpp"
#include "messages/json_fast.hpp"
#include "messages/json_strict.hpp"
#include "messages/limits.hpp"
#include "tests/fuzz/fuzz_support.hpp"

namespace {

using seckill::errc;
using seckill::purchase;
using json = nlohmann::json;

const std::string item_id = "sku-1"; // from the request's path

using seckill::fuzz::require;

bool same(const purchase& a, const purchase& b) {
  return a.item_id == b.item_id && a.user_id == b.user_id
         && a.request_id == b.request_id && a.quantity == b.quantity
         && a.soft_refusal == b.soft_refusal;
}

// What no reader would produce: a refusing reader must leave it so.
purchase sentinel() {
  purchase p;
  p.item_id = "untouched-item";
  p.user_id = "untouched-user";
  p.request_id = "untouched-request";
  p.quantity = -777;
  return p;
}

using members = seckill::fuzz::flat_members;

enum class field { user_id, request_id, quantity };

bool field_of(const std::string& key, field& out) {
  if (key == "user_id" || key == "userId")
    out = field::user_id;
  else if (key == "request_id" || key == "requestId")
    out = field::request_id;
  else if (key == "quantity")
    out = field::quantity;
  else
    return false;
  return true;
}

// The quantity protobuf must have read from `v` (a non-null JSON value).
void check_quantity(const json& v, int64_t got) {
  if (v.is_number_integer() && !v.is_number_unsigned()) {
    require(got == v.get<int64_t>(), "quantity is the integer written");
  } else if (v.is_number_unsigned()) {
    auto u = v.get<uint64_t>();
    require(u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()),
            "a quantity over int64 is refused");
    require(got == static_cast<int64_t>(u), "quantity is the integer written");
  } else if (v.is_number_float()) {
    auto d = v.get<double>();
    require(std::floor(d) == d, "a fractional quantity is refused");
    require(static_cast<double>(got) == d, "quantity is the number written");
  } else if (v.is_string()) {
    // The proto3 JSON mapping also takes an int64 as a decimal string.
    const auto& s = v.get_ref<const std::string&>();
    auto digits = s.substr(!s.empty() && s[0] == '-' ? 1 : 0);
    bool plain = !digits.empty() && digits.size() <= 18
                 && digits.find_first_not_of("0123456789") == std::string::npos;
    if (plain)
      require(got == std::stoll(s), "quantity is the string written");
  } else {
    require(false, "quantity is a number or a string");
  }
}

// protobuf accepted `body` as `p`: the body, read independently, says so.
void check_against_nlohmann(const std::string& body, const purchase& p) {
  members m;
  require(json::sax_parse(body, &m, json::input_format_t::json, true, false),
          "a body protobuf accepts is one flat JSON object");
  bool given[3] = {false, false, false};
  const json* quantity = nullptr;
  for (const auto& [key, value] : m.list) {
    field f;
    require(field_of(key, f), "protobuf accepted an unknown field");
    require(!given[static_cast<int>(f)], "protobuf accepted a field twice");
    given[static_cast<int>(f)] = true;
    if (f == field::user_id)
      require(value.is_string() && value.get<std::string>() == p.user_id,
              "user_id is the string written");
    if (f == field::request_id)
      require(value.is_string() && value.get<std::string>() == p.request_id,
              "request_id is the string written");
    if (f == field::quantity && !value.is_null())
      quantity = &value;
  }
  if (quantity == nullptr)
    require(p.quantity == 1, "an absent or null quantity is 1");
  else
    check_quantity(*quantity, p.quantity);
}

bool refusal(errc code) {
  return code == errc::invalid_item || code == errc::invalid_id
         || code == errc::invalid_quantity;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string body(reinterpret_cast<const char*>(data), size);
  const bool within_budget =
    body.size() <= seckill::limits::json_body_bytes_max;

  std::string gate_why;
  errc gate = seckill::check_flat_json_object(body, &gate_why);
  require(gate == errc::ok || gate == errc::invalid_item,
          "the gate answers ok or invalid_item");

  purchase fast = sentinel();
  bool fast_ok = seckill::json_fast::read_purchase(body, item_id, fast);
  if (!fast_ok)
    require(same(fast, sentinel()), "a refusing fast reader left its output");

  purchase proto = sentinel();
  std::string proto_why;
  errc proto_code =
    seckill::parse_purchase_json_protobuf(body, item_id, proto, &proto_why);

  purchase both = sentinel();
  std::string both_why;
  errc both_code = seckill::parse_purchase_json(body, item_id, both, &both_why);

  if (proto_code != errc::ok) {
    require(refusal(proto_code), "a refusal is a known input code");
    require(same(proto, sentinel()),
            "a refusing protobuf reader left its output");
  }
  if (fast_ok && within_budget) {
    require(proto_code == errc::ok,
            "protobuf refused a body the fast path took");
    require(same(fast, proto), "fast and protobuf read different values");
  }
  require(both_code == proto_code, "parse_purchase_json's code is protobuf's");
  require(same(both, proto), "parse_purchase_json's purchase is protobuf's");
  require(both_why == proto_why, "parse_purchase_json's reason is protobuf's");

  if (proto_code == errc::ok) {
    require(gate == errc::ok, "protobuf accepted what the gate refuses");
    require(proto.item_id == item_id, "the item is the path's");
    require(!proto.user_id.empty() && !proto.request_id.empty(),
            "accepted ids are not empty");
    require(proto.soft_refusal == 0, "a parsed purchase carries no refusal");
    check_against_nlohmann(body, proto);
  }
  return 0;
}
