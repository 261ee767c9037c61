// The pure part of the HTTP server's reading (node/http/server.hpp): bytes
// in a buffer become complete requests or a transport fault, with no socket,
// timer or thread, so a fuzz target (tests/fuzz/) drives exactly the steps a
// connection runs.
//
// A `request_reader` parses one request at a time with Beast's
// `request_parser<string_body>` under the server's three limits and adds
// what Beast cannot tell: the request line's own length (414, which Beast
// counts as header bytes), the header bytes summed over several reads (Beast
// limits one call's), a chunk line or trailer longer than the read buffer,
// Transfer-Encoding that is not a list of bare codings ending with chunked
// (Beast reads "chunked x" as chunked), a chunked body's trailer fields
// (Beast merges them into the header, after every check of it), and the
// framing and identity headers RFC 9112 and RFC 9110 require once
// (`header_fault`).
//
// Invariants: a completed request's body is at most `body_bytes_max` bytes,
// its request line at most `request_line_bytes_max`, its request line and
// headers together at most `header_bytes_max`; every fault is one of 400,
// 413, 414, 431 (after which the connection's bytes cannot be trusted, so
// the caller stops parsing). It must never throw or crash on any bytes.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include "messages/errors.hpp"

namespace seckill::http {

/// The server's limits on one request (server_config's fields of the same
/// names).
struct parse_limits {
  std::size_t request_line_bytes_max = 4'096;
  std::size_t header_bytes_max = 8'192; // request line and headers together
  std::size_t body_bytes_max = 65'536;
};

/// The most bytes a connection's read buffer holds: the longest header (or
/// request line and its CRLF) plus room for pipelined and body bytes.
std::size_t read_buffer_bytes_max(const parse_limits& limits);

/// RFC 9112 2.2: removes the empty lines (CR and LF bytes) in front of a
/// request line; some clients send CRLF after a body.
void skip_empty_lines(boost::beast::flat_buffer& buffer);

/// "" if the request's header is acceptable, else why not: HTTP/1.0 with a
/// transfer coding, HTTP/1.1 with no Host, two Host or two Authorization
/// headers.
std::string header_fault(const boost::beast::http::request_header<>& h);

/// Why a request was refused: the answer the server sends, then closes.
struct parse_fault {
  errc code = errc::ok;
  int status = 0; // 400, 413, 414 or 431
  std::string detail;
};

class request_reader {
public:
  using message = boost::beast::http::request<boost::beast::http::string_body>;

  enum class step {
    progressed, // bytes were taken (or the header finished): call again
    need_more,  // the buffer holds no more of the request: read, then again
    complete,   // a request is complete: take it with release()
    failed,     // a transport fault: see fault(); parse no more
  };

  explicit request_reader(const parse_limits& limits);

  /// Parses what `buffer` holds of the current request and consumes the
  /// bytes taken. `buffer` is the connection's read buffer, at most
  /// read_buffer_bytes_max(limits) bytes, and not empty.
  step parse(boost::beast::flat_buffer& buffer);

  /// After `complete`: the request; the reader is then ready for the next.
  message release();

  /// After `failed`: what to answer.
  const parse_fault& fault() const { return fault_; }

  /// Drops the request being parsed (and its memory).
  void reset();

private:
  bool check_request_line(const boost::beast::flat_buffer& buffer);
  step after_put(const boost::beast::flat_buffer& buffer, bool header_before,
                 std::size_t used, boost::beast::error_code ec);
  step fail(errc code, int status, std::string detail);
  step fail_parse(boost::beast::error_code ec);

  parse_limits limits_;
  std::optional<
    boost::beast::http::request_parser<boost::beast::http::string_body>>
    parser_;
  bool line_checked_ = false; // the request line is within the limit
  std::size_t header_bytes_ = 0;
  std::size_t header_fields_ = 0; // fields in the header, trailer not counted
  parse_fault fault_;
};

} // namespace seckill::http
