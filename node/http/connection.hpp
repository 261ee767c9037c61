// One connection of the HTTP server (see server.hpp for the contract), and
// what all connections share with the server that accepts them. Internal to
// node/http/: nothing outside this folder includes it.
//
// How it is built. Each connection is a `connection` owned by shared_ptrs held
// in its pending operations (a read, a write, a timer); every socket and
// timer operation of a connection runs on its own strand, so a connection's
// state needs no lock. The connection feeds the bytes it reads to a
// `request_reader` (node/http/parse.hpp: Beast's `request_parser<string_body>`
// with the checks Beast leaves to its caller) itself, which lets it keep
// parsing pipelined requests out of the buffer while earlier ones are still
// with the handler.
//
// Ordered replies: every complete request gets a slot, numbered in arrival
// order, in a queue of at most `pipeline_max` slots; when the queue is full
// the connection stops reading (the kernel's socket buffer holds the rest).
// A reply fills its slot; the writer sends the ready slots at the front of
// the queue, in order, so a reply for slot k waits until slots before k are
// written. A reply function holds a shared `reply_state`: an atomic flag
// makes calls after the first no-ops, and the answer timer sets the same
// flag before it answers 503 timeout itself, so a late reply is ignored.
// Reply functions hold the connection weakly and pass a gate that stop()
// closes, so a reply from a CAF thread after stop() touches nothing.
//
// Counters: a request is in flight from its hand-over until its answer is
// written (or its connection is gone), so drain() returning true means every
// answer reached the socket. connections_accepted counts the connections
// served; connections_refused those answered 503 at accept or while draining.
//
// Closing: after a transport error (400, 408, 413, 414, 431) the problem is
// queued behind the requests already read; once it is written the connection
// shuts down its send side and reads and discards input for a moment (at
// most `linger_ms_max`), so the client receives the answer rather than a
// reset, then closes. A write the client does not take within
// `request_timeout_ms` closes the connection. Every timer is cancelled on
// close, and every timer expires, so no timer keeps a dead connection alive.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "messages/assert.hpp"
#include "messages/errors.hpp"
#include "node/http/parse.hpp"
#include "node/http/server.hpp"

namespace seckill::http::detail {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;
using strand_type = net::strand<net::io_context::executor_type>;
using executor_type = net::any_io_executor;
using wire_response = bhttp::response<bhttp::string_body>;

// Bytes asked of the kernel in one read.
constexpr std::size_t read_chunk_bytes = 16'384;
// Responses gathered into one write.
constexpr std::size_t write_batch_max = 64;
// After the last answer of a closing connection: how long, and how many
// bytes, input is read and discarded before the socket is closed.
constexpr int64_t linger_ms_max = 1'000;
constexpr std::size_t linger_bytes_max = 1 << 20;
// Handler-supplied extra headers longer than this are dropped.
constexpr std::size_t extra_header_bytes_max = 8'192;

inline int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch())
    .count();
}

struct counters {
  std::atomic<int64_t> connections_open{0};
  std::atomic<int64_t> connections_accepted{0};
  std::atomic<int64_t> connections_refused{0};
  std::atomic<int64_t> requests{0};
  std::atomic<int64_t> requests_inflight{0};
  std::atomic<int64_t> transport_errors{0};
  std::atomic<int64_t> answer_timeouts{0};
};

// Open while the I/O threads run. A reply posts into a strand only under a
// shared lock on an open gate; stop() closes it (exclusive lock) before it
// tears the io_context down.
struct gate {
  std::shared_mutex mutex;
  bool open = true;
};

// What every connection shares with the server; it outlives all connections.
/// Open connections by client address: an entry exists only while its
/// address has an open connection, so the map is bounded by connections_max.
class address_slots {
public:
  /// Takes a slot for `ip`; false if it has `max` already (loopback: never).
  bool take(const std::string& ip, std::size_t max) {
    std::lock_guard lock(mtx_);
    auto& n = open_[ip];
    if (n >= max && !exempt(ip)) {
      if (n == 0)
        open_.erase(ip);
      return false;
    }
    ++n;
    return true;
  }
  void give_back(const std::string& ip) {
    std::lock_guard lock(mtx_);
    auto i = open_.find(ip);
    SECKILL_ASSERT(i != open_.end() && i->second > 0,
                   "a connection gives back the slot it took");
    if (--i->second == 0)
      open_.erase(i);
  }

private:
  static bool exempt(const std::string& ip) {
    return ip == "127.0.0.1" || ip == "::1";
  }
  std::mutex mtx_;
  std::unordered_map<std::string, std::size_t> open_;
};

struct core {
  server_config cfg;
  handler_fn handler;
  counters stats;
  address_slots by_address;
  std::shared_ptr<gate> reply_gate = std::make_shared<gate>();
  std::atomic<bool> accepting{true};
};

class connection;

struct reply_state {
  std::weak_ptr<connection> owner;
  std::shared_ptr<gate> reply_gate;
  uint64_t seq = 0;
  std::atomic<bool> claimed{false}; // set by the first reply or the timeout
};

// -- A connection -------------------------------------------------------------

class connection : public std::enable_shared_from_this<connection> {
public:
  connection(core& c, tcp::socket socket);
  ~connection();
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  /// Serves the connection (counted in connections_open).
  void start();
  /// Answers 503 overloaded and closes (over connections_max, over
  /// connections_per_address_max, or draining); `why` is the detail.
  void refuse(const char* why);
  /// Takes one of its address's slots; false: the address has them all.
  bool take_address_slot();
  /// On the strand: the handler's answer for request `seq`.
  void on_reply(uint64_t seq, response r);
  const executor_type& strand() const { return strand_; }

private:
  enum class read_timer_kind { none, idle, request, linger };
  enum class step { progressed, need_more, failed };

  struct slot {
    uint64_t seq = 0;
    std::shared_ptr<reply_state> rs; // null for answers made here
    int64_t deadline_ms = 0;         // answer timeout
    unsigned version = 11;
    bool keep_alive = true;
    bool head = false;
    bool ready = false;
    bool close_after = false;
    bool inflight = false; // counted in requests_inflight
    std::string wire;
  };

  void pump();
  step parse_step();
  void complete_request();
  void hand_over(bhttp::request<bhttp::string_body>&& msg);
  void transport_error(errc code, int status, const std::string& detail);
  void push_answer(response r, unsigned version, bool close_after);
  void start_read();
  void on_read(error_code ec, std::size_t n);
  void on_peer_eof();
  void maybe_write();
  void on_write(error_code ec);
  void start_linger();
  void linger_read();
  void on_linger_read(error_code ec, std::size_t n);
  void close();
  void arm_read_timer(read_timer_kind kind, int64_t ms);
  void disarm_read_timer();
  void update_read_timer();
  void on_read_timer(error_code ec, uint64_t gen);
  void schedule_answer_timer();
  void on_answer_timer(error_code ec, uint64_t gen);
  void arm_write_timer();
  void disarm_write_timer();

  core& core_;
  executor_type strand_; // the connection's strand
  tcp::socket socket_;
  std::string client_ip_;
  bool holds_address_slot_ = false;
  beast::flat_buffer buffer_;
  request_reader reader_;
  std::deque<slot> slots_;
  uint64_t next_seq_ = 0;
  std::vector<std::string> out_; // bytes being written, owned until done
  std::size_t out_slots_ = 0;    // slots those bytes answer

  bool counted_open_ = false;
  bool in_request_ = false; // the current request's first byte was parsed
  bool reading_ = false;
  bool writing_ = false;
  bool peer_eof_ = false;
  bool done_reading_ = false; // no more requests will be parsed
  bool closing_ = false;      // a closing answer is queued; input is ignored
  bool lingering_ = false;
  bool closed_ = false;
  std::size_t linger_bytes_ = 0;

  net::steady_timer read_timer_;
  read_timer_kind read_timer_kind_ = read_timer_kind::none;
  uint64_t read_timer_gen_ = 0;
  net::steady_timer answer_timer_;
  uint64_t answer_timer_gen_ = 0;
  bool answer_timer_armed_ = false;
  int64_t answer_timer_deadline_ms_ = 0;
  net::steady_timer write_timer_;
  uint64_t write_timer_gen_ = 0;
};

} // namespace seckill::http::detail
