// seckill-node (see startup.hpp): start-up in order (data dir, store and
// actors, admin port, HTTP through the front door), and the orderly
// shutdown in reverse.
#include "node/startup.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <thread>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/function_view.hpp>
#include <caf/io/middleman.hpp>
#include <caf/openssl/manager.hpp>
#include <caf/openssl/publish.hpp>
#include <caf/scoped_actor.hpp>
#include <spdlog/spdlog.h>

#include "actors/cluster/membership.hpp"
#include "actors/edge/admin.hpp"
#include "actors/edge/bridge.hpp"
#include "actors/edge/front_gate.hpp"
#include "actors/edge/lag_probe.hpp"
#include "messages/buyer_tokens.hpp"
#include "messages/limits.hpp"
#include "messages/log_text.hpp"
#include "node/config.hpp"
#include "node/data_dir_lock.hpp"
#include "node/front_door.hpp"
#include "node/http/server.hpp"
#include "node/tls.hpp"

namespace seckill {

namespace {

constexpr const char* version = "0.1.0";
constexpr int64_t barrier_timeout_ms = 10'000;

struct options {
  std::string config_file;
  node_config node;
};

void usage() {
  std::printf("usage: seckill-node [--config-file=FILE] [--seckill.KEY=VALUE]"
              " [--cluster.KEY=VALUE]...\n\nkeys and defaults:\n");
  for (const auto& k : config_keys())
    std::printf("  %s\n", k.c_str());
}

// Returns -1 to go on, else the exit code.
int parse_args(int argc, char** argv, options& opt) {
  std::vector<std::string> args, rest;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      usage();
      return 0;
    }
    if (a == "--version") {
      std::printf("seckill-node %s\n", version);
      return 0;
    }
    if (a.rfind("--config-file=", 0) == 0)
      opt.config_file = a.substr(14);
    else
      args.push_back(a);
  }
  auto problem = load_config(opt.config_file, args, opt.node, rest);
  if (problem.empty() && !rest.empty())
    problem = "unknown argument '" + rest.front()
              + "' (see --help; keys are --seckill.KEY=VALUE or "
                "--cluster.KEY=VALUE)";
  if (!problem.empty()) {
    std::fprintf(stderr, "seckill-node: refusing to start: %s\n",
                 problem.c_str());
    return 2;
  }
  return -1;
}

int64_t system_now_ms() {
  return system_clock_ms()();
}

} // namespace

std::string load_or_make_secret(const std::string& path, const char* shape,
                                bool (*valid)(const std::string&), bool create,
                                std::string& secret, bool& generated) {
  generated = false;
  if (std::ifstream in{path}) {
    std::string t;
    std::getline(in, t);
    if (!valid(t))
      return path + " does not hold a valid secret (" + shape
             + "); fix or delete it";
    secret = t;
    return {};
  }
  if (!create)
    return "cannot read " + path + ": " + std::strerror(errno);
  auto t = tokens::random_hex(32);
  if (t.empty())
    return "cannot get random bytes (OpenSSL) to generate " + path;
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0)
    return "cannot create " + path + ": " + std::strerror(errno);
  auto line = t + "\n";
  auto n = ::write(fd, line.data(), line.size());
  ::fsync(fd);
  ::close(fd);
  if (n != static_cast<ssize_t>(line.size()))
    return "cannot write " + path;
  secret = t;
  generated = true;
  return {};
}

std::string load_or_make_token(const std::string& dir, std::string& token,
                               bool& generated) {
  return load_or_make_secret(dir + "/admin-token",
                             "16 to 128 printable characters",
                             valid_admin_token, true, token, generated);
}

namespace {

// Everything that runs, in start order; stopped in reverse.
struct node_parts {
  runtime rt;
  caf::actor membership; // with other members only
  admin_actor admin;
  std::vector<bridge_actor> bridges;
  /// Plan B: the limits and switches (set from the config, changed by the
  /// CLI through the admin actor), what the gate counts, and the probe
  /// that measures the scheduler's lag for it.
  std::shared_ptr<node_switches> switches = std::make_shared<node_switches>();
  std::shared_ptr<gate_counters> gate_stats = std::make_shared<gate_counters>();
  caf::actor lag_probe;
  std::unique_ptr<http::server> server;
  uint16_t cluster_port = 0;
  /// Read by the admin actor for `status`. Shared, because the admin may
  /// still be answering after serve() has returned and `parts` is gone.
  struct live_info {
    std::mutex mtx;
    http::server* server = nullptr; // null once the server stops
    std::string http_endpoint;
    std::string cluster_endpoint;
  };
  std::shared_ptr<live_info> live = std::make_shared<live_info>();
};

// Every connection is a descriptor, and SQLite and the middleman need
// theirs too: raise the soft limit as far as allowed; if that is still too
// low for http-connections-max, serve fewer connections (the rest get the
// designed 503) and say so, rather than fail later on accept or on SQLite.
std::string fit_descriptors(node_config& cfg) {
  constexpr rlim_t reserve = 256; // files, CAF's sockets, SQLite's WAL
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0)
    return {};
  lim.rlim_cur = lim.rlim_max;
  setrlimit(RLIMIT_NOFILE, &lim);
  getrlimit(RLIMIT_NOFILE, &lim);
  auto need = static_cast<rlim_t>(cfg.http.connections_max) + reserve;
  if (lim.rlim_cur == RLIM_INFINITY || lim.rlim_cur >= need)
    return {};
  if (lim.rlim_cur < reserve + 16)
    return "the open-file limit (ulimit -n) is " + std::to_string(lim.rlim_cur)
           + ", too low to serve HTTP";
  auto fit = static_cast<std::size_t>(lim.rlim_cur - reserve);
  spdlog::warn("http_connections_lowered key=seckill.http-connections-max "
               "configured={} effective={} reason=\"ulimit -n is {}\"",
               cfg.http.connections_max, fit, lim.rlim_cur);
  cfg.http.connections_max = fit;
  return {};
}

std::string create_data_dir(const node_config& cfg) {
  std::error_code ec;
  std::filesystem::create_directories(cfg.data_dir, ec);
  if (ec)
    return "cannot create data dir " + cfg.data_dir + ": " + ec.message();
  return {};
}

// One of the buyer secrets: as configured, else from its file, else from
// (or generated into) DATA_DIR/NAME.
std::string prepare_secret(const node_config& cfg, const char* name,
                           const char* key, const std::string& file,
                           std::string& secret) {
  if (!secret.empty() && !file.empty())
    return std::string{"set seckill."} + key + " or seckill." + key
           + "-file, not both";
  if (!secret.empty())
    return spdlog::info("{} source=config", name), std::string{};
  bool generated = false;
  auto path = file.empty() ? cfg.data_dir + "/" + key : file;
  if (auto err =
        load_or_make_secret(path, "32 to 1024 printable characters",
                            valid_secret, file.empty(), secret, generated);
      !err.empty())
    return err;
  spdlog::info("{} source={} path={}", name, generated ? "generated" : "file",
               log_text(path));
  return {};
}

std::string prepare_data_dir(node_config& cfg) {
  if (cfg.admin_token.empty()) {
    bool generated = false;
    if (auto err = load_or_make_token(cfg.data_dir, cfg.admin_token, generated);
        !err.empty())
      return err;
    spdlog::info("admin_token source={} path={}/admin-token",
                 generated ? "generated" : "file", cfg.data_dir);
  }
  auto& b = cfg.buyers;
  if (b.auth == buyer_auth::open)
    spdlog::warn("buyer_auth_open reason=\"no buyer JWT is checked: the "
                 "body's user_id is believed; only behind a trusted gateway\"");
  else if (auto err =
             prepare_secret(cfg, "buyer_jwt_secret", "buyer-jwt-secret",
                            cfg.buyer_jwt_secret_file, b.jwt_secret);
           !err.empty())
    return err;
  return prepare_secret(cfg, "sale_secret", "sale-secret", cfg.sale_secret_file,
                        b.sale_secret);
}

std::string start_admin(caf::actor_system& sys, const node_config& cfg,
                        node_parts& parts) {
  admin_env env;
  env.identity.node_id = cfg.node_id;
  env.identity.version = version;
  env.identity.data_dir = cfg.data_dir;
  env.identity.started_ms = system_now_ms();
  env.identity.recovered_items = parts.rt.recovered_items;
  env.identity.recovered_orders = parts.rt.recovered_orders;
  env.directory = parts.rt.directory;
  env.sessions = parts.rt.sessions;
  env.store = parts.rt.store;
  env.membership = parts.membership;
  env.now_ms = system_clock_ms();
  env.switches = parts.switches;
  env.gate_stats = parts.gate_stats;
  env.token = cfg.admin_token;
  env.live = [live = parts.live](node_status& st) {
    std::lock_guard<std::mutex> guard{live->mtx};
    st.http_endpoint = live->http_endpoint;
    st.cluster_endpoint = live->cluster_endpoint;
    if (live->server != nullptr)
      st.http = live->server->stats();
  };
  parts.admin = sys.spawn(admin_impl, std::move(env));
  // With TLS only the TLS port exists: a plain CAF connection finds nothing.
  auto port = cfg.tls.on()
                ? caf::openssl::publish(parts.admin, cfg.cluster_port,
                                        cfg.cluster_host.c_str(), true)
                : sys.middleman().publish(parts.admin, cfg.cluster_port,
                                          cfg.cluster_host.c_str(), true);
  if (!port)
    return "cannot publish the admin actor on " + cfg.cluster_host + ":"
           + std::to_string(cfg.cluster_port) + ": " + sys.render(port.error());
  // Only now does the membership start connecting (it needs the admin's
  // handle for its hello): a publish queued behind a connect would wait on
  // CAF's synchronous connect. A hello that arrives first is refused and
  // retried by the peer.
  if (parts.membership)
    caf::anon_send(parts.membership, admin_atom_v,
                   caf::actor_cast<caf::actor>(parts.admin));
  parts.cluster_port = *port;
  std::lock_guard<std::mutex> guard{parts.live->mtx};
  parts.live->cluster_endpoint = cfg.cluster_host + ":" + std::to_string(*port);
  return {};
}

// A bridge's hops end a little before the server's answer timeout, so the
// bridge's own, more precise answer (shard_unavailable and why) wins.
int64_t bridge_hop_ms(const http::server_config& h) {
  return std::max<int64_t>(50, h.answer_timeout_ms - h.answer_timeout_ms / 10);
}

std::string start_http(caf::actor_system& sys, const node_config& cfg,
                       node_parts& parts) {
  auto counters = std::make_shared<bridge_counters>();
  auto buyer_cfg = cfg.buyers;
  buyer_cfg.node_id = cfg.node_id; // tickets name the node whose line it is
  buyer_cfg.ticket_ttl_ms = cfg.runtime.directory.queue.ticket_ttl_ms;
  auto buyers = std::make_shared<buyer_gate>(buyer_cfg, parts.switches);
  for (std::size_t i = 0; i < cfg.bridge_actors; ++i) {
    bridge_env env{cfg.node_id,
                   cfg.admin_token,
                   parts.rt.directory,
                   parts.admin,
                   system_clock_ms(),
                   bridge_hop_ms(cfg.http),
                   counters,
                   parts.rt.cluster.relays.empty() ? nullptr
                                                   : parts.rt.relay_stats,
                   parts.switches,
                   parts.gate_stats,
                   parts.rt.store_health,
                   buyers};
    parts.bridges.push_back(sys.spawn(bridge_impl, std::move(env)));
  }
  for (const auto& [name, value] : cfg.switches)
    set_switch(*parts.switches, name, value);
  parts.lag_probe = sys.spawn(lag_probe_impl, parts.switches, steady_clock_us(),
                              limits::lag_probe_interval_ms);
  auto gate = std::make_shared<front_gate>(parts.switches, parts.gate_stats);
  auto handler = front_door(front_door_env{parts.bridges, gate, buyers,
                                           counters, steady_clock_us(),
                                           system_clock_ms(), cfg.admin_token});
  auto http_cfg = cfg.http;
  http_cfg.loop_probe = [sw = parts.switches](int64_t late_us, int64_t due_us) {
    sw->io_lag_last_us.store(late_us, std::memory_order_relaxed);
    sw->io_lag_due_us.store(due_us, std::memory_order_relaxed);
  };
  http_cfg.loop_probe_ms = limits::lag_probe_interval_ms;
  std::string error;
  parts.server = http::server::start(http_cfg, std::move(handler), error);
  if (!parts.server)
    return error;
  std::lock_guard<std::mutex> guard{parts.live->mtx};
  parts.live->server = parts.server.get();
  parts.live->http_endpoint =
    cfg.http.host + ":" + std::to_string(parts.server->port());
  return {};
}

// Every item's last changes durable before the process ends.
void commit_barrier(caf::actor_system& sys, const node_parts& parts) {
  caf::scoped_actor self{sys};
  auto t = std::chrono::milliseconds{barrier_timeout_ms};
  std::vector<std::string> ids;
  self->request(parts.rt.directory, t, list_atom_v, true)
    .receive([&](std::vector<std::string>& xs) { ids = std::move(xs); },
             [&](caf::error&) {});
  int64_t ok = 0, failed = 0;
  auto deadline = std::chrono::steady_clock::now() + t;
  for (const auto& id : ids) {
    if (std::chrono::steady_clock::now() > deadline) {
      ++failed; // out of time: its last changes may be in flight, not lost
      continue;
    }
    caf::actor item;
    self->request(parts.rt.directory, t, lookup_atom_v, id)
      .receive([&](caf::actor& i, caf::actor&) { item = i; },
               [&](caf::error&) {});
    if (!item) {
      ++failed;
      continue;
    }
    self->request(caf::actor_cast<item_actor>(item), t, commit_atom_v)
      .receive([&](item_view&) { ++ok; },
               [&](caf::error& err) {
                 ++failed;
                 spdlog::error("shutdown_commit_failed item={} error={}", id,
                               log_text(sys.render(err)));
               });
  }
  spdlog::info("shutdown_committed items={} failed={}", ok, failed);
}

int wait_for_signal(const sigset_t& set) {
  int sig = 0;
  while (sigwait(&set, &sig) != 0) {
  }
  return sig;
}

// The members in cluster.nodes order (a node alone is a cluster of one),
// and the runtime's view of them.
std::vector<member_spec> members_of(const node_config& cfg,
                                    runtime_config& rcfg) {
  auto members = cfg.cluster_members;
  if (members.empty())
    members.push_back(
      member_spec{cfg.node_id, cfg.cluster_host, cfg.cluster_port});
  rcfg.nodes.clear();
  for (std::size_t i = 0; i < members.size(); ++i) {
    if (members[i].id == cfg.node_id)
      rcfg.self_node = static_cast<uint32_t>(i);
    rcfg.nodes.push_back(members[i].id);
  }
  return members;
}

void start_membership(caf::actor_system& sys, const node_config& cfg,
                      const runtime_config& rcfg,
                      std::vector<member_spec> members, node_parts& parts) {
  membership_env menv;
  menv.members = std::move(members);
  menv.member_texts = cfg.cluster_nodes;
  menv.self = rcfg.self_node;
  menv.directory = caf::actor_cast<caf::actor>(parts.rt.directory);
  menv.sessions = caf::actor_cast<caf::actor>(parts.rt.sessions);
  menv.relays = parts.rt.cluster.relays;
  menv.now_ms = system_clock_ms();
  menv.hop_timeout_ms = cfg.runtime.hop_timeout_ms;
  menv.tls = cfg.tls.on();
  auto n = menv.members.size();
  parts.membership = sys.spawn(membership_impl, std::move(menv));
  spdlog::info("cluster_joining node={} members={}", cfg.node_id, n);
}

// Stops the actors of `parts` in reverse start order, from a local actor:
// actors reachable from the cluster port honour no anonymous exit
// (actors/base/strangers.hpp). The admin actor is unpublished first when
// `published`.
void stop_parts(caf::actor_system& sys, const node_config& cfg,
                node_parts& parts, bool published) {
  caf::scoped_actor stopper{sys};
  if (parts.lag_probe)
    stopper->send_exit(parts.lag_probe, caf::exit_reason::user_shutdown);
  for (auto& b : parts.bridges)
    stopper->send_exit(b, caf::exit_reason::user_shutdown);
  if (parts.membership) // no new connects queued before the unpublish
    stopper->send_exit(parts.membership, caf::exit_reason::user_shutdown);
  if (published && cfg.tls.on()) // caf/openssl/unpublish.hpp does not
                                 // compile in 0.17.6
    caf::make_function_view(sys.openssl_manager().actor_handle())(
      caf::unpublish_atom_v, caf::actor_cast<caf::actor_addr>(parts.admin),
      parts.cluster_port);
  else if (published)
    sys.middleman().unpublish(parts.admin, parts.cluster_port);
  stopper->send_exit(parts.admin, caf::exit_reason::user_shutdown);
  stop_runtime(sys, parts.rt);
}

// The one line scripts wait for.
void print_ready(const node_config& cfg, const node_parts& parts) {
  std::printf("node_ready node=%s http=%s:%u cluster=%s:%u data_dir=%s "
              "items=%lld orders=%lld\n",
              cfg.node_id.c_str(), cfg.http.host.c_str(),
              static_cast<unsigned>(parts.server->port()),
              cfg.cluster_host.c_str(),
              static_cast<unsigned>(parts.cluster_port), cfg.data_dir.c_str(),
              static_cast<long long>(parts.rt.recovered_items),
              static_cast<long long>(parts.rt.recovered_orders));
  std::fflush(stdout);
}

// Stop accepting, answer what is in flight, make every item's last changes
// durable, stop the server.
void drain_and_commit(caf::actor_system& sys, const node_config& cfg,
                      node_parts& parts) {
  parts.server->stop_accepting();
  bool drained = parts.server->drain(cfg.http.answer_timeout_ms + 1'000);
  spdlog::info("shutdown_drained complete={}", drained);
  commit_barrier(sys, parts);
  {
    std::lock_guard<std::mutex> guard{parts.live->mtx};
    parts.live->server = nullptr;
  }
  parts.server->stop();
}

int serve(caf::actor_system& sys, node_config& cfg, const sigset_t& signals) {
  node_parts parts;
  runtime_config rcfg = cfg.runtime;
  auto members = members_of(cfg, rcfg);
  if (auto err = start_runtime(sys, rcfg, parts.rt); !err.empty()) {
    spdlog::error("start_failed reason={}", log_text(err));
    std::fprintf(stderr, "seckill-node: cannot start: %s\n", err.c_str());
    return 1;
  }
  if (members.size() > 1)
    start_membership(sys, cfg, rcfg, std::move(members), parts);
  auto err = start_admin(sys, cfg, parts);
  if (err.empty())
    err = start_http(sys, cfg, parts);
  if (!err.empty()) {
    std::fprintf(stderr, "seckill-node: cannot start: %s\n", err.c_str());
    stop_parts(sys, cfg, parts, false);
    return 1;
  }
  print_ready(cfg, parts);
  auto sig = wait_for_signal(signals);
  spdlog::info("shutdown_started signal={}", strsignal(sig));
  drain_and_commit(sys, cfg, parts);
  stop_parts(sys, cfg, parts, true);
  spdlog::info("shutdown_done node={}", cfg.node_id);
  return 0;
}

// Checks the TLS files and warns of settings that work but are risky.
// Returns false (having said why) when the node must not start.
bool check_security_and_warn(const node_config& cfg) {
  if (cfg.tls.on()) {
    if (auto err = check_tls_files(cfg.tls); !err.empty()) {
      std::fprintf(stderr, "seckill-node: refusing to start: %s\n",
                   err.c_str());
      return false;
    }
    spdlog::info("cluster_tls certificate={} cafile={}", cfg.tls.certificate,
                 cfg.tls.cafile);
  } else if (cfg.cluster_members.size() > 1) {
    spdlog::warn("cluster_unauthenticated reason=\"no [openssl]: any process "
                 "on this machine can connect to the cluster port and join "
                 "as a member; set openssl.certificate, key and cafile\"");
  }
  if (const auto& q = cfg.runtime.directory.queue;
      q.rate_per_s * static_cast<double>(q.wait_ms_max) < 1000.0)
    spdlog::warn("waiting_room_off admission_rate_per_s={} wait_ms_max={} "
                 "reason=\"not one token comes within wait-ms-max: every "
                 "buyer who finds the bucket empty is answered busy at once\"",
                 q.rate_per_s, q.wait_ms_max);
  return true;
}

// CAF's own settings from the node's config.
void configure_caf(const node_config& cfg, caf::actor_system_config& ccfg) {
  register_types(ccfg);
  ccfg.load<caf::io::middleman>();
  if (cfg.tls.on())
    enable_tls(ccfg, cfg.tls);
  if (cfg.scheduler_max_threads > 0)
    ccfg.set("scheduler.max-threads",
             static_cast<size_t>(cfg.scheduler_max_threads));
  if (cfg.heartbeat_interval_ms > 0)
    ccfg.set(
      "middleman.heartbeat-interval",
      caf::timespan{std::chrono::milliseconds{cfg.heartbeat_interval_ms}});
  if (cfg.connection_timeout_ms > 0)
    ccfg.set(
      "middleman.connection-timeout",
      caf::timespan{std::chrono::milliseconds{cfg.connection_timeout_ms}});
}

} // namespace

int run_node(int argc, char** argv) {
  // Signals are taken by one thread (sigwait below); every thread started
  // from here on inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  options opt;
  if (auto code = parse_args(argc, argv, opt); code >= 0)
    return code;
  auto& cfg = opt.node;
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %l %v");
  spdlog::set_level(spdlog::level::from_str(cfg.log_level));
  spdlog::flush_on(spdlog::level::info);
  if (auto err = fit_descriptors(cfg); !err.empty()) {
    std::fprintf(stderr, "seckill-node: refusing to start: %s\n", err.c_str());
    return 2;
  }
  if (!check_security_and_warn(cfg))
    return 2;
  if (auto err = create_data_dir(cfg); !err.empty()) {
    std::fprintf(stderr, "seckill-node: cannot start: %s\n", err.c_str());
    return 1;
  }
  // Held until the process ends (kill -9 included: the kernel drops it).
  data_dir_lock lock;
  if (auto err = lock.acquire(cfg.data_dir); !err.empty()) {
    spdlog::error("start_refused reason={}", log_text(err));
    std::fprintf(stderr, "seckill-node: refusing to start: %s\n", err.c_str());
    return 2;
  }
  if (auto err = prepare_data_dir(cfg); !err.empty()) {
    std::fprintf(stderr, "seckill-node: cannot start: %s\n", err.c_str());
    return 1;
  }
  caf::actor_system_config ccfg;
  configure_caf(cfg, ccfg);
  spdlog::info("node_starting node={} version={} data_dir={} synchronous={}",
               cfg.node_id, version, cfg.data_dir, cfg.runtime.synchronous);
  caf::actor_system sys{ccfg};
  return serve(sys, cfg, signals);
}

} // namespace seckill
