// DTO conversions and the API's JSON (see dto.hpp).
//
// JSON in runs in two passes. The body is first read as a generic JSON
// object (google.protobuf.Struct): that pass finds what protobuf's typed
// parser would let through silently (unknown keys are caught by the typed
// parser too, but a field given twice is not) and records which fields were
// given at all, which proto3 cannot tell from a zero. Then the typed parser
// reads the body into the generated message and is the only judge of the
// values. If it refuses, each given field is parsed alone to find the one at
// fault, so the answer names the field (invalid_quantity, not just "bad
// body").
#include "messages/dto.hpp"

#include <algorithm>
#include <memory>
#include <vector>

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include "messages/assert.hpp"
#include "messages/json_fast.hpp"
#include "messages/json_strict.hpp"
#include "messages/limits.hpp"

namespace seckill {

namespace {

namespace pb = google::protobuf;
namespace pbu = google::protobuf::util;

/// Longest problem detail sent back; the rest is cut. The detail may quote
/// hostile input (protobuf's parse errors do), so it is bounded like every
/// other buffer. (Belongs with messages/limits.hpp; kept here until that
/// header is edited.)
constexpr std::size_t problem_detail_length_max = 256;

/// Printable ASCII only: control bytes become spaces, other bytes '?', so
/// the detail is always valid UTF-8 and one line.
std::string printable(const std::string& text) {
  std::string out;
  out.reserve(std::min(text.size(), problem_detail_length_max));
  for (unsigned char ch : text) {
    if (out.size() == problem_detail_length_max) {
      out.replace(out.size() - 3, 3, "...");
      break;
    }
    if (ch < 0x20)
      out += ' ';
    else if (ch >= 0x7f)
      out += '?';
    else
      out += static_cast<char>(ch);
  }
  return out;
}

errc fail(errc code, std::string* why, const std::string& text) {
  if (why != nullptr)
    *why = printable(text);
  return code;
}

pbu::JsonParseOptions strict_options() {
  pbu::JsonParseOptions opts;
  opts.ignore_unknown_fields = false; // a typo must be an error (dto.hpp)
  return opts;
}

/// Which errc a bad value of `field` is, per message type.
using blame_fn = errc (*)(const pb::FieldDescriptor& field);

errc blame_purchase(const pb::FieldDescriptor& field) {
  return field.number() == v1::PurchaseRequest::kQuantityFieldNumber
           ? errc::invalid_quantity
           : errc::invalid_id;
}

errc blame_item(const pb::FieldDescriptor& field) {
  return field.number() == v1::Item::kItemIdFieldNumber ? errc::invalid_id
                                                        : errc::invalid_item;
}

const pb::FieldDescriptor* find_field(const pb::Descriptor& d,
                                      const std::string& key) {
  for (int i = 0; i < d.field_count(); ++i)
    if (key == d.field(i)->name() || key == d.field(i)->json_name())
      return d.field(i);
  return nullptr;
}

/// The given fields of a body: `values[i]` is field i's value, nullptr if
/// absent or JSON null (which the proto3 JSON mapping reads as absent).
struct body_fields {
  pb::Struct tree; // owns the values
  std::vector<const pb::Value*> values;
  bool given(const pb::Descriptor& d, int number) const {
    return values[d.FindFieldByNumber(number)->index()] != nullptr;
  }
};

/// Pass one: one JSON object, known keys, each field once.
errc read_shape(const std::string& body, const pb::Descriptor& d,
                blame_fn blame, body_fields& out, std::string* why) {
  // Strict syntax and a flat, small object before protobuf sees anything:
  // its parser is lenient and its cost grows with the nesting's square.
  std::string key;
  if (auto code = check_flat_json_object(body, why, &key); code != errc::ok) {
    const auto* field = key.empty() ? nullptr : find_field(d, key);
    return field != nullptr ? blame(*field) : code;
  }
  auto st = pbu::JsonStringToMessage(body, &out.tree, strict_options());
  if (!st.ok())
    return fail(errc::invalid_item, why,
                "body is not one JSON object: " + std::string{st.message()});
  out.values.assign(d.field_count(), nullptr);
  std::vector<bool> seen(d.field_count(), false);
  // A protobuf Map iterates in an order of its own, different from one map
  // to the next: in key order, the same body always gets the same reason
  // (found by tests/fuzz/fuzz_purchase_json, with two unknown fields).
  std::vector<const pb::Map<std::string, pb::Value>::value_type*> members;
  members.reserve(out.tree.fields().size());
  for (const auto& member : out.tree.fields())
    members.push_back(&member);
  std::sort(members.begin(), members.end(),
            [](const auto* a, const auto* b) { return a->first < b->first; });
  for (const auto* member : members) {
    const auto& [key, value] = *member;
    const auto* field = find_field(d, key);
    if (field == nullptr)
      return fail(errc::invalid_item, why, "unknown field \"" + key + "\"");
    if (seen[field->index()])
      return fail(errc::invalid_item, why,
                  "field \"" + field->name() + "\" given twice");
    seen[field->index()] = true;
    if (value.kind_case() != pb::Value::kNullValue)
      out.values[field->index()] = &value;
  }
  return errc::ok;
}

/// After the typed parser refused the body: parses each given field alone
/// and blames the first (in field-number order) that fails.
errc find_fault(const pb::Message& proto, const body_fields& fields,
                blame_fn blame, const std::string& whole, std::string* why) {
  const auto& d = *proto.GetDescriptor();
  for (int i = 0; i < d.field_count(); ++i) {
    if (fields.values[i] == nullptr)
      continue;
    const auto& field = *d.field(i);
    pb::Struct alone;
    (*alone.mutable_fields())[field.name()] = *fields.values[i];
    std::string json;
    std::unique_ptr<pb::Message> probe{proto.New()};
    auto st = pbu::MessageToJsonString(alone, &json);
    if (st.ok())
      st = pbu::JsonStringToMessage(json, probe.get(), strict_options());
    if (!st.ok())
      return fail(blame(field), why,
                  field.name() + ": " + std::string{st.message()});
  }
  return fail(errc::invalid_item, why, "body does not match: " + whole);
}

/// Both passes: on success `msg` holds the body and `fields` what was given.
errc parse_strict(const std::string& body, pb::Message& msg, blame_fn blame,
                  body_fields& fields, std::string* why) {
  const auto& d = *msg.GetDescriptor();
  if (auto code = read_shape(body, d, blame, fields, why); code != errc::ok)
    return code;
  auto st = pbu::JsonStringToMessage(body, &msg, strict_options());
  if (!st.ok())
    return find_fault(msg, fields, blame, std::string{st.message()}, why);
  return errc::ok;
}

} // namespace

// -- Struct -> DTO ------------------------------------------------------------

v1::Item to_proto(const item_spec& spec, item_status status) {
  v1::Item x;
  x.set_item_id(spec.item_id);
  x.set_name(spec.name);
  x.set_total(spec.total);
  x.set_per_user_limit(spec.per_user_limit);
  x.set_starts_at_ms(spec.starts_at_ms);
  x.set_ends_at_ms(spec.ends_at_ms);
  x.set_mode(to_string(spec.mode));
  x.set_reserve_ttl_ms(spec.reserve_ttl_ms);
  x.set_price_cents(spec.price_cents);
  x.set_status(to_string(status));
  x.set_admission(to_string(spec.admission));
  return x;
}

v1::Order to_proto(const order& o) {
  v1::Order x;
  x.set_order_id(o.order_id);
  x.set_item_id(o.item_id);
  x.set_user_id(o.user_id);
  x.set_request_id(o.request_id);
  x.set_quantity(o.quantity);
  x.set_state(to_string(o.state));
  x.set_created_ms(o.created_ms);
  x.set_expires_ms(o.expires_ms);
  x.set_updated_ms(o.updated_ms);
  return x;
}

v1::StockView to_proto(const stock_view& v) {
  v1::StockView x;
  x.set_item_id(v.item_id);
  x.set_total(v.total);
  x.set_available(v.counters.available);
  x.set_reserved(v.counters.reserved);
  x.set_sold(v.counters.sold);
  x.set_status(to_string(v.status));
  x.set_server_time_ms(v.server_time_ms);
  return x;
}

// -- DTO -> struct ------------------------------------------------------------

errc from_proto(const v1::Item& x, item_spec& out) {
  item_spec s;
  if (!parse(x.mode(), s.mode))
    return errc::invalid_item;
  if (!parse(x.admission(), s.admission))
    return errc::invalid_item;
  s.item_id = x.item_id();
  s.name = x.name();
  s.total = x.total();
  s.per_user_limit = x.per_user_limit();
  s.starts_at_ms = x.starts_at_ms();
  s.ends_at_ms = x.ends_at_ms();
  s.reserve_ttl_ms = x.reserve_ttl_ms();
  s.price_cents = x.price_cents();
  out = std::move(s);
  return errc::ok;
}

errc from_proto(const v1::Order& x, order& out) {
  order o;
  if (!parse(x.state(), o.state))
    return errc::invalid_item;
  o.order_id = x.order_id();
  o.item_id = x.item_id();
  o.user_id = x.user_id();
  o.request_id = x.request_id();
  o.quantity = x.quantity();
  o.created_ms = x.created_ms();
  o.expires_ms = x.expires_ms();
  o.updated_ms = x.updated_ms();
  out = std::move(o);
  return errc::ok;
}

errc from_proto(const v1::StockView& x, stock_view& out) {
  stock_view v;
  if (!parse(x.status(), v.status))
    return errc::invalid_item;
  v.item_id = x.item_id();
  v.total = x.total();
  v.counters.available = x.available();
  v.counters.reserved = x.reserved();
  v.counters.sold = x.sold();
  v.server_time_ms = x.server_time_ms();
  out = std::move(v);
  return errc::ok;
}

// -- JSON in ------------------------------------------------------------------

errc parse_purchase_json(const std::string& body, const std::string& item_id,
                         purchase& out, std::string* why,
                         purchase_extras* extras) {
  // The plain shape every client sends is read directly; anything else,
  // including every body that is refused, goes to protobuf (json_fast.hpp).
  // Within the JSON budget only: the gate (json_strict.hpp) refuses the rest.
  if (body.size() <= limits::json_body_bytes_max
      && json_fast::read_purchase(body, item_id, out, extras))
    return errc::ok;
  return parse_purchase_json_protobuf(body, item_id, out, why, extras);
}

errc parse_purchase_json_protobuf(const std::string& body,
                                  const std::string& item_id, purchase& out,
                                  std::string* why, purchase_extras* extras) {
  v1::PurchaseRequest req;
  body_fields fields;
  if (auto code = parse_strict(body, req, blame_purchase, fields, why);
      code != errc::ok)
    return code;
  // Absent, the buyer JWT names the user; given, it must not be empty.
  bool user_given =
    fields.given(*req.GetDescriptor(), v1::PurchaseRequest::kUserIdFieldNumber);
  if (!user_given && extras != nullptr && !extras->buyer.empty())
    req.set_user_id(extras->buyer);
  if (req.user_id().empty())
    return fail(errc::invalid_id, why, "user_id is missing or empty");
  if ((!req.sale_token().empty() || !req.ticket().empty()) && extras == nullptr)
    return fail(errc::invalid_item, why, "sale_token is not taken here");
  if (extras != nullptr) {
    extras->sale_token = req.sale_token();
    extras->ticket = req.ticket();
  }
  if (req.request_id().empty())
    return fail(errc::invalid_id, why, "request_id is missing or empty");
  purchase p;
  p.item_id = item_id;
  p.user_id = req.user_id();
  p.request_id = req.request_id();
  if (fields.given(*req.GetDescriptor(),
                   v1::PurchaseRequest::kQuantityFieldNumber))
    p.quantity = req.quantity();
  out = std::move(p);
  return errc::ok;
}

errc parse_user_json(const std::string& body, std::string& user_id,
                     std::string* why, const std::string& buyer) {
  v1::OrderAction req;
  body_fields fields;
  if (!buyer.empty() && body.empty())
    return user_id = buyer, errc::ok; // the JWT names the user: no body needed
  if (auto code = parse_strict(body, req, blame_purchase, fields, why);
      code != errc::ok)
    return code;
  if (!buyer.empty()
      && !fields.given(*req.GetDescriptor(),
                       v1::OrderAction::kUserIdFieldNumber))
    req.set_user_id(buyer);
  if (req.user_id().empty())
    return fail(errc::invalid_id, why, "user_id is missing or empty");
  user_id = req.user_id();
  return errc::ok;
}

errc parse_item_json(const std::string& body, item_spec& out,
                     std::string* why) {
  v1::Item msg;
  body_fields fields;
  if (auto code = parse_strict(body, msg, blame_item, fields, why);
      code != errc::ok)
    return code;
  // Fields not given take item_spec's defaults, not proto3's zeros; an item
  // created through the API needs a sale token unless it says otherwise.
  item_spec made;
  made.admission = admission_mode::token;
  auto defaults = to_proto(made, item_status::upcoming);
  const auto& d = *msg.GetDescriptor();
  std::vector<const pb::FieldDescriptor*> absent;
  for (int i = 0; i < d.field_count(); ++i)
    if (fields.values[i] == nullptr)
      absent.push_back(d.field(i));
  msg.GetReflection()->SwapFields(&msg, &defaults, absent);
  if (msg.item_id().empty())
    return fail(errc::invalid_id, why, "item_id is missing or empty");
  admission_mode admission{};
  if (!parse(msg.admission(), admission))
    return fail(errc::invalid_item, why,
                "admission \"" + msg.admission()
                  + "\" is not open, token or quiz");
  if (from_proto(msg, out) != errc::ok)
    return fail(errc::invalid_item, why,
                "mode \"" + msg.mode() + "\" is not order, reserve or pay");
  return errc::ok;
}

errc parse_token_json(const std::string& body, std::string& challenge,
                      std::string& answer, std::string* why) {
  if (body.empty())
    return challenge.clear(), answer.clear(), errc::ok;
  v1::TokenRequest req;
  body_fields fields;
  if (auto code = parse_strict(body, req, blame_purchase, fields, why);
      code != errc::ok)
    return code;
  challenge = req.challenge();
  answer = req.answer();
  return errc::ok;
}

// -- JSON out -----------------------------------------------------------------

std::string to_json(const pb::Message& msg) {
  pbu::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  opts.always_print_primitive_fields = true;
  std::string out;
  auto st = pbu::MessageToJsonString(msg, &out, opts);
  // Printing fails only for Any fields it cannot resolve; seckill.proto has
  // none, and invalid UTF-8 in a string is dropped, not an error.
  SECKILL_ASSERT(st.ok(), "a seckill DTO always prints as JSON");
  return out;
}

std::string order_json(const order& o) {
  std::string out;
  if (json_fast::write_order(o, out))
    return out;
  return to_json(to_proto(o));
}

std::string problem_json(errc code, int http_status, const std::string& detail,
                         int64_t retry_after_ms) {
  std::string out;
  if (json_fast::write_problem(code, http_status, detail, retry_after_ms, out))
    return out;
  return to_json(make_problem(code, http_status, detail, retry_after_ms));
}

// -- Problems -----------------------------------------------------------------

v1::Problem make_problem(errc code, int http_status, const std::string& detail,
                         int64_t retry_after_ms) {
  v1::Problem p;
  p.set_type(std::string{problem_type_base} + to_string(code));
  p.set_title(problem_title(code));
  p.set_status(http_status);
  p.set_detail(printable(detail));
  p.set_code(to_string(code));
  p.set_retry_after_ms(std::max<int64_t>(retry_after_ms, 0));
  return p;
}

} // namespace seckill
