// The switches' names, values and lag readings (see switches.hpp).
#include "actors/edge/switches.hpp"

#include <algorithm>
#include <charconv>

#include "messages/assert.hpp"
#include "messages/limits.hpp"

namespace seckill {

namespace {

using int_switch = std::atomic<int64_t> node_switches::*;

struct switch_def {
  const char* name;
  int_switch field; // null: the boolean essential_only
  int64_t min;
  int64_t max;
  /// A switch of two words (stored as 0 and 1): the words; null: a number.
  const char* word0 = nullptr;
  const char* word1 = nullptr;
};

// Every switch, its range and what it sets. A rate of 0 turns that limit off.
constexpr switch_def switch_defs[] = {
  {"node-rate-per-s", &node_switches::node_rate_per_s, 0, 10'000'000},
  {"ip-rate-per-s", &node_switches::ip_rate_per_s, 0, 10'000'000},
  {"rate-burst-ms", &node_switches::rate_burst_ms, 1, 10'000},
  {"shed-inflight-max", &node_switches::shed_inflight_max, 1, 1'000'000},
  {"shed-latency-ms", &node_switches::shed_latency_ms, 0, 60'000},
  {"shed-lag-ms", &node_switches::shed_lag_ms, 0, 60'000},
  {"shed-lag-window-ms", &node_switches::shed_lag_window_ms, 0, 60'000},
  {"edge-reads-ms", &node_switches::edge_reads_ms, 0, 60'000},
  {"essential-only", nullptr, 0, 1, "off", "on"},
  {"quiz-kind", &node_switches::quiz_kind, 0, 1, "arithmetic", "pow"},
  {"pow-bits", &node_switches::pow_bits, 1, limits::pow_bits_max},
};

const switch_def* find_switch(const std::string& name) {
  for (const auto& d : switch_defs)
    if (name == d.name)
      return &d;
  return nullptr;
}

// "on"/"off" (and true/false, 1/0) for booleans, a decimal integer else.
bool parse_value(const switch_def& d, const std::string& value, int64_t& out) {
  if (d.field == nullptr) {
    if (value == "on" || value == "true" || value == "1")
      return out = 1, true;
    if (value == "off" || value == "false" || value == "0")
      return out = 0, true;
    return false;
  }
  if (d.word0 != nullptr) {
    if (value == d.word0 || value == d.word1)
      return out = value == d.word1 ? 1 : 0, true;
    return false;
  }
  auto end = value.data() + value.size();
  auto [p, ec] = std::from_chars(value.data(), end, out);
  return ec == std::errc{} && p == end && !value.empty();
}

std::string names() {
  std::string s;
  for (const auto& d : switch_defs)
    s += (s.empty() ? "" : ", ") + std::string{d.name};
  return s;
}

} // namespace

std::vector<std::string> switch_names() {
  std::vector<std::string> out;
  for (const auto& d : switch_defs)
    out.emplace_back(d.name);
  return out;
}

std::string switch_expectation(const std::string& name) {
  auto d = find_switch(name);
  SECKILL_ASSERT(d != nullptr, "only a known switch has a range");
  if (d->word0 != nullptr)
    return std::string{d->word1} + " or " + d->word0;
  return "an integer from " + std::to_string(d->min) + " to "
         + std::to_string(d->max);
}

errc check_switch(const std::string& name, const std::string& value,
                  std::string& why) {
  auto d = find_switch(name);
  if (d == nullptr) {
    why = "unknown switch '" + name + "' (one of: " + names() + ")";
    return errc::bad_request;
  }
  int64_t v = 0;
  if (!parse_value(*d, value, v) || v < d->min || v > d->max) {
    why = name + " = '" + value + "': expected " + switch_expectation(name);
    return errc::bad_request;
  }
  return errc::ok;
}

void set_switch(node_switches& sw, const std::string& name,
                const std::string& value) {
  auto d = find_switch(name);
  int64_t v = 0;
  SECKILL_ASSERT(d != nullptr && parse_value(*d, value, v) && v >= d->min
                   && v <= d->max,
                 "a switch is set only after check_switch passed");
  if (d->field == nullptr)
    sw.essential_only.store(v != 0);
  else
    (sw.*(d->field)).store(v);
}

std::string switch_value(const node_switches& sw, const std::string& name) {
  auto d = find_switch(name);
  SECKILL_ASSERT(d != nullptr, "only a known switch has a value");
  if (d->field == nullptr)
    return sw.essential_only.load() ? "on" : "off";
  if (d->word0 != nullptr)
    return (sw.*(d->field)).load() != 0 ? d->word1 : d->word0;
  return std::to_string((sw.*(d->field)).load());
}

namespace {

int64_t lag_of(const std::atomic<int64_t>& last,
               const std::atomic<int64_t>& due, int64_t now_us) {
  auto d = due.load(std::memory_order_relaxed);
  auto late = d > 0 ? now_us - d : 0;
  return std::max(last.load(std::memory_order_relaxed), late);
}

} // namespace

int64_t effective_lag_us(const node_switches& sw, int64_t now_us) {
  return std::max(lag_of(sw.lag_last_us, sw.lag_due_us, now_us),
                  lag_of(sw.io_lag_last_us, sw.io_lag_due_us, now_us));
}

int64_t stalled_us(const node_switches& sw, int64_t now_us) {
  auto past = [now_us](const std::atomic<int64_t>& due) {
    auto d = due.load(std::memory_order_relaxed);
    return d > 0 ? std::max<int64_t>(0, now_us - d) : 0;
  };
  return std::max(past(sw.lag_due_us), past(sw.io_lag_due_us));
}

} // namespace seckill
