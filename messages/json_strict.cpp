// The strict gate of JSON request bodies (see json_strict.hpp).
#include "messages/json_strict.hpp"

#include <cstdint>

#include <nlohmann/json.hpp>

#include "messages/limits.hpp"

namespace seckill {

namespace {

using json = nlohmann::json;

/// Accepts one object of scalars; refuses (returns false, which stops the
/// reader at once) at the first value that is not.
class flat_object : public nlohmann::json_sax<json> {
public:
  std::string fault;
  std::string last_key;  // the key whose value comes next
  bool in_value = false; // a fault now is in last_key's value
  std::size_t depth = 0;
  std::size_t keys = 0;
  bool opened = false; // the top-level object has begun

  bool null() override { return scalar(); }
  bool boolean(bool) override { return scalar(); }
  bool number_integer(number_integer_t) override { return scalar(); }
  bool number_unsigned(number_unsigned_t) override { return scalar(); }
  bool number_float(number_float_t, const string_t&) override {
    return scalar();
  }
  bool string(string_t&) override { return scalar(); }
  bool binary(binary_t&) override { return refuse("binary data"); }
  bool start_object(std::size_t) override {
    if (opened)
      return refuse("a nested object (every field is a string, a number, "
                    "true, false or null)");
    opened = true;
    depth = 1;
    return true;
  }
  bool key(string_t& k) override {
    last_key = k;
    in_value = true;
    if (++keys > limits::json_keys_max)
      return refuse_body("more than " + std::to_string(limits::json_keys_max)
                         + " fields");
    return true;
  }
  bool end_object() override {
    depth = 0;
    in_value = false;
    return true;
  }
  bool start_array(std::size_t) override {
    return opened ? refuse("an array (every field is a string, a number, "
                           "true, false or null)")
                  : refuse_body("an array, not one JSON object");
  }
  bool end_array() override { return true; }
  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception&) override {
    in_value = false;
    if (fault.empty())
      fault = "not strict JSON (RFC 8259) at byte "
              + std::to_string(position == 0 ? 0 : position - 1);
    return false;
  }

private:
  bool scalar() {
    if (depth != 1)
      return refuse_body("a value, not one JSON object");
    in_value = false;
    return true;
  }
  bool refuse(std::string what) {
    fault = std::move(what);
    return false;
  }
  bool refuse_body(std::string what) {
    in_value = false;
    return refuse(std::move(what));
  }
};

} // namespace

errc check_flat_json_object(std::string_view body, std::string* why,
                            std::string* field) {
  auto say = [why](errc code, std::string text) {
    if (why != nullptr)
      *why = "body is " + std::move(text);
    return code;
  };
  if (field != nullptr)
    field->clear();
  if (body.size() > limits::json_body_bytes_max)
    return say(errc::invalid_item,
               "over " + std::to_string(limits::json_body_bytes_max)
                 + " bytes, the limit of a JSON body");
  flat_object sax;
  bool ok = json::sax_parse(body.begin(), body.end(), &sax,
                            json::input_format_t::json, true, false);
  if ((!ok || !sax.fault.empty()) && sax.in_value && field != nullptr)
    *field = sax.last_key;
  if (!ok || !sax.fault.empty())
    return say(errc::invalid_item, sax.fault.empty()
                                     ? std::string{"not one JSON object"}
                                     : sax.fault);
  return errc::ok;
}

} // namespace seckill
