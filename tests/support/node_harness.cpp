// The process-level test harness (see node_harness.hpp): child processes by
// fork+exec with their output in a file (never a pipe: a full pipe would
// block the child), a small blocking HTTP/1.1 client on raw POSIX sockets
// with poll() deadlines, a flat JSON field reader, and a three-node
// cluster fixture on reserved ports.
//
// Every wait is bounded by a deadline; every process it starts is stopped
// by its own pid; it never signals anything else.
#include "tests/support/node_harness.hpp"

#include "messages/buyer_tokens.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "actors/base/placement.hpp"

namespace seckill::test {

namespace {

constexpr int64_t ready_wait_ms_max = 20'000;
constexpr int64_t poll_step_ms = 10;
constexpr std::size_t log_tail_bytes = 4'000;
constexpr std::size_t reply_bytes_max = 64 << 20; // a runaway answer

int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::steady_clock::now().time_since_epoch())
    .count();
}

void sleep_ms(int64_t ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

std::string read_whole_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string tail_of(const std::string& text) {
  return text.size() <= log_tail_bytes
           ? text
           : text.substr(text.size() - log_tail_bytes);
}

/// Decodes a waitpid status: the exit code, or 128+N for signal N.
int exit_code_of(int status) {
  if (WIFEXITED(status))
    return WEXITSTATUS(status);
  if (WIFSIGNALED(status))
    return 128 + WTERMSIG(status);
  return -1;
}

/// Forks and execs `argv[0]` with stdout and stderr appended to `out_path`.
/// Everything the child needs is prepared before the fork, because between
/// fork and exec a multi-threaded parent's child may only make
/// async-signal-safe calls. Returns the child's pid, or -1.
pid_t spawn(const std::vector<std::string>& args, const std::string& out_path,
            bool die_with_parent) {
  std::vector<char*> argv;
  for (const auto& a : args)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  int out =
    ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (out < 0)
    return -1;
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid == 0) {
    if (die_with_parent) {
      // A test process that dies must not leave a node behind.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent)
        ::_exit(127);
    }
    ::dup2(out, 1);
    ::dup2(out, 2);
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0)
      ::dup2(devnull, 0);
    for (int fd = 3; fd < 1024; ++fd)
      ::close(fd);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(out);
  return pid;
}

/// Waits at most `timeout_ms` for `pid`; the exit code, or -2 if it is
/// still running.
int wait_exit(pid_t pid, int64_t timeout_ms) {
  auto deadline = steady_ms() + timeout_ms;
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid)
      return exit_code_of(status);
    if (r < 0 && errno != EINTR)
      return -1; // not our child any more
    if (steady_ms() >= deadline)
      return -2;
    sleep_ms(poll_step_ms);
  }
}

/// Parses "HOST:PORT" after `key=` in `line`; 0 if absent or malformed.
uint16_t port_after(const std::string& line, const std::string& key) {
  auto at = line.find(" " + key + "=");
  if (at == std::string::npos)
    return 0;
  auto start = at + key.size() + 2;
  auto end = line.find_first_of(" \t\r\n", start);
  auto addr = line.substr(start, end == std::string::npos ? std::string::npos
                                                          : end - start);
  auto colon = addr.rfind(':');
  if (colon == std::string::npos)
    return 0;
  long port = std::strtol(addr.c_str() + colon + 1, nullptr, 10);
  return port > 0 && port <= 65535 ? static_cast<uint16_t>(port) : 0;
}

std::string lower(std::string s) {
  for (auto& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos)
    return {};
  auto e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

} // namespace

// -- node_process -----------------------------------------------------------

node_process::node_process(std::string data_dir, std::vector<std::string> extra)
  : data_dir_(std::move(data_dir)) {
  static std::atomic<int> counter{0};
  std::filesystem::create_directories(data_dir_);
  auto parent = std::filesystem::absolute(data_dir_).parent_path();
  // The test process's pid keeps logs of tests running in parallel apart.
  log_path_ = (parent
               / ("node-" + std::to_string(::getpid()) + "-"
                  + std::to_string(counter++) + ".log"))
                .string();
  std::vector<std::string> args{
    SECKILL_NODE_BIN,
    std::string("--config-file=") + SECKILL_SOURCE_DIR + "/cluster.conf",
    "--seckill.data-dir=" + data_dir_, "--seckill.http-port=0",
    "--cluster.port=0", std::string("--seckill.admin-token=") + token(),
    "--seckill.synchronous=NORMAL",
    std::string("--seckill.buyer-jwt-secret=") + buyer_secret(),
    std::string("--seckill.sale-secret=") + sale_secret(),
    // Lag shedding off: a test that does not test it must not fail because
    // a busy machine stalled the node; one that does passes its own value.
    "--seckill.shed-lag-ms=0"};
  args.insert(args.end(), extra.begin(), extra.end());
  pid_ = spawn(args, log_path_, true);
  if (pid_ < 0)
    throw std::runtime_error("cannot start " + args[0] + ": "
                             + std::strerror(errno));
  auto deadline = steady_ms() + ready_wait_ms_max;
  while (steady_ms() < deadline) {
    auto text = log();
    auto at = text.find("node_ready");
    auto eol = at == std::string::npos ? at : text.find('\n', at);
    if (eol != std::string::npos) {
      auto line = text.substr(at, eol - at);
      http_port_ = port_after(line, "http");
      cluster_port_ = port_after(line, "cluster");
      if (http_port_ != 0)
        return;
      break; // a ready line without a port: report it
    }
    if (!alive())
      throw std::runtime_error(
        "seckill-node exited with code " + std::to_string(exit_code_)
        + " before it was ready; log:\n" + tail_of(log()));
    sleep_ms(20);
  }
  kill9();
  throw std::runtime_error("seckill-node not ready (no usable node_ready line "
                           "within 20 s); log:\n"
                           + tail_of(log()));
}

node_process::~node_process() {
  if (pid_ > 0)
    kill9();
}

int node_process::terminate(int64_t timeout_ms) {
  if (pid_ <= 0)
    return exit_code_;
  ::kill(pid_, SIGTERM);
  int code = wait_exit(pid_, timeout_ms);
  if (code == -2) {
    kill9();
    exit_code_ = -1;
    return -1;
  }
  exit_code_ = code;
  pid_ = -1;
  return code;
}

void node_process::kill9() {
  if (pid_ <= 0)
    return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  exit_code_ = exit_code_of(status);
  pid_ = -1;
}

bool node_process::alive() {
  if (pid_ <= 0)
    return false;
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == 0)
    return true;
  if (r == pid_)
    exit_code_ = exit_code_of(status);
  pid_ = -1;
  return false;
}

std::string node_process::log() const {
  return read_whole_file(log_path_);
}

// -- http_reply -------------------------------------------------------------

std::string http_reply::header(const std::string& lower_name) const {
  auto i = headers.find(lower_name);
  return i == headers.end() ? std::string{} : i->second;
}

// -- http_client ------------------------------------------------------------

http_client::http_client(uint16_t port, int64_t timeout_ms,
                         std::string source_ip)
  : port_(port), timeout_ms_(timeout_ms), source_ip_(std::move(source_ip)) {
  reconnect();
}

http_client::~http_client() {
  if (fd_ >= 0)
    ::close(fd_);
}

void http_client::reconnect() {
  if (fd_ >= 0)
    ::close(fd_);
  fd_ = -1;
  buffered_.clear();
  closing_ = false;
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return;
  if (!source_ip_.empty()) {
    sockaddr_in local{};
    local.sin_family = AF_INET;
    if (::inet_pton(AF_INET, source_ip_.c_str(), &local.sin_addr) != 1
        || ::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof(local))
             != 0) {
      ::close(fd);
      return;
    }
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port_);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int rc;
  do {
    rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) {
    ::close(fd);
    return;
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  fd_ = fd;
}

namespace {

/// True if the peer has closed `fd` (EOF or reset pending) without waiting.
bool peer_gone(int fd) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, 0) <= 0)
    return false;
  char c;
  auto n = ::recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

} // namespace

http_reply http_client::request(const std::string& method,
                                const std::string& target,
                                const std::string& body,
                                const std::vector<std::string>& extra_headers) {
  // A keep-alive connection the server closed while idle is reopened; one
  // that is still open is used as it is (no hidden retries).
  if (fd_ < 0 || closing_ || peer_gone(fd_))
    reconnect();
  if (fd_ < 0)
    return {};
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1:"
                    + std::to_string(port_) + "\r\n";
  bool has_type = false;
  bool has_auth = false;
  for (const auto& h : extra_headers) {
    req += h + "\r\n";
    if (lower(h).rfind("content-type:", 0) == 0)
      has_type = true;
    if (lower(h).rfind("authorization:", 0) == 0)
      has_auth = true;
  }
  if (auto user = buyer_of(target, body);
      auto_buyer_ && !has_auth && !user.empty())
    req += buyer_header(user) + "\r\n";
  if (!body.empty() && !has_type)
    req += "Content-Type: application/json\r\n";
  if (!body.empty() || (method != "GET" && method != "HEAD"))
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  req += "\r\n" + body;
  if (!send_raw(req)) {
    http_reply r;
    r.closed = true;
    return r;
  }
  return read_reply();
}

bool http_client::send_raw(const std::string& bytes) {
  if (fd_ < 0)
    return false;
  auto deadline = steady_ms() + timeout_ms_;
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    auto left = deadline - steady_ms();
    if (left <= 0)
      return false;
    // While waiting to write, read what the server answers, so that a
    // large pipelined write cannot deadlock against unread answers.
    pollfd p{fd_, POLLOUT | POLLIN, 0};
    int rc = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 100)));
    if (rc < 0 && errno != EINTR)
      return false;
    if (rc <= 0)
      continue;
    if ((p.revents & POLLIN) != 0) {
      char buf[65536];
      auto n = ::recv(fd_, buf, sizeof(buf), MSG_DONTWAIT);
      if (n > 0)
        buffered_.append(buf, static_cast<std::size_t>(n));
    }
    if ((p.revents & (POLLERR | POLLHUP)) != 0 && (p.revents & POLLOUT) == 0)
      return false;
    if ((p.revents & POLLOUT) == 0)
      continue;
    auto n = ::send(fd_, bytes.data() + sent, bytes.size() - sent,
                    MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        continue;
      return false;
    }
    sent += static_cast<std::size_t>(n);
  }
  return true;
}

namespace {

/// Where a complete chunked body ends in `data` (from `start`), with the
/// de-chunked body in `out`; npos if incomplete; `bad` if malformed.
std::size_t dechunk(const std::string& data, std::size_t start,
                    std::string& out, bool& bad) {
  out.clear();
  std::size_t pos = start;
  for (;;) {
    auto eol = data.find("\r\n", pos);
    if (eol == std::string::npos)
      return std::string::npos;
    auto size_text = data.substr(pos, eol - pos);
    char* end = nullptr;
    unsigned long long size = std::strtoull(size_text.c_str(), &end, 16);
    if (end == size_text.c_str()) {
      bad = true;
      return std::string::npos;
    }
    pos = eol + 2;
    if (size == 0) {
      // Trailers, then an empty line.
      for (;;) {
        auto t = data.find("\r\n", pos);
        if (t == std::string::npos)
          return std::string::npos;
        bool empty = t == pos;
        pos = t + 2;
        if (empty)
          return pos;
      }
    }
    if (data.size() < pos + size + 2)
      return std::string::npos;
    out.append(data, pos, size);
    pos += size + 2;
  }
}

} // namespace

http_client::read_result http_client::read_some(int64_t deadline_ms) {
  for (;;) {
    auto left = deadline_ms - steady_ms();
    if (left <= 0)
      return read_result::timeout;
    pollfd p{fd_, POLLIN, 0};
    int rc = ::poll(&p, 1, static_cast<int>(left));
    if (rc < 0 && errno == EINTR)
      continue;
    if (rc <= 0)
      return read_result::timeout;
    char buf[65536];
    auto n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n > 0) {
      buffered_.append(buf, static_cast<std::size_t>(n));
      return read_result::data;
    }
    if (n < 0 && errno == EINTR)
      continue;
    return read_result::eof;
  }
}

http_reply http_client::read_reply() {
  http_reply r;
  auto deadline = steady_ms() + timeout_ms_;
  bool eof = false;
  // Reads more bytes into buffered_; false on EOF, error or the deadline.
  auto fill = [&]() -> bool {
    if (fd_ < 0 || eof)
      return false;
    switch (read_some(deadline)) {
      case read_result::data: return buffered_.size() < reply_bytes_max;
      case read_result::eof: eof = true; return false;
      case read_result::timeout: return false;
    }
    return false;
  };
  auto finish_closed = [&] {
    if (fd_ >= 0)
      ::close(fd_);
    fd_ = -1;
    r.closed = true;
  };
  std::size_t head_end;
  while ((head_end = buffered_.find("\r\n\r\n")) == std::string::npos)
    if (!fill()) {
      if (eof)
        finish_closed();
      return r;
    }
  std::istringstream head(buffered_.substr(0, head_end));
  std::string line;
  std::getline(head, line);
  if (line.rfind("HTTP/1.", 0) != 0 || line.size() < 12) {
    finish_closed(); // not HTTP: nothing more can be trusted
    return r;
  }
  int status = std::atoi(line.c_str() + 9);
  while (std::getline(head, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos)
      continue;
    auto name = lower(trim(line.substr(0, colon)));
    auto value = trim(line.substr(colon + 1));
    auto& slot = r.headers[name];
    slot = slot.empty() ? value : slot + ", " + value;
  }
  std::size_t body_start = head_end + 4;
  std::size_t body_end = body_start;
  bool no_body = status / 100 == 1 || status == 204 || status == 304;
  if (no_body) {
    // Nothing to read.
  } else if (lower(r.header("transfer-encoding")).find("chunked")
             != std::string::npos) {
    bool bad = false;
    for (;;) {
      body_end = dechunk(buffered_, body_start, r.body, bad);
      if (body_end != std::string::npos)
        break;
      if (bad || !fill()) {
        if (eof)
          finish_closed();
        return http_reply{0, {}, {}, r.closed};
      }
    }
  } else if (!r.header("content-length").empty()) {
    auto len = std::strtoull(r.header("content-length").c_str(), nullptr, 10);
    while (buffered_.size() < body_start + len)
      if (!fill()) {
        if (eof)
          finish_closed();
        return http_reply{0, {}, {}, r.closed};
      }
    r.body = buffered_.substr(body_start, len);
    body_end = body_start + len;
  } else {
    // No length: the body runs to the end of the connection.
    while (fill()) {
    }
    r.body = buffered_.substr(body_start);
    body_end = buffered_.size();
    eof = true;
  }
  r.status = status;
  buffered_.erase(0, body_end);
  if (eof) {
    finish_closed();
  } else if (lower(r.header("connection")).find("close") != std::string::npos) {
    // The server said so; wait_closed() can still check that it does close.
    r.closed = true;
    closing_ = true;
  }
  return r;
}

bool http_client::wait_closed(int64_t timeout_ms) {
  if (fd_ < 0)
    return true;
  auto deadline = steady_ms() + timeout_ms;
  for (;;) {
    switch (read_some(deadline)) {
      case read_result::data: continue; // the rest of an answer: read on
      case read_result::timeout: return false;
      case read_result::eof:
        ::close(fd_);
        fd_ = -1;
        return true;
    }
  }
}

// -- JSON -------------------------------------------------------------------

std::string json_field(const std::string& json, const std::string& key) {
  auto needle = "\"" + key + "\"";
  std::size_t from = 0;
  for (;;) {
    auto at = json.find(needle, from);
    if (at == std::string::npos)
      return {};
    auto pos = json.find_first_not_of(" \t\r\n", at + needle.size());
    from = at + needle.size();
    if (pos == std::string::npos || json[pos] != ':')
      continue; // a value that happens to equal the key
    pos = json.find_first_not_of(" \t\r\n", pos + 1);
    if (pos == std::string::npos)
      return {};
    if (json[pos] != '"') {
      auto end = json.find_first_of(",}] \t\r\n", pos);
      return json.substr(pos, end == std::string::npos ? std::string::npos
                                                       : end - pos);
    }
    std::string out;
    for (auto i = pos + 1; i < json.size(); ++i) {
      char c = json[i];
      if (c == '"')
        return out;
      if (c == '\\' && i + 1 < json.size()) {
        char e = json[++i];
        out += e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e;
        continue;
      }
      out += c;
    }
    return out;
  }
}

int64_t json_int(const std::string& json, const std::string& key) {
  auto text = json_field(json, key);
  return text.empty() ? 0 : std::strtoll(text.c_str(), nullptr, 10);
}

// -- API helpers ------------------------------------------------------------

int64_t epoch_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

std::string admin_header() {
  return std::string("Authorization: Bearer ") + node_process::token();
}

std::string buyer_jwt(const std::string& user, int64_t ttl_s) {
  tokens::jwt_claims c;
  c.sub = user;
  c.exp_s = epoch_ms() / 1000 + ttl_s;
  return tokens::mint_jwt(node_process::buyer_secret(), c);
}

std::string buyer_header(const std::string& user) {
  return "Authorization: Bearer " + buyer_jwt(user);
}

std::string sale_token(const std::string& user, const std::string& item) {
  auto now = epoch_ms();
  return tokens::mint_sale_token(node_process::sale_secret(), user, item, now,
                                 now + 3'600'000);
}

std::string buyer_of(const std::string& target, const std::string& body) {
  bool buyer_route = target.rfind("/api/v1/orders/", 0) == 0
                     || (target.rfind("/api/v1/items/", 0) == 0
                         && (target.find("/purchase") != std::string::npos
                             || target.find("/token") != std::string::npos
                             || target.find("/quiz") != std::string::npos));
  if (!buyer_route)
    return {};
  if (auto user = json_field(body, "user_id"); !user.empty())
    return user;
  auto q = target.find("user_id=");
  if (q == std::string::npos)
    return {};
  auto user = target.substr(q + 8);
  return user.substr(0, user.find('&'));
}

std::string item_def::json() const {
  return "{\"item_id\":\"" + item_id + "\",\"name\":\"Item " + item_id
         + "\",\"total\":" + std::to_string(total)
         + ",\"per_user_limit\":" + std::to_string(per_user_limit)
         + ",\"starts_at_ms\":" + std::to_string(starts_at_ms)
         + ",\"ends_at_ms\":" + std::to_string(ends_at_ms) + ",\"mode\":\""
         + mode + "\",\"reserve_ttl_ms\":" + std::to_string(reserve_ttl_ms)
         + ",\"price_cents\":100,\"admission\":\"" + admission + "\"}";
}

http_reply create_item(http_client& c, const item_def& item) {
  return c.request("POST", "/api/v1/items", item.json(), {admin_header()});
}

http_reply purchase(http_client& c, const std::string& item,
                    const std::string& user, int64_t quantity,
                    const std::string& request_id) {
  return c.request("POST", "/api/v1/items/" + item + "/purchase",
                   "{\"user_id\":\"" + user
                     + "\",\"quantity\":" + std::to_string(quantity)
                     + ",\"request_id\":\"" + request_id
                     + "\",\"sale_token\":\"" + sale_token(user, item) + "\"}");
}

http_reply order_action(http_client& c, const std::string& order,
                        const std::string& action, const std::string& user) {
  return c.request("POST", "/api/v1/orders/" + order + "/" + action,
                   "{\"user_id\":\"" + user + "\"}");
}

std::string problem_mismatch(const http_reply& r, int status,
                             const std::string& code) {
  std::string diff;
  if (r.status != status)
    diff += " status";
  if (json_field(r.body, "code") != code)
    diff += " code";
  if (json_int(r.body, "status") != status)
    diff += " body.status";
  if (r.header("content-type").rfind("application/problem+json", 0) != 0)
    diff += " content-type";
  if (diff.empty())
    return {};
  return "expected " + std::to_string(status) + " " + code + ", differs in"
         + diff + "; got " + std::to_string(r.status) + " content-type='"
         + r.header("content-type") + "' body=" + r.body.substr(0, 500);
}

// -- child programs ---------------------------------------------------------

int run_process(const std::string& binary, const std::vector<std::string>& args,
                std::string& output, int64_t timeout_ms) {
  output.clear();
  char path[] = "/tmp/seckill-run-XXXXXX";
  int fd = ::mkstemp(path);
  if (fd < 0)
    return -1;
  ::close(fd);
  std::vector<std::string> argv{binary};
  argv.insert(argv.end(), args.begin(), args.end());
  pid_t pid = spawn(argv, path, true);
  int code = -1;
  if (pid > 0) {
    code = wait_exit(pid, timeout_ms);
    if (code == -2) {
      ::kill(pid, SIGKILL);
      int status = 0;
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      code = -1;
    }
  }
  output = read_whole_file(path);
  ::unlink(path);
  return code;
}

int run_cli(const std::vector<std::string>& args, std::string& output,
            int64_t timeout_ms) {
  bool to_node = false, keyed = false;
  for (const auto& a : args) {
    to_node = to_node || a.rfind("--node", 0) == 0;
    keyed =
      keyed || a.rfind("--token", 0) == 0 || a.rfind("--data-dir", 0) == 0;
  }
  if (!to_node || keyed)
    return run_process(SECKILL_CLI_BIN, args, output, timeout_ms);
  auto with_token = args;
  with_token.push_back(std::string("--token=") + node_process::token());
  return run_process(SECKILL_CLI_BIN, with_token, output, timeout_ms);
}

// -- clusters --------------------------------------------------------------

std::vector<uint16_t> reserve_ports(std::size_t n) {
  std::vector<int> fds;
  std::vector<uint16_t> ports;
  auto close_all = [&] {
    for (int fd : fds)
      ::close(fd);
  };
  for (std::size_t k = 0; k < n; ++k) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      close_all();
      throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
    }
    fds.push_back(fd);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = 0;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) < 0
        || ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) < 0) {
      close_all();
      throw std::runtime_error(std::string("bind: ") + std::strerror(errno));
    }
    ports.push_back(ntohs(addr.sin_port));
  }
  close_all();
  return ports;
}

std::size_t count_of(const std::string& text, const std::string& needle) {
  if (needle.empty())
    return 0;
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos;
       at = text.find(needle, at + needle.size()))
    ++n;
  return n;
}

bool wait_for_log(const node_process& node, const std::string& needle,
                  std::size_t times, int64_t timeout_ms) {
  auto deadline = steady_ms() + timeout_ms;
  for (;;) {
    if (count_of(node.log(), needle) >= times)
      return true;
    if (steady_ms() >= deadline)
      return false;
    sleep_ms(poll_step_ms);
  }
}

namespace {

constexpr int64_t cluster_join_ms_max = 15'000;
constexpr int64_t items_listed_ms_max = 10'000;

std::string peer_up_of(const std::string& id) {
  return "peer_up peer=" + id + " ";
}

std::string adopted_from(const std::string& id) {
  return "items_adopted from=" + id + " ";
}

} // namespace

cluster_of_three::cluster_of_three(const std::string& base_dir,
                                   std::vector<std::string> extra)
  : base_(base_dir), extra_(std::move(extra)), owns_items_(size, false),
    up_before_(size, std::vector<std::size_t>(size, 0)),
    adopted_before_(size, std::vector<std::size_t>(size, 0)) {
  auto ports = reserve_ports(size);
  for (std::size_t i = 0; i < size; ++i) {
    ids_.push_back("n" + std::to_string(i + 1));
    members_.push_back(ids_[i] + "@127.0.0.1:" + std::to_string(ports[i]));
  }
  for (std::size_t i = 0; i < size; ++i)
    nodes_.push_back(std::make_unique<node_process>(data_dir(i), node_args(i)));
  auto deadline = steady_ms() + cluster_join_ms_max;
  for (std::size_t i = 0; i < size; ++i) {
    auto why = wait_joined(i, std::max<int64_t>(1, deadline - steady_ms()));
    if (!why.empty())
      throw std::runtime_error("the cluster did not form: " + why);
  }
}

cluster_of_three::~cluster_of_three() = default;

std::string cluster_of_three::data_dir(std::size_t i) const {
  return (std::filesystem::path(base_) / ids_.at(i)).string();
}

std::vector<std::string> cluster_of_three::node_args(std::size_t i) const {
  std::string list = "[";
  for (std::size_t k = 0; k < members_.size(); ++k)
    list += (k == 0 ? "\"" : ",\"") + members_[k] + "\"";
  list += "]";
  auto args = extra_;
  bool tls = false;
  for (const auto& a : extra_)
    tls = tls || a.rfind("--openssl.", 0) == 0;
  if (!tls) // the cluster tests without certificates, on loopback
    args.push_back("--cluster.plain-loopback=true");
  args.push_back("--cluster.nodes=" + list);
  args.push_back("--seckill.node-id=" + ids_.at(i));
  args.push_back("--middleman.heartbeat-interval=200ms");
  args.push_back("--middleman.connection-timeout=1s");
  return args;
}

std::size_t cluster_of_three::owner_of(const std::string& item_id) const {
  return seckill::item_owner(ids_, item_id);
}

std::string cluster_of_three::create_items(const std::vector<item_def>& items,
                                           std::size_t via) {
  http_client c(http_port(via));
  for (const auto& item : items) {
    auto r = create_item(c, item);
    if (r.status != 201)
      return "creating " + item.item_id + " through " + ids_.at(via)
             + " answered " + std::to_string(r.status) + " " + r.body;
    owns_items_[owner_of(item.item_id)] = true;
  }
  // Every node lists an item once its owner's announcement has arrived.
  auto deadline = steady_ms() + items_listed_ms_max;
  for (std::size_t i = 0; i < size; ++i) {
    http_client ci(http_port(i));
    for (;;) {
      auto list = ci.request("GET", "/api/v1/items").body;
      std::string missing;
      for (const auto& item : items)
        if (list.find("\"item_id\":\"" + item.item_id + "\"")
            == std::string::npos)
          missing += " " + item.item_id;
      if (missing.empty())
        break;
      if (steady_ms() >= deadline)
        return ids_[i] + " does not list" + missing + " after 10 s";
      sleep_ms(poll_step_ms);
    }
  }
  return {};
}

void cluster_of_three::restart(std::size_t i) {
  if (node(i).alive())
    throw std::runtime_error("restart: " + ids_.at(i) + " still runs");
  for (std::size_t j = 0; j < size; ++j) {
    if (j == i)
      continue;
    auto text = node(j).log();
    up_before_[i][j] = count_of(text, peer_up_of(ids_[i]));
    adopted_before_[i][j] = count_of(text, adopted_from(ids_[i]));
  }
  nodes_[i] = std::make_unique<node_process>(data_dir(i), node_args(i));
}

std::string cluster_of_three::wait_joined(std::size_t i, int64_t timeout_ms) {
  auto deadline = steady_ms() + timeout_ms;
  for (;;) {
    std::string missing;
    auto mine = node(i).log();
    for (std::size_t j = 0; j < size; ++j) {
      if (j == i)
        continue;
      auto theirs = node(j).log();
      if (count_of(mine, peer_up_of(ids_[j])) == 0)
        missing += " " + ids_[i] + " has no peer_up for " + ids_[j] + ";";
      if (count_of(theirs, peer_up_of(ids_[i])) <= up_before_[i][j])
        missing += " " + ids_[j] + " has no new peer_up for " + ids_[i] + ";";
      if (owns_items_[i]
          && count_of(theirs, adopted_from(ids_[i])) <= adopted_before_[i][j])
        missing += " " + ids_[j] + " has not adopted " + ids_[i] + "'s items;";
      if (owns_items_[j] && count_of(mine, adopted_from(ids_[j])) == 0)
        missing += " " + ids_[i] + " has not adopted " + ids_[j] + "'s items;";
    }
    if (missing.empty())
      return {};
    for (std::size_t j = 0; j < size; ++j)
      if (!node(j).alive())
        return ids_[j] + " exited;" + missing + "\n" + tails();
    if (steady_ms() >= deadline)
      return "after " + std::to_string(timeout_ms) + " ms:" + missing + "\n"
             + tails();
    sleep_ms(poll_step_ms);
  }
}

std::string cluster_of_three::tails() const {
  std::string out;
  for (std::size_t j = 0; j < size; ++j)
    out += "--- " + ids_[j] + " (" + nodes_[j]->log_path() + "):\n"
           + tail_of(nodes_[j]->log()) + "\n";
  return out;
}

} // namespace seckill::test
