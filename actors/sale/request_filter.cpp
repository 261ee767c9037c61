// The request filter (see request_filter.hpp).
#include "actors/sale/request_filter.hpp"

#include "actors/base/placement.hpp"

namespace seckill {

namespace {

constexpr int probes = 11;
constexpr std::size_t bits_per_id = 16;

// Double hashing: probe i is h1 + i * h2 (h2 odd, so the probes differ).
template <class F>
void each_probe(std::size_t bit_count, const std::string& id, F f) {
  auto h1 = rendezvous_weight("request-filter", id);
  auto h2 = rendezvous_weight("request-filter-2", id) | 1;
  for (int i = 0; i < probes; ++i)
    f((h1 + static_cast<uint64_t>(i) * h2) % bit_count);
}

} // namespace

std::size_t filter_words(std::size_t count) {
  if (count == 0)
    return 0;
  return (count * bits_per_id + 63) / 64;
}

std::vector<uint64_t>
make_request_filter(const std::vector<std::string>& request_ids) {
  std::vector<uint64_t> bits(filter_words(request_ids.size()), 0);
  for (const auto& id : request_ids)
    add_to_filter(bits, id);
  return bits;
}

void add_to_filter(std::vector<uint64_t>& bits, const std::string& id) {
  if (bits.empty())
    return;
  each_probe(bits.size() * 64, id,
             [&](uint64_t b) { bits[b / 64] |= uint64_t{1} << (b % 64); });
}

bool filter_may_hold(const std::vector<uint64_t>& bits, const std::string& id) {
  if (bits.empty())
    return false;
  bool all = true;
  each_probe(bits.size() * 64, id, [&](uint64_t b) {
    all = all && (bits[b / 64] >> (b % 64) & 1) != 0;
  });
  return all;
}

} // namespace seckill
