// The strict reader of the [seckill] configuration (see config.hpp).
#include "node/config.hpp"

#include <arpa/inet.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>

#include "actors/cluster/membership.hpp"
#include "actors/edge/front_gate.hpp"
#include "actors/edge/switches.hpp"
#include "messages/limits.hpp"
#include "messages/node_id.hpp"
#include "persistence/store.hpp"

namespace seckill {

namespace {

using setter = std::function<std::string(const std::string&, node_config&)>;
/// A key's value in a config, as the help prints it.
using shower = std::function<std::string(const node_config&)>;

/// One key: its name, how it reads a value into a config, and how it shows
/// a config's value. Its default is shown from a default-constructed
/// node_config, so the help cannot drift from the defaults the code has;
/// `note` says what that default means where the value alone would not.
struct key_spec {
  std::string name;
  setter set;
  shower show;
  const char* note = "";
};

/// Where in a config a key's value lives; one accessor reads and writes it.
template <class T>
using field = T& (*)(node_config&);

template <class T>
T read_field(field<T> at, const node_config& c) {
  auto copy = c;
  return at(copy);
}

std::string expected(const std::string& what) {
  return "expected " + what;
}

std::string trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos)
    return {};
  auto e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

std::string quoted(const std::string& s) {
  return "\"" + s + "\"";
}

setter int_setter(int64_t lo, int64_t hi,
                  std::function<void(node_config&, int64_t)> put) {
  return [=](const std::string& v, node_config& c) -> std::string {
    errno = 0;
    char* end = nullptr;
    auto x = std::strtoll(v.c_str(), &end, 10);
    if (v.empty() || *end != '\0' || errno != 0 || x < lo || x > hi)
      return expected("an integer from " + std::to_string(lo) + " to "
                      + std::to_string(hi));
    put(c, x);
    return {};
  };
}

template <class T>
key_spec int_key(const char* name, int64_t lo, int64_t hi, field<T> at) {
  return {
    name,
    int_setter(lo, hi,
               [at](node_config& c, int64_t x) { at(c) = static_cast<T>(x); }),
    [at](const node_config& c) { return std::to_string(read_field(at, c)); }};
}

key_spec real_key(const char* name, double lo, double hi, field<double> at) {
  auto set = [=](const std::string& v, node_config& c) -> std::string {
    errno = 0;
    char* end = nullptr;
    auto x = std::strtod(v.c_str(), &end);
    if (v.empty() || *end != '\0' || errno != 0 || !(x >= lo && x <= hi))
      return expected("a number from " + std::to_string(lo) + " to "
                      + std::to_string(hi));
    at(c) = x;
    return {};
  };
  auto show = [at](const node_config& c) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.15g", read_field(at, c));
    return std::string{buf};
  };
  return {name, set, show};
}

key_spec one_of(const char* name, std::vector<std::string> allowed,
                field<std::string> at) {
  auto set = [=](const std::string& v, node_config& c) -> std::string {
    for (const auto& a : allowed)
      if (v == a) {
        at(c) = v;
        return {};
      }
    std::string list;
    for (const auto& a : allowed)
      list += (list.empty() ? "" : ", ") + a;
    return expected("one of " + list);
  };
  return {name, set, [at](const node_config& c) { return read_field(at, c); }};
}

// A duration as CAF writes it, "250ms" or "2s" (or "0"): the unit is
// required, because a bare number's unit would be a guess.
int64_t parse_duration_ms(const std::string& v) {
  int64_t scale = 0;
  std::string digits;
  if (v == "0") {
    digits = "0", scale = 1;
  } else if (v.size() > 2 && v.compare(v.size() - 2, 2, "ms") == 0) {
    digits = v.substr(0, v.size() - 2), scale = 1;
  } else if (v.size() > 1 && v.back() == 's') {
    digits = v.substr(0, v.size() - 1), scale = 1000;
  }
  if (scale == 0 || digits.empty()
      || digits.find_first_not_of("0123456789") != std::string::npos
      || digits.size() > 9)
    return -1;
  return std::stoll(digits) * scale;
}

key_spec ms_key(const char* name, int64_t lo_ms, int64_t hi_ms,
                field<int64_t> at) {
  auto set = [=](const std::string& v, node_config& c) -> std::string {
    auto ms = parse_duration_ms(v);
    if (ms < lo_ms || ms > hi_ms)
      return expected("a duration from " + std::to_string(lo_ms) + "ms to "
                      + std::to_string(hi_ms) + "ms, like 250ms or 2s");
    at(c) = ms;
    return {};
  };
  return {name, set, [at](const node_config& c) {
            return std::to_string(read_field(at, c)) + "ms";
          }};
}

// A numeric IPv4/IPv6 address or a host name: no spaces, no scheme.
key_spec host_key(const char* name, field<std::string> at) {
  auto set = [=](const std::string& v, node_config& c) -> std::string {
    if (v.empty() || v.size() > 253)
      return expected("a host name or address");
    for (unsigned char ch : v)
      if (!std::isalnum(ch) && ch != '.' && ch != '-' && ch != ':')
        return expected("a host name or address");
    at(c) = v;
    return {};
  };
  return {name, set, [at](const node_config& c) { return read_field(at, c); }};
}

// A file of [openssl], any path ("" leaves TLS off; check_tls relates the
// three, check_tls_files reads them at start).
key_spec path_key(const char* name, std::string tls_files::*file,
                  const char* note = "") {
  return {name,
          [=](const std::string& v, node_config& c) -> std::string {
            c.tls.*file = v;
            return {};
          },
          [=](const node_config& c) { return quoted(c.tls.*file); }, note};
}

// A front-gate limit or degrade switch (actors/edge/switches.hpp): its
// range and its default are the switch's own, so the file, the command line
// and seckill-cli accept the same values.
key_spec switch_key(const std::string& name) {
  auto set = [name](const std::string& v, node_config& c) -> std::string {
    std::string why;
    if (check_switch(name, v, why) != errc::ok)
      return expected(switch_expectation(name));
    c.switches.emplace_back(name, v);
    return {};
  };
  auto show = [name](const node_config&) {
    static const node_switches defaults;
    return switch_value(defaults, name);
  };
  return {"seckill." + name, set, show};
}

std::string set_node_id(const std::string& v, node_config& c) {
  if (!valid_node_id(v))
    return expected(node_id_syntax());
  c.node_id = v;
  return {};
}

std::string set_data_dir(const std::string& v, node_config& c) {
  if (v.empty())
    return expected("a directory");
  c.data_dir = v;
  return {};
}

std::string set_admin_token(const std::string& v, node_config& c) {
  if (!v.empty() && !valid_admin_token(v))
    return expected("16 to 128 printable characters without spaces");
  c.admin_token = v;
  return {};
}

std::string set_plain_loopback(const std::string& v, node_config& c) {
  if (v != "true" && v != "false")
    return expected("true or false");
  c.plain_loopback = v == "true";
  return {};
}

// ["n1@127.0.0.1:4242", "n2@..."]; on the command line the brackets and
// quotes may be left out: n1@127.0.0.1:4242,n2@...
std::string set_cluster_nodes(const std::string& v, node_config& c) {
  auto body = v;
  if (!body.empty() && body.front() == '[') {
    if (body.back() != ']')
      return expected("a list [\"ID@HOST:PORT\", ...]");
    body = body.substr(1, body.size() - 2);
  }
  std::vector<std::string> out;
  std::vector<member_spec> parsed;
  std::stringstream in{body};
  for (std::string item; std::getline(in, item, ',');) {
    item = trim(item);
    if (item.size() >= 2 && item.front() == '"' && item.back() == '"')
      item = item.substr(1, item.size() - 2);
    if (item.empty())
      continue;
    member_spec m;
    std::string why;
    if (!parse_member(item, m, why))
      return "member '" + item + "': " + why;
    for (std::size_t i = 0; i < parsed.size(); ++i) {
      if (parsed[i].id == m.id)
        return "member id '" + m.id + "' is listed twice";
      if (parsed[i].host == m.host && parsed[i].port == m.port)
        return "members '" + out[i] + "' and '" + item + "' share an address";
    }
    out.push_back(item);
    parsed.push_back(std::move(m));
  }
  if (out.size() > limits::cluster_nodes_max)
    return expected("at most " + std::to_string(limits::cluster_nodes_max)
                    + " members");
  c.cluster_nodes = std::move(out);
  c.cluster_members = std::move(parsed);
  return {};
}

std::string show_cluster_nodes(const node_config& c) {
  std::string s;
  for (const auto& n : c.cluster_nodes)
    s += (s.empty() ? "" : ", ") + quoted(n);
  return "[" + s + "]";
}

using L = int64_t;

void node_keys(std::vector<key_spec>& out) {
  out.push_back({"seckill.node-id", set_node_id,
                 [](const node_config& c) { return c.node_id; }});
  out.push_back({"seckill.data-dir", set_data_dir,
                 [](const node_config& c) { return c.data_dir; }});
  out.push_back(one_of(
    "seckill.synchronous", {"OFF", "NORMAL", "FULL", "EXTRA"},
    [](node_config& c) -> std::string& { return c.runtime.synchronous; }));
  out.push_back(one_of(
    "seckill.log-level", {"trace", "debug", "info", "warn", "err", "off"},
    [](node_config& c) -> std::string& { return c.log_level; }));
}

void session_keys(std::vector<key_spec>& out) {
  out.push_back(int_key<std::size_t>(
    "seckill.sessions-max", 1, L(limits::sessions_per_node_max),
    [](node_config & c) -> auto& { return c.runtime.sessions.sessions_max; }));
  out.push_back(real_key(
    "seckill.session-rate-per-s", 0.01, 1e6, [](node_config & c) -> auto& {
      return c.runtime.sessions.session.rate_per_s;
    }));
  out.push_back(real_key(
    "seckill.session-burst", 1, 1e6,
    [](node_config & c) -> auto& { return c.runtime.sessions.session.burst; }));
  out.push_back(int_key<int64_t>(
    "seckill.unpaid-max", 1, limits::unpaid_per_user_max,
    [](node_config & c) -> auto& {
      return c.runtime.sessions.session.unpaid_max;
    }));
  out.push_back(int_key<int64_t>(
    "seckill.session-idle-timeout-ms", 1'000, 3'600'000,
    [](node_config & c) -> auto& {
      return c.runtime.sessions.session.idle_timeout_ms;
    }));
}

void sale_keys(std::vector<key_spec>& out) {
  out.push_back(int_key<std::size_t>(
    "seckill.items-max", 1, L(limits::items_per_node_max),
    [](node_config & c) -> auto& { return c.runtime.directory.items_max; }));
  out.push_back({"seckill.items-memory-mib",
                 int_setter(16, L(limits::items_memory_mib_max),
                            [](node_config& c, L x) {
                              c.runtime.directory.items_memory_bytes = x << 20;
                            }),
                 [](const node_config& c) {
                   return std::to_string(c.runtime.directory.items_memory_bytes
                                         >> 20);
                 }});
  out.push_back(real_key(
    "seckill.admission-rate-per-s", 1, 1e7, [](node_config & c) -> auto& {
      return c.runtime.directory.queue.rate_per_s;
    }));
  out.push_back(real_key(
    "seckill.admission-burst", 1, 1e7,
    [](node_config & c) -> auto& { return c.runtime.directory.queue.burst; }));
  out.push_back(int_key<std::size_t>(
    "seckill.waiting-room-max", 1, L(limits::waiting_room_max),
    [](node_config & c) -> auto& {
      return c.runtime.directory.queue.waiting_max;
    }));
  out.push_back(int_key<int64_t>(
    "seckill.wait-ms-max", 1, limits::wait_ms_max,
    [](node_config & c) -> auto& {
      return c.runtime.directory.queue.wait_ms_max;
    }));
  out.push_back(int_key<std::size_t>(
    "seckill.tickets-max", 0, L(limits::tickets_per_queue_max),
    [](node_config & c) -> auto& {
      return c.runtime.directory.queue.tickets_max;
    }));
  out.push_back(int_key<int64_t>(
    "seckill.ticket-ttl-ms", 1'000, limits::ticket_ttl_ms_max,
    [](node_config & c) -> auto& {
      return c.runtime.directory.queue.ticket_ttl_ms;
    }));
  out.push_back(int_key<std::size_t>(
    "seckill.queue-inflight-max", 1, L(limits::queue_inflight_max),
    [](node_config & c) -> auto& {
      return c.runtime.directory.queue.inflight_max;
    }));
  out.push_back({"seckill.hop-timeout-ms",
                 int_setter(10, 60'000,
                            [](node_config& c, L x) {
                              c.runtime.hop_timeout_ms = x;
                              c.runtime.sessions.session.hop_timeout_ms = x;
                            }),
                 [](const node_config& c) {
                   return std::to_string(c.runtime.hop_timeout_ms);
                 }});
  session_keys(out);
}
void http_limit_keys(std::vector<key_spec>& out) {
  out.push_back(int_key<std::size_t>(
    "seckill.http-connections-max", 1, L(limits::http_connections_max),
    [](node_config & c) -> auto& { return c.http.connections_max; }));
  out.push_back(int_key<std::size_t>(
    "seckill.http-connections-per-address-max", 1,
    L(limits::http_connections_max), [](node_config & c) -> auto& {
      return c.http.connections_per_address_max;
    }));
  out.push_back(int_key<std::size_t>(
    "seckill.http-request-line-bytes-max", 64, L(limits::http_header_bytes_max),
    [](node_config & c) -> auto& { return c.http.request_line_bytes_max; }));
  out.push_back(int_key<std::size_t>(
    "seckill.http-header-bytes-max", 256, L(limits::http_header_bytes_max),
    [](node_config & c) -> auto& { return c.http.header_bytes_max; }));
  out.push_back(int_key<std::size_t>(
    "seckill.http-body-bytes-max", 64, L(limits::http_body_bytes_max),
    [](node_config & c) -> auto& { return c.http.body_bytes_max; }));
  out.push_back(int_key<std::size_t>(
    "seckill.http-pipeline-max", 1, L(limits::http_pipeline_max),
    [](node_config & c) -> auto& { return c.http.pipeline_max; }));
  out.push_back(int_key<int64_t>(
    "seckill.http-idle-timeout-ms", 100, 3'600'000,
    [](node_config & c) -> auto& { return c.http.idle_timeout_ms; }));
  out.push_back(int_key<int64_t>(
    "seckill.http-request-timeout-ms", 100, 600'000,
    [](node_config & c) -> auto& { return c.http.request_timeout_ms; }));
  out.push_back(int_key<int64_t>(
    "seckill.http-answer-timeout-ms", 100, 600'000,
    [](node_config & c) -> auto& { return c.http.answer_timeout_ms; }));
}

// A secret given in the config: printable ASCII, no spaces, at least
// limits::secret_bytes_min bytes (HS256 wants a key as long as its hash).
std::string check_secret_text(const std::string& v) {
  if (v.size() < limits::secret_bytes_min
      || v.size() > limits::secret_bytes_max)
    return expected(std::to_string(limits::secret_bytes_min) + " to "
                    + std::to_string(limits::secret_bytes_max) + " bytes");
  for (char ch : v)
    if (ch <= ' ' || ch > '~')
      return expected("printable characters without spaces");
  return {};
}

key_spec secret_key(const char* name, field<std::string> at) {
  auto set = [=](const std::string& v, node_config& c) -> std::string {
    if (!v.empty())
      if (auto problem = check_secret_text(v); !problem.empty())
        return problem;
    at(c) = v;
    return {};
  };
  // Never printed: --help shows only whether one is set.
  return {name, set,
          [at](const node_config& c) {
            return read_field(at, c).empty() ? std::string{"\"\""}
                                             : std::string{"(set)"};
          },
          " (generated)"};
}

key_spec file_key(const char* name, field<std::string> at) {
  return {name,
          [=](const std::string& v, node_config& c) -> std::string {
            at(c) = v;
            return {};
          },
          [at](const node_config& c) { return quoted(read_field(at, c)); }};
}

void buyer_keys(std::vector<key_spec>& out) {
  out.push_back(
    {"seckill.buyer-auth",
     [](const std::string& v, node_config& c) -> std::string {
       if (v != "jwt" && v != "open")
         return expected("jwt or open");
       c.buyers.auth = v == "jwt" ? buyer_auth::jwt : buyer_auth::open;
       return {};
     },
     [](const node_config& c) {
       return std::string{c.buyers.auth == buyer_auth::jwt ? "jwt" : "open"};
     }});
  out.push_back(
    secret_key("seckill.buyer-jwt-secret", [](node_config& c) -> std::string& {
      return c.buyers.jwt_secret;
    }));
  out.push_back(file_key(
    "seckill.buyer-jwt-secret-file",
    [](node_config& c) -> std::string& { return c.buyer_jwt_secret_file; }));
  out.push_back(int_key<int64_t>(
    "seckill.buyer-jwt-leeway-ms", 0, limits::jwt_leeway_ms_max,
    [](node_config & c) -> auto& { return c.buyers.jwt_leeway_ms; }));
  out.push_back(
    secret_key("seckill.sale-secret", [](node_config& c) -> std::string& {
      return c.buyers.sale_secret;
    }));
  out.push_back(
    file_key("seckill.sale-secret-file", [](node_config& c) -> std::string& {
      return c.sale_secret_file;
    }));
  out.push_back(int_key<int64_t>(
    "seckill.sale-token-ttl-ms", limits::sale_token_ttl_ms_min,
    limits::sale_token_ttl_ms_max,
    [](node_config & c) -> auto& { return c.buyers.sale_token_ttl_ms; }));
  out.push_back(int_key<int64_t>(
    "seckill.quiz-min-ms", 0, limits::quiz_min_ms_max,
    [](node_config & c) -> auto& { return c.buyers.quiz_min_ms; }));
}

void http_keys(std::vector<key_spec>& out) {
  out.push_back({"seckill.admin-token", set_admin_token,
                 [](const node_config& c) { return quoted(c.admin_token); },
                 " (generated)"});
  out.push_back(host_key(
    "seckill.http-host", [](node_config & c) -> auto& { return c.http.host; }));
  out.push_back(int_key<uint16_t>(
    "seckill.http-port", 0, 65535,
    [](node_config & c) -> auto& { return c.http.port; }));
  out.push_back(int_key<std::size_t>(
    "seckill.http-threads", 1, 64,
    [](node_config & c) -> auto& { return c.http.io_threads; }));
  out.push_back(int_key<std::size_t>(
    "seckill.bridge-actors", 1, 64,
    [](node_config & c) -> auto& { return c.bridge_actors; }));
  http_limit_keys(out);
  // Plan B: the front gate's limits and the degrade switches.
  for (const auto& name : switch_names())
    out.push_back(switch_key(name));
}

void cluster_keys(std::vector<key_spec>& out) {
  out.push_back(int_key<int64_t>(
    "scheduler.max-threads", 0, 256,
    [](node_config & c) -> auto& { return c.scheduler_max_threads; }));
  out.push_back(ms_key(
    "middleman.heartbeat-interval", 0, 60'000,
    [](node_config & c) -> auto& { return c.heartbeat_interval_ms; }));
  out.push_back(ms_key(
    "middleman.connection-timeout", 0, 600'000,
    [](node_config & c) -> auto& { return c.connection_timeout_ms; }));
  out.push_back(
    path_key("openssl.certificate", &tls_files::certificate, " (TLS off)"));
  out.push_back(path_key("openssl.key", &tls_files::key));
  out.push_back(path_key("openssl.cafile", &tls_files::cafile));
  out.push_back(
    {"cluster.plain-loopback", set_plain_loopback, [](const node_config& c) {
       return std::string{c.plain_loopback ? "true" : "false"};
     }});
  out.push_back(host_key(
    "cluster.host", [](node_config & c) -> auto& { return c.cluster_host; }));
  out.push_back(int_key<uint16_t>(
    "cluster.port", 0, 65535,
    [](node_config & c) -> auto& { return c.cluster_port; }));
  out.push_back({"cluster.nodes", set_cluster_nodes, show_cluster_nodes,
                 " (a node alone)"});
}

// Every key, in the order the help and cluster.conf list them.
const std::vector<key_spec>& keys() {
  static const std::vector<key_spec> specs = [] {
    std::vector<key_spec> out;
    node_keys(out);
    sale_keys(out);
    buyer_keys(out);
    http_keys(out);
    cluster_keys(out);
    return out;
  }();
  return specs;
}

// A value may be quoted ("...") as CAF writes strings; quotes are removed.
std::string unquote(const std::string& v) {
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"')
    return v.substr(1, v.size() - 2);
  return v;
}

// `key` is the full name, "seckill.data-dir".
std::string set_key(const std::string& key, const std::string& raw,
                    const std::string& origin, node_config& out) {
  for (const auto& k : keys()) {
    if (key != k.name)
      continue;
    auto problem = k.set(unquote(raw), out);
    if (problem.empty())
      return {};
    return origin + ": " + key + " = '" + raw + "': " + problem;
  }
  return origin + ": unknown key " + key;
}

bool is_ours(const std::string& section) {
  return section == "seckill" || section == "cluster" || section == "openssl"
         || section == "scheduler" || section == "middleman";
}

void derive(node_config& out) {
  out.runtime.db_path = out.data_dir + "/seckill.db";
}

} // namespace

bool valid_secret(const std::string& secret) {
  return check_secret_text(secret).empty();
}

bool valid_admin_token(const std::string& token) {
  if (token.size() < 16 || token.size() > 128)
    return false;
  for (unsigned char ch : token)
    if (ch <= ' ' || ch >= 0x7f)
      return false;
  return true;
}

std::vector<std::string> config_keys() {
  std::vector<std::string> out;
  static const node_config defaults;
  for (const auto& k : keys())
    out.push_back(k.name + " (default " + k.show(defaults) + k.note + ")");
  return out;
}

std::string apply_config_text(const std::string& ini_text,
                              const std::string& origin, node_config& out) {
  std::istringstream in{ini_text};
  std::string line, section;
  for (int n = 1; std::getline(in, line); ++n) {
    auto t = trim(line);
    if (t.empty() || t[0] == '#' || t[0] == ';')
      continue;
    auto where = origin + ":" + std::to_string(n);
    if (t.front() == '[') {
      if (t.back() != ']')
        return where + ": broken section header '" + t + "'";
      section = trim(t.substr(1, t.size() - 2));
      if (!is_ours(section))
        return where + ": unknown section [" + section + "]";
      continue;
    }
    if (section.empty())
      return where + ": a key before any [section]: '" + t + "'";
    auto eq = t.find('=');
    if (eq == std::string::npos)
      return where + ": expected key=value, got '" + t + "'";
    auto problem = set_key(section + "." + trim(t.substr(0, eq)),
                           trim(t.substr(eq + 1)), where, out);
    if (!problem.empty())
      return problem;
  }
  derive(out);
  return {};
}

std::string apply_config_arg(const std::string& arg, node_config& out) {
  auto eq = arg.find('=');
  auto dot = arg.find('.');
  if (eq == std::string::npos || dot == std::string::npos || dot > eq
      || !is_ours(arg.substr(0, dot)))
    return "command line: expected --SECTION.KEY=VALUE (seckill, cluster, "
           "openssl, scheduler, middleman), got '--"
           + arg + "'";
  auto problem =
    set_key(arg.substr(0, eq), arg.substr(eq + 1), "command line", out);
  derive(out);
  return problem;
}

bool is_loopback_host(const std::string& host) {
  if (host == "localhost" || host == "::1" || host == "[::1]")
    return true;
  in_addr a{};
  return ::inet_pton(AF_INET, host.c_str(), &a) == 1
         && (ntohl(a.s_addr) >> 24) == 127;
}

// The cluster port takes CAF messages from whoever connects: off loopback
// it must be TLS with peer certificates, or any host could join or admin.
static std::string check_tls(const node_config& c) {
  const auto& t = c.tls;
  int given = !t.certificate.empty() + !t.key.empty() + !t.cafile.empty();
  if (given != 0 && given != 3)
    return "[openssl] needs certificate, key and cafile together (TLS with "
           "peer authentication), got "
           + std::string(t.certificate.empty() ? "" : "certificate ")
           + (t.key.empty() ? "" : "key ") + (t.cafile.empty() ? "" : "cafile ")
           + "only";
  if (given == 3)
    return {};
  if (!is_loopback_host(c.cluster_host))
    return "cluster.host ('" + c.cluster_host
           + "') is not loopback: the cluster port would take members and "
             "admin commands from the network without TLS; set "
             "openssl.certificate, openssl.key and openssl.cafile";
  for (const auto& m : c.cluster_members)
    if (!is_loopback_host(m.host))
      return "cluster.nodes has member " + m.id + " on '" + m.host
             + "', not loopback: a cluster across machines needs TLS; set "
               "openssl.certificate, openssl.key and openssl.cafile";
  if (c.cluster_members.size() > 1 && !c.plain_loopback)
    return "a cluster without TLS lets any process on this machine join as "
           "a member: set openssl.certificate, openssl.key and "
           "openssl.cafile, or cluster.plain-loopback = true to accept that "
           "(tests, a demo on one machine)";
  return {};
}

// Relations between keys, checked on the effective config.
static std::string check_relations(node_config& c) {
  if (!c.cluster_nodes.empty()) {
    bool found = false;
    for (const auto& m : c.cluster_members) {
      if (m.id != c.node_id)
        continue;
      found = true;
      c.cluster_host = m.host; // this node listens where the others call
      c.cluster_port = m.port;
    }
    if (!found)
      return "seckill.node-id ('" + c.node_id
             + "') is not one of cluster.nodes";
    // Without heartbeats a member whose host vanishes without closing its
    // connections stays "up" forever, and every call to it waits out the
    // hop timeout.
    if (c.cluster_nodes.size() > 1
        && (c.heartbeat_interval_ms == 0
            || c.connection_timeout_ms <= c.heartbeat_interval_ms))
      return "with cluster.nodes, middleman.heartbeat-interval must be set "
             "and middleman.connection-timeout must exceed it (e.g. 200ms "
             "and 1s): a hung member is noticed only so";
  }
  if (auto problem = check_tls(c); !problem.empty())
    return problem;
  if (c.http.request_line_bytes_max > c.http.header_bytes_max)
    return "seckill.http-request-line-bytes-max ("
           + std::to_string(c.http.request_line_bytes_max)
           + ") must not exceed seckill.http-header-bytes-max ("
           + std::to_string(c.http.header_bytes_max) + ")";
  // A buyer may wait wait-ms-max in the room; answering 503 before that
  // would tell buyers "failed" for purchases still on their way.
  if (c.http.answer_timeout_ms <= c.runtime.directory.queue.wait_ms_max)
    return "seckill.http-answer-timeout-ms ("
           + std::to_string(c.http.answer_timeout_ms)
           + ") must exceed seckill.wait-ms-max ("
           + std::to_string(c.runtime.directory.queue.wait_ms_max) + ")";
  return {};
}

std::string load_config(const std::string& file,
                        const std::vector<std::string>& args, node_config& out,
                        std::vector<std::string>& rest) {
  derive(out);
  if (!file.empty()) {
    std::ifstream in{file};
    if (!in)
      return "cannot read config file " + file;
    std::stringstream text;
    text << in.rdbuf();
    if (auto problem = apply_config_text(text.str(), file, out);
        !problem.empty())
      return problem;
  }
  for (const auto& a : args) {
    auto dot = a.find('.');
    if (a.rfind("--", 0) != 0 || dot == std::string::npos
        || !is_ours(a.substr(2, dot - 2))) {
      rest.push_back(a);
      continue;
    }
    if (auto problem = apply_config_arg(a.substr(2), out); !problem.empty())
      return problem;
  }
  return check_relations(out);
}

} // namespace seckill
