// seckill-bench load engine (see bench_engine.hpp for the rules it keeps).
#include "bench_engine.hpp"

#include "messages/buyer_tokens.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <netdb.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace bench {

volatile std::sig_atomic_t stop_requested = 0;

namespace {

constexpr int64_t second_us = 1'000'000;
constexpr int64_t reconnect_pause_us = 50'000;
constexpr int poll_timeout_ms = 1;
constexpr int poll_events_max = 256;
constexpr size_t read_chunk = 16 * 1024;

std::string request_id(const bench_config& cfg, uint64_t user, uint64_t seq) {
  return "b" + cfg.run + "-u" + std::to_string(user) + "-r"
         + std::to_string(seq);
}

// The outcome of an answer: its status, and for errors the problem's code.
std::string outcome_key(const http_response& r) {
  if (r.status < 400)
    return std::to_string(r.status);
  std::string code = json_member(r.body, "code");
  return std::to_string(r.status) + " " + (code.empty() ? "-" : code);
}

void print_progress(const bench_config& cfg, const second_row& row,
                    uint64_t sent, uint64_t answered,
                    const outcome_counts& totals) {
  std::string counts;
  for (auto& [key, n] : totals.all())
    counts += " " + key + "=" + std::to_string(n);
  std::fprintf(stderr,
               "[%4llus] sent=%llu answered=%llu rate=%llu/s%s%s | p99(1s)="
               "%.2fms\n",
               static_cast<unsigned long long>(row.second),
               static_cast<unsigned long long>(sent),
               static_cast<unsigned long long>(answered),
               static_cast<unsigned long long>(row.answered),
               cfg.open_loop ? " (open)" : "", counts.c_str(),
               static_cast<double>(row.p99_us) / 1000.0);
}

} // namespace

int64_t wall_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch())
    .count();
}

int64_t now_us() {
  using namespace std::chrono;
  return duration_cast<microseconds>(steady_clock::now().time_since_epoch())
    .count();
}

std::string user_id(const bench_config& cfg, uint64_t user) {
  return "b" + cfg.run + "-u" + std::to_string(user);
}

engine::engine(const bench_config& cfg, run_stats& stats)
  : cfg_(cfg), stats_(stats), rng_(cfg.seed * 0x9E3779B97F4A7C15ULL + 1) {
  last_seq_.assign(cfg.users, 0);
  last_item_.assign(cfg.users, 0);
  stats_.item_orders.assign(cfg.items.size(), 0);
  stats_.item_sold_out.assign(cfg.items.size(), 0);
  stats_.item_last_created_us.assign(cfg.items.size(), 0);
  stats_.item_ambiguous.assign(cfg.items.size(), 0);
}

engine::~engine() {
  for (auto& c : conns_)
    if (c.fd >= 0)
      ::close(c.fd);
  if (epoll_fd_ >= 0)
    ::close(epoll_fd_);
}

bool engine::start(std::string& error) {
  for (auto& n : cfg_.nodes) {
    addrinfo hints{};
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (getaddrinfo(n.host.c_str(), n.port.c_str(), &hints, &res) != 0
        || res == nullptr) {
      error = "cannot resolve node " + n.host + ":" + n.port;
      return false;
    }
    addrs_.push_back(*reinterpret_cast<sockaddr_in*>(res->ai_addr));
    freeaddrinfo(res);
  }
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) {
    error = std::string("epoll_create1: ") + std::strerror(errno);
    return false;
  }
  conns_.resize(static_cast<size_t>(cfg_.connections));
  for (size_t i = 0; i < conns_.size(); ++i)
    conns_[i].node = i % addrs_.size(); // round-robin over the nodes
  return true;
}

double engine::random_share() {
  // xorshift64*: fast, seeded, good enough for picking users.
  rng_ ^= rng_ >> 12;
  rng_ ^= rng_ << 25;
  rng_ ^= rng_ >> 27;
  return static_cast<double>((rng_ * 0x2545F4914F6CDD1DULL) >> 11) * 0x1.0p-53;
}

bool engine::sending(int64_t now) const {
  return !stop_requested && now < end_us_
         && (cfg_.requests == 0 || generated_ < cfg_.requests);
}

request_spec engine::make_request(int64_t scheduled_us) {
  generated_ += 1;
  auto pick = [this](uint64_t n) {
    return std::min(
      n - 1, static_cast<uint64_t>(random_share() * static_cast<double>(n)));
  };
  if (cfg_.retry_share > 0 && random_share() < cfg_.retry_share) {
    uint64_t u = pick(cfg_.users);
    if (last_seq_[u] != 0) // a retry: the same user, item and request_id
      return {u, last_item_[u], last_seq_[u], scheduled_us};
  }
  uint64_t u = pick(cfg_.users);
  auto item = static_cast<uint32_t>(pick(cfg_.items.size()));
  next_seq_ += 1;
  last_seq_[u] = next_seq_;
  last_item_[u] = item;
  return {u, item, next_seq_, scheduled_us};
}

void engine::enqueue(const request_spec& req) {
  if (backlog_.size() >= cfg_.backlog_max) {
    record_outcome(req, "not_sent", false, now_us());
    return;
  }
  backlog_.push_back(req);
}

// Places the slots whose time has come on the backlog. Slot n of a timeline
// whose rate ramps linearly from 0 to R over S seconds is at
// sqrt(2 S n / R) during the ramp and n / R + S / 2 after it.
void engine::schedule_open_loop(int64_t now) {
  const double r = cfg_.rate_per_s;
  const double s = cfg_.ramp_s;
  for (;;) {
    auto n = static_cast<double>(next_slot_);
    double t =
      (s > 0 && n < r * s / 2) ? std::sqrt(2 * s * n / r) : n / r + s / 2;
    int64_t at = start_us_ + static_cast<int64_t>(t * second_us);
    if (at > now || !sending(at))
      return;
    next_slot_ += 1;
    request_spec req = make_request(at);
    enqueue(req);
    if (cfg_.double_click_share > 0 && random_share() < cfg_.double_click_share
        && sending(at)) {
      generated_ += 1; // the second click: the same request, back to back
      enqueue(req);
    }
  }
}

void engine::dispatch(int64_t now, bool generate) {
  for (auto& c : conns_) {
    if (c.fd < 0 && now >= c.reconnect_at_us)
      open_connection(c, now);
    if (!c.connected || c.busy)
      continue;
    if (!backlog_.empty()) {
      request_spec req = backlog_.front();
      backlog_.pop_front();
      send_request(c, req, now);
    } else if (generate && !cfg_.open_loop && sending(now)) {
      request_spec req = make_request(now);
      if (cfg_.double_click_share > 0
          && random_share() < cfg_.double_click_share && sending(now)) {
        generated_ += 1; // the copy goes out on the next free connection
        backlog_.push_back(req);
      }
      send_request(c, req, now);
    }
  }
}

void engine::send_request(connection& c, const request_spec& req, int64_t now) {
  const endpoint& node = cfg_.nodes[c.node];
  auto user = user_id(cfg_, req.user);
  const auto& item = cfg_.items[req.item];
  std::string jwt, sale;
  if (!cfg_.jwt_secret.empty()) {
    // Minted here per request, as a login service would have: the cost is
    // the client's (a few microseconds), the check the node's.
    static const std::string forged_key =
      "not-the-node-secret-0123456789abcdef";
    seckill::tokens::jwt_claims claims{user, wall_ms() / 1000 + 3600, 0};
    jwt = seckill::tokens::mint_jwt(cfg_.forge ? forged_key : cfg_.jwt_secret,
                                    claims);
  }
  if (!cfg_.sale_secret.empty()) {
    auto now_ms = wall_ms();
    sale = seckill::tokens::mint_sale_token(cfg_.sale_secret, user, item,
                                            now_ms, now_ms + 3'600'000);
  }
  c.out = purchase_request(node.host + ":" + node.port, item, user,
                           request_id(cfg_, req.user, req.seq), jwt, sale);
  c.out_sent = 0;
  c.req = req;
  c.sent_us = now;
  c.busy = true;
  c.deadline_us = now + static_cast<int64_t>(cfg_.timeout_ms) * 1000;
  in_flight_ += 1;
  stats_.sent += 1;
  second_sent_ += 1;
  flush(c, now);
}

void engine::flush(connection& c, int64_t now) {
  while (c.out_sent < c.out.size()) {
    ssize_t n = ::send(c.fd, c.out.data() + c.out_sent,
                       c.out.size() - c.out_sent, MSG_NOSIGNAL);
    if (n > 0) {
      c.out_sent += static_cast<size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      epoll_event ev{EPOLLIN | EPOLLOUT, {}};
      ev.data.u64 = static_cast<uint64_t>(&c - conns_.data());
      epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &ev);
      return;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      fail_connection(c, now, reconnect_pause_us);
      return;
    }
  }
}

void engine::open_connection(connection& c, int64_t now) {
  c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c.fd < 0) {
    c.reconnect_at_us = now + reconnect_pause_us;
    return;
  }
  int one = 1;
  setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  c.connected = false;
  c.busy = false;
  c.in.clear();
  c.deadline_us = now + static_cast<int64_t>(cfg_.timeout_ms) * 1000;
  const sockaddr_in& a = addrs_[c.node];
  int rc = ::connect(c.fd, reinterpret_cast<const sockaddr*>(&a), sizeof(a));
  if (rc < 0 && errno != EINPROGRESS) {
    fail_connection(c, now, reconnect_pause_us);
    return;
  }
  epoll_event ev{EPOLLIN | EPOLLOUT, {}};
  ev.data.u64 = static_cast<uint64_t>(&c - conns_.data());
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, c.fd, &ev);
}

// Closes the connection; a request in flight on it is a transport outcome.
void engine::fail_connection(connection& c, int64_t now, int64_t pause_us) {
  if (!c.connected)
    stats_.connect_failures += 1;
  if (c.busy) {
    c.busy = false;
    in_flight_ -= 1;
    record_outcome(c.req, "transport", false, now);
  }
  if (c.fd >= 0) {
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c.fd, nullptr);
    ::close(c.fd);
  }
  c.fd = -1;
  c.connected = false;
  c.in.clear();
  c.reconnect_at_us = now + pause_us;
}

void engine::on_event(connection& c, uint32_t events, int64_t now) {
  if (c.fd < 0)
    return;
  if (!c.connected && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0 || (events & (EPOLLERR | EPOLLHUP))) {
      fail_connection(c, now, reconnect_pause_us);
      return;
    }
    c.connected = true;
    epoll_event ev{EPOLLIN, {}};
    ev.data.u64 = static_cast<uint64_t>(&c - conns_.data());
    epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &ev);
    return;
  }
  if (events & EPOLLOUT) {
    epoll_event ev{EPOLLIN, {}};
    ev.data.u64 = static_cast<uint64_t>(&c - conns_.data());
    epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &ev);
    flush(c, now);
    if (c.fd < 0)
      return;
  }
  if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
    on_readable(c, now);
}

void engine::on_readable(connection& c, int64_t now) {
  char chunk[read_chunk];
  for (;;) {
    ssize_t n = ::recv(c.fd, chunk, sizeof(chunk), 0);
    if (n > 0) {
      c.in.append(chunk, static_cast<size_t>(n));
      if (c.in.size() > response_head_max + response_body_max) {
        fail_connection(c, now, reconnect_pause_us);
        return;
      }
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      break;
    // EOF or error: whatever is in flight is lost. An idle keep-alive close
    // is normal; reconnect at once.
    fail_connection(c, now, c.busy ? reconnect_pause_us : 0);
    return;
  }
  http_response r;
  size_t used = 0;
  auto res = parse_response(c.in, r, used);
  if (res == parse_result::incomplete)
    return;
  if (res == parse_result::malformed || !c.busy) {
    fail_connection(c, now, reconnect_pause_us);
    return;
  }
  c.in.erase(0, used);
  on_response(c, r, now);
}

void engine::on_response(connection& c, const http_response& r, int64_t now) {
  c.busy = false;
  in_flight_ -= 1;
  record_outcome(c.req, outcome_key(r), true, now);
  if (r.status == 201)
    stats_.item_last_created_us[c.req.item] = now;
  if (r.status == 200 || r.status == 201)
    record_order(c.req, r);
  else if (r.status == 409 && json_member(r.body, "code") == "sold_out") {
    stats_.item_sold_out[c.req.item] += 1;
    if (stats_.sold_out_answers.size() < sold_out_answers_max)
      stats_.sold_out_answers.push_back({c.req.item, c.sent_us, now});
    else
      stats_.sold_out_answers_overflow = true;
  } else if (r.status >= 500)
    stats_.item_ambiguous[c.req.item] += 1; // it may have been placed
  if (r.close || !c.in.empty()) // one request in flight: no bytes may remain
    fail_connection(c, now, 0);
}

void engine::record_outcome(const request_spec& req, const std::string& key,
                            bool answered, int64_t now) {
  stats_.outcomes.add(key);
  second_outcomes_.add(key);
  if (!answered) {
    if (key == "transport")
      stats_.item_ambiguous[req.item] += 1;
    return;
  }
  stats_.answered += 1;
  second_answered_ += 1;
  auto latency =
    static_cast<uint64_t>(std::max<int64_t>(0, now - req.scheduled_us));
  stats_.latency.record(latency);
  second_latency_.record(latency);
  auto& by_class = key[0] == '2'   ? stats_.latency_admitted
                   : key[0] == '5' ? stats_.latency_shed
                                   : stats_.latency_refused;
  by_class.record(latency);
}

void engine::record_order(const request_spec& req, const http_response& r) {
  std::string order_id = json_member(r.body, "order_id");
  std::string buyer = json_member(r.body, "user_id");
  if (order_id.empty() || (!buyer.empty() && buyer != user_id(cfg_, req.user)))
    stats_.order_user_mismatch += 1;
  if (order_id.empty())
    return;
  std::string key = std::to_string(req.item) + "|" + order_id;
  auto found = stats_.order_user.find(key);
  if (found != stats_.order_user.end()) {
    if (found->second != req.user)
      stats_.order_user_mismatch += 1; // one order answered to two users
    return;
  }
  if (stats_.order_user.size() >= cfg_.orders_max) {
    stats_.orders_overflow = true;
    return;
  }
  stats_.order_user.emplace(std::move(key), req.user);
  stats_.item_orders[req.item] += 1;
  stats_.user_item_orders[req.user * cfg_.items.size() + req.item] += 1;
}

void engine::expire(int64_t now) {
  for (auto& c : conns_)
    if (c.fd >= 0 && (c.busy || !c.connected) && now > c.deadline_us)
      fail_connection(c, now, reconnect_pause_us);
}

void engine::tick() {
  second_index_ += 1;
  second_row row;
  row.second = second_index_;
  row.sent = second_sent_;
  row.answered = second_answered_;
  row.p50_us = second_latency_.percentile_us(50);
  row.p99_us = second_latency_.percentile_us(99);
  row.max_us = second_latency_.max_us();
  row.outcomes = second_outcomes_.all();
  print_progress(cfg_, row, stats_.sent, stats_.answered, stats_.outcomes);
  if (stats_.rows.size() < csv_rows_max)
    stats_.rows.push_back(std::move(row));
  else
    stats_.rows_truncated = true;
  second_latency_.clear();
  second_outcomes_.clear();
  second_sent_ = 0;
  second_answered_ = 0;
}

// The drain deadline passed: what is still waiting or in flight is counted.
void engine::abandon(int64_t now) {
  for (auto& req : backlog_)
    record_outcome(req, "not_sent", false, now);
  backlog_.clear();
  for (auto& c : conns_)
    if (c.busy)
      fail_connection(c, now, 0);
}

void engine::run() {
  start_us_ = now_us();
  end_us_ = cfg_.duration_s > 0
              ? start_us_ + static_cast<int64_t>(cfg_.duration_s * second_us)
              : std::numeric_limits<int64_t>::max();
  int64_t next_tick_us = start_us_ + second_us;
  int64_t drain_deadline_us = 0;
  epoll_event events[poll_events_max];
  for (;;) {
    int64_t now = now_us();
    bool active = sending(now);
    if (!active && drain_deadline_us == 0)
      drain_deadline_us = now + static_cast<int64_t>(cfg_.timeout_ms) * 1000;
    if (active && cfg_.open_loop)
      schedule_open_loop(now);
    dispatch(now, active);
    if (!active && backlog_.empty() && in_flight_ == 0)
      break;
    if (!active && now >= drain_deadline_us) {
      abandon(now);
      break;
    }
    int n = epoll_wait(epoll_fd_, events, poll_events_max, poll_timeout_ms);
    now = now_us();
    for (int i = 0; i < n; ++i)
      on_event(conns_[events[i].data.u64], events[i].events, now);
    expire(now);
    if (now >= next_tick_us) {
      tick();
      next_tick_us += second_us;
    }
  }
  int64_t end = now_us();
  stats_.elapsed_s = static_cast<double>(end - start_us_) / second_us;
  if (second_sent_ > 0 || second_answered_ > 0)
    tick(); // the last, partial second
}

sold_out_notice notice_of(const run_stats& s, uint32_t item) {
  sold_out_notice n;
  auto last =
    item < s.item_last_created_us.size() ? s.item_last_created_us[item] : 0;
  if (last == 0 || s.sold_out_answers_overflow)
    return n;
  std::vector<int64_t> delays;
  for (const auto& a : s.sold_out_answers)
    if (a.item == item && a.sent_us < last)
      delays.push_back(std::max<int64_t>(0, a.answered_us - last));
  if (delays.empty())
    return n;
  std::sort(delays.begin(), delays.end());
  auto at = [&delays](double q) {
    auto i = static_cast<size_t>(q * static_cast<double>(delays.size() - 1));
    return delays[i];
  };
  n.waiters = delays.size();
  n.p50_us = at(0.50);
  n.p99_us = at(0.99);
  n.max_us = delays.back();
  return n;
}

} // namespace bench
