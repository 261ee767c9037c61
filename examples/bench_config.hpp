// seckill-bench command line: every flag, its unit, its default and its
// bounds. A bad flag or value is a usage error that names the flag and the
// value (exit code 2), never a silent default.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace bench {

// Limits of the tool itself: each one bounds a table or a buffer.
constexpr int connections_max = 10'000;
constexpr uint64_t users_max = 10'000'000;
constexpr size_t items_max = 1'000;
constexpr size_t nodes_max = 64;
constexpr size_t backlog_max_default = 1'000'000;
constexpr uint64_t orders_max_default = 10'000'000;
constexpr size_t csv_rows_max = 86'400; // one day of seconds

struct endpoint {
  std::string host; // as given, for the Host header and the messages
  std::string port;
};

struct bench_config {
  std::vector<endpoint> nodes;
  int connections = 64;
  double duration_s = 0; // 0: bounded by --requests only
  uint64_t requests = 0; // 0: bounded by --duration-s only
  uint64_t users = 100'000;
  std::vector<std::string> items;
  bool open_loop = false;
  double rate_per_s = 0;
  double ramp_s = 0;
  double retry_share = 0;
  double double_click_share = 0;
  bool check = true;
  uint64_t limit = 1;
  std::string csv_file;
  std::string plot_file;
  uint64_t orders_max = orders_max_default;
  size_t backlog_max = backlog_max_default;
  uint64_t timeout_ms = 5'000;
  uint64_t seed = 1;
  std::string run; // user ids are b<run>-u<k>; default: the start time
  /// Buyers sign in: every purchase carries a JWT for its user signed with
  /// the secret of --buyer-jwt-secret-file (the node's buyer secret), and a
  /// sale token signed with --sale-secret-file's (as the node issues it).
  /// Empty: none sent (a node with buyer-auth open, open items).
  std::string jwt_secret;
  std::string sale_secret;
  /// --forge=true: the JWTs are signed with a wrong secret (the flood of
  /// forged tokens the front door refuses 401).
  bool forge = false;
};

// Fills `cfg` from argv. On a usage error returns false with `error` set to
// a sentence naming the flag and the value.
bool parse_flags(int argc, char** argv, bench_config& cfg, std::string& error);

const char* usage_text();

} // namespace bench
