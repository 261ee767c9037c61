// Process-level test harness: starts the real seckill-node binary on
// 127.0.0.1 with free ports and a temporary data dir, waits until it says it
// is ready, talks to it over real HTTP (a small blocking client on raw
// sockets, so hostile bytes can be sent too), runs seckill-cli, and stops
// the node by its own pid (SIGTERM, or SIGKILL for crash tests). Three
// nodes form a cluster (cluster_of_three) on ports reserved before they
// start, since every member needs the whole list.
//
// Every wait here is bounded; a node that does not become ready in time is
// killed and the test fails with the tail of its log.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace seckill::test {

/// A running seckill-node child process.
class node_process {
public:
  /// Starts `SECKILL_NODE_BIN --config-file=<source>/cluster.conf
  /// --seckill.data-dir=DIR --seckill.http-port=0 --cluster.port=0
  /// --seckill.admin-token=TOKEN --seckill.synchronous=NORMAL` plus `extra`
  /// (later arguments win), stdout and stderr to DIR/../node-P-N.log (P:
  /// the test process's pid, N: a counter, so a restart on the same DIR
  /// writes a new log; logs stay after the node exits). Waits (at most
  /// 20 s) for the log line `node_ready ... http=HOST:PORT
  /// cluster=HOST:PORT`. `data_dir` must exist or be creatable. Throws
  /// std::runtime_error with the log's tail if the node exits or is not
  /// ready in time (it is killed then). The child gets SIGKILL if the
  /// thread that started it dies (PR_SET_PDEATHSIG).
  node_process(std::string data_dir, std::vector<std::string> extra = {});
  ~node_process(); // SIGKILL if still running, then reap

  node_process(const node_process&) = delete;
  node_process& operator=(const node_process&) = delete;

  pid_t pid() const { return pid_; }
  uint16_t http_port() const { return http_port_; }
  uint16_t cluster_port() const { return cluster_port_; }
  const std::string& data_dir() const { return data_dir_; }
  const std::string& log_path() const { return log_path_; }
  static const char* token() { return "test-admin-token"; }
  /// The secrets every harness node is started with (so the tests mint
  /// buyer JWTs and sale tokens as the site's login service and a node do).
  static const char* buyer_secret() {
    return "test-buyer-jwt-secret-0123456789abcdef";
  }
  static const char* sale_secret() {
    return "test-sale-secret-0123456789abcdefghij";
  }

  /// SIGTERM, then waits (at most `timeout_ms`) and returns the exit code
  /// (-1 if it did not exit in time: it is then SIGKILLed; 128+N if it died
  /// of signal N).
  int terminate(int64_t timeout_ms = 15'000);

  /// SIGKILL and reap.
  void kill9();

  /// Whether the process is still running (reaps it if it exited).
  bool alive();

  /// The whole log so far.
  std::string log() const;

private:
  std::string data_dir_;
  std::string log_path_;
  pid_t pid_ = -1;
  uint16_t http_port_ = 0;
  uint16_t cluster_port_ = 0;
  int exit_code_ = -1;
};

/// One parsed HTTP response.
struct http_reply {
  int status = 0; // 0: no response (connection closed or timed out)
  std::map<std::string, std::string> headers; // names lower-cased
  std::string body;
  bool closed = false; // the server closed the connection after it
  std::string header(const std::string& lower_name) const;
};

/// A blocking HTTP/1.1 client on one keep-alive connection to 127.0.0.1.
class http_client {
public:
  /// `source_ip`: the local address to connect from (another loopback
  /// address such as 127.0.0.2 stands for another client); empty: the
  /// kernel's choice (127.0.0.1).
  explicit http_client(uint16_t port, int64_t timeout_ms = 10'000,
                       std::string source_ip = {});
  ~http_client();

  http_client(const http_client&) = delete;
  http_client& operator=(const http_client&) = delete;

  bool connected() const { return fd_ >= 0; }

  /// The bound of every later wait (send_raw, read_reply, request).
  void set_timeout_ms(int64_t ms) { timeout_ms_ = ms; }

  /// On (the default), request() adds a buyer JWT (buyer_header) to a
  /// request on a buyer route that names its user (the body's user_id or
  /// the query's) and has no Authorization header: the tests written before
  /// buyers signed in keep their meaning. Off: sent as given.
  void set_auto_buyer(bool on) { auto_buyer_ = on; }

  /// Sends one well-formed request (Host, Content-Length and, if a body is
  /// given, Content-Type: application/json added) and reads its response.
  /// Reconnects first if the previous response closed the connection (or
  /// said it would, or the server closed it while it was idle); never
  /// resends a request. status 0 if no complete answer came in time.
  http_reply request(const std::string& method, const std::string& target,
                     const std::string& body = {},
                     const std::vector<std::string>& extra_headers = {});

  /// Writes raw bytes as they are (for hostile tests). False if the write
  /// failed (the server closed the connection).
  bool send_raw(const std::string& bytes);

  /// Reads one response (Content-Length or chunked). status 0 if the
  /// connection closed or nothing complete arrived within the timeout.
  http_reply read_reply();

  /// True if the server closed the connection (EOF) within `timeout_ms`.
  bool wait_closed(int64_t timeout_ms);

  void reconnect();

private:
  enum class read_result { data, eof, timeout };
  /// One recv into buffered_, waiting at most until `deadline_ms` (steady).
  read_result read_some(int64_t deadline_ms);

  uint16_t port_;
  int64_t timeout_ms_;
  std::string source_ip_;
  int fd_ = -1;
  std::string buffered_; // bytes read past the last response
  bool closing_ = false; // the last response said Connection: close
  bool auto_buyer_ = true;
};

/// A JSON value's text for `key` in a flat JSON object: `"key":"v"` -> v,
/// `"key":12` -> 12 (proto3 prints int64 as strings; both forms are read).
/// "" if absent. Enough for seckill's flat answers; not a JSON parser.
std::string json_field(const std::string& json, const std::string& key);
int64_t json_int(const std::string& json, const std::string& key);

/// Milliseconds since the Unix epoch (the node's time base).
int64_t epoch_ms();

/// The header line that authorizes admin calls on a node_process.
std::string admin_header();

/// A buyer JWT for `user` signed with node_process::buyer_secret(), valid
/// for `ttl_s` from now; the header line that carries it.
std::string buyer_jwt(const std::string& user, int64_t ttl_s = 3600);
std::string buyer_header(const std::string& user);

/// A sale token for `user` and `item` as a harness node issues it (valid
/// for an hour).
std::string sale_token(const std::string& user, const std::string& item);

/// The user a request on a buyer route names (the body's user_id, else the
/// query's); "" for any other route.
std::string buyer_of(const std::string& target, const std::string& body);

/// An item to create through POST /api/v1/items.
struct item_def {
  std::string item_id;
  int64_t total = 100;
  int64_t per_user_limit = 1;
  std::string mode = "order"; // order | reserve | pay
  int64_t reserve_ttl_ms = 60'000;
  int64_t starts_at_ms = 0;
  int64_t ends_at_ms = 0;
  std::string admission = "token"; // open | token | quiz
  std::string json() const;
};

/// POST /api/v1/items with the admin token.
http_reply create_item(http_client& c, const item_def& item);

/// POST /api/v1/items/{item}/purchase {user_id, quantity, request_id,
/// sale_token} with the user's buyer JWT; the sale token is minted here
/// (sale_token()), as the node would issue it.
http_reply purchase(http_client& c, const std::string& item,
                    const std::string& user, int64_t quantity,
                    const std::string& request_id);

/// POST /api/v1/orders/{order}/{action} {user_id} (action: pay, cancel).
http_reply order_action(http_client& c, const std::string& order,
                        const std::string& action, const std::string& user);

/// "" if `r` is the problem+json answer `status` with code `code`, else
/// what differs, with the whole answer (for CHECK(... == "")).
std::string problem_mismatch(const http_reply& r, int status,
                             const std::string& code);

/// Runs `binary` with `args` (stdout and stderr to a temporary file), at
/// most `timeout_ms` (then SIGKILL); returns the exit code (128+N for
/// signal N, -1 on timeout) and stdout+stderr in `output`.
int run_process(const std::string& binary, const std::vector<std::string>& args,
                std::string& output, int64_t timeout_ms = 10'000);

/// Runs SECKILL_CLI_BIN with `args`, at most `timeout_ms`; returns the exit
/// code (-1 on timeout) and stdout+stderr in `output`. A command to a node
/// (`--node`) without --token or --data-dir gets the harness's admin token
/// (node_process::token()); run_process(SECKILL_CLI_BIN, ...) sends none.
int run_cli(const std::vector<std::string>& args, std::string& output,
            int64_t timeout_ms = 10'000);

// -- clusters --------------------------------------------------------------

/// `n` distinct free TCP ports on 127.0.0.1: each found by binding port 0
/// and reading the port the kernel chose; all `n` sockets are held until
/// every port is known (so they differ), then closed. Another program may
/// take one before it is used (rare on a test machine; the node then fails
/// to start and says so). Throws std::runtime_error if a socket fails.
std::vector<uint16_t> reserve_ports(std::size_t n);

/// How many times `needle` occurs in `text` (non-overlapping).
std::size_t count_of(const std::string& text, const std::string& needle);

/// Waits until `node`'s log holds `needle` at least `times` times, polling
/// every 10 ms for at most `timeout_ms`. False on timeout.
bool wait_for_log(const node_process& node, const std::string& needle,
                  std::size_t times, int64_t timeout_ms);

/// Three seckill-node processes n1, n2, n3 forming one cluster on
/// 127.0.0.1: cluster ports reserved before the start (every node needs the
/// whole member list), data dirs BASE/n1..n3, the middleman's heartbeats on
/// (200ms / 1s) so that a lost peer is noticed. The constructor waits (at
/// most 15 s) until every node has logged `peer_up` for both peers; it
/// throws std::runtime_error with the logs' tails otherwise. Node i (0, 1,
/// 2) is the member with id ids()[i]. Items created through create_items()
/// are remembered, so that wait_joined() knows which nodes must exchange
/// items after a restart. Every process is stopped by its own pid
/// (node_process); the destructor SIGKILLs whatever still runs.
class cluster_of_three {
public:
  static constexpr std::size_t size = 3;

  /// `extra` goes on every node's command line (and again on restarts),
  /// before the cluster's own arguments.
  explicit cluster_of_three(const std::string& base_dir,
                            std::vector<std::string> extra = {});
  ~cluster_of_three();

  cluster_of_three(const cluster_of_three&) = delete;
  cluster_of_three& operator=(const cluster_of_three&) = delete;

  node_process& node(std::size_t i) { return *nodes_.at(i); }
  uint16_t http_port(std::size_t i) const { return nodes_.at(i)->http_port(); }
  const std::vector<std::string>& ids() const { return ids_; }

  /// The index of the node that owns `item_id` (seckill::item_owner).
  std::size_t owner_of(const std::string& item_id) const;

  /// Creates `items` through node `via` (with the admin token), then waits
  /// (at most 10 s) until every node lists every one of them in GET
  /// /api/v1/items (the owner has announced it). "" on success, else what
  /// failed.
  std::string create_items(const std::vector<item_def>& items,
                           std::size_t via = 0);

  /// Starts node i again with the same arguments on the same data dir and
  /// cluster port (a new log file). The old process must have exited
  /// (node(i).kill9() or terminate() first): throws std::runtime_error if
  /// it still runs, or if the new one does not become ready. Does not wait
  /// for the cluster: see wait_joined().
  void restart(std::size_t i);

  /// Waits (at most `timeout_ms`) until node i and each other node j have
  /// seen each other up since node i was last (re)started: i's log has
  /// `peer_up peer=<j>` and j's log one more `peer_up peer=<i>` than before
  /// the start; and, where they own items created through create_items(),
  /// each has adopted the other's (`items_adopted from=...`), so that
  /// every node's edge queues route to the new process. "" on success,
  /// else what is missing, with the logs' tails.
  std::string wait_joined(std::size_t i, int64_t timeout_ms = 15'000);

  /// Node i's cluster arguments (extra, the member list, its id, the
  /// heartbeats): another process can be started in its place with them.
  std::vector<std::string> node_args(std::size_t i) const;

  /// Node i's data directory.
  std::string data_dir(std::size_t i) const;

private:
  std::string tails() const;

  std::string base_;
  std::vector<std::string> extra_;
  std::vector<std::string> ids_;     // n1, n2, n3
  std::vector<std::string> members_; // ID@127.0.0.1:PORT
  std::vector<std::unique_ptr<node_process>> nodes_;
  std::vector<bool> owns_items_; // by node: owns an item made here
  // By restarted node i, by other node j: j's counts of `peer_up peer=<i>`
  // and `items_adopted from=<i>` just before i was (re)started.
  std::vector<std::vector<std::size_t>> up_before_;
  std::vector<std::vector<std::size_t>> adopted_before_;
};

} // namespace seckill::test
