// The HTTP/1.1 server (see http_server.hpp for the contract): Boost.Beast's
// parser over Asio sockets, run by `io_threads` threads on one io_context.
//
// How it is built. Each connection is a `session` owned by shared_ptrs held
// in its pending operations (a read, a write, a timer); every socket and
// timer operation of a session runs on its own strand, so a session's state
// needs no lock. The session feeds the bytes it reads to a `request_reader`
// (node/http/parse.hpp: Beast's `request_parser<string_body>` with the
// checks Beast leaves to its caller) itself, which lets it keep parsing
// pipelined requests out of the buffer while earlier ones are still with
// the handler.
//
// Ordered replies: every complete request gets a slot, numbered in arrival
// order, in a queue of at most `pipeline_max` slots; when the queue is full
// the session stops reading (the kernel's socket buffer holds the rest).
// A reply fills its slot; the writer sends the ready slots at the front of
// the queue, in order, so a reply for slot k waits until slots before k are
// written. A reply function holds a shared `reply_state`: an atomic flag
// makes calls after the first no-ops, and the answer timer sets the same
// flag before it answers 503 timeout itself, so a late reply is ignored.
// Reply functions hold the session weakly and pass a gate that stop()
// closes, so a reply from a CAF thread after stop() touches nothing.
//
// Counters: a request is in flight from its hand-over until its answer is
// written (or its connection is gone), so drain() returning true means every
// answer reached the socket. connections_accepted counts the connections
// served; connections_refused those answered 503 at accept or while draining.
//
// Closing: after a transport error (400, 408, 413, 414, 431) the problem is
// queued behind the requests already read; once it is written the session
// shuts down its send side and reads and discards input for a moment (at
// most `linger_ms_max`), so the client receives the answer rather than a
// reset, then closes. A write the client does not take within
// `request_timeout_ms` closes the connection. Every timer is cancelled on
// close, and every timer expires, so no timer keeps a dead session alive.
#include "node/http/server.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <future>
#include <mutex>
#include <unordered_map>
#include <optional>
#include <shared_mutex>
#include <thread>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

#include "messages/assert.hpp"
#include "messages/dto.hpp"
#include "messages/errors.hpp"
#include "messages/limits.hpp"
#include "node/http/parse.hpp"

namespace seckill::http {

namespace {

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
// A failed accept (out of descriptors, say) is retried after this pause.
constexpr int64_t accept_retry_ms = 20;
constexpr int64_t drain_poll_ms = 2;
// stop_accepting() waits at most this long for the acceptor to close.
constexpr int64_t acceptor_close_wait_ms = 2'000;
// Handler-supplied extra headers longer than this are dropped.
constexpr std::size_t extra_header_bytes_max = 8'192;

int64_t now_ms() {
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

// What every session shares with the server; it outlives all sessions.
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

class session;

struct reply_state {
  std::weak_ptr<session> owner;
  std::shared_ptr<gate> reply_gate;
  uint64_t seq = 0;
  std::atomic<bool> claimed{false}; // set by the first reply or the timeout
};

// -- Rendering responses ------------------------------------------------------

bool header_text_ok(const std::string& s) {
  if (s.size() > extra_header_bytes_max)
    return false;
  return std::none_of(s.begin(), s.end(), [](char c) {
    return c == '\r' || c == '\n' || c == '\0';
  });
}

// Headers the server owns and a handler may not set.
bool reserved_header(const std::string& name) {
  auto f = bhttp::string_to_field(name);
  return f == bhttp::field::content_length ||
         f == bhttp::field::transfer_encoding ||
         f == bhttp::field::connection || f == bhttp::field::server ||
         f == bhttp::field::content_type;
}

// The wire bytes of `res`, through Beast's serializer; only the header
// when answering HEAD.
std::string serialize(wire_response& res, bool header_only) {
  std::string out;
  bhttp::response_serializer<bhttp::string_body> sr{res};
  sr.split(header_only);
  error_code ec;
  auto done = [&] { return header_only ? sr.is_header_done() : sr.is_done(); };
  while (!ec && !done()) {
    sr.next(ec, [&](error_code&, const auto& buffers) {
      std::size_t n = 0;
      for (auto b : beast::buffers_range_ref(buffers)) {
        out.append(static_cast<const char*>(b.data()), b.size());
        n += b.size();
      }
      sr.consume(n);
    });
  }
  return out;
}

std::string render_unchecked(response r, unsigned version, bool keep_alive,
                             bool head) {
  // A status outside 200..599 is a handler bug; 1xx would also break
  // the framing of the connection.
  if (r.status < 200 || r.status > 599)
    r.status = 500;
  bool no_body = r.status == 204 || r.status == 304;
  wire_response res;
  res.version(version);
  res.result(static_cast<unsigned>(r.status));
  res.set(bhttp::field::server, "seckill");
  if (!no_body && !r.content_type.empty() && header_text_ok(r.content_type))
    res.set(bhttp::field::content_type, r.content_type);
  for (const auto& [name, value] : r.headers) {
    if (name.empty() || !header_text_ok(name) || !header_text_ok(value) ||
        reserved_header(name))
      continue;
    res.insert(name, value);
  }
  if (!no_body)
    res.body() = std::move(r.body);
  res.keep_alive(keep_alive);
  res.prepare_payload();
  return serialize(res, head);
}

// Never throws: rendering only allocates, and if even that fails the
// connection gets a fixed answer.
std::string render(response r, unsigned version, bool keep_alive, bool head) {
  try {
    return render_unchecked(std::move(r), version, keep_alive, head);
  } catch (...) {
    return "HTTP/1.1 500 Internal Server Error\r\nServer: seckill\r\n"
           "Content-Length: 0\r\nConnection: close\r\n\r\n";
  }
}

response problem(errc code, int status, const std::string& detail) {
  response r;
  r.status = status;
  r.content_type = "application/problem+json";
  r.body = to_json(make_problem(code, status, detail));
  return r;
}

// -- A connection -------------------------------------------------------------

class session : public std::enable_shared_from_this<session> {
public:
  session(core& c, tcp::socket socket);
  ~session();
  session(const session&) = delete;
  session& operator=(const session&) = delete;

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

parse_limits limits_of(const server_config& cfg) {
  parse_limits l;
  l.request_line_bytes_max = cfg.request_line_bytes_max;
  l.header_bytes_max = cfg.header_bytes_max;
  l.body_bytes_max = cfg.body_bytes_max;
  return l;
}

session::session(core& c, tcp::socket socket)
    : core_(c), strand_(socket.get_executor()), socket_(std::move(socket)),
      buffer_(read_buffer_bytes_max(limits_of(c.cfg))),
      reader_(limits_of(c.cfg)), read_timer_(strand_), answer_timer_(strand_),
      write_timer_(strand_) {
  error_code ec;
  auto ep = socket_.remote_endpoint(ec);
  if (!ec)
    client_ip_ = ep.address().to_string();
  socket_.set_option(tcp::no_delay(true), ec);
}

session::~session() {
  if (counted_open_)
    --core_.stats.connections_open;
  if (holds_address_slot_)
    core_.by_address.give_back(client_ip_);
}

bool session::take_address_slot() {
  holds_address_slot_ =
    core_.by_address.take(client_ip_, core_.cfg.connections_per_address_max);
  return holds_address_slot_;
}

void session::start() {
  counted_open_ = true;
  ++core_.stats.connections_open;
  net::post(strand_, [self = shared_from_this()] { self->pump(); });
}

void session::refuse(const char* why) {
  net::post(strand_, [self = shared_from_this(), why] {
    self->closing_ = true;
    self->done_reading_ = true;
    self->push_answer(problem(errc::overloaded, 503, why), 11, true);
    self->maybe_write();
  });
}

// -- Reading and parsing ------------------------------------------------------

// Parses what is buffered, request after request, until the pipeline is
// full, the buffer runs dry (then reads), or the connection stops reading.
void session::pump() {
  while (!closed_ && !closing_ && !done_reading_) {
    if (!in_request_ && slots_.size() >= core_.cfg.pipeline_max)
      break; // backpressure: resumed when a slot is written
    if (!in_request_)
      skip_empty_lines(buffer_); // they do not end the idle time
    if (buffer_.size() > 0) {
      auto s = parse_step();
      if (s == step::progressed)
        continue;
      if (s == step::failed)
        break;
    }
    if (peer_eof_)
      on_peer_eof();
    else
      start_read();
    break;
  }
  update_read_timer();
  maybe_write();
}

session::step session::parse_step() {
  if (!in_request_) {
    in_request_ = true;
    arm_read_timer(read_timer_kind::request, core_.cfg.request_timeout_ms);
  }
  switch (reader_.parse(buffer_)) {
  case request_reader::step::progressed:
    return step::progressed;
  case request_reader::step::need_more:
    return step::need_more;
  case request_reader::step::complete:
    complete_request();
    return step::progressed;
  case request_reader::step::failed:
    break;
  }
  const auto& f = reader_.fault();
  transport_error(f.code, f.status, f.detail);
  return step::failed;
}

void session::complete_request() {
  disarm_read_timer();
  auto msg = reader_.release();
  in_request_ = false;
  if (!core_.accepting.load()) {
    ++core_.stats.connections_refused;
    done_reading_ = true;
    push_answer(problem(errc::overloaded, 503, "server is shutting down"),
                msg.version(), true);
    return;
  }
  hand_over(std::move(msg));
}

request to_request(bhttp::request<bhttp::string_body>& msg,
                   const std::string& client_ip) {
  request req;
  req.method = std::string(msg.method_string());
  req.target = std::string(msg.target());
  req.body = std::move(msg.body());
  req.authorization = std::string(msg[bhttp::field::authorization]);
  req.if_none_match = std::string(msg[bhttp::field::if_none_match]);
  req.content_type = std::string(msg[bhttp::field::content_type]);
  req.client_ip = client_ip;
  req.received_ms = now_ms();
  return req;
}

// Called on any thread: claims the answer, then hands it to the strand.
reply_fn make_reply_fn(std::shared_ptr<reply_state> rs) {
  return [rs = std::move(rs)](response r) {
    if (rs->claimed.exchange(true))
      return; // a second call, or the answer already timed out
    std::shared_lock lock(rs->reply_gate->mutex);
    if (!rs->reply_gate->open)
      return;
    auto self = rs->owner.lock();
    if (!self)
      return; // the connection is gone
    auto strand = self->strand();
    net::post(strand, [self = std::move(self), seq = rs->seq,
                       r = std::move(r)]() mutable {
      self->on_reply(seq, std::move(r));
    });
  };
}

void session::hand_over(bhttp::request<bhttp::string_body>&& msg) {
  request req = to_request(msg, client_ip_);
  auto rs = std::make_shared<reply_state>();
  rs->owner = weak_from_this();
  rs->reply_gate = core_.reply_gate;
  rs->seq = next_seq_++;
  slot s;
  s.seq = rs->seq;
  s.rs = rs;
  s.deadline_ms = req.received_ms + core_.cfg.answer_timeout_ms;
  s.version = msg.version();
  s.keep_alive = msg.keep_alive();
  s.head = msg.method() == bhttp::verb::head;
  s.close_after = !s.keep_alive;
  s.inflight = true;
  slots_.push_back(std::move(s));
  SECKILL_ASSERT(slots_.size() <= core_.cfg.pipeline_max,
                 "a request is parsed only with room in the pipeline");
  if (!msg.keep_alive())
    done_reading_ = true;
  ++core_.stats.requests;
  ++core_.stats.requests_inflight;
  if (!answer_timer_armed_)
    schedule_answer_timer();

  // The handler must not throw; if it does, this request gets a 503.
  auto failed = [&](const char* what) {
    spdlog::error("http_handler_threw what={}", what);
    if (!rs->claimed.exchange(true))
      on_reply(rs->seq,
               problem(errc::shard_unavailable, 503, "handler failed"));
  };
  try {
    core_.handler(std::move(req), make_reply_fn(rs));
  } catch (const std::exception& e) {
    failed(e.what());
  } catch (...) {
    failed("unknown");
  }
}

void session::transport_error(errc code, int status,
                              const std::string& detail) {
  ++core_.stats.transport_errors;
  spdlog::debug("http_transport_error status={} code={} client={} detail={}",
                status, to_string(code), client_ip_, detail);
  disarm_read_timer();
  closing_ = true;
  done_reading_ = true;
  in_request_ = false;
  push_answer(problem(code, status, detail), 11, true);
}

// Queues an answer made here, ready at once, behind the requests read so far.
void session::push_answer(response r, unsigned version, bool close_after) {
  slot s;
  s.seq = next_seq_++;
  s.version = version;
  s.keep_alive = !close_after;
  s.close_after = close_after;
  s.ready = true;
  s.wire = render(std::move(r), version, !close_after, false);
  slots_.push_back(std::move(s));
}

void session::start_read() {
  if (reading_ || closed_)
    return;
  reading_ = true;
  std::size_t room = buffer_.max_size() - buffer_.size();
  // A full buffer with the parser wanting more was answered in after_put.
  SECKILL_ASSERT(room > 0, "a read always has room in the buffer");
  auto buf = buffer_.prepare(std::min(read_chunk_bytes, room));
  socket_.async_read_some(
      buf, [self = shared_from_this()](error_code ec, std::size_t n) {
        self->on_read(ec, n);
      });
}

void session::on_read(error_code ec, std::size_t n) {
  reading_ = false;
  if (closed_)
    return;
  if (lingering_) {
    on_linger_read(ec, n);
    return;
  }
  if (ec && ec != net::error::eof) {
    close();
    return;
  }
  if (ec)
    peer_eof_ = true;
  else
    buffer_.commit(n);
  if (closing_)
    return; // answering a transport error: further input does not matter
  pump();
}

// The client will send nothing more. A request it left half sent is
// dropped; the answers to complete ones are still written, then the
// connection closes.
void session::on_peer_eof() {
  done_reading_ = true;
  disarm_read_timer();
  in_request_ = false;
  if (slots_.empty())
    close();
}

// -- Writing ------------------------------------------------------------------

void session::on_reply(uint64_t seq, response r) {
  if (closed_ || slots_.empty() || seq < slots_.front().seq)
    return;
  auto index = static_cast<std::size_t>(seq - slots_.front().seq);
  if (index >= slots_.size())
    return;
  slot& s = slots_[index];
  if (s.ready)
    return;
  s.wire = render(std::move(r), s.version, !s.close_after, s.head);
  s.ready = true;
  maybe_write();
}

void session::maybe_write() {
  if (writing_ || closed_ || lingering_)
    return;
  std::vector<net::const_buffer> buffers;
  out_.clear();
  out_slots_ = 0;
  for (auto& s : slots_) {
    if (!s.ready || out_slots_ == write_batch_max)
      break;
    out_.push_back(std::move(s.wire));
    ++out_slots_;
    if (s.close_after)
      break; // nothing after a closing answer is sent
  }
  if (out_slots_ == 0)
    return;
  for (const auto& bytes : out_)
    buffers.push_back(net::buffer(bytes));
  writing_ = true;
  arm_write_timer();
  net::async_write(socket_, buffers,
                   [self = shared_from_this()](error_code ec, std::size_t) {
                     self->on_write(ec);
                   });
}

void session::on_write(error_code ec) {
  writing_ = false;
  disarm_write_timer();
  out_.clear();
  if (closed_)
    return;
  if (ec) {
    close();
    return;
  }
  SECKILL_ASSERT(slots_.size() >= out_slots_, "written slots are queued");
  bool close_now = false;
  for (std::size_t i = 0; i < out_slots_; ++i) {
    slot& s = slots_.front();
    if (s.inflight)
      --core_.stats.requests_inflight;
    close_now = close_now || s.close_after;
    slots_.pop_front();
  }
  out_slots_ = 0;
  if (close_now) {
    start_linger();
    return;
  }
  if (peer_eof_ && done_reading_ && slots_.empty()) {
    close();
    return;
  }
  pump(); // a slot is free: parse on, and write what became ready
}

// -- Closing ------------------------------------------------------------------

void session::start_linger() {
  closing_ = true;
  done_reading_ = true;
  lingering_ = true;
  ++answer_timer_gen_;
  answer_timer_.cancel();
  error_code ec;
  socket_.shutdown(tcp::socket::shutdown_send, ec);
  if (ec || peer_eof_) {
    close();
    return;
  }
  arm_read_timer(read_timer_kind::linger, linger_ms_max);
  linger_bytes_ = 0;
  if (!reading_)
    linger_read();
}

void session::linger_read() {
  buffer_.clear();
  start_read();
}

void session::on_linger_read(error_code ec, std::size_t n) {
  linger_bytes_ += n;
  if (ec || linger_bytes_ > linger_bytes_max) {
    close();
    return;
  }
  linger_read();
}

void session::close() {
  if (closed_)
    return;
  closed_ = true;
  ++read_timer_gen_;
  ++answer_timer_gen_;
  ++write_timer_gen_;
  read_timer_.cancel();
  answer_timer_.cancel();
  write_timer_.cancel();
  error_code ec;
  socket_.close(ec);
  for (auto& s : slots_)
    if (s.inflight)
      --core_.stats.requests_inflight;
  slots_.clear();
  reader_.reset();
}

// -- Timers -------------------------------------------------------------------

void session::arm_read_timer(read_timer_kind kind, int64_t ms) {
  read_timer_kind_ = kind;
  uint64_t gen = ++read_timer_gen_;
  read_timer_.expires_after(std::chrono::milliseconds(ms));
  read_timer_.async_wait([self = shared_from_this(), gen](error_code ec) {
    self->on_read_timer(ec, gen);
  });
}

void session::disarm_read_timer() {
  if (read_timer_kind_ == read_timer_kind::none)
    return;
  read_timer_kind_ = read_timer_kind::none;
  ++read_timer_gen_;
  read_timer_.cancel();
}

// Idle: nothing read of a next request and nothing owed to the client.
void session::update_read_timer() {
  if (closed_ || closing_ || in_request_)
    return;
  bool idle = slots_.empty() && !done_reading_;
  if (idle && read_timer_kind_ != read_timer_kind::idle)
    arm_read_timer(read_timer_kind::idle, core_.cfg.idle_timeout_ms);
  else if (!idle)
    disarm_read_timer();
}

void session::on_read_timer(error_code ec, uint64_t gen) {
  if (ec || gen != read_timer_gen_ || closed_)
    return;
  auto kind = read_timer_kind_;
  read_timer_kind_ = read_timer_kind::none;
  switch (kind) {
  case read_timer_kind::request:
    transport_error(errc::request_timeout, 408,
                    "request not complete within " +
                        std::to_string(core_.cfg.request_timeout_ms) + " ms");
    maybe_write();
    return;
  case read_timer_kind::idle:
  case read_timer_kind::linger:
    close();
    return;
  case read_timer_kind::none:
    return;
  }
}

// Answer deadlines grow with the slot number, so one timer, set to the
// first unanswered slot's deadline, serves the whole queue.
void session::schedule_answer_timer() {
  const slot* first = nullptr;
  for (const auto& s : slots_)
    if (!s.ready && s.rs && !s.rs->claimed.load()) {
      first = &s;
      break;
    }
  if (first == nullptr) {
    answer_timer_armed_ = false;
    return; // a pending wait, if any, finds nothing to do
  }
  if (answer_timer_armed_ && answer_timer_deadline_ms_ == first->deadline_ms)
    return;
  answer_timer_armed_ = true;
  answer_timer_deadline_ms_ = first->deadline_ms;
  uint64_t gen = ++answer_timer_gen_;
  auto wait_ms = std::max<int64_t>(0, first->deadline_ms - now_ms());
  answer_timer_.expires_after(std::chrono::milliseconds(wait_ms));
  answer_timer_.async_wait([self = shared_from_this(), gen](error_code ec) {
    self->on_answer_timer(ec, gen);
  });
}

void session::on_answer_timer(error_code ec, uint64_t gen) {
  if (ec || gen != answer_timer_gen_ || closed_)
    return;
  answer_timer_armed_ = false;
  int64_t now = now_ms();
  for (auto& s : slots_) {
    if (s.ready || !s.rs || s.deadline_ms > now)
      continue;
    if (s.rs->claimed.exchange(true))
      continue; // the reply is on its way to this strand
    ++core_.stats.answer_timeouts;
    s.wire = render(problem(errc::timeout, 503, "no answer in time"), s.version,
                    !s.close_after, s.head);
    s.ready = true;
  }
  schedule_answer_timer();
  maybe_write();
}

// A client that stops reading cannot hold a connection forever.
void session::arm_write_timer() {
  uint64_t gen = ++write_timer_gen_;
  write_timer_.expires_after(
      std::chrono::milliseconds(core_.cfg.request_timeout_ms));
  write_timer_.async_wait([self = shared_from_this(), gen](error_code ec) {
    if (!ec && gen == self->write_timer_gen_)
      self->close();
  });
}

void session::disarm_write_timer() {
  ++write_timer_gen_;
  write_timer_.cancel();
}

// -- The server ---------------------------------------------------------------

std::string validate(const server_config& cfg) {
  if (cfg.io_threads < 1 || cfg.io_threads > 256)
    return "io_threads must be 1..256";
  if (cfg.connections_max < 1 ||
      cfg.connections_max > limits::http_connections_max)
    return "connections_max out of range";
  if (cfg.connections_per_address_max < 1 ||
      cfg.connections_per_address_max > limits::http_connections_max)
    return "connections_per_address_max out of range";
  if (cfg.request_line_bytes_max < 16 ||
      cfg.header_bytes_max > limits::http_header_bytes_max ||
      cfg.header_bytes_max < cfg.request_line_bytes_max)
    return "request_line_bytes_max must be 16..header_bytes_max, "
           "header_bytes_max at most " +
           std::to_string(limits::http_header_bytes_max);
  if (cfg.body_bytes_max > limits::http_body_bytes_max)
    return "body_bytes_max over " + std::to_string(limits::http_body_bytes_max);
  if (cfg.pipeline_max < 1 || cfg.pipeline_max > limits::http_pipeline_max)
    return "pipeline_max out of range";
  if (cfg.idle_timeout_ms < 1 || cfg.request_timeout_ms < 1 ||
      cfg.answer_timeout_ms < 1)
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
      spdlog::error("http_io_thread_caught what={}", e.what());
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
    spdlog::warn("http_accept_failed error={}", ec.message());
    accept_retry_->expires_after(std::chrono::milliseconds(accept_retry_ms));
    accept_retry_->async_wait([this](error_code wait_ec) {
      if (!wait_ec)
        do_accept();
    });
    return;
  }
  auto s = std::make_shared<session>(core_, std::move(socket));
  bool full = core_.stats.connections_open.load() >=
              static_cast<int64_t>(core_.cfg.connections_max);
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
// with them the last references to every session, which closes the sockets.
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
