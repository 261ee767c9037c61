// The node's limits and degrade switches (Plan B), changed at run time:
// `node_switches` is a set of atomics that the admin actor writes (from
// seckill-cli switch, or the config at start) and the front gate, the
// bridges and the lag probe read lock-free. The names and the values each
// switch takes are checked here, purely: the CLI checks before sending, the
// admin actor checks again before setting. A rate of 0 turns that limit off.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "messages/errors.hpp"

namespace seckill {

struct node_switches {
  std::atomic<int64_t> node_rate_per_s{100'000}; // API requests/s, 0: off
  std::atomic<int64_t> ip_rate_per_s{0};         // per client address, 0: off
  std::atomic<int64_t> rate_burst_ms{200}; // a bucket holds this much rate
  std::atomic<int64_t> shed_inflight_max{8'192};
  std::atomic<int64_t> shed_latency_ms{25}; // 0: the static bound only
  std::atomic<int64_t> shed_lag_ms{100};    // 0: off
  /// How long the lag must stay above shed_lag_ms before the gate sheds.
  /// 0: one late measure sheds (no window).
  std::atomic<int64_t> shed_lag_window_ms{500};
  /// Stock reads answered from the bridge's copy when it is at most this
  /// old, without a hop to the item's owner. 0: off, every read hops.
  std::atomic<int64_t> edge_reads_ms{0};
  /// Non-essential work off: the item list answers 503, /metrics leaves
  /// out the per-item series (which ask every item and queue).
  std::atomic<bool> essential_only{false};
  /// The quiz of `admission: quiz` items (buyer_gate.hpp): 0 arithmetic
  /// (a person), 1 proof of work of pow_bits leading zero bits.
  std::atomic<int64_t> quiz_kind{0};
  std::atomic<int64_t> pow_bits{16}; // limits::pow_bits_default
  /// Written by the lag probe: its last measured lateness, and when (steady
  /// clock, microseconds) its next tick is due. A scheduler that stalls
  /// sends no tick, so the gate also counts the time past that due point.
  std::atomic<int64_t> lag_last_us{0};
  std::atomic<int64_t> lag_due_us{0};
  /// The same for the HTTP server's event loop (its own timer): how long a
  /// request that just arrived waits for an I/O thread.
  std::atomic<int64_t> io_lag_last_us{0};
  std::atomic<int64_t> io_lag_due_us{0};
  /// Written by the lag probe: either loop's lag_detector is shedding.
  std::atomic<bool> lag_sustained{false};
};

/// The switches a name selects, by name ("edge-reads-ms", ...), and the
/// values they take. Pure: the CLI checks before sending, the admin actor
/// checks again before setting.
errc check_switch(const std::string& name, const std::string& value,
                  std::string& why);

/// Every switch's name, in the order the help and the config file list them.
std::vector<std::string> switch_names();

/// What a known switch takes: "on or off", "an integer from 0 to 60000".
std::string switch_expectation(const std::string& name);

/// A switch's value as check_switch reads it ("on", "200", ...).
std::string switch_value(const node_switches& sw, const std::string& name);

/// Sets a switch checked by check_switch (asserts that it was).
void set_switch(node_switches& sw, const std::string& name,
                const std::string& value);

/// The node's lag now, as the CLI and /metrics show it: the longer of the
/// actor scheduler's and the HTTP event loop's, each the last measure or the
/// time past the next tick's due point if that is longer (a stalled loop
/// sends no tick).
int64_t effective_lag_us(const node_switches& sw, int64_t now_us);

/// How long the more stalled of the two loops is past its next tick's due
/// point (0: both on time, or not probed yet).
int64_t stalled_us(const node_switches& sw, int64_t now_us);

} // namespace seckill
