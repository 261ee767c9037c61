// seckill-bench statistics: a log-bucketed latency histogram and a bounded
// table of outcomes.
//
// The histogram is HDR-like: values below 64 us have their own bucket, above
// that every power of two is split into 64 linear sub-buckets, so a reported
// percentile is within 1.6% of the true value. Its size is fixed (2,240
// counters); recording never allocates, whatever the number of requests.
// Values above 2^40 us are clamped into the last bucket; the exact maximum is
// kept apart.
//
// The outcome table keeps at most `outcome_kinds_max` distinct keys; a key
// beyond that is counted as "other", so a server that invents codes cannot
// grow it without bound.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <map>
#include <string>

namespace bench {

class latency_histogram {
public:
  static constexpr int sub_bits = 6;
  static constexpr uint64_t sub_count = uint64_t{1} << sub_bits;
  static constexpr int exp_max = 40;
  static constexpr size_t bucket_count = (exp_max - sub_bits + 1) * sub_count;

  void record(uint64_t us) {
    us = std::min(us, (uint64_t{1} << exp_max) - 1);
    counts_[index_of(us)] += 1;
    count_ += 1;
    max_us_ = std::max(max_us_, us);
  }

  void merge(const latency_histogram& other) {
    for (size_t i = 0; i < bucket_count; ++i)
      counts_[i] += other.counts_[i];
    count_ += other.count_;
    max_us_ = std::max(max_us_, other.max_us_);
  }

  void clear() {
    counts_.fill(0);
    count_ = 0;
    max_us_ = 0;
  }

  uint64_t count() const { return count_; }
  uint64_t max_us() const { return max_us_; }

  // The value at percentile p (0..100): the highest value of the bucket that
  // holds the rank, never above the maximum seen. 0 when empty.
  uint64_t percentile_us(double p) const {
    if (count_ == 0)
      return 0;
    auto rank = static_cast<uint64_t>(p / 100.0 * static_cast<double>(count_));
    rank = std::clamp<uint64_t>(rank, 1, count_);
    uint64_t seen = 0;
    for (size_t i = 0; i < bucket_count; ++i) {
      seen += counts_[i];
      if (seen >= rank)
        return std::min(max_us_, value_of(i + 1) - 1);
    }
    return max_us_;
  }

private:
  static size_t index_of(uint64_t v) {
    if (v < sub_count)
      return static_cast<size_t>(v);
    int e = 63 - __builtin_clzll(v); // e >= sub_bits
    uint64_t sub = (v >> (e - sub_bits)) & (sub_count - 1);
    return static_cast<size_t>((e - sub_bits + 1) * sub_count + sub);
  }

  // The lowest value of bucket i.
  static uint64_t value_of(size_t i) {
    if (i < sub_count)
      return i;
    uint64_t e = i / sub_count + sub_bits - 1;
    uint64_t sub = i % sub_count;
    return (uint64_t{1} << e) + (sub << (e - sub_bits));
  }

  std::array<uint64_t, bucket_count> counts_{};
  uint64_t count_ = 0;
  uint64_t max_us_ = 0;
};

static_assert(latency_histogram::bucket_count == 2240);

constexpr size_t outcome_kinds_max = 32;

// Outcome key -> count, ordered by key so tables and CSV columns are stable.
class outcome_counts {
public:
  void add(const std::string& key, uint64_t n = 1) {
    auto i = counts_.find(key);
    if (i != counts_.end()) {
      i->second += n;
    } else if (counts_.size() < outcome_kinds_max) {
      counts_.emplace(key, n);
    } else {
      counts_["other"] += n;
    }
  }
  uint64_t get(const std::string& key) const {
    auto i = counts_.find(key);
    return i == counts_.end() ? 0 : i->second;
  }
  const std::map<std::string, uint64_t>& all() const { return counts_; }
  void clear() { counts_.clear(); }

private:
  // At most outcome_kinds_max keys, plus "other".
  std::map<std::string, uint64_t> counts_;
};

} // namespace bench
