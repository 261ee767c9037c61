// The strict reader of the [seckill] configuration (see config.hpp).
#include "node/config.hpp"

#include <arpa/inet.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>

#include "actors/edge/front_gate.hpp"
#include "actors/cluster/membership.hpp"
#include "messages/limits.hpp"
#include "messages/node_id.hpp"
#include "persistence/store.hpp"

namespace seckill {

namespace {

using setter = std::function<std::string(const std::string&, node_config&)>;

struct key_spec {
  const char* name;
  std::string default_text;
  setter set;
};

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

setter int_key(int64_t lo, int64_t hi,
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

setter real_key(double lo, double hi,
                std::function<void(node_config&, double)> put) {
  return [=](const std::string& v, node_config& c) -> std::string {
    errno = 0;
    char* end = nullptr;
    auto x = std::strtod(v.c_str(), &end);
    if (v.empty() || *end != '\0' || errno != 0 || !(x >= lo && x <= hi))
      return expected("a number from " + std::to_string(lo) + " to "
                      + std::to_string(hi));
    put(c, x);
    return {};
  };
}

setter one_of(std::vector<std::string> allowed,
              std::function<void(node_config&, const std::string&)> put) {
  return [=](const std::string& v, node_config& c) -> std::string {
    for (const auto& a : allowed)
      if (v == a) {
        put(c, v);
        return {};
      }
    std::string list;
    for (const auto& a : allowed)
      list += (list.empty() ? "" : ", ") + a;
    return expected("one of " + list);
  };
}

// A duration as CAF writes it, "250ms" or "2s" (or "0"): the unit is
// required, because a bare number's unit would be a guess.
setter ms_key(int64_t lo_ms, int64_t hi_ms,
              std::function<void(node_config&, int64_t)> put) {
  return [=](const std::string& v, node_config& c) -> std::string {
    auto want = expected("a duration from " + std::to_string(lo_ms) + "ms to "
                         + std::to_string(hi_ms) + "ms, like 250ms or 2s");
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
      return want;
    auto ms = std::stoll(digits) * scale;
    if (ms < lo_ms || ms > hi_ms)
      return want;
    put(c, ms);
    return {};
  };
}

// A numeric IPv4/IPv6 address or a host name: no spaces, no scheme.
setter host_key(std::function<void(node_config&, const std::string&)> put) {
  return [=](const std::string& v, node_config& c) -> std::string {
    if (v.empty() || v.size() > 253)
      return expected("a host name or address");
    for (unsigned char ch : v)
      if (!std::isalnum(ch) && ch != '.' && ch != '-' && ch != ':')
        return expected("a host name or address");
    put(c, v);
    return {};
  };
}

// A file of [openssl], any path ("" leaves TLS off; check_tls relates the
// three, check_tls_files reads them at start).
setter path_key(std::string tls_files::*field) {
  return [=](const std::string& v, node_config& c) -> std::string {
    c.tls.*field = v;
    return {};
  };
}

// A front-gate limit or degrade switch (actors/edge/front_gate.hpp): its range
// and its default are the switch's own, so the file, the command line and
// seckill-cli accept the same values.
setter switch_key(const std::string& name) {
  return [name](const std::string& v, node_config& c) -> std::string {
    std::string why;
    if (check_switch(name, v, why) != errc::ok)
      return expected(switch_expectation(name));
    c.switches.emplace_back(name, v);
    return {};
  };
}

std::string switch_default(const std::string& name) {
  static const node_switches defaults;
  return switch_value(defaults, name);
}

const std::vector<key_spec>& keys() {
  using L = int64_t;
  static const std::vector<key_spec> specs = {
    {"seckill.node-id", "n1",
     [](const std::string& v, node_config& c) -> std::string {
       if (!valid_node_id(v))
         return expected(node_id_syntax());
       c.node_id = v;
       return {};
     }},
    {"seckill.data-dir", "./data",
     [](const std::string& v, node_config& c) -> std::string {
       if (v.empty())
         return expected("a directory");
       c.data_dir = v;
       return {};
     }},
    {"seckill.synchronous", "FULL",
     one_of({"OFF", "NORMAL", "FULL", "EXTRA"},
            [](node_config& c, const std::string& v) {
              c.runtime.synchronous = v;
            })},
    {"seckill.log-level", "info",
     one_of({"trace", "debug", "info", "warn", "err", "off"},
            [](node_config& c, const std::string& v) { c.log_level = v; })},
    {"seckill.items-max", "1000",
     int_key(1, L(limits::items_per_node_max), [](node_config& c, L x) {
       c.runtime.directory.items_max = static_cast<std::size_t>(x);
     })},
    {"seckill.items-memory-mib", "4096",
     int_key(16, L(limits::items_memory_mib_max), [](node_config& c, L x) {
       c.runtime.directory.items_memory_bytes = static_cast<int64_t>(x) << 20;
     })},
    {"seckill.admission-rate-per-s", "20000",
     real_key(1, 1e7, [](node_config& c, double x) {
       c.runtime.directory.queue.rate_per_s = x;
     })},
    {"seckill.admission-burst", "2000",
     real_key(1, 1e7, [](node_config& c, double x) {
       c.runtime.directory.queue.burst = x;
     })},
    {"seckill.waiting-room-max", "10000",
     int_key(1, L(limits::waiting_room_max), [](node_config& c, L x) {
       c.runtime.directory.queue.waiting_max = static_cast<std::size_t>(x);
     })},
    {"seckill.wait-ms-max", "10",
     int_key(1, limits::wait_ms_max, [](node_config& c, L x) {
       c.runtime.directory.queue.wait_ms_max = x;
     })},
    {"seckill.queue-inflight-max", "1024",
     int_key(1, L(limits::queue_inflight_max), [](node_config& c, L x) {
       c.runtime.directory.queue.inflight_max = static_cast<std::size_t>(x);
     })},
    {"seckill.hop-timeout-ms", "5000",
     int_key(10, 60'000, [](node_config& c, L x) {
       c.runtime.hop_timeout_ms = x;
       c.runtime.sessions.session.hop_timeout_ms = x;
     })},
    {"seckill.sessions-max", "100000",
     int_key(1, L(limits::sessions_per_node_max), [](node_config& c, L x) {
       c.runtime.sessions.sessions_max = static_cast<std::size_t>(x);
     })},
    {"seckill.session-rate-per-s", "5",
     real_key(0.01, 1e6, [](node_config& c, double x) {
       c.runtime.sessions.session.rate_per_s = x;
     })},
    {"seckill.session-burst", "10",
     real_key(1, 1e6, [](node_config& c, double x) {
       c.runtime.sessions.session.burst = x;
     })},
    {"seckill.unpaid-max", "3",
     int_key(1, limits::unpaid_per_user_max, [](node_config& c, L x) {
       c.runtime.sessions.session.unpaid_max = x;
     })},
    {"seckill.session-idle-timeout-ms", "60000",
     int_key(1'000, 3'600'000, [](node_config& c, L x) {
       c.runtime.sessions.session.idle_timeout_ms = x;
     })},
    {"seckill.admin-token", "\"\" (generated)",
     [](const std::string& v, node_config& c) -> std::string {
       if (!v.empty() && !valid_admin_token(v))
         return expected("16 to 128 printable characters without spaces");
       c.admin_token = v;
       return {};
     }},
    {"seckill.http-host", "127.0.0.1", host_key([](node_config& c,
                                                   const std::string& v) {
       c.http.host = v;
     })},
    {"seckill.http-port", "8080", int_key(0, 65535, [](node_config& c, L x) {
       c.http.port = static_cast<uint16_t>(x);
     })},
    {"seckill.http-threads", "1", int_key(1, 64, [](node_config& c, L x) {
       c.http.io_threads = static_cast<std::size_t>(x);
     })},
    {"seckill.bridge-actors", "4", int_key(1, 64, [](node_config& c, L x) {
       c.bridge_actors = static_cast<std::size_t>(x);
     })},
    {"seckill.http-connections-max", "10000",
     int_key(1, L(limits::http_connections_max), [](node_config& c, L x) {
       c.http.connections_max = static_cast<std::size_t>(x);
     })},
    {"seckill.http-connections-per-address-max", "1000",
     int_key(1, L(limits::http_connections_max), [](node_config& c, L x) {
       c.http.connections_per_address_max = static_cast<std::size_t>(x);
     })},
    {"seckill.http-request-line-bytes-max", "4096",
     int_key(64, L(limits::http_header_bytes_max), [](node_config& c, L x) {
       c.http.request_line_bytes_max = static_cast<std::size_t>(x);
     })},
    {"seckill.http-header-bytes-max", "8192",
     int_key(256, L(limits::http_header_bytes_max), [](node_config& c, L x) {
       c.http.header_bytes_max = static_cast<std::size_t>(x);
     })},
    {"seckill.http-body-bytes-max", "65536",
     int_key(64, L(limits::http_body_bytes_max), [](node_config& c, L x) {
       c.http.body_bytes_max = static_cast<std::size_t>(x);
     })},
    {"seckill.http-pipeline-max", "16",
     int_key(1, L(limits::http_pipeline_max), [](node_config& c, L x) {
       c.http.pipeline_max = static_cast<std::size_t>(x);
     })},
    {"seckill.http-idle-timeout-ms", "30000",
     int_key(100, 3'600'000, [](node_config& c, L x) {
       c.http.idle_timeout_ms = x;
     })},
    {"seckill.http-request-timeout-ms", "10000",
     int_key(100, 600'000, [](node_config& c, L x) {
       c.http.request_timeout_ms = x;
     })},
    {"seckill.http-answer-timeout-ms", "10000",
     int_key(100, 600'000, [](node_config& c, L x) {
       c.http.answer_timeout_ms = x;
     })},
    // Plan B: the front gate and the degrade switches.
    {"seckill.node-rate-per-s", switch_default("node-rate-per-s"),
     switch_key("node-rate-per-s")},
    {"seckill.ip-rate-per-s", switch_default("ip-rate-per-s"),
     switch_key("ip-rate-per-s")},
    {"seckill.rate-burst-ms", switch_default("rate-burst-ms"),
     switch_key("rate-burst-ms")},
    {"seckill.shed-inflight-max", switch_default("shed-inflight-max"),
     switch_key("shed-inflight-max")},
    {"seckill.shed-latency-ms", switch_default("shed-latency-ms"),
     switch_key("shed-latency-ms")},
    {"seckill.shed-lag-ms", switch_default("shed-lag-ms"),
     switch_key("shed-lag-ms")},
    {"seckill.shed-lag-window-ms", switch_default("shed-lag-window-ms"),
     switch_key("shed-lag-window-ms")},
    {"seckill.edge-reads-ms", switch_default("edge-reads-ms"),
     switch_key("edge-reads-ms")},
    {"seckill.essential-only", switch_default("essential-only"),
     switch_key("essential-only")},
    {"scheduler.max-threads", "0", int_key(0, 256, [](node_config& c, L x) {
       c.scheduler_max_threads = x;
     })},
    {"middleman.heartbeat-interval", "0ms",
     ms_key(0, 60'000, [](node_config& c, L x) {
       c.heartbeat_interval_ms = x;
     })},
    {"middleman.connection-timeout", "0ms",
     ms_key(0, 600'000, [](node_config& c, L x) {
       c.connection_timeout_ms = x;
     })},
    {"openssl.certificate", "\"\" (TLS off)", path_key(&tls_files::certificate)},
    {"openssl.key", "\"\"", path_key(&tls_files::key)},
    {"openssl.cafile", "\"\"", path_key(&tls_files::cafile)},
    {"cluster.plain-loopback", "false",
     [](const std::string& v, node_config& c) -> std::string {
       if (v != "true" && v != "false")
         return expected("true or false");
       c.plain_loopback = v == "true";
       return {};
     }},
    {"cluster.host", "127.0.0.1", host_key([](node_config& c,
                                              const std::string& v) {
       c.cluster_host = v;
     })},
    {"cluster.port", "4242", int_key(0, 65535, [](node_config& c, L x) {
       c.cluster_port = static_cast<uint16_t>(x);
     })},
    {"cluster.nodes", "[] (a node alone)",
     [](const std::string& v, node_config& c) -> std::string {
       // ["n1@127.0.0.1:4242", "n2@..."]; on the command line the brackets
       // and quotes may be left out: n1@127.0.0.1:4242,n2@...
       auto body = v;
       if (!body.empty() && body.front() == '[') {
         if (body.back() != ']')
           return expected("a list [\"ID@HOST:PORT\", ...]");
         body = body.substr(1, body.size() - 2);
       }
       std::vector<std::string> out;
       std::vector<member_spec> parsed;
       std::stringstream in{body};
       std::string item;
       while (std::getline(in, item, ',')) {
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
             return "members '" + out[i] + "' and '" + item
                    + "' share an address";
         }
         out.push_back(item);
         parsed.push_back(std::move(m));
       }
       if (out.size() > limits::cluster_nodes_max)
         return expected("at most "
                         + std::to_string(limits::cluster_nodes_max)
                         + " members");
       c.cluster_nodes = std::move(out);
       c.cluster_members = std::move(parsed);
       return {};
     }},
  };
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
  return section == "seckill" || section == "cluster"
         || section == "openssl" || section == "scheduler"
         || section == "middleman";
}

void derive(node_config& out) {
  out.runtime.db_path = out.data_dir + "/seckill.db";
}

} // namespace

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
  for (const auto& k : keys())
    out.push_back(std::string{k.name} + " (default " + k.default_text + ")");
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
  auto problem = set_key(arg.substr(0, eq), arg.substr(eq + 1),
                         "command line", out);
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
