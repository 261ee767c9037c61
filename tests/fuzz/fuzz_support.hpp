// What the libFuzzer targets share: the check that turns a broken invariant
// into a finding (a line naming it, then abort, which libFuzzer keeps the
// input for), and an independent reader of a flat JSON object (nlohmann's
// SAX) that keeps its members in the order written, duplicates included (a
// DOM would keep only the last), to compare seckill's readers against.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace seckill::fuzz {

/// Aborts with "invariant broken: WHAT" unless `ok`.
inline void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "invariant broken: %s\n", what);
    std::abort();
  }
}

/// The members of a flat object in the order written, duplicates kept. A
/// nested object or array ends the parse (the strict gate refuses those).
class flat_members : public nlohmann::json_sax<nlohmann::json> {
public:
  using json = nlohmann::json;

  std::vector<std::pair<std::string, json>> list;

  bool null() override { return value(nullptr); }
  bool boolean(bool v) override { return value(v); }
  bool number_integer(number_integer_t v) override { return value(v); }
  bool number_unsigned(number_unsigned_t v) override { return value(v); }
  bool number_float(number_float_t v, const string_t&) override {
    return value(v);
  }
  bool string(string_t& v) override { return value(v); }
  bool binary(binary_t&) override { return false; }
  bool start_object(std::size_t) override {
    if (opened_)
      return false; // a nested object: the gate refused it
    opened_ = true;
    return true;
  }
  bool key(string_t& k) override {
    list.emplace_back(k, json{});
    return true;
  }
  bool end_object() override { return true; }
  bool start_array(std::size_t) override { return false; }
  bool end_array() override { return false; }
  bool parse_error(std::size_t, const std::string&,
                   const nlohmann::detail::exception&) override {
    return false;
  }

private:
  bool value(json v) {
    if (list.empty())
      return false;
    list.back().second = std::move(v);
    return true;
  }
  bool opened_ = false;
};

} // namespace seckill::fuzz
