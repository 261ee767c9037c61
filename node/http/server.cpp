// The HTTP/1.1 server (see server.hpp for the contract): Boost.Beast's
// parser over Asio sockets, run by `io_threads` threads on one io_context.
// This file is the acceptor and the server's life cycle (open, run, drain,
// stop); each accepted socket becomes a `connection` (connection.hpp),
// which owns everything about one client from then on.
//
// Counters: a request is in flight from its hand-over until its answer is
// written (or its connection is gone), so drain() returning true means every
// answer reached the socket. connections_accepted counts the connections
// served; connections_refused those answered 503 at accept or while draining.
#include "node/http/server.hpp"

#include <chrono>
#include <future>
#include <mutex>
#include <optional>
#include <thread>

#include <spdlog/spdlog.h>

#include "messages/limits.hpp"
#include "messages/log_text.hpp"
#include "node/http/connection.hpp"

namespace seckill::http {

namespace {

using namespace detail;

// A failed accept (out of descriptors, say) is retried after this pause.
constexpr int64_t accept_retry_ms = 20;
constexpr int64_t drain_poll_ms = 2;
// stop_accepting() waits at most this long for the acceptor to close.
constexpr int64_t acceptor_close_wait_ms = 2'000;

std::string validate(const server_config& cfg) {
  if (cfg.io_threads < 1 || cfg.io_threads > 256)
    return "io_threads must be 1..256";
  if (cfg.connections_max < 1
      || cfg.connections_max > limits::http_connections_max)
    return "connections_max out of range";
  if (cfg.connections_per_address_max < 1
      || cfg.connections_per_address_max > limits::http_connections_max)
    return "connections_per_address_max out of range";
  if (cfg.request_line_bytes_max < 16
      || cfg.header_bytes_max > limits::http_header_bytes_max
      || cfg.header_bytes_max < cfg.request_line_bytes_max)
    return "request_line_bytes_max must be 16..header_bytes_max, "
           "header_bytes_max at most "
           + std::to_string(limits::http_header_bytes_max);
  if (cfg.body_bytes_max > limits::http_body_bytes_max)
    return "body_bytes_max over " + std::to_string(limits::http_body_bytes_max);
  if (cfg.pipeline_max < 1 || cfg.pipeline_max > limits::http_pipeline_max)
    return "pipeline_max out of range";
  if (cfg.idle_timeout_ms < 1 || cfg.request_timeout_ms < 1
      || cfg.answer_timeout_ms < 1)
    return "timeouts must be positive";
  return {};
}

class server_impl final : public server {
public:
  server_impl(const server_config& cfg, handler_fn handler) {
    core_.cfg = cfg;
    core_.handler = std::move(handler);
  }
  ~server_impl() override { stop(); }

  bool open(std::string& error);
  void run();
  uint16_t port() const override { return port_; }
  void stop_accepting() override;
  bool drain(int64_t timeout_ms) override;
  void stop() override;
  server_stats stats() const override;

private:
  void do_accept();
  void on_accept(error_code ec, tcp::socket socket);
  void run_thread();
  void arm_probe(int64_t late_us);

  core core_;
  std::optional<net::io_context> ioc_;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work_;
  std::optional<strand_type> accept_strand_;
  std::optional<tcp::acceptor> acceptor_;
  std::optional<net::steady_timer> accept_retry_;
  std::optional<net::steady_timer> probe_timer_; // the loop-lag probe
  std::vector<std::thread> threads_;
  uint16_t port_ = 0;
  std::mutex stop_mutex_;
  bool stopped_ = false;
};

bool server_impl::open(std::string& error) {
  const auto& cfg = core_.cfg;
  std::string where = cfg.host + ":" + std::to_string(cfg.port);
  error = validate(cfg);
  if (!error.empty())
    return false;
  if (!core_.handler) {
    error = "no handler";
    return false;
  }
  error_code ec;
  auto address = net::ip::make_address(cfg.host, ec);
  if (ec) {
    error = "invalid host " + cfg.host + ": " + ec.message();
    return false;
  }
  ioc_.emplace(static_cast<int>(cfg.io_threads));
  accept_strand_.emplace(net::make_strand(*ioc_));
  acceptor_.emplace(*accept_strand_);
  accept_retry_.emplace(*accept_strand_);
  tcp::endpoint ep{address, cfg.port};
  acceptor_->open(ep.protocol(), ec);
  if (!ec)
    acceptor_->set_option(net::socket_base::reuse_address(true), ec);
  if (!ec)
    acceptor_->bind(ep, ec);
  if (!ec)
    acceptor_->listen(net::socket_base::max_listen_connections, ec);
  if (!ec)
    port_ = acceptor_->local_endpoint(ec).port();
  if (ec) {
    error = "cannot bind " + where + ": " + ec.message();
    return false;
  }
  return true;
}

void server_impl::run() {
  work_.emplace(net::make_work_guard(*ioc_));
  net::post(*accept_strand_, [this] { do_accept(); });
  if (core_.cfg.loop_probe) {
    probe_timer_.emplace(*ioc_);
    net::post(*ioc_, [this] { arm_probe(0); });
  }
  for (std::size_t i = 0; i < core_.cfg.io_threads; ++i)
    threads_.emplace_back([this] { run_thread(); });
}

// The timer runs behind every completion queued before it: its lateness is
// how long a request that just arrived waits for an I/O thread.
void server_impl::arm_probe(int64_t late_us) {
  using clock = std::chrono::steady_clock;
  auto us = [](clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::microseconds>(
             t.time_since_epoch())
      .count();
  };
  auto due = clock::now() + std::chrono::milliseconds(core_.cfg.loop_probe_ms);
  core_.cfg.loop_probe(late_us, us(due));
  probe_timer_->expires_at(due);
  probe_timer_->async_wait([this, due, us](error_code ec) {
    if (!ec) // else cancelled: the server stops
      arm_probe(std::max<int64_t>(0, us(clock::now()) - us(due)));
  });
}

// A handler that throws is a bug; it must not take an I/O thread with it.
void server_impl::run_thread() {
  for (;;) {
    try {
      ioc_->run();
      return;
    } catch (const std::exception& e) {
      spdlog::error("http_io_thread_caught what={}", log_text(e.what()));
    } catch (...) {
      spdlog::error("http_io_thread_caught what=unknown");
    }
  }
}

void server_impl::do_accept() {
  if (!acceptor_->is_open())
    return;
  acceptor_->async_accept(net::make_strand(*ioc_),
                          [this](error_code ec, tcp::socket socket) {
                            on_accept(ec, std::move(socket));
                          });
}

void server_impl::on_accept(error_code ec, tcp::socket socket) {
  if (ec) {
    if (ec == net::error::operation_aborted || !acceptor_->is_open())
      return;
    // Out of descriptors, say: keep accepting, after a pause.
    spdlog::warn("http_accept_failed error={}", log_text(ec.message()));
    accept_retry_->expires_after(std::chrono::milliseconds(accept_retry_ms));
    accept_retry_->async_wait([this](error_code wait_ec) {
      if (!wait_ec)
        do_accept();
    });
    return;
  }
  auto s = std::make_shared<connection>(core_, std::move(socket));
  bool full = core_.stats.connections_open.load()
              >= static_cast<int64_t>(core_.cfg.connections_max);
  if (full || !core_.accepting.load()) {
    ++core_.stats.connections_refused;
    s->refuse(core_.accepting.load() ? "server overloaded"
                                     : "server is shutting down");
  } else if (!s->take_address_slot()) {
    ++core_.stats.connections_refused;
    s->refuse("too many connections from this address");
  } else {
    ++core_.stats.connections_accepted;
    s->start();
  }
  do_accept();
}

void server_impl::stop_accepting() {
  core_.accepting = false;
  std::lock_guard lock(stop_mutex_);
  if (stopped_)
    return;
  auto closed = std::make_shared<std::promise<void>>();
  auto done = closed->get_future();
  net::post(*accept_strand_, [this, closed] {
    error_code ec;
    acceptor_->close(ec);
    accept_retry_->cancel();
    closed->set_value();
  });
  done.wait_for(std::chrono::milliseconds(acceptor_close_wait_ms));
}

bool server_impl::drain(int64_t timeout_ms) {
  int64_t deadline = now_ms() + std::max<int64_t>(0, timeout_ms);
  for (;;) {
    if (core_.stats.requests_inflight.load() == 0)
      return true;
    if (now_ms() >= deadline)
      return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(drain_poll_ms));
  }
}

// Tearing down the io_context destroys the handlers it still holds, and
// with them the last references to every connection, which closes the sockets.
void server_impl::stop() {
  std::lock_guard lock(stop_mutex_);
  if (stopped_)
    return;
  stopped_ = true;
  core_.accepting = false;
  {
    std::unique_lock gate_lock(core_.reply_gate->mutex);
    core_.reply_gate->open = false;
  }
  if (!ioc_)
    return;
  work_.reset();
  ioc_->stop();
  for (auto& t : threads_)
    if (t.joinable())
      t.join();
  threads_.clear();
  accept_retry_.reset();
  probe_timer_.reset();
  acceptor_.reset();
  accept_strand_.reset();
  ioc_.reset();
}

server_stats server_impl::stats() const {
  const auto& c = core_.stats;
  server_stats s;
  s.connections_open = c.connections_open.load();
  s.connections_accepted = c.connections_accepted.load();
  s.connections_refused = c.connections_refused.load();
  s.requests = c.requests.load();
  s.requests_inflight = c.requests_inflight.load();
  s.transport_errors = c.transport_errors.load();
  s.answer_timeouts = c.answer_timeouts.load();
  return s;
}

} // namespace

std::unique_ptr<server> server::start(const server_config& cfg,
                                      handler_fn handler, std::string& error) {
  auto impl = std::make_unique<server_impl>(cfg, std::move(handler));
  if (!impl->open(error))
    return nullptr;
  impl->run();
  return impl;
}

} // namespace seckill::http
