// Reading requests out of a connection's buffer (see http_parse.hpp): the
// loop Beast's own `http::read` runs, one `put` per call, with the checks
// Beast leaves to its caller.
#include "node/http/parse.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <string_view>
#include <utility>

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/field.hpp>

namespace seckill::http {

namespace {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

// Read buffer room beyond the header limit: pipelined bytes and body bytes
// waiting for the parser.
constexpr std::size_t read_slack_bytes = 16'384;

// RFC 9110 5.6.2.
bool is_tchar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
         || (c >= '0' && c <= '9')
         || std::string_view{"!#$%&'*+-.^_`|~"}.find(c)
              != std::string_view::npos;
}

std::size_t field_count(const bhttp::request_header<>& h) {
  return static_cast<std::size_t>(std::distance(h.begin(), h.end()));
}

beast::string_view trim_ows(beast::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

// RFC 9112 6.1 and 7: the Transfer-Encoding fields, read as one list, are
// codings (bare tokens) of which chunked is the last. Beast's parser reads
// a value only up to its first byte that is not a token character, so to it
// "chunked\xd7", "chunked x" and "chunked;a=b" are chunked; a proxy in
// front that reads such a value as some other coding frames the body
// differently, and the bytes after it would be taken for a next request
// (request smuggling). Parameters are refused too: chunked has none (RFC
// 9112 7.1 says to treat them as an error) and seckill decodes no coding
// that has some.
bool codings_end_chunked(const bhttp::request_header<>& h) {
  beast::string_view last;
  auto [first, end] = h.equal_range(bhttp::field::transfer_encoding);
  for (auto f = first; f != end; ++f) {
    beast::string_view list = f->value();
    for (;;) {
      auto comma = list.find(',');
      auto coding = trim_ows(list.substr(0, comma));
      if (!std::all_of(coding.begin(), coding.end(), is_tchar))
        return false;
      if (!coding.empty()) // the list rule allows empty elements
        last = coding;
      if (comma == beast::string_view::npos)
        break;
      list.remove_prefix(comma + 1);
    }
  }
  return beast::iequals(last, "chunked");
}

} // namespace

std::size_t read_buffer_bytes_max(const parse_limits& limits) {
  return std::max(limits.header_bytes_max, limits.request_line_bytes_max + 2)
         + read_slack_bytes;
}

void skip_empty_lines(beast::flat_buffer& buffer) {
  auto data = buffer.data();
  const char* p = static_cast<const char*>(data.data());
  std::size_t n = 0;
  while (n < data.size() && (p[n] == '\r' || p[n] == '\n'))
    ++n;
  buffer.consume(n);
}

// The framing and identity headers RFC 9112 and RFC 9110 require once. An
// HTTP/1.0 request has no transfer codings (RFC 9112 6.1: faulty framing);
// an HTTP/1.1 request has exactly one Host (RFC 9112 3.2); a request has at
// most one Authorization (two would let a proxy and the node read different
// credentials).
std::string header_fault(const bhttp::request_header<>& h) {
  if (h.version() < 11 && h.count(bhttp::field::transfer_encoding) != 0)
    return "Transfer-Encoding is not allowed in HTTP/1.0";
  auto hosts = h.count(bhttp::field::host);
  if (h.version() >= 11 && hosts == 0)
    return "an HTTP/1.1 request needs a Host header";
  if (hosts > 1)
    return "more than one Host header";
  if (h.count(bhttp::field::authorization) > 1)
    return "more than one Authorization header";
  return {};
}

request_reader::request_reader(const parse_limits& limits) : limits_(limits) {
  reset();
}

void request_reader::reset() {
  parser_.emplace();
  parser_->header_limit(static_cast<std::uint32_t>(limits_.header_bytes_max));
  parser_->body_limit(static_cast<std::uint64_t>(limits_.body_bytes_max));
  line_checked_ = false;
  header_bytes_ = 0;
  header_fields_ = 0;
}

request_reader::message request_reader::release() {
  auto msg = parser_->release();
  reset();
  return msg;
}

request_reader::step request_reader::parse(beast::flat_buffer& buffer) {
  if (!line_checked_ && !check_request_line(buffer))
    return step::failed;
  bool header_before = parser_->is_header_done();
  beast::error_code ec;
  std::size_t used = parser_->put(buffer.data(), ec);
  buffer.consume(used);
  return after_put(buffer, header_before, used, ec);
}

// The request line ends at the first LF. Beast judges its syntax; this only
// measures it, which Beast cannot tell apart from the headers' size.
bool request_reader::check_request_line(const beast::flat_buffer& buffer) {
  auto data = buffer.data();
  const char* p = static_cast<const char*>(data.data());
  std::size_t line_max = limits_.request_line_bytes_max;
  std::size_t scan = std::min(data.size(), line_max + 2);
  const void* lf = std::memchr(p, '\n', scan);
  std::size_t len = data.size();
  if (lf != nullptr) {
    len = static_cast<std::size_t>(static_cast<const char*>(lf) - p);
    if (len > 0 && p[len - 1] == '\r')
      --len;
  } else if (data.size() < line_max + 2) {
    return true; // incomplete and still within the limit
  }
  if (len > line_max) {
    fail(errc::uri_too_long, 414,
         "request line over " + std::to_string(line_max) + " bytes");
    return false;
  }
  line_checked_ = true;
  return true;
}

request_reader::step request_reader::after_put(const beast::flat_buffer& buffer,
                                               bool header_before,
                                               std::size_t used,
                                               beast::error_code ec) {
  bool need_more = ec == bhttp::error::need_more;
  if (ec && !need_more)
    return fail_parse(ec);
  if (!header_before) {
    // Beast limits the header bytes buffered at one call, not their sum.
    header_bytes_ += used;
    std::size_t seen = header_bytes_;
    if (!parser_->is_header_done())
      seen += buffer.size(); // the header's end is not buffered yet
    if (seen > limits_.header_bytes_max)
      return fail_parse(bhttp::error::header_limit);
  }
  if (!header_before && parser_->is_header_done()) {
    // Without chunked last, a request's body length is unknowable.
    const auto& h = parser_->get();
    if (h.find(bhttp::field::transfer_encoding) != h.end()
        && !(parser_->chunked() && codings_end_chunked(h)))
      return fail(errc::bad_request, 400,
                  "Transfer-Encoding must be codings ending with chunked");
    if (auto why = header_fault(h); !why.empty())
      return fail(errc::bad_request, 400, std::move(why));
    header_fields_ = field_count(h);
  }
  if (parser_->is_done()) {
    // Beast adds a chunked body's trailer fields to the header's, after the
    // checks above: a trailer would be read as an Authorization (or a
    // second Host) no proxy in front judged. RFC 9110 6.5.1 forbids
    // merging them; no client of the API sends any.
    if (field_count(parser_->get()) != header_fields_)
      return fail(errc::bad_request, 400, "trailer fields are not accepted");
    return step::complete;
  }
  bool header_changed = header_before != parser_->is_header_done();
  if (!need_more && (used > 0 || header_changed))
    return step::progressed;
  // Only a chunk header or trailer longer than the buffer gets here.
  if (buffer.size() >= buffer.max_size())
    return fail(errc::bad_request, 400, "chunk line or trailer too long");
  return step::need_more;
}

request_reader::step request_reader::fail(errc code, int status,
                                          std::string detail) {
  fault_ = parse_fault{code, status, std::move(detail)};
  return step::failed;
}

request_reader::step request_reader::fail_parse(beast::error_code ec) {
  if (ec == bhttp::error::header_limit)
    return fail(errc::headers_too_large, 431,
                "request line and headers over "
                  + std::to_string(limits_.header_bytes_max) + " bytes");
  if (ec == bhttp::error::body_limit)
    return fail(errc::payload_too_large, 413,
                "body over " + std::to_string(limits_.body_bytes_max)
                  + " bytes");
  return fail(errc::bad_request, 400, "malformed request: " + ec.message());
}

} // namespace seckill::http
