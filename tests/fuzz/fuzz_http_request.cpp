// libFuzzer target: arbitrary bytes through the HTTP server's reading steps
// (node/http/parse.hpp), the way a connection runs them, without a socket:
// empty lines skipped between requests, `request_reader::parse` until it
// needs more, then a "read" of the next bytes into the bounded read buffer,
// pipelined requests one after another, parsing stopped at a fault or after
// a request that does not keep the connection alive, a half-sent request
// dropped at the end.
//
// Input: byte 0 picks the limits (the server's defaults, or small ones so
// that each limit is reached by short inputs), byte 1 how the rest arrives
// (0: everything the buffer takes at once; n: reads of 1..n bytes), the rest
// is the byte stream. Every input is parsed twice, as it arrives and all at
// once: both must complete the same requests and end alike (agree() says
// which ends are alike).
//
// Asserted (an abort is a finding): no crash, hang or sanitizer report; the
// buffer never exceeds read_buffer_bytes_max; every parse step makes
// progress; a completed request's bytes on the wire hold a request line of
// at most request_line_bytes_max, a header of at most header_bytes_max and
// a body of at most body_bytes_max; no field but the header's (a chunked
// body's trailer is not merged in); exactly one Host on HTTP/1.1, at most
// one on 1.0, at most one Authorization; its framing is unambiguous, read from
// its fields and not from Beast (Transfer-Encoding a list of bare codings
// ending with chunked, with no Content-Length, never on 1.0; or agreeing
// Content-Lengths the body matches; or no body); a fault is 400, 413, 414
// or 431 with its code, a 414 only for a request line over the limit and a
// 431 only for a header over it (or one Beast refuses at any size).
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "node/http/parse.hpp"

#include "tests/fuzz/fuzz_support.hpp"

namespace {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using seckill::errc;
using seckill::http::parse_limits;
using seckill::http::request_reader;

// Limit sets byte 0 chooses from; each is one validate() accepts
// (request line 16..header, header at most 64 KiB, body at most 1 MiB).
constexpr std::array<parse_limits, 4> limit_sets{{
  {4'096, 8'192, 65'536}, // the server's defaults
  {64, 256, 1'024},
  {16, 48, 16},
  {32, 32, 0}, // line as long as the header; no body at all
}};

using seckill::fuzz::require;

// One completed request, as compared between the two runs.
struct seen_request {
  std::string method;
  std::string target;
  unsigned version = 0;
  std::vector<std::pair<std::string, std::string>> fields;
  std::string body;
  bool operator==(const seen_request& o) const {
    return method == o.method && target == o.target && version == o.version
           && fields == o.fields && body == o.body;
  }
};

struct outcome {
  std::vector<seen_request> requests;
  std::optional<int> fault_status; // none: the input ended (or a close)
  bool waiting = false;            // the input ended in the middle of a request
};

// Every request either run completes, the other completes the same, and
// both runs end alike, with two exceptions the checks' order makes. A
// request with two faults is refused for the one seen first, and what is
// seen first depends on the pieces: "G@T /<5000 bytes>" is 414 at once
// (the line is measured before Beast parses), 400 in pieces (Beast reads
// the method in the first piece); check_fault holds each status to its
// cause. And a fault may be certain in one run when the input ends, and
// only a byte later in the other, which then waits in the request: Beast
// finds a bare LF ending a line in the bytes it parses first, but in pieces
// it waits for a CRLF CRLF that never comes (the server then answers 408 or
// 431); in pieces Beast sees a header that can no longer end within its
// limit, at once it sees it when one more byte comes.
bool agree(const outcome& at_once, const outcome& in_pieces) {
  if (at_once.requests != in_pieces.requests)
    return false;
  if (at_once.fault_status)
    return in_pieces.fault_status || in_pieces.waiting;
  if (in_pieces.fault_status)
    return at_once.waiting;
  return at_once.waiting == in_pieces.waiting;
}

// Read sizes: all the buffer takes (0), or 1..n bytes (a seeded xorshift).
class arrival {
public:
  explicit arrival(uint8_t n) : n_(n), state_(0x9e3779b9u ^ n) {}
  std::size_t next(std::size_t room) {
    if (n_ == 0)
      return room;
    state_ ^= state_ << 13;
    state_ ^= state_ >> 17;
    state_ ^= state_ << 5;
    return std::min<std::size_t>(room, 1 + state_ % n_);
  }

private:
  uint8_t n_;
  uint32_t state_;
};

std::string_view view(beast::string_view s) {
  return {s.data(), s.size()};
}

// ASCII case-insensitive equality, as field names compare (RFC 9110 5.1).
bool iequals(std::string_view a, std::string_view b) {
  auto lower = [](char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
  };
  return a.size() == b.size()
         && std::equal(a.begin(), a.end(), b.begin(),
                       [&](char x, char y) { return lower(x) == lower(y); });
}

std::size_t count_field(const request_reader::message& m,
                        std::string_view name) {
  std::size_t n = 0;
  for (const auto& f : m)
    if (iequals(view(f.name_string()), name))
      ++n;
  return n;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

bool token(std::string_view s) {
  static constexpr std::string_view specials = "!#$%&'*+-.^_`|~";
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9') || specials.find(c) != specials.npos;
  });
}

// The Transfer-Encoding fields as one list of bare codings (RFC 9112 6.1;
// empty elements allowed by the list rule): its last element, or "" if an
// element is not a token.
std::string_view last_coding(const request_reader::message& m) {
  std::string_view last;
  for (const auto& f : m) {
    if (!iequals(view(f.name_string()), "transfer-encoding"))
      continue;
    std::string_view list = view(f.value());
    for (;;) {
      auto comma = list.find(',');
      auto item = trim(list.substr(0, comma));
      if (!item.empty() && !token(item))
        return {};
      if (!item.empty())
        last = item;
      if (comma == std::string_view::npos)
        break;
      list.remove_prefix(comma + 1);
    }
  }
  return last;
}

// Every Content-Length element as a number; false if they disagree or one
// is not a plain decimal.
bool content_length(const request_reader::message& m, uint64_t& out) {
  std::optional<uint64_t> len;
  for (const auto& f : m) {
    if (!iequals(view(f.name_string()), "content-length"))
      continue;
    std::string_view list = view(f.value());
    while (true) {
      auto comma = list.find(',');
      auto item = trim(list.substr(0, comma));
      if (item.empty() || item.size() > 19)
        return false;
      uint64_t v = 0;
      for (char c : item) {
        if (c < '0' || c > '9')
          return false;
        v = v * 10 + static_cast<uint64_t>(c - '0');
      }
      if (len && *len != v)
        return false;
      len = v;
      if (comma == std::string_view::npos)
        break;
      list.remove_prefix(comma + 1);
    }
  }
  if (!len)
    return false;
  out = *len;
  return true;
}

// The request's framing, read from its fields (not from the parser).
void check_framing(const request_reader::message& m) {
  std::size_t te = count_field(m, "transfer-encoding");
  std::size_t cl = count_field(m, "content-length");
  if (te > 0) {
    require(cl == 0, "Transfer-Encoding and Content-Length together");
    require(m.version() >= 11, "Transfer-Encoding on HTTP/1.0");
    require(iequals(last_coding(m), "chunked"),
            "Transfer-Encoding is not codings ending with chunked");
  } else if (cl > 0) {
    uint64_t len = 0;
    require(content_length(m, len), "Content-Length values disagree");
    require(m.body().size() == len, "the body is not Content-Length long");
  } else {
    require(m.body().empty(), "a body without framing");
  }
}

// The wire bytes of one completed request against the limits.
void check_wire(std::string_view wire, const request_reader::message& m,
                const parse_limits& lim) {
  auto line_end = wire.find("\r\n");
  auto header_end = wire.find("\r\n\r\n");
  require(line_end != std::string_view::npos
            && header_end != std::string_view::npos,
          "a complete request has a request line and a header end");
  require(line_end <= lim.request_line_bytes_max,
          "request line over request_line_bytes_max");
  require(header_end + 4 <= lim.header_bytes_max,
          "request line and headers over header_bytes_max");
  require(m.body().size() <= lim.body_bytes_max, "body over body_bytes_max");
  require(m.body().size() <= wire.size() - (header_end + 4),
          "a body longer than the bytes after the header");
  require(m.method_string().size() + m.target().size() + 10 == line_end,
          "the request line is method SP target SP HTTP/x.y");
  auto header = wire.substr(line_end + 2, header_end + 2 - (line_end + 2));
  std::size_t lines = 0;
  for (auto at = header.find("\r\n"); at != std::string_view::npos;
       at = header.find("\r\n", at + 2))
    ++lines;
  require(static_cast<std::size_t>(std::distance(m.begin(), m.end())) <= lines,
          "a field from outside the header (a trailer)");
}

void check_request(std::string_view wire, const request_reader::message& m,
                   const parse_limits& lim) {
  check_wire(wire, m, lim);
  std::size_t hosts = count_field(m, "host");
  require(m.version() >= 11 ? hosts == 1 : hosts <= 1,
          "one Host on HTTP/1.1, at most one before");
  require(count_field(m, "authorization") <= 1, "two Authorization headers");
  check_framing(m);
}

// Beast's verdict on a complete header (up to its CRLF CRLF) with no limit
// on its size: true if refused. Beast reads 8 bytes for the version
// whatever comes first, so the header is followed by 8 more line ends
// (which a valid header never reaches).
bool malformed_header(std::string_view header) {
  std::string bytes{header};
  bytes += "\r\n\r\n\r\n\r\n";
  bhttp::request_parser<bhttp::string_body> p;
  p.header_limit(std::numeric_limits<std::uint32_t>::max());
  beast::error_code ec;
  p.put(boost::asio::const_buffer(bytes.data(), bytes.size()), ec);
  return ec && ec != bhttp::error::need_more;
}

// The bytes from a request's first byte to what was read so far hold a
// request line over the limit (414), or no header end within the limit or
// a header Beast refuses whatever its size (431: Beast reads 8 bytes for
// the version before it looks for the CRLF, so a broken request line near
// the limit is 431, not 400).
void check_fault(std::string_view buffered, const seckill::http::parse_fault& f,
                 const parse_limits& lim) {
  switch (f.status) {
    case 400: require(f.code == errc::bad_request, "400 is bad_request"); break;
    case 413:
      require(f.code == errc::payload_too_large, "413 is payload_too_large");
      break;
    case 414: {
      require(f.code == errc::uri_too_long, "414 is uri_too_long");
      auto lf = buffered.find('\n');
      std::size_t len = lf == std::string_view::npos ? buffered.size() : lf;
      if (lf != std::string_view::npos && len > 0 && buffered[len - 1] == '\r')
        --len;
      require(len > lim.request_line_bytes_max, "414 for a short request line");
      break;
    }
    case 431: {
      require(f.code == errc::headers_too_large, "431 is headers_too_large");
      auto end = buffered.find("\r\n\r\n");
      require(end == std::string_view::npos || end + 4 > lim.header_bytes_max
                || malformed_header(buffered.substr(0, end + 4)),
              "431 for a header within the limit");
      break;
    }
    default: require(false, "a fault is 400, 413, 414 or 431");
  }
}

// The connection's loop (session::pump, start_read, on_read) over `stream`.
outcome run(std::string_view stream, const parse_limits& lim, uint8_t reads) {
  outcome out;
  arrival next_read{reads};
  beast::flat_buffer buffer{seckill::http::read_buffer_bytes_max(lim)};
  request_reader reader{lim};
  std::size_t read = 0;  // bytes of `stream` put into the buffer
  std::size_t start = 0; // where the current request began in `stream`
  bool in_request = false;
  std::size_t steps = 0;
  for (;;) {
    if (!in_request)
      seckill::http::skip_empty_lines(buffer);
    if (buffer.size() > 0) {
      if (!in_request) {
        in_request = true;
        start = read - buffer.size();
      }
      require(++steps <= 3 * stream.size() + 3,
              "a parse step made no progress");
      auto s = reader.parse(buffer);
      require(buffer.size() <= buffer.max_size(), "the buffer kept its bound");
      std::size_t consumed = read - buffer.size();
      if (s == request_reader::step::progressed)
        continue;
      if (s == request_reader::step::complete) {
        auto m = reader.release();
        in_request = false;
        check_request(stream.substr(start, consumed - start), m, lim);
        seen_request r{std::string(m.method_string()),
                       std::string(m.target()),
                       m.version(),
                       {},
                       m.body()};
        for (const auto& f : m)
          r.fields.emplace_back(f.name_string(), f.value());
        out.requests.push_back(std::move(r));
        if (!m.keep_alive())
          return out; // the server reads no more of this connection
        continue;
      }
      if (s == request_reader::step::failed) {
        check_fault(stream.substr(start, read - start), reader.fault(), lim);
        out.fault_status = reader.fault().status;
        return out;
      }
    }
    if (read == stream.size()) {
      out.waiting =
        in_request; // the peer's end: a half-sent request is dropped
      return out;
    }
    std::size_t room = buffer.max_size() - buffer.size();
    require(room > 0, "a read always has room in the buffer");
    std::size_t n = next_read.next(std::min(room, stream.size() - read));
    auto dst = buffer.prepare(n);
    std::copy_n(stream.data() + read, n, static_cast<char*>(dst.data()));
    buffer.commit(n);
    read += n;
  }
}

// For a failed comparison: what each run saw.
void print(const char* label, const outcome& o) {
  std::fprintf(stderr, "%s: %zu requests, ", label, o.requests.size());
  if (o.fault_status)
    std::fprintf(stderr, "then fault %d\n", *o.fault_status);
  else
    std::fprintf(stderr, "then the end of the input%s\n",
                 o.waiting ? " in a request" : "");
  for (const auto& r : o.requests)
    std::fprintf(stderr, "  %s %s HTTP/%u, %zu fields, body %zu bytes\n",
                 r.method.c_str(), r.target.c_str(), r.version, r.fields.size(),
                 r.body.size());
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size < 2)
    return 0;
  const parse_limits& lim = limit_sets[data[0] % limit_sets.size()];
  uint8_t reads = data[1];
  std::string_view stream{reinterpret_cast<const char*>(data + 2), size - 2};
  outcome at_once = run(stream, lim, 0);
  if (reads == 0)
    return 0;
  outcome in_pieces = run(stream, lim, reads);
  if (!agree(at_once, in_pieces)) {
    print("all at once", at_once);
    print("in pieces", in_pieces);
    require(false, "the same bytes arriving in other pieces parse differently");
  }
  return 0;
}
