// seckill-bench load engine: one thread, non-blocking sockets, one epoll set,
// keep-alive HTTP/1.1 with one request in flight per connection.
//
// Closed loop: a connection sends its next purchase when the answer to the
// last one came. Open loop: purchases are placed on a fixed timeline (rate R,
// optionally ramped from 0 over ramp_s) whatever the answers; a purchase whose
// time has come waits in the backlog until a connection is free, and its
// latency is measured from its scheduled time, so a slow server cannot hide
// its slowness by slowing the client (no coordinated omission).
//
// Everything is bounded: the backlog (beyond it a purchase is counted
// "not_sent"), each connection's buffers (a response beyond the parser's
// limits is a transport error), the table of distinct orders (beyond
// orders_max the check is skipped, not wrong), the per-second rows.
// The engine never blocks on a socket and never waits without a deadline: a
// request unanswered after timeout_ms is a "transport" outcome and its
// connection is replaced.
#pragma once

#include <csignal>
#include <cstdint>
#include <deque>
#include <netinet/in.h>
#include <string>
#include <unordered_map>
#include <vector>

#include "bench_config.hpp"
#include "bench_http.hpp"
#include "bench_stats.hpp"

namespace bench {

int64_t now_us();

// Set by SIGINT/SIGTERM: stop sending, drain, report.
extern volatile std::sig_atomic_t stop_requested;

struct second_row {
  uint64_t second = 0;
  uint64_t sent = 0;
  uint64_t answered = 0;
  uint64_t p50_us = 0;
  uint64_t p99_us = 0;
  uint64_t max_us = 0;
  std::map<std::string, uint64_t> outcomes;
};

struct run_stats {
  uint64_t sent = 0;
  uint64_t answered = 0;
  uint64_t connect_failures = 0; // connections that never got connected
  double elapsed_s = 0;
  outcome_counts outcomes;
  latency_histogram latency;
  // The same latencies by answer class: admitted (2xx), shed (5xx), refused
  // (every other answer): Plan B's figures are per class.
  latency_histogram latency_admitted;
  latency_histogram latency_refused;
  latency_histogram latency_shed;
  std::vector<second_row> rows;
  bool rows_truncated = false;
  // What the answers said about orders, for the check. Keys of order_user are
  // "<item index>|<order_id>"; user_item_orders is keyed by
  // user * items + item. Both hold at most orders_max entries.
  std::unordered_map<std::string, uint64_t> order_user;
  std::unordered_map<uint64_t, uint64_t> user_item_orders;
  bool orders_overflow = false;
  uint64_t order_user_mismatch = 0;
  std::vector<uint64_t> item_orders;    // distinct orders seen, per item
  std::vector<uint64_t> item_sold_out;  // 409 sold_out answers, per item
  std::vector<uint64_t> item_ambiguous; // transport and 5xx, per item
  // The sold-out notice as the crowd sees it: when each item's last 201
  // came, and every 409 sold_out as (item, sent, answered) in microseconds
  // (at most sold_out_answers_max; beyond, the measure is skipped).
  std::vector<int64_t> item_last_created_us;
  struct sold_out_answer {
    uint32_t item;
    int64_t sent_us;
    int64_t answered_us;
  };
  std::vector<sold_out_answer> sold_out_answers;
  bool sold_out_answers_overflow = false;
};

constexpr size_t sold_out_answers_max = 4'000'000;

/// How late the requests in flight when an item's last unit went learned
/// it was sold out: those sent before the last 201 came and answered
/// sold_out, measured from that last 201.
struct sold_out_notice {
  uint64_t waiters = 0; // in flight at the last 201, answered sold_out
  int64_t p50_us = 0;
  int64_t p99_us = 0;
  int64_t max_us = 0;
};

/// Per item; `waiters` 0 when the item did not sell out during the run.
sold_out_notice notice_of(const run_stats& s, uint32_t item);

struct request_spec {
  uint64_t user = 0;
  uint32_t item = 0;
  uint64_t seq = 0;         // the request_id is b<run>-u<user>-r<seq>
  int64_t scheduled_us = 0; // latency is measured from here
};

struct connection {
  int fd = -1;
  size_t node = 0;
  bool connected = false;
  bool busy = false;
  std::string out;
  size_t out_sent = 0;
  std::string in;
  request_spec req;
  int64_t sent_us = 0;         // when the request in flight was sent
  int64_t deadline_us = 0;     // of the connect or of the request in flight
  int64_t reconnect_at_us = 0; // after a failure, a short pause
};

std::string user_id(const bench_config& cfg, uint64_t user);

class engine {
public:
  engine(const bench_config& cfg, run_stats& stats);
  ~engine();
  // Resolves the nodes and opens the epoll set; false with `error` if not.
  bool start(std::string& error);
  void run();

private:
  bool sending(int64_t now) const;
  void schedule_open_loop(int64_t now);
  void enqueue(const request_spec& req);
  request_spec make_request(int64_t scheduled_us);
  void dispatch(int64_t now, bool generate);
  void send_request(connection& c, const request_spec& req, int64_t now);
  void flush(connection& c, int64_t now);
  void open_connection(connection& c, int64_t now);
  void fail_connection(connection& c, int64_t now, int64_t pause_us);
  void on_event(connection& c, uint32_t events, int64_t now);
  void on_readable(connection& c, int64_t now);
  void on_response(connection& c, const http_response& r, int64_t now);
  void record_outcome(const request_spec& req, const std::string& key,
                      bool answered, int64_t now);
  void record_order(const request_spec& req, const http_response& r);
  void expire(int64_t now);
  void tick();
  void abandon(int64_t now);
  double random_share();

  const bench_config& cfg_;
  run_stats& stats_;
  std::vector<sockaddr_in> addrs_;
  std::vector<connection> conns_;
  std::deque<request_spec> backlog_;
  std::vector<uint64_t> last_seq_; // per user, 0: none yet
  std::vector<uint32_t> last_item_;
  int epoll_fd_ = -1;
  uint64_t rng_ = 0;
  uint64_t generated_ = 0; // attempts made, including copies and retries
  uint64_t next_seq_ = 0;
  uint64_t next_slot_ = 0; // open loop: the next slot on the timeline
  uint64_t in_flight_ = 0;
  int64_t start_us_ = 0;
  int64_t end_us_ = 0;
  // The current second.
  latency_histogram second_latency_;
  outcome_counts second_outcomes_;
  uint64_t second_sent_ = 0;
  uint64_t second_answered_ = 0;
  uint64_t second_index_ = 0;
};

} // namespace bench
