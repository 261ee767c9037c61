// One connection of the HTTP server (see connection.hpp): reading and
// parsing pipelined requests, handing them over, writing the answers back in
// request order, the timers, and closing.
#include "node/http/connection.hpp"

#include <algorithm>
#include <chrono>
#include <utility>

#include <spdlog/spdlog.h>

#include "messages/dto.hpp"
#include "messages/limits.hpp"

namespace seckill::http::detail {

namespace {

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
  return f == bhttp::field::content_length
         || f == bhttp::field::transfer_encoding
         || f == bhttp::field::connection || f == bhttp::field::server
         || f == bhttp::field::content_type;
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
    if (name.empty() || !header_text_ok(name) || !header_text_ok(value)
        || reserved_header(name))
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

} // namespace

parse_limits limits_of(const server_config& cfg) {
  parse_limits l;
  l.request_line_bytes_max = cfg.request_line_bytes_max;
  l.header_bytes_max = cfg.header_bytes_max;
  l.body_bytes_max = cfg.body_bytes_max;
  return l;
}

connection::connection(core& c, tcp::socket socket)
  : core_(c), strand_(socket.get_executor()), socket_(std::move(socket)),
    buffer_(read_buffer_bytes_max(limits_of(c.cfg))), reader_(limits_of(c.cfg)),
    read_timer_(strand_), answer_timer_(strand_), write_timer_(strand_) {
  error_code ec;
  auto ep = socket_.remote_endpoint(ec);
  if (!ec)
    client_ip_ = ep.address().to_string();
  socket_.set_option(tcp::no_delay(true), ec);
}

connection::~connection() {
  if (counted_open_)
    --core_.stats.connections_open;
  if (holds_address_slot_)
    core_.by_address.give_back(client_ip_);
}

bool connection::take_address_slot() {
  holds_address_slot_ =
    core_.by_address.take(client_ip_, core_.cfg.connections_per_address_max);
  return holds_address_slot_;
}

void connection::start() {
  counted_open_ = true;
  ++core_.stats.connections_open;
  net::post(strand_, [self = shared_from_this()] { self->pump(); });
}

void connection::refuse(const char* why) {
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
void connection::pump() {
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

connection::step connection::parse_step() {
  if (!in_request_) {
    in_request_ = true;
    arm_read_timer(read_timer_kind::request, core_.cfg.request_timeout_ms);
  }
  switch (reader_.parse(buffer_)) {
    case request_reader::step::progressed: return step::progressed;
    case request_reader::step::need_more: return step::need_more;
    case request_reader::step::complete:
      complete_request();
      return step::progressed;
    case request_reader::step::failed: break;
  }
  const auto& f = reader_.fault();
  transport_error(f.code, f.status, f.detail);
  return step::failed;
}

void connection::complete_request() {
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

void connection::hand_over(bhttp::request<bhttp::string_body>&& msg) {
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

void connection::transport_error(errc code, int status,
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
void connection::push_answer(response r, unsigned version, bool close_after) {
  slot s;
  s.seq = next_seq_++;
  s.version = version;
  s.keep_alive = !close_after;
  s.close_after = close_after;
  s.ready = true;
  s.wire = render(std::move(r), version, !close_after, false);
  slots_.push_back(std::move(s));
}

void connection::start_read() {
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

void connection::on_read(error_code ec, std::size_t n) {
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
void connection::on_peer_eof() {
  done_reading_ = true;
  disarm_read_timer();
  in_request_ = false;
  if (slots_.empty())
    close();
}

// -- Writing ------------------------------------------------------------------

void connection::on_reply(uint64_t seq, response r) {
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

void connection::maybe_write() {
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

void connection::on_write(error_code ec) {
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

void connection::start_linger() {
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

void connection::linger_read() {
  buffer_.clear();
  start_read();
}

void connection::on_linger_read(error_code ec, std::size_t n) {
  linger_bytes_ += n;
  if (ec || linger_bytes_ > linger_bytes_max) {
    close();
    return;
  }
  linger_read();
}

void connection::close() {
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

void connection::arm_read_timer(read_timer_kind kind, int64_t ms) {
  read_timer_kind_ = kind;
  uint64_t gen = ++read_timer_gen_;
  read_timer_.expires_after(std::chrono::milliseconds(ms));
  read_timer_.async_wait([self = shared_from_this(), gen](error_code ec) {
    self->on_read_timer(ec, gen);
  });
}

void connection::disarm_read_timer() {
  if (read_timer_kind_ == read_timer_kind::none)
    return;
  read_timer_kind_ = read_timer_kind::none;
  ++read_timer_gen_;
  read_timer_.cancel();
}

// Idle: nothing read of a next request and nothing owed to the client.
void connection::update_read_timer() {
  if (closed_ || closing_ || in_request_)
    return;
  bool idle = slots_.empty() && !done_reading_;
  if (idle && read_timer_kind_ != read_timer_kind::idle)
    arm_read_timer(read_timer_kind::idle, core_.cfg.idle_timeout_ms);
  else if (!idle)
    disarm_read_timer();
}

void connection::on_read_timer(error_code ec, uint64_t gen) {
  if (ec || gen != read_timer_gen_ || closed_)
    return;
  auto kind = read_timer_kind_;
  read_timer_kind_ = read_timer_kind::none;
  switch (kind) {
    case read_timer_kind::request:
      transport_error(errc::request_timeout, 408,
                      "request not complete within "
                        + std::to_string(core_.cfg.request_timeout_ms) + " ms");
      maybe_write();
      return;
    case read_timer_kind::idle:
    case read_timer_kind::linger: close(); return;
    case read_timer_kind::none: return;
  }
}

// Answer deadlines grow with the slot number, so one timer, set to the
// first unanswered slot's deadline, serves the whole queue.
void connection::schedule_answer_timer() {
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

void connection::on_answer_timer(error_code ec, uint64_t gen) {
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
void connection::arm_write_timer() {
  uint64_t gen = ++write_timer_gen_;
  write_timer_.expires_after(
    std::chrono::milliseconds(core_.cfg.request_timeout_ms));
  write_timer_.async_wait([self = shared_from_this(), gen](error_code ec) {
    if (!ec && gen == self->write_timer_gen_)
      self->close();
  });
}

void connection::disarm_write_timer() {
  ++write_timer_gen_;
  write_timer_.cancel();
}

} // namespace seckill::http::detail
