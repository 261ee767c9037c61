// The front gate: what a request meets first, on the HTTP server's I/O
// thread, before any actor sees it (Plan B: docs/ARCHITECTURE.md, "The domain
// facts"). It refuses what the node should not take on, at the cost of a few
// atomic loads and at most two token buckets, so a refusal costs microseconds
// however hard the crowd pushes:
//   requests in flight (handed to the bridges, not answered) at the bound
//                                                   503 overloaded (shedding)
//     The bound adapts (Little's law): the node's recent answer rate times
//     `shed-latency-ms`, so that a request admitted under overload waits
//     about that long behind the others, never more than `shed-inflight-max`
//     and never fewer than limits::gate_inflight_floor.
//   the actor scheduler or the HTTP event loop late by more than
//   `shed-lag-ms` for a whole `shed-lag-window-ms` (lag_probe and the
//   server's own timer measure them; see "Lag" below)
//                                                   503 overloaded (shedding)
//   over the node's request rate                    429 rate_limited
//   over the client address's request rate          429 rate_limited
// Behind it, the user session meters each user (429 rate_limited) and the
// admission queue meters each item (429 busy): every layer has its limit.
// /healthz always passes, and so do /metrics and the admin routes when they
// carry the admin token: an operator must be able to pause a sale on a node
// that is shedding (without the token they are requests like any other, so
// a flood cannot slip through by its path). Paying and cancelling an order
// are rate-limited but never shed.
//
// The limits and the degrade switches are `node_switches` (switches.hpp):
// atomics that the admin actor changes at run time (seckill-cli switch) and
// the gate, the bridges and the lag probe read. A rate of 0 turns that
// limit off.
//
// Per-address buckets live in a fixed table indexed by a hash of the
// address: bounded memory with no eviction; two addresses that share a slot
// share one budget (rare, and it errs towards limiting, never towards
// letting a flood through).
//
// A request stays in flight until the bridge answers it, also when the HTTP
// server has answered it 503 timeout itself meanwhile: its work is still in
// the node. Such a late answer is observed with the bridge's status and its
// whole time (beyond the answer timeout).
//
// Lag: one late tick is not overload (a host that stalls once, a busy
// machine, a page fault). The lag probe feeds every measure of both loops
// to a lag_detector (pure, below) and publishes its verdict in
// `node_switches::lag_sustained`, which the gate reads lock-free:
//   shedding starts when every measure stayed above shed-lag-ms over a whole
//     shed-lag-window-ms (so never on one measure, however late: a window
//     spans at least two measures, and several at any lag near the bound);
//   shedding stops at the first measure under limits::gate_lag_release_ratio
//     of the bound (hysteresis: a lag hovering at the bound does not flap).
// A loop so stalled that it measures nothing shows as the time past its
// next tick's due point; the gate sheds at once when that exceeds the window
// plus the bound, the point at which a sustained lag would have shed too.
// The in-flight bound above is the measure of real queueing and does not
// wait for a window. A whole process frozen (SIGSTOP, a host stall) longer
// than window plus bound sheds the first requests after it resumes, until
// the probes have ticked again (a few milliseconds).
//
// It must never: block on anything but its own short lock (taken once per
// rate window, and per request only while a rate limit is on), allocate per
// request beyond the refusal it builds, or let the in-flight count go
// negative (asserted).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "actors/edge/routes.hpp"
#include "actors/edge/switches.hpp"
#include "actors/sale/token_bucket.hpp"
#include "messages/errors.hpp"
#include "messages/http.hpp"
#include "messages/types.hpp"

namespace seckill {

struct gate_counters;

/// The current values and the gate's counts, for seckill-cli and /metrics.
switches_view view_of(const node_switches& sw, const gate_counters& counters,
                      int64_t now_us);

// -- Lag (pure) -------------------------------------------------------------------

/// What a lag_detector judges by: the switches' bound and window, and the
/// share of the bound under which shedding stops.
struct lag_limits {
  int64_t lag_max_ms = 0;    // shed-lag-ms; 0: off
  int64_t lag_window_ms = 0; // shed-lag-window-ms; 0: one measure suffices
  double release_ratio = 0;  // limits::gate_lag_release_ratio
};

/// The limits the switches set now.
lag_limits lag_limits_of(const node_switches& sw);

/// Sustained lag with hysteresis, for one loop, fed each of its measures.
struct lag_detector {
  bool shedding = false;
  /// When the first of an unbroken run of measures above the bound was
  /// taken (steady clock, microseconds); -1: the last one was not above.
  int64_t above_since_us = -1;
};

/// Feeds one measure (the loop ran work `lag_us` late, measured at
/// `now_us`) and returns whether to shed: true once the measures stayed
/// above the bound from one taken a whole window ago to this one, and
/// until one falls under the release threshold. Off (bound 0): resets.
bool feed_lag(lag_detector& d, const lag_limits& lim, int64_t lag_us,
              int64_t now_us);

/// A loop past its due point by `stalled_us` measures nothing: it counts as
/// sustained lag once that exceeds the window plus the bound.
bool lag_stalled(const lag_limits& lim, int64_t stalled_us);

// -- The decision (pure) ----------------------------------------------------------

enum class gate_class : uint8_t {
  exempt,   // /healthz; /metrics and admin routes with the admin token
  purchase, // POST /api/v1/items/{id}/purchase
  settle,   // paying or cancelling an order: rate-limited, never shed (a
            // buyer holding a reservation must be able to pay for it)
  api,      // every other request, 404s included
};

/// By route (matched once by the front door, routes.hpp) and, for /metrics
/// and the admin routes, by the Authorization header against `admin_token`.
gate_class classify(const route& rt, const http::request& req,
                    const std::string& admin_token);

enum class gate_verdict : uint8_t {
  pass,
  shed_inflight, // 503
  shed_lag,      // 503
  node_rate,     // 429
  ip_rate,       // 429
};

constexpr std::size_t gate_verdict_count = 5;

const char* to_string(gate_verdict x);

/// Shedding, before any bucket is touched: the request would only wait.
/// `lag_sustained` is a lag_detector's verdict (the probe's), `stalled_us`
/// the time past due now (stalled_us()).
gate_verdict judge_load(int64_t inflight, int64_t inflight_max,
                        bool lag_sustained, int64_t stalled_us,
                        const lag_limits& lim);

/// The in-flight bound for an answer rate of `answers_per_s`: as many as
/// are answered in `latency_ms`, within [floor, inflight_max]; the static
/// bound when latency_ms is 0.
int64_t adaptive_inflight_max(double answers_per_s, int64_t latency_ms,
                              int64_t floor, int64_t inflight_max);

/// The refusal for a verdict other than pass (problem+json, Retry-After).
http::response refusal(gate_verdict v, int64_t retry_after_ms,
                       const std::string& detail);

// -- Counters -----------------------------------------------------------------------

/// Server time of purchases (handler called -> reply called), in
/// microseconds, by answer class: log2 buckets from 1 us to ~4 s.
struct latency_histogram {
  static constexpr std::size_t buckets = 23; // le 2^0 .. 2^21 us, then +Inf
  std::array<std::atomic<int64_t>, buckets> counts{};
  std::atomic<int64_t> sum_us{0};
  void add(int64_t us);
  /// The upper bound of bucket i in microseconds (-1: +Inf).
  static int64_t upper_us(std::size_t i);
};

enum class answer_class : uint8_t { admitted, refused, shed };
constexpr std::size_t answer_class_count = 3;
const char* to_string(answer_class x);
/// 2xx: admitted; 503: shed; anything else: refused.
answer_class class_of(int status);

struct gate_counters {
  std::array<std::atomic<int64_t>, gate_verdict_count> verdicts{};
  std::array<latency_histogram, answer_class_count> purchase_us{};
  std::atomic<int64_t> inflight{0};
  std::atomic<int64_t> answered{0};       // admitted requests answered
  std::atomic<int64_t> inflight_limit{0}; // the bound in force (adaptive)
};

// -- The gate -----------------------------------------------------------------------

class front_gate {
public:
  front_gate(std::shared_ptr<node_switches> sw,
             std::shared_ptr<gate_counters> counters);

  front_gate(const front_gate&) = delete;
  front_gate& operator=(const front_gate&) = delete;

  /// Decides on `req` at `now_us` (steady clock). On pass, counts the
  /// request in flight and returns true: the caller must then call done()
  /// exactly once when it is answered. Otherwise fills `refused`.
  bool admit(const http::request& req, gate_class cls, int64_t now_us,
             http::response& refused);

  /// The request admitted at `started_us` was answered with `status`:
  /// no longer in flight, and observed (status 0: dropped unanswered).
  void done(gate_class cls, int64_t started_us, int64_t now_us, int status);

  /// Adds a purchase's server time to the histogram of its answer class
  /// (done() does it for admitted requests; the caller for refusals).
  void observe(gate_class cls, int64_t started_us, int64_t now_us, int status);

private:
  /// Shedding for purchases and API requests: a verdict and its detail.
  gate_verdict judge_shedding(int64_t now_us, std::string& detail);
  /// The rate limits (node, address): a verdict, its retry hint and detail.
  gate_verdict judge_rates(const http::request& req, int64_t now_us,
                           int64_t& retry_ms, std::string& detail);
  bool take(token_bucket& b, int64_t rate, int64_t now_ms);
  /// The in-flight bound now; re-estimates the answer rate once a window.
  int64_t inflight_bound(int64_t now_us);

  std::shared_ptr<node_switches> sw_;
  std::shared_ptr<gate_counters> counters_;
  std::mutex mtx_; // guards the buckets
  token_bucket node_bucket_;
  std::vector<token_bucket> ip_buckets_; // ip_slots, rate 0 = never used
  // The answer rate's estimate (a moving average over windows).
  std::atomic<bool> estimated_{false}; // the bound was computed once
  std::atomic<int64_t> window_start_us_{0};
  int64_t window_answered_ = 0;
  double answers_per_s_ = 0;
};

} // namespace seckill
