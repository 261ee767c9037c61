// The HTTP/1.1 server of a seckill node: Boost.Beast on its own I/O
// thread(s), handing each complete request to a handler (the REST bridge
// actors) and writing the answers back in request order.
//
// It owns the transport and its limits, never the API: it parses with Beast
// (no hand-written parser), keeps connections alive, reads pipelined
// requests while earlier ones are being answered (at most `pipeline_max` per
// connection; beyond that it stops reading, so the kernel's socket buffer
// holds the rest: backpressure, not memory), and answers every transport
// problem itself with a problem+json body:
//   request line over `request_line_bytes_max`        414 uri_too_long
//   headers over `header_bytes_max`                   431 headers_too_large
//   body over `body_bytes_max` (announced or sent)    413 payload_too_large
//   broken request line, headers, chunking            400 bad_request
//   request not complete `request_timeout_ms` after
//   its first byte (a slow client)                    408 request_timeout
//   more than `connections_max` open connections      503 overloaded
//   more than `connections_per_address_max` from one
//   client address (127.0.0.1 and ::1 exempt)         503 overloaded
//   the handler did not answer in `answer_timeout_ms` 503 timeout
//   the server is draining (stop_accepting called)    503 overloaded
// After a 400, 408, 413, 414 or 431 the connection is closed (the byte
// stream can no longer be trusted); after the others it stays usable.
// A connection idle for `idle_timeout_ms` between requests is closed
// without an answer (a clean close). `Connection: close` from the client,
// or HTTP/1.0 without keep-alive, closes after the answer.
//
// Threads: the handler is called on an I/O thread and must not block; the
// reply function it receives may be called from any thread, exactly once
// (later calls, or calls after the answer timed out, are ignored).
// It must never: crash or throw on any input, hold an unbounded amount of
// anything per connection, or answer requests of one connection out of order.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "messages/http.hpp"
#include "messages/types.hpp"

namespace seckill::http {

struct server_config {
  std::string host = "127.0.0.1";
  uint16_t port = 8080; // 0: the kernel picks a free port (see port())
  std::size_t io_threads = 1;
  std::size_t connections_max = 10'000;
  /// Open connections from one client address, so one client cannot take
  /// every slot. Connections from 127.0.0.1 and ::1 (a proxy on this
  /// machine, the benchmarks) are not capped; behind a proxy elsewhere set
  /// it to connections_max.
  std::size_t connections_per_address_max = 1'000;
  std::size_t request_line_bytes_max = 4'096;
  std::size_t header_bytes_max = 8'192; // request line and headers together
  std::size_t body_bytes_max = 65'536;
  std::size_t pipeline_max = 16; // requests read and not yet answered
  int64_t idle_timeout_ms = 30'000;
  int64_t request_timeout_ms = 10'000;
  int64_t answer_timeout_ms = 10'000;
  /// The event loop's lag: every `loop_probe_ms` a timer on the I/O
  /// threads reports how late the last one ran (microseconds) and when the
  /// next one is due (steady clock, microseconds). Empty: no probe.
  std::function<void(int64_t late_us, int64_t next_due_us)> loop_probe;
  int64_t loop_probe_ms = 5;
};

/// Counters, for /metrics and the CLI (read without stopping the server):
/// the http_stats the admin actor reports (messages/types.hpp), filled here.
using server_stats = seckill::http_stats;

class server {
public:
  /// Binds, listens and starts the I/O threads. On failure returns null
  /// and sets `error` (e.g. "cannot bind 127.0.0.1:8080: Address in use").
  static std::unique_ptr<server> start(const server_config& cfg,
                                       handler_fn handler, std::string& error);

  virtual ~server() = default;

  /// The bound port (the kernel's choice when configured as 0).
  virtual uint16_t port() const = 0;

  /// Closes the listening socket; requests arriving from now on (also on
  /// open connections) are answered 503 overloaded with Connection: close.
  virtual void stop_accepting() = 0;

  /// Waits until no request is in flight or `timeout_ms` passed; true if
  /// none is left.
  virtual bool drain(int64_t timeout_ms) = 0;

  /// Closes every connection and joins the I/O threads. Idempotent; the
  /// destructor calls it.
  virtual void stop() = 0;

  virtual server_stats stats() const = 0;
};

} // namespace seckill::http
