// The front gate (see front_gate.hpp).
#include "actors/edge/front_gate.hpp"

#include <algorithm>
#include <charconv>
#include <functional>

#include "actors/edge/http_rules.hpp"
#include "actors/edge/routes.hpp"
#include "messages/assert.hpp"
#include "messages/limits.hpp"

namespace seckill {

switches_view view_of(const node_switches& sw, const gate_counters& c,
                      int64_t now_us) {
  switches_view v;
  v.node_rate_per_s = sw.node_rate_per_s.load();
  v.ip_rate_per_s = sw.ip_rate_per_s.load();
  v.rate_burst_ms = sw.rate_burst_ms.load();
  v.shed_inflight_max = sw.shed_inflight_max.load();
  v.shed_latency_ms = sw.shed_latency_ms.load();
  v.shed_lag_ms = sw.shed_lag_ms.load();
  v.edge_reads_ms = sw.edge_reads_ms.load();
  v.essential_only = sw.essential_only.load();
  v.lag_us = effective_lag_us(sw, now_us);
  v.inflight = c.inflight.load();
  v.inflight_limit = c.inflight_limit.load();
  auto n = [&c](gate_verdict x) {
    return c.verdicts[static_cast<std::size_t>(x)].load();
  };
  v.shed_inflight = n(gate_verdict::shed_inflight);
  v.shed_lag = n(gate_verdict::shed_lag);
  v.node_rate = n(gate_verdict::node_rate);
  v.ip_rate = n(gate_verdict::ip_rate);
  return v;
}

// -- Lag ----------------------------------------------------------------------------

static_assert(limits::gate_lag_release_ratio > 0
                && limits::gate_lag_release_ratio < 1,
              "shedding for lag stops under the bound, never only at no lag");

lag_limits lag_limits_of(const node_switches& sw) {
  lag_limits lim;
  lim.lag_max_ms = sw.shed_lag_ms.load(std::memory_order_relaxed);
  lim.lag_window_ms = sw.shed_lag_window_ms.load(std::memory_order_relaxed);
  lim.release_ratio = limits::gate_lag_release_ratio;
  return lim;
}

bool feed_lag(lag_detector& d, const lag_limits& lim, int64_t lag_us,
              int64_t now_us) {
  SECKILL_ASSERT(lim.lag_max_ms >= 0 && lim.lag_window_ms >= 0
                   && lim.release_ratio > 0 && lim.release_ratio < 1,
                 "lag limits are in range");
  if (lim.lag_max_ms == 0) // off: a bound set later starts afresh
    return d = lag_detector{}, false;
  auto bound_us = lim.lag_max_ms * 1000;
  if (d.shedding) {
    // Hysteresis: only a lag well under the bound ends it.
    if (static_cast<double>(lag_us) < lim.release_ratio * bound_us)
      d = lag_detector{};
    return d.shedding;
  }
  if (lag_us <= bound_us) // the run above the bound is broken
    return d.above_since_us = -1, false;
  if (d.above_since_us < 0)
    d.above_since_us = now_us; // the first of a run
  d.shedding = now_us - d.above_since_us >= lim.lag_window_ms * 1000;
  return d.shedding;
}

bool lag_stalled(const lag_limits& lim, int64_t stalled_us) {
  return lim.lag_max_ms > 0
         && stalled_us > (lim.lag_window_ms + lim.lag_max_ms) * 1000;
}

// -- The decision -------------------------------------------------------------------

gate_class classify(const route& rt, const http::request& req,
                    const std::string& admin_token) {
  auto authorized = [&] {
    return check_token(req.authorization, admin_token) == errc::ok;
  };
  switch (rt.kind) {
    case route_kind::healthz: return gate_class::exempt;
    case route_kind::metrics:
      // A scrape with the admin token passes; without, it is a request
      // like any other (gathering it asks every item and queue).
      return authorized() ? gate_class::exempt : gate_class::api;
    case route_kind::item_purchase: return gate_class::purchase;
    case route_kind::order_pay:
    case route_kind::order_cancel: return gate_class::settle;
    default:
      // Admin routes pass only with the right token: a flood cannot slip
      // through by its path.
      return is_admin(rt.kind) && authorized() ? gate_class::exempt
                                               : gate_class::api;
  }
}

const char* to_string(gate_verdict x) {
  switch (x) {
    case gate_verdict::pass: return "pass";
    case gate_verdict::shed_inflight: return "shed_inflight";
    case gate_verdict::shed_lag: return "shed_lag";
    case gate_verdict::node_rate: return "node_rate";
    case gate_verdict::ip_rate: return "ip_rate";
  }
  return "?";
}

gate_verdict judge_load(int64_t inflight, int64_t inflight_max,
                        bool lag_sustained, int64_t stalled_us,
                        const lag_limits& lim) {
  if (inflight >= inflight_max)
    return gate_verdict::shed_inflight;
  if (lim.lag_max_ms > 0 && (lag_sustained || lag_stalled(lim, stalled_us)))
    return gate_verdict::shed_lag;
  return gate_verdict::pass;
}

int64_t adaptive_inflight_max(double answers_per_s, int64_t latency_ms,
                              int64_t floor, int64_t inflight_max) {
  if (latency_ms <= 0)
    return inflight_max;
  auto fit = static_cast<int64_t>(answers_per_s * latency_ms / 1000.0);
  return std::min(inflight_max, std::max(floor, fit));
}

http::response refusal(gate_verdict v, int64_t retry_after_ms,
                       const std::string& detail) {
  SECKILL_ASSERT(v != gate_verdict::pass, "only a refusal is answered here");
  bool shed = v == gate_verdict::shed_inflight || v == gate_verdict::shed_lag;
  return problem_response(shed ? errc::overloaded : errc::rate_limited, detail,
                          std::max<int64_t>(retry_after_ms, 1));
}

// -- Counters -----------------------------------------------------------------------

void latency_histogram::add(int64_t us) {
  us = std::max<int64_t>(us, 0);
  std::size_t i = 0;
  while (i + 1 < buckets && us > upper_us(i))
    ++i;
  counts[i].fetch_add(1, std::memory_order_relaxed);
  sum_us.fetch_add(us, std::memory_order_relaxed);
}

int64_t latency_histogram::upper_us(std::size_t i) {
  return i + 1 >= buckets ? -1 : int64_t{1} << i;
}

const char* to_string(answer_class x) {
  switch (x) {
    case answer_class::admitted: return "admitted";
    case answer_class::refused: return "refused";
    case answer_class::shed: return "shed";
  }
  return "?";
}

answer_class class_of(int status) {
  if (status >= 200 && status < 300)
    return answer_class::admitted;
  return status == 503 ? answer_class::shed : answer_class::refused;
}

// -- The gate -----------------------------------------------------------------------

front_gate::front_gate(std::shared_ptr<node_switches> sw,
                       std::shared_ptr<gate_counters> counters)
  : sw_(std::move(sw)), counters_(std::move(counters)),
    ip_buckets_(limits::gate_ip_slots, token_bucket{0, 0, 0, 0}) {
  SECKILL_ASSERT(sw_ && counters_, "a gate has switches and counters");
}

// One token from `b` at `rate` per second; a bucket made for another rate
// or burst (or never used: rate 0) starts afresh, so a rate or a burst
// changed at run time applies from the next request.
bool front_gate::take(token_bucket& b, int64_t rate, int64_t now_ms) {
  auto burst = std::max<double>(1.0, rate * sw_->rate_burst_ms.load() / 1000.0);
  if (b.rate_per_s != static_cast<double>(rate) || b.burst != burst)
    b = make_bucket(static_cast<double>(rate), burst, now_ms);
  return take_token(b, now_ms);
}

int64_t front_gate::inflight_bound(int64_t now_us) {
  auto& c = *counters_;
  constexpr auto window = limits::gate_rate_window_us;
  auto since = now_us - window_start_us_.load(std::memory_order_relaxed);
  if (estimated_.load(std::memory_order_acquire) && since >= 0
      && since < window)
    return c.inflight_limit.load(std::memory_order_relaxed); // no lock
  std::lock_guard<std::mutex> guard{mtx_};
  auto elapsed = now_us - window_start_us_.load(std::memory_order_relaxed);
  if (!estimated_.load() || elapsed >= window || elapsed < 0) {
    auto answered = c.answered.load(std::memory_order_relaxed);
    if (estimated_.load() && elapsed > 0) {
      auto rate = (answered - window_answered_) * 1e6 / elapsed;
      // A moving average: one slow window does not collapse the bound.
      constexpr auto w = limits::gate_rate_new_weight;
      answers_per_s_ =
        answers_per_s_ == 0 ? rate : (1 - w) * answers_per_s_ + w * rate;
    }
    window_start_us_.store(now_us, std::memory_order_relaxed);
    window_answered_ = answered;
    c.inflight_limit.store(
      adaptive_inflight_max(answers_per_s_, sw_->shed_latency_ms.load(),
                            static_cast<int64_t>(limits::gate_inflight_floor),
                            sw_->shed_inflight_max.load()),
      std::memory_order_relaxed);
    estimated_.store(true, std::memory_order_release);
  }
  return c.inflight_limit.load(std::memory_order_relaxed);
}

gate_verdict front_gate::judge_shedding(int64_t now_us, std::string& detail) {
  auto inflight = counters_->inflight.load(std::memory_order_relaxed);
  auto sustained = sw_->lag_sustained.load(std::memory_order_relaxed);
  auto stalled = stalled_us(*sw_, now_us);
  auto lim = lag_limits_of(*sw_);
  auto verdict =
    judge_load(inflight, inflight_bound(now_us), sustained, stalled, lim);
  if (verdict == gate_verdict::shed_inflight)
    detail = "the node is shedding load: " + std::to_string(inflight)
             + " requests in flight, the bound now";
  else if (verdict == gate_verdict::shed_lag && sustained)
    detail = "the node is shedding load: it has run work more than "
             + std::to_string(lim.lag_max_ms) + " ms late"
             + (lim.lag_window_ms > 0
                  ? " for " + std::to_string(lim.lag_window_ms) + " ms"
                  : std::string{});
  else if (verdict == gate_verdict::shed_lag)
    detail = "the node is shedding load: it has run no work for "
             + std::to_string(stalled / 1000) + " ms";
  return verdict;
}

gate_verdict front_gate::judge_rates(const http::request& req, int64_t now_us,
                                     int64_t& retry_ms, std::string& detail) {
  auto node_rate = sw_->node_rate_per_s.load(std::memory_order_relaxed);
  auto ip_rate = sw_->ip_rate_per_s.load(std::memory_order_relaxed);
  if (node_rate <= 0 && ip_rate <= 0)
    return gate_verdict::pass;
  auto now_ms = now_us / 1000;
  std::lock_guard<std::mutex> guard{mtx_};
  // The address first: a flooder over its own rate must not spend the
  // node's budget that honest clients share.
  auto& ip_bucket = ip_buckets_[std::hash<std::string>{}(req.client_ip)
                                % limits::gate_ip_slots];
  if (ip_rate > 0 && !take(ip_bucket, ip_rate, now_ms)) {
    retry_ms = ms_until_token(ip_bucket, now_ms);
    detail = "over the rate of " + std::to_string(ip_rate)
             + " requests/s per client address";
    return gate_verdict::ip_rate;
  }
  if (node_rate > 0 && !take(node_bucket_, node_rate, now_ms)) {
    retry_ms = ms_until_token(node_bucket_, now_ms);
    detail =
      "over this node's rate of " + std::to_string(node_rate) + " requests/s";
    return gate_verdict::node_rate;
  }
  return gate_verdict::pass;
}

bool front_gate::admit(const http::request& req, gate_class cls, int64_t now_us,
                       http::response& refused) {
  auto& c = *counters_;
  auto verdict = gate_verdict::pass;
  int64_t retry_ms = 1'000;
  std::string detail;
  if (cls == gate_class::purchase || cls == gate_class::api)
    verdict = judge_shedding(now_us, detail);
  if (cls != gate_class::exempt && verdict == gate_verdict::pass)
    verdict = judge_rates(req, now_us, retry_ms, detail);
  c.verdicts[static_cast<std::size_t>(verdict)].fetch_add(
    1, std::memory_order_relaxed);
  if (verdict != gate_verdict::pass) {
    refused = refusal(verdict, retry_ms, detail);
    return false;
  }
  c.inflight.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void front_gate::done(gate_class cls, int64_t started_us, int64_t now_us,
                      int status) {
  auto left = counters_->inflight.fetch_sub(1, std::memory_order_relaxed) - 1;
  counters_->answered.fetch_add(1, std::memory_order_relaxed);
  SECKILL_ASSERT(left >= 0, "every answered request was admitted once");
  if (status > 0) // 0: dropped unanswered, nothing to observe
    observe(cls, started_us, now_us, status);
}

void front_gate::observe(gate_class cls, int64_t started_us, int64_t now_us,
                         int status) {
  if (cls == gate_class::purchase)
    counters_->purchase_us[static_cast<std::size_t>(class_of(status))].add(
      now_us - started_us);
}

} // namespace seckill
