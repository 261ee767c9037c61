// seckill-bench command line parsing: `--name=value` flags only, each checked
// against its bounds; the first bad one ends the parse with a sentence that
// names it.
#include "bench_config.hpp"

#include <fstream>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <sstream>

namespace bench {

namespace {

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string part;
  while (std::getline(in, part, sep))
    out.push_back(part);
  return out;
}

bool to_u64(const std::string& v, uint64_t& out) {
  if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos)
    return false;
  errno = 0;
  out = std::strtoull(v.c_str(), nullptr, 10);
  return errno == 0;
}

bool to_double(const std::string& v, double& out) {
  if (v.empty())
    return false;
  char* end = nullptr;
  out = std::strtod(v.c_str(), &end);
  return *end == '\0' && std::isfinite(out) && out >= 0;
}

// Ids go into a URL path and a JSON string unescaped: keep them plain.
bool plain_id(const std::string& v) {
  if (v.empty() || v.size() > 128)
    return false;
  for (char c : v)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'
          || c == '.'))
      return false;
  return true;
}

bool parse_nodes(const std::string& v, std::vector<endpoint>& out) {
  out.clear();
  for (auto& part : split(v, ',')) {
    auto colon = part.rfind(':');
    uint64_t port = 0;
    if (colon == std::string::npos || colon == 0
        || !to_u64(part.substr(colon + 1), port) || port == 0 || port > 65535)
      return false;
    out.push_back({part.substr(0, colon), part.substr(colon + 1)});
  }
  return !out.empty() && out.size() <= nodes_max;
}

bool parse_items(const std::string& v, std::vector<std::string>& out) {
  out = split(v, ',');
  for (auto& i : out)
    if (!plain_id(i))
      return false;
  return !out.empty() && out.size() <= items_max;
}

// Applies one flag; false if its value is out of bounds or it is unknown.
// The first line of a secret file: 32 bytes at least (HS256's key).
bool read_secret(const std::string& path, std::string& out) {
  std::ifstream in{path};
  std::string line;
  if (!in || !std::getline(in, line) || line.size() < 32)
    return false;
  out = line;
  return true;
}

bool apply(const std::string& name, const std::string& v, bench_config& cfg) {
  uint64_t u = 0;
  double d = 0;
  if (name == "nodes")
    return parse_nodes(v, cfg.nodes);
  if (name == "connections")
    return to_u64(v, u) && u >= 1 && u <= connections_max
           && (cfg.connections = static_cast<int>(u), true);
  if (name == "duration-s")
    return to_double(v, d) && d <= 86'400 && (cfg.duration_s = d, true);
  if (name == "requests")
    return to_u64(v, u) && (cfg.requests = u, true);
  if (name == "users")
    return to_u64(v, u) && u >= 1 && u <= users_max && (cfg.users = u, true);
  if (name == "item")
    return plain_id(v) && (cfg.items = {v}, true);
  if (name == "items")
    return parse_items(v, cfg.items);
  if (name == "mode")
    return (v == "open" || v == "closed")
           && (cfg.open_loop = v == "open", true);
  if (name == "rate")
    return to_double(v, d) && d > 0 && d <= 10'000'000
           && (cfg.rate_per_s = d, true);
  if (name == "ramp-s")
    return to_double(v, d) && d <= 86'400 && (cfg.ramp_s = d, true);
  if (name == "retry-share")
    return to_double(v, d) && d <= 1 && (cfg.retry_share = d, true);
  if (name == "double-click-share")
    return to_double(v, d) && d <= 1 && (cfg.double_click_share = d, true);
  if (name == "check")
    return (v == "true" || v == "false" || v == "1" || v == "0")
           && (cfg.check = v == "true" || v == "1", true);
  if (name == "limit")
    return to_u64(v, u) && (cfg.limit = u, true);
  if (name == "csv")
    return !v.empty() && (cfg.csv_file = v, true);
  if (name == "plot")
    return !v.empty() && (cfg.plot_file = v, true);
  if (name == "orders-max")
    return to_u64(v, u) && u >= 1 && u <= 100'000'000
           && (cfg.orders_max = u, true);
  if (name == "backlog-max")
    return to_u64(v, u) && u >= 1 && u <= 100'000'000
           && (cfg.backlog_max = u, true);
  if (name == "timeout-ms")
    return to_u64(v, u) && u >= 1 && u <= 600'000 && (cfg.timeout_ms = u, true);
  if (name == "seed")
    return to_u64(v, u) && (cfg.seed = u, true);
  if (name == "run")
    return plain_id(v) && (cfg.run = v, true);
  if (name == "buyer-jwt-secret-file")
    return read_secret(v, cfg.jwt_secret);
  if (name == "sale-secret-file")
    return read_secret(v, cfg.sale_secret);
  if (name == "forge")
    return (v == "true" || v == "false") && (cfg.forge = v == "true", true);
  return false;
}

// Rules between flags, checked after all of them are read.
bool cross_check(const bench_config& cfg, std::string& error) {
  if (cfg.nodes.empty())
    error = "--nodes is required (HOST:PORT[,HOST:PORT...])";
  else if (cfg.items.empty())
    error = "--item or --items is required";
  else if (cfg.duration_s <= 0 && cfg.requests == 0)
    error = "one of --duration-s or --requests must be above 0";
  else if (cfg.open_loop && cfg.rate_per_s <= 0)
    error = "--mode=open needs --rate=R (requests per second, above 0)";
  else if (!cfg.open_loop && cfg.rate_per_s > 0)
    error = "--rate is for --mode=open only";
  else if (!cfg.open_loop && cfg.ramp_s > 0)
    error = "--ramp-s is for --mode=open only";
  else if (cfg.forge && cfg.jwt_secret.empty())
    error = "--forge=true needs --buyer-jwt-secret-file (what it forges)";
  return error.empty();
}

} // namespace

bool parse_flags(int argc, char** argv, bench_config& cfg, std::string& error) {
  cfg.run =
    std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count());
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto eq = arg.find('=');
    if (arg.rfind("--", 0) != 0 || eq == std::string::npos) {
      error = "bad argument '" + arg + "' (flags are --name=value)";
      return false;
    }
    std::string name = arg.substr(2, eq - 2);
    std::string value = arg.substr(eq + 1);
    if (!apply(name, value, cfg)) {
      error = "bad flag --" + name + "='" + value
              + "' (unknown flag or value out of bounds)";
      return false;
    }
  }
  return cross_check(cfg, error);
}

const char* usage_text() {
  return "usage: seckill-bench --nodes=HOST:PORT[,...] (--item=ID | "
         "--items=ID1,ID2,...)\n"
         "  [--connections=64] [--duration-s=S] [--requests=N] "
         "[--users=100000]\n"
         "  [--mode=closed | --mode=open --rate=R [--ramp-s=S]]\n"
         "  [--retry-share=0] [--double-click-share=0] [--timeout-ms=5000]\n"
         "  [--check=true] [--limit=1] [--orders-max=10000000] "
         "[--backlog-max=1000000]\n"
         "  [--csv=FILE] [--plot=FILE.png] [--seed=1] [--run=ID]\n"
         "  [--buyer-jwt-secret-file=F [--sale-secret-file=F] "
         "[--forge=false]]\n";
}

} // namespace bench
