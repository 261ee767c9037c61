// libFuzzer target: arbitrary bytes as the body of `POST /api/v1/items`,
// through what the bridge runs on it (actors/edge/bridge.cpp, on_items_create):
// parse_item_json (the strict gate, then protobuf), then validate_spec
// (actors/sale/item_book.hpp).
//
// parse_item_json checks the body's shape only and leaves the ranges to
// validate_spec (dto.hpp says so), so the ranges of messages/limits.hpp are
// asserted of the specs both accept. Asserted (an abort is a finding):
// - no crash, hang or sanitizer report; a refusal is invalid_item or
//   invalid_id and leaves the output as it was;
// - an accepted body passed the gate, has a non-empty item_id and a known
//   mode, every key is a known field given once (counting both spellings),
//   and each value is what an independent JSON reader (nlohmann/json's SAX)
//   reads, absent or null fields keeping item_spec's defaults;
// - an accepted spec printed as the API prints it (to_json(to_proto(..)))
//   parses back to the same spec, when the print is within the JSON budget;
// - a spec validate_spec accepts has an id of 1..id_length_max bytes of
//   [A-Za-z0-9_-], 1 <= total <= item_total_max, 1 <= per_user_limit <=
//   per_user_limit_max, starts_at_ms >= 0, ends_at_ms 0 or after the start,
//   reserve_ttl_ms within reserve_ttl_ms_min..max unless the mode is order,
//   price_cents >= 0 and a name of at most 256 bytes.
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

#include "actors/sale/item_book.hpp"
#include "messages/dto.hpp"
#include "messages/json_strict.hpp"
#include "messages/limits.hpp"
#include "tests/fuzz/fuzz_support.hpp"

namespace {

using seckill::errc;
using seckill::item_spec;
using json = nlohmann::json;
namespace limits = seckill::limits;

using seckill::fuzz::require;

bool same(const item_spec& a, const item_spec& b) {
  return a.item_id == b.item_id && a.name == b.name && a.total == b.total
         && a.per_user_limit == b.per_user_limit
         && a.starts_at_ms == b.starts_at_ms && a.ends_at_ms == b.ends_at_ms
         && a.mode == b.mode && a.reserve_ttl_ms == b.reserve_ttl_ms
         && a.price_cents == b.price_cents && a.admission == b.admission;
}

item_spec sentinel() {
  item_spec s;
  s.item_id = "untouched";
  s.name = "untouched";
  s.total = -777;
  s.mode = seckill::deduction_mode::pay;
  return s;
}

using members = seckill::fuzz::flat_members;

// The Item message's fields: proto name, JSON name, and where the spec
// keeps it (strings: item_id, name, mode; status is output only).
struct field_def {
  const char* name;
  const char* json_name;
  int64_t item_spec::*number; // null for the string fields
};

const field_def fields[] = {
  {"item_id", "itemId", nullptr},
  {"name", "name", nullptr},
  {"total", "total", &item_spec::total},
  {"per_user_limit", "perUserLimit", &item_spec::per_user_limit},
  {"starts_at_ms", "startsAtMs", &item_spec::starts_at_ms},
  {"ends_at_ms", "endsAtMs", &item_spec::ends_at_ms},
  {"mode", "mode", nullptr},
  {"reserve_ttl_ms", "reserveTtlMs", &item_spec::reserve_ttl_ms},
  {"price_cents", "priceCents", &item_spec::price_cents},
  {"status", "status", nullptr},
  {"admission", "admission", nullptr},
};
constexpr std::size_t field_count = sizeof fields / sizeof fields[0];

int field_index(const std::string& key) {
  for (std::size_t i = 0; i < field_count; ++i)
    if (key == fields[i].name || key == fields[i].json_name)
      return static_cast<int>(i);
  return -1;
}

// The int64 protobuf must have read from `v` (a non-null JSON value).
void check_number(const json& v, int64_t got) {
  if (v.is_number_unsigned()) {
    auto u = v.get<uint64_t>();
    require(u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()),
            "a number over int64 is refused");
    require(got == static_cast<int64_t>(u), "a field is the integer written");
  } else if (v.is_number_integer()) {
    require(got == v.get<int64_t>(), "a field is the integer written");
  } else if (v.is_number_float()) {
    auto d = v.get<double>();
    require(std::floor(d) == d, "a fractional number is refused");
    require(static_cast<double>(got) == d, "a field is the number written");
  } else if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    auto digits = s.substr(!s.empty() && s[0] == '-' ? 1 : 0);
    if (!digits.empty() && digits.size() <= 18
        && digits.find_first_not_of("0123456789") == std::string::npos)
      require(got == std::stoll(s), "a field is the string written");
  } else {
    require(false, "an int64 field is a number or a string");
  }
}

// parse_item_json accepted `body` as `s`: the body, read independently,
// says so.
void check_against_nlohmann(const std::string& body, const item_spec& s) {
  members m;
  require(json::sax_parse(body, &m, json::input_format_t::json, true, false),
          "an accepted body is one flat JSON object");
  const item_spec defaults;
  std::vector<const json*> given(field_count, nullptr);
  std::vector<bool> seen(field_count, false);
  for (const auto& [key, value] : m.list) {
    int i = field_index(key);
    require(i >= 0, "an unknown field was accepted");
    require(!seen[i], "a field given twice was accepted");
    seen[i] = true;
    if (!value.is_null())
      given[i] = &value;
  }
  auto text = [&](int i, const std::string& got, const std::string& dflt) {
    if (given[i] == nullptr)
      require(got == dflt, "an absent text keeps its default");
    else
      require(given[i]->is_string() && given[i]->get<std::string>() == got,
              "a text is the string written");
  };
  text(0, s.item_id, defaults.item_id);
  text(1, s.name, defaults.name);
  text(6, seckill::to_string(s.mode), seckill::to_string(defaults.mode));
  // An item created through the API needs a sale token unless it says so.
  text(10, seckill::to_string(s.admission), "token");
  for (std::size_t i = 0; i < field_count; ++i) {
    if (fields[i].number == nullptr)
      continue;
    if (given[i] == nullptr)
      require(s.*fields[i].number == defaults.*fields[i].number,
              "an absent number keeps its default");
    else
      check_number(*given[i], s.*fields[i].number);
  }
}

void check_round_trip(const item_spec& s) {
  auto printed =
    seckill::to_json(seckill::to_proto(s, seckill::item_status::on_sale));
  if (printed.size() > limits::json_body_bytes_max)
    return; // escapes can make a name within the budget print over it
  item_spec again = sentinel();
  require(seckill::parse_item_json(printed, again) == errc::ok,
          "an accepted spec, printed, parses again");
  require(same(s, again), "an accepted spec, printed, parses to itself");
}

void check_ranges(const item_spec& s) {
  require(!s.item_id.empty() && s.item_id.size() <= limits::id_length_max,
          "item_id within id_length_max");
  for (char ch : s.item_id)
    require((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')
              || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-',
            "item_id of [A-Za-z0-9_-]");
  require(s.total >= 1 && s.total <= limits::item_total_max,
          "total within 1..item_total_max");
  require(s.per_user_limit >= 1
            && s.per_user_limit <= limits::per_user_limit_max,
          "per_user_limit within 1..per_user_limit_max");
  require(s.starts_at_ms >= 0, "starts_at_ms not negative");
  require(s.ends_at_ms == 0 || s.ends_at_ms > s.starts_at_ms,
          "ends_at_ms 0 or after the start");
  require(s.mode == seckill::deduction_mode::order
            || (s.reserve_ttl_ms >= limits::reserve_ttl_ms_min
                && s.reserve_ttl_ms <= limits::reserve_ttl_ms_max),
          "reserve_ttl_ms within its limits where it is used");
  require(s.price_cents >= 0, "price_cents not negative");
  require(s.name.size() <= 256, "name of at most 256 bytes");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string body(reinterpret_cast<const char*>(data), size);
  item_spec spec = sentinel();
  std::string why;
  errc code = seckill::parse_item_json(body, spec, &why);
  if (code != errc::ok) {
    require(code == errc::invalid_item || code == errc::invalid_id,
            "a refusal is invalid_item or invalid_id");
    require(same(spec, sentinel()), "a refusal left the output as it was");
    return 0;
  }
  require(seckill::check_flat_json_object(body, nullptr) == errc::ok,
          "an accepted body passed the gate");
  require(!spec.item_id.empty(), "an accepted item_id is not empty");
  auto mode = static_cast<int>(spec.mode);
  require(mode >= 0 && mode <= 2, "an accepted mode is order, reserve or pay");
  check_against_nlohmann(body, spec);
  check_round_trip(spec);
  if (seckill::validate_spec(spec) == errc::ok)
    check_ranges(spec);
  return 0;
}
