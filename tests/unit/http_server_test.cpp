// Tests of node/http/server.hpp: the server runs in-process on 127.0.0.1
// (port 0) with a small handler, and the tests speak raw HTTP over POSIX
// sockets, so every byte a hostile client could send can be sent. They
// cover keep-alive, pipelining (answers in request order even when the
// handler answers in reverse, and a flood against a small pipeline), every
// transport error of the contract (400, 408, 413, 414, 431, 503), the
// answer timeout with its late reply, a double reply, and draining. After
// each hostile case the server must still answer a normal request.
// Timeouts are small; the tests assert outcomes, never speed, and every
// wait is bounded.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <cerrno>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "node/http/server.hpp"

using namespace seckill::http;

namespace {

using steady = std::chrono::steady_clock;
constexpr int wait_ms_max = 5'000; // bound on every wait for the server

// -- A raw client -------------------------------------------------------------

struct reply {
  int status = 0;
  std::string version;                        // "HTTP/1.1"
  std::map<std::string, std::string> headers; // names lower-case
  std::string body;
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

std::string lower(std::string s) {
  for (auto& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

class client {
public:
  explicit client(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0)
      return;
    timeval tv{5, 0}; // a blocked send gives up
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
      close();
  }
  ~client() { close(); }
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  bool connected() const { return fd_ >= 0; }

  void close() {
    if (fd_ >= 0)
      ::close(fd_);
    fd_ = -1;
  }

  bool send(const std::string& bytes) {
    std::size_t done = 0;
    while (fd_ >= 0 && done < bytes.size()) {
      auto n =
        ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return false;
      done += static_cast<std::size_t>(n);
    }
    return fd_ >= 0;
  }

  /// Reads one response (framed by Content-Length; none for HEAD).
  std::optional<reply> read_reply(bool head = false,
                                  int timeout_ms = wait_ms_max) {
    auto deadline = steady::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
      auto r = take_reply(head);
      if (r)
        return r;
      if (!fill(deadline))
        return std::nullopt;
    }
  }

  /// True when the server closes the connection (EOF or reset) before
  /// the deadline without sending anything more.
  bool closed_by_peer(int timeout_ms = wait_ms_max) {
    auto deadline = steady::now() + std::chrono::milliseconds(timeout_ms);
    while (buf_.empty()) {
      if (!fill(deadline))
        return eof_ && buf_.empty();
    }
    return false;
  }

  /// Half-closes: the server sees EOF but can still answer.
  void shutdown_send() {
    if (fd_ >= 0)
      ::shutdown(fd_, SHUT_WR);
  }

  /// True if bytes are waiting (without reading them).
  bool readable() const {
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, 0) > 0;
  }

  const std::string& leftover() const { return buf_; }

private:
  // Reads more into buf_; false on EOF, error or deadline.
  bool fill(steady::time_point deadline) {
    if (fd_ < 0 || eof_)
      return false;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                  deadline - steady::now())
                  .count();
    if (left <= 0)
      return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0)
      return false;
    char tmp[65536];
    auto n = ::recv(fd_, tmp, sizeof(tmp), 0);
    if (n <= 0) {
      eof_ = true;
      return false;
    }
    buf_.append(tmp, static_cast<std::size_t>(n));
    return true;
  }

  std::optional<reply> take_reply(bool head) {
    auto end = buf_.find("\r\n\r\n");
    if (end == std::string::npos)
      return std::nullopt;
    reply r;
    std::size_t line_end = buf_.find("\r\n");
    std::string status_line = buf_.substr(0, line_end);
    r.version = status_line.substr(0, status_line.find(' '));
    r.status = std::atoi(status_line.c_str() + r.version.size() + 1);
    std::size_t pos = line_end + 2;
    while (pos < end) {
      std::size_t eol = buf_.find("\r\n", pos);
      std::string line = buf_.substr(pos, eol - pos);
      auto colon = line.find(':');
      std::string value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      r.headers[lower(line.substr(0, colon))] = value;
      pos = eol + 2;
    }
    std::size_t length = 0;
    if (!head && !r.header("content-length").empty())
      length = std::stoul(r.header("content-length"));
    if (buf_.size() < end + 4 + length)
      return std::nullopt;
    r.body = buf_.substr(end + 4, length);
    buf_.erase(0, end + 4 + length);
    return r;
  }

  int fd_ = -1;
  bool eof_ = false;
  std::string buf_;
};

std::string get(const std::string& target, const std::string& extra = "") {
  return "GET " + target + " HTTP/1.1\r\nHost: t\r\n" + extra + "\r\n";
}

// -- The handler's helpers ----------------------------------------------------

// Calls reply functions from its own thread after a delay, in the order of
// their due times: the handler answering "from a CAF worker".
class delayer {
public:
  delayer() : thread_([this] { run(); }) {}
  ~delayer() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  delayer(const delayer&) = delete;
  delayer& operator=(const delayer&) = delete;

  void after(int ms, reply_fn fn, response r) {
    std::lock_guard lock(mutex_);
    queue_.emplace(steady::now() + std::chrono::milliseconds(ms),
                   std::make_pair(std::move(fn), std::move(r)));
    cv_.notify_all();
  }

private:
  void run() {
    std::unique_lock lock(mutex_);
    while (!stop_) {
      if (queue_.empty()) {
        cv_.wait(lock);
        continue;
      }
      auto first = queue_.begin();
      if (first->first > steady::now()) {
        cv_.wait_until(lock, first->first);
        continue;
      }
      auto job = std::move(first->second);
      queue_.erase(first);
      lock.unlock();
      job.first(std::move(job.second));
      lock.lock();
    }
  }

  std::mutex mutex_;
  std::condition_variable cv_;
  std::multimap<steady::time_point, std::pair<reply_fn, response>> queue_;
  bool stop_ = false;
  std::thread thread_; // last: starts after the members it uses
};

response text(std::string body) {
  response r;
  r.content_type = "text/plain";
  r.body = std::move(body);
  return r;
}

// Routes: /delay/<ms>... answers from the delayer; /late keeps the reply
// function (answered by the test, or never); /twice answers twice; /throw
// throws; anything else echoes "<method> <target> <body>".
class fixture {
public:
  explicit fixture(server_config cfg) {
    cfg.host = "127.0.0.1";
    cfg.port = 0;
    std::string error;
    srv_ = server::start(
      cfg, [this](request req, reply_fn fn) { route(req, fn); }, error);
    INFO(error);
    REQUIRE(srv_);
  }
  ~fixture() {
    srv_->stop();
    srv_.reset();
  }
  fixture(const fixture&) = delete;
  fixture& operator=(const fixture&) = delete;

  server& srv() { return *srv_; }
  uint16_t port() const { return srv_->port(); }

  /// The reply functions kept by /late, in arrival order.
  std::vector<reply_fn> held() {
    std::lock_guard lock(mutex_);
    return held_;
  }

  std::string last_client_ip() {
    std::lock_guard lock(mutex_);
    return last_client_ip_;
  }

private:
  void route(const request& req, const reply_fn& fn) {
    {
      std::lock_guard lock(mutex_);
      last_client_ip_ = req.client_ip;
    }
    const std::string& t = req.target;
    if (t.rfind("/delay/", 0) == 0) {
      int ms = std::atoi(t.c_str() + 7);
      delay_.after(ms, fn, text("delayed " + t));
    } else if (t == "/late") {
      std::lock_guard lock(mutex_);
      held_.push_back(fn);
    } else if (t == "/twice") {
      fn(text("first"));
      fn(text("second"));
    } else if (t == "/throw") {
      throw std::runtime_error("handler bug");
    } else {
      fn(text(req.method + " " + t + " " + req.body));
    }
  }

  std::mutex mutex_;
  std::vector<reply_fn> held_;
  std::string last_client_ip_;
  delayer delay_;
  std::unique_ptr<server> srv_; // last: stopped before the delayer goes
};

server_config test_config() {
  server_config cfg;
  cfg.io_threads = 2;
  cfg.idle_timeout_ms = 5'000;
  cfg.request_timeout_ms = 5'000;
  cfg.answer_timeout_ms = 5'000;
  return cfg;
}

/// A fresh connection still gets a normal answer.
void require_serves(uint16_t port) {
  client c(port);
  REQUIRE(c.connected());
  REQUIRE(c.send(get("/ok")));
  auto r = c.read_reply();
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->body == "GET /ok ");
}

/// Sends `bytes`, expects one problem with `status` and `code`, then the
/// server closing the connection; then a new connection is served.
void require_transport_error(fixture& f, const std::string& bytes, int status,
                             const std::string& code) {
  client c(f.port());
  REQUIRE(c.connected());
  c.send(bytes); // the server may close before it has read everything
  auto r = c.read_reply();
  REQUIRE(r);
  CHECK(r->status == status);
  CHECK(r->header("content-type") == "application/problem+json");
  CHECK(r->header("connection") == "close");
  CHECK(r->body.find("\"code\":\"" + code + "\"") != std::string::npos);
  CHECK(c.closed_by_peer());
  require_serves(f.port());
}

template <class Pred>
bool eventually(Pred pred, int timeout_ms = wait_ms_max) {
  auto deadline = steady::now() + std::chrono::milliseconds(timeout_ms);
  while (steady::now() < deadline) {
    if (pred())
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return pred();
}

} // namespace

// -- Ordinary traffic ---------------------------------------------------------

TEST_CASE("http: a simple GET is answered", "[http]") {
  fixture f(test_config());
  client c(f.port());
  REQUIRE(c.send(get("/items/sku-1?x=1")));
  auto r = c.read_reply();
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->version == "HTTP/1.1");
  CHECK(r->body == "GET /items/sku-1?x=1 ");
  CHECK(r->header("server") == "seckill");
  CHECK(r->header("content-type") == "text/plain");
  CHECK(r->header("content-length") == std::to_string(r->body.size()));
  CHECK(f.last_client_ip() == "127.0.0.1");
  CHECK(eventually([&] { return f.srv().stats().requests_inflight == 0; }));
  CHECK(f.srv().stats().requests == 1);
}

TEST_CASE("http: keep-alive serves several requests on one connection",
          "[http]") {
  fixture f(test_config());
  client c(f.port());
  for (int i = 0; i < 5; ++i) {
    std::string body = "n=" + std::to_string(i);
    REQUIRE(c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: "
                   + std::to_string(body.size()) + "\r\n\r\n" + body));
    auto r = c.read_reply();
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->body == "POST /echo " + body);
    CHECK(r->header("connection").empty());
  }
  // A chunked body reaches the handler de-chunked.
  REQUIRE(c.send("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: "
                 "chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"));
  auto r = c.read_reply();
  REQUIRE(r);
  CHECK(r->body == "POST /echo hello world");
  CHECK(f.srv().stats().connections_accepted == 1);
}

TEST_CASE("http: pipelined requests are answered in request order", "[http]") {
  fixture f(test_config());
  client c(f.port());
  // The handler answers the last request first.
  std::string burst;
  for (int i = 0; i < 10; ++i)
    burst += get("/delay/" + std::to_string((10 - i) * 30)
                 + "?i=" + std::to_string(i));
  REQUIRE(c.send(burst));
  for (int i = 0; i < 10; ++i) {
    auto r = c.read_reply();
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->body
          == "delayed /delay/" + std::to_string((10 - i) * 30)
               + "?i=" + std::to_string(i));
  }
  CHECK(eventually([&] { return f.srv().stats().requests_inflight == 0; }));
}

TEST_CASE("http: pipelined requests sent before a half-close are answered",
          "[http]") {
  fixture f(test_config());
  client c(f.port());
  REQUIRE(c.send(get("/delay/50?i=0") + get("/a") + get("/delay/10?i=2")
                 + "GET /partial HTTP/1.1\r\nHo"));
  c.shutdown_send();
  std::vector<std::string> want = {"delayed /delay/50?i=0", "GET /a ",
                                   "delayed /delay/10?i=2"};
  for (const auto& body : want) {
    auto r = c.read_reply();
    REQUIRE(r);
    CHECK(r->body == body);
  }
  CHECK(c.closed_by_peer()); // the half-sent request is dropped
  CHECK(eventually([&] { return f.srv().stats().connections_open == 0; }));
}

TEST_CASE("http: a pipeline flood is answered in order with a small pipeline",
          "[http]") {
  auto cfg = test_config();
  cfg.pipeline_max = 4;
  fixture f(cfg);
  client c(f.port());
  constexpr int count = 500;
  std::string burst;
  for (int i = 0; i < count; ++i)
    burst += i % 7 == 0 ? get("/delay/1?i=" + std::to_string(i))
                        : get("/e?i=" + std::to_string(i));
  // A thread sends, so a full socket buffer cannot block the reader.
  std::atomic<bool> sent{false};
  std::thread sender([&] { sent = c.send(burst); });
  int answered = 0;
  for (int i = 0; i < count; ++i) {
    auto r = c.read_reply();
    if (!r)
      break;
    std::string want = i % 7 == 0 ? "delayed /delay/1?i=" + std::to_string(i)
                                  : "GET /e?i=" + std::to_string(i) + " ";
    if (r->status != 200 || r->body != want)
      break;
    ++answered;
  }
  sender.join();
  CHECK(sent);
  CHECK(answered == count);
  CHECK(f.srv().stats().requests == count);
  require_serves(f.port());
}

TEST_CASE("http: Connection: close closes after the answer", "[http]") {
  fixture f(test_config());
  client c(f.port());
  // The request after the closing one is never answered.
  REQUIRE(c.send(get("/a", "Connection: close\r\n") + get("/b")));
  auto r = c.read_reply();
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->body == "GET /a ");
  CHECK(r->header("connection") == "close");
  CHECK(c.closed_by_peer());
}

TEST_CASE("http: HTTP/1.0 closes unless keep-alive is asked for", "[http]") {
  fixture f(test_config());
  {
    client c(f.port());
    REQUIRE(c.send("GET /old HTTP/1.0\r\n\r\n"));
    auto r = c.read_reply();
    REQUIRE(r);
    CHECK(r->version == "HTTP/1.0");
    CHECK(r->body == "GET /old ");
    CHECK(c.closed_by_peer());
  }
  client c(f.port());
  for (int i = 0; i < 2; ++i) {
    REQUIRE(c.send("GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    auto r = c.read_reply();
    REQUIRE(r);
    CHECK(r->header("connection") == "keep-alive");
    CHECK(r->body == "GET /old ");
  }
}

TEST_CASE("http: empty lines between requests are ignored", "[http]") {
  fixture f(test_config());
  client c(f.port());
  REQUIRE(c.send("\r\n" + get("/a") + "\r\n\r\n" + get("/b")));
  for (const char* body : {"GET /a ", "GET /b "}) {
    auto r = c.read_reply();
    REQUIRE(r);
    CHECK(r->body == body);
  }
}

TEST_CASE("http: HEAD gets the header without the body", "[http]") {
  fixture f(test_config());
  client c(f.port());
  REQUIRE(c.send("HEAD /h HTTP/1.1\r\nHost: t\r\n\r\n" + get("/after")));
  auto r = c.read_reply(true);
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->header("content-length")
        == std::to_string(std::string("HEAD /h ").size()));
  auto next = c.read_reply();
  REQUIRE(next);
  CHECK(next->body == "GET /after ");
}

// -- Transport errors ---------------------------------------------------------

TEST_CASE("http: a request line over the limit is 414", "[http]") {
  fixture f(test_config()); // request line 4096, headers 8192
  require_transport_error(f, get("/" + std::string(5'000, 'a')), 414,
                          "uri_too_long");
  // The same line sent without its end yet is refused as soon as it is long.
  require_transport_error(f, "GET /" + std::string(4'200, 'b'), 414,
                          "uri_too_long");
  CHECK(f.srv().stats().transport_errors == 2);
}

TEST_CASE("http: headers over the limit are 431", "[http]") {
  fixture f(test_config());
  std::string fill;
  for (int i = 0; i < 100; ++i)
    fill +=
      "X-Fill-" + std::to_string(i) + ": " + std::string(100, 'v') + "\r\n";
  require_transport_error(f, get("/h", fill), 431, "headers_too_large");
  // One long header, just past the limit together with the request line.
  require_transport_error(
    f, get("/h", "X-Big: " + std::string(8'170, 'v') + "\r\n"), 431,
    "headers_too_large");
}

TEST_CASE("http: a body over the limit is 413", "[http]") {
  fixture f(test_config()); // body 65536
  SECTION("announced by Content-Length") {
    require_transport_error(
      f, "POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n", 413,
      "payload_too_large");
  }
  SECTION("grown by chunks") {
    std::string req = "POST /p HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: "
                      "chunked\r\n\r\n";
    for (int i = 0; i < 5; ++i)
      req += "4000\r\n" + std::string(16'384, 'x') + "\r\n";
    require_transport_error(f, req, 413, "payload_too_large");
  }
}

TEST_CASE("http: malformed requests are 400", "[http]") {
  fixture f(test_config());
  SECTION("Content-Length with non-digits") {
    require_transport_error(
      f, "POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 12a\r\n\r\n", 400,
      "bad_request");
  }
  SECTION("conflicting Content-Length headers") {
    require_transport_error(f,
                            "POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: "
                            "3\r\nContent-Length: 4\r\n\r\nabcd",
                            400, "bad_request");
  }
  SECTION("a bad chunk size") {
    require_transport_error(f,
                            "POST /p HTTP/1.1\r\nHost: t\r\nTransfer-Encoding:"
                            " chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
                            400, "bad_request");
  }
  SECTION("a garbage request line") {
    require_transport_error(f, "HELLO\x01 THERE\r\n\r\n", 400, "bad_request");
  }
  SECTION("binary noise") {
    std::string noise;
    for (int i = 0; i < 300; ++i)
      noise += static_cast<char>((i * 37 + 11) % 256);
    require_transport_error(f, noise, 400, "bad_request");
  }
  SECTION("a transfer coding other than chunked") {
    require_transport_error(
      f, "POST /p HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n", 400,
      "bad_request");
  }
  SECTION("an unknown HTTP version") {
    require_transport_error(f, "GET / HTTP/2.0\r\n\r\n", 400, "bad_request");
  }
  // Found by tests/fuzz/fuzz_http_request: Beast reads a coding only up to
  // its first byte that is not a token character, so it took each of these
  // for chunked, where a proxy in front may frame the body otherwise.
  for (const char* coding : {"chunked\xd7", "chunked x", "chunked;a=b",
                             "chunked\"", "chunked, \xd7"}) {
    DYNAMIC_SECTION("Transfer-Encoding: " << coding) {
      require_transport_error(f,
                              std::string("POST /p HTTP/1.1\r\nHost: t\r\n"
                                          "Transfer-Encoding: ")
                                + coding + "\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
                              400, "bad_request");
    }
  }
  // Found by the fuzzer too: Beast adds trailer fields to the header's, so
  // a trailer gave the handler an Authorization no proxy had seen.
  SECTION("a chunked body with trailer fields") {
    require_transport_error(f,
                            "POST /p HTTP/1.1\r\nHost: t\r\nTransfer-Encoding:"
                            " chunked\r\n\r\n3\r\nabc\r\n0\r\n"
                            "Authorization: Bearer x\r\n\r\n",
                            400, "bad_request");
  }
}

TEST_CASE("http: the detail of a 400 names the parser's complaint", "[http]") {
  fixture f(test_config());
  client c(f.port());
  c.send("POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: x\r\n\r\n");
  auto r = c.read_reply();
  REQUIRE(r);
  CHECK(r->status == 400);
  CHECK(r->body.find("malformed request: ") != std::string::npos);
  CHECK(r->body.find("Content-Length") != std::string::npos);
}

TEST_CASE("http: slow or stalled requests are 408", "[http]") {
  auto cfg = test_config();
  cfg.request_timeout_ms = 300;
  fixture f(cfg);
  SECTION("a Content-Length longer than the body sent") {
    require_transport_error(
      f, "POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc", 408,
      "request_timeout");
  }
  SECTION("a client sending one byte at a time") {
    client c(f.port());
    std::string req = get("/slow", "X-Slow: " + std::string(300, 's') + "\r\n");
    // 20 ms a byte: the whole request would take over 6 s.
    for (std::size_t i = 0; i < req.size() && !c.readable(); ++i) {
      if (!c.send(req.substr(i, 1)))
        break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    auto r = c.read_reply();
    REQUIRE(r);
    CHECK(r->status == 408);
    CHECK(r->body.find("\"code\":\"request_timeout\"") != std::string::npos);
    CHECK(c.closed_by_peer());
    require_serves(f.port());
  }
}

TEST_CASE("http: an idle connection is closed without an answer", "[http]") {
  auto cfg = test_config();
  cfg.idle_timeout_ms = 200;
  fixture f(cfg);
  client used(f.port());
  // Had this thread slept past the idle timeout, the connection is closed
  // already, which is what is tested below.
  if (used.send(get("/x"))) {
    auto r = used.read_reply();
    CHECK((!r || r->status == 200));
  }
  client silent(f.port());
  REQUIRE(silent.connected());
  CHECK(used.closed_by_peer());
  CHECK(silent.closed_by_peer());
  CHECK(eventually([&] { return f.srv().stats().connections_open == 0; }));
  require_serves(f.port());
}

TEST_CASE("http: connections over the maximum get 503 overloaded", "[http]") {
  auto cfg = test_config();
  cfg.connections_max = 2;
  fixture f(cfg);
  auto first = std::make_unique<client>(f.port());
  client second(f.port());
  for (client* c : {first.get(), &second}) {
    REQUIRE(c->send(get("/x")));
    REQUIRE(c->read_reply());
  }
  client third(f.port());
  REQUIRE(third.connected());
  auto r = third.read_reply();
  REQUIRE(r);
  CHECK(r->status == 503);
  CHECK(r->header("connection") == "close");
  CHECK(r->body.find("\"code\":\"overloaded\"") != std::string::npos);
  CHECK(third.closed_by_peer());
  CHECK(f.srv().stats().connections_refused == 1);
  // The server keeps accepting: once a connection goes, a new one is served.
  first.reset();
  REQUIRE(eventually([&] { return f.srv().stats().connections_open < 2; }));
  require_serves(f.port());
}

TEST_CASE("http: mangled requests never break the server", "[http]") {
  auto cfg = test_config();
  cfg.request_timeout_ms = 200;
  cfg.idle_timeout_ms = 200;
  fixture f(cfg);
  std::mt19937 rng(20240611); // fixed seed: a failure replays
  const std::string valid = "POST /echo?q=1 HTTP/1.1\r\nHost: t\r\n"
                            "Transfer-Encoding: chunked\r\n\r\n"
                            "5\r\nhello\r\n0\r\n\r\n"
                            + get("/next", "Content-Length: 2\r\n") + "ok";
  for (int i = 0; i < 200; ++i) {
    std::string bytes = valid;
    int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k)
      bytes[rng() % bytes.size()] = static_cast<char>(rng() % 256);
    if (rng() % 3 == 0)
      bytes.resize(rng() % bytes.size());
    client c(f.port());
    REQUIRE(c.connected());
    c.send(bytes);
    if (i % 2 == 0)
      c.shutdown_send();
    // Whatever comes back is well framed; nothing is asserted on timing.
    while (auto r = c.read_reply(false, 50))
      CHECK(r->status >= 200);
  }
  require_serves(f.port());
  CHECK(eventually([&] { return f.srv().stats().connections_open <= 1; }));
}

// -- The handler's answers ----------------------------------------------------

TEST_CASE(
  "http: no answer in time is 503 timeout, and the late reply is ignored",
  "[http]") {
  auto cfg = test_config();
  cfg.answer_timeout_ms = 300;
  fixture f(cfg);
  client c(f.port());
  REQUIRE(c.send(get("/late")));
  auto r = c.read_reply();
  REQUIRE(r);
  CHECK(r->status == 503);
  CHECK(r->body.find("\"code\":\"timeout\"") != std::string::npos);
  CHECK(r->header("connection").empty()); // the connection stays usable
  auto held = f.held();
  REQUIRE(held.size() == 1);
  held[0](text("too late"));
  REQUIRE(c.send(get("/after")));
  auto next = c.read_reply();
  REQUIRE(next);
  CHECK(next->body == "GET /after ");
  CHECK_FALSE(c.readable());
  auto s = f.srv().stats();
  CHECK(s.answer_timeouts == 1);
  CHECK(eventually([&] { return f.srv().stats().requests_inflight == 0; }));
}

TEST_CASE("http: a second reply is ignored", "[http]") {
  fixture f(test_config());
  client c(f.port());
  REQUIRE(c.send(get("/twice") + get("/next")));
  auto r = c.read_reply();
  REQUIRE(r);
  CHECK(r->body == "first");
  auto next = c.read_reply();
  REQUIRE(next);
  CHECK(next->body == "GET /next ");
  CHECK_FALSE(c.readable());
}

TEST_CASE("http: a handler that throws costs one 503, not the server",
          "[http]") {
  fixture f(test_config());
  client c(f.port());
  REQUIRE(c.send(get("/throw") + get("/next")));
  auto r = c.read_reply();
  REQUIRE(r);
  CHECK(r->status == 503);
  auto next = c.read_reply();
  REQUIRE(next);
  CHECK(next->body == "GET /next ");
}

TEST_CASE("http: a reply after stop() touches nothing", "[http]") {
  std::vector<reply_fn> held;
  {
    fixture f(test_config());
    client c(f.port());
    REQUIRE(c.send(get("/late")));
    REQUIRE(eventually([&] { return f.held().size() == 1; }));
    held = f.held();
    f.srv().stop();
    f.srv().stop(); // idempotent
    CHECK(c.closed_by_peer());
    held[0](text("after stop"));
  }
  held[0](text("after destruction"));
}

// -- Shutting down ------------------------------------------------------------

TEST_CASE(
  "http: stop_accepting refuses new requests, and drain waits for replies",
  "[http]") {
  fixture f(test_config());
  client busy(f.port());
  client other(f.port());
  REQUIRE(other.send(get("/x")));
  REQUIRE(other.read_reply());
  REQUIRE(busy.send(get("/delay/300")));
  REQUIRE(eventually([&] { return f.srv().stats().requests == 2; }));

  f.srv().stop_accepting();
  REQUIRE(other.send(get("/y")));
  auto refused = other.read_reply();
  REQUIRE(refused);
  CHECK(refused->status == 503);
  CHECK(refused->header("connection") == "close");
  CHECK(refused->body.find("\"code\":\"overloaded\"") != std::string::npos);
  CHECK(other.closed_by_peer());
  client late(f.port());
  CHECK_FALSE(late.connected()); // the listening socket is gone

  CHECK(f.srv().drain(wait_ms_max));
  CHECK(f.srv().stats().requests_inflight == 0);
  auto r = busy.read_reply();
  REQUIRE(r);
  CHECK(r->body == "delayed /delay/300");
}

TEST_CASE("http: drain gives up after its timeout", "[http]") {
  fixture f(test_config());
  client c(f.port());
  REQUIRE(c.send(get("/late")));
  REQUIRE(eventually([&] { return f.srv().stats().requests_inflight == 1; }));
  CHECK_FALSE(f.srv().drain(50));
}

TEST_CASE("http: start reports a port that cannot be bound", "[http]") {
  fixture f(test_config());
  server_config cfg = test_config();
  cfg.port = f.port();
  std::string error;
  auto second = server::start(
    cfg, [](request, reply_fn) {}, error);
  CHECK_FALSE(second);
  CHECK(error.find("cannot bind 127.0.0.1:") != std::string::npos);
}

TEST_CASE("http: the event-loop probe reports its lateness and next due point",
          "[http]") {
  auto cfg = test_config();
  struct seen_t {
    std::mutex mtx;
    int calls = 0;
    int64_t last_due = 0;
    bool due_in_future = true;
  };
  auto seen = std::make_shared<seen_t>();
  cfg.loop_probe_ms = 2;
  cfg.loop_probe = [seen](int64_t late_us, int64_t due_us) {
    auto now = std::chrono::duration_cast<std::chrono::microseconds>(
                 std::chrono::steady_clock::now().time_since_epoch())
                 .count();
    std::lock_guard lock(seen->mtx);
    seen->calls += 1;
    seen->due_in_future &= due_us > now - 1'000 && late_us >= 0;
    seen->last_due = due_us;
  };
  fixture f(cfg);
  CHECK(eventually([&] {
    std::lock_guard lock(seen->mtx);
    return seen->calls >= 5;
  }));
  std::lock_guard lock(seen->mtx);
  CHECK(seen->due_in_future);
}
