// The strict [seckill] configuration reader: the shipped cluster.conf is
// valid and says what the code's defaults are; the command line overrides
// the file; every kind of bad input is an error naming the key.
#include <catch2/catch.hpp>

#include <fstream>

#include "node/config.hpp"
#include "tests/support/sim_world.hpp"

using namespace seckill;

namespace {

std::string load(const std::string& text, std::vector<std::string> args,
                 node_config& out) {
  test::temp_dir dir;
  auto path = (dir.path / "c.conf").string();
  std::ofstream{path} << text;
  std::vector<std::string> rest;
  return load_config(path, args, out, rest);
}

} // namespace

TEST_CASE("config: the shipped cluster.conf loads and matches the defaults",
          "[config]") {
  node_config from_file, defaults;
  std::vector<std::string> rest;
  auto problem =
    load_config(SECKILL_SOURCE_DIR "/cluster.conf", {}, from_file, rest);
  REQUIRE(problem.empty());
  load_config("", {}, defaults, rest);
  const auto& a = from_file.runtime;
  const auto& b = defaults.runtime;
  CHECK(from_file.data_dir == defaults.data_dir);
  CHECK(a.db_path == b.db_path);
  CHECK(a.synchronous == b.synchronous);
  CHECK(a.directory.items_max == b.directory.items_max);
  CHECK(a.directory.queue.rate_per_s == b.directory.queue.rate_per_s);
  CHECK(a.directory.queue.burst == b.directory.queue.burst);
  CHECK(a.directory.queue.waiting_max == b.directory.queue.waiting_max);
  CHECK(a.directory.queue.wait_ms_max == b.directory.queue.wait_ms_max);
  CHECK(a.directory.queue.inflight_max == b.directory.queue.inflight_max);
  CHECK(a.hop_timeout_ms == b.hop_timeout_ms);
  CHECK(a.sessions.sessions_max == b.sessions.sessions_max);
  CHECK(a.sessions.session.rate_per_s == b.sessions.session.rate_per_s);
  CHECK(a.sessions.session.burst == b.sessions.session.burst);
  CHECK(a.sessions.session.unpaid_max == b.sessions.session.unpaid_max);
  CHECK(a.sessions.session.idle_timeout_ms
        == b.sessions.session.idle_timeout_ms);
  CHECK(from_file.node_id == defaults.node_id);
  CHECK(from_file.log_level == defaults.log_level);
  CHECK(from_file.admin_token == defaults.admin_token);
  CHECK(from_file.bridge_actors == defaults.bridge_actors);
  CHECK(from_file.cluster_host == defaults.cluster_host);
  CHECK(from_file.cluster_port == defaults.cluster_port);
  CHECK(from_file.scheduler_max_threads == defaults.scheduler_max_threads);
  CHECK(from_file.heartbeat_interval_ms == defaults.heartbeat_interval_ms);
  CHECK(from_file.connection_timeout_ms == defaults.connection_timeout_ms);
  const auto& h = from_file.http;
  const auto& d = defaults.http;
  CHECK(h.host == d.host);
  CHECK(h.port == d.port);
  CHECK(h.io_threads == d.io_threads);
  CHECK(h.connections_max == d.connections_max);
  CHECK(h.request_line_bytes_max == d.request_line_bytes_max);
  CHECK(h.header_bytes_max == d.header_bytes_max);
  CHECK(h.body_bytes_max == d.body_bytes_max);
  CHECK(h.pipeline_max == d.pipeline_max);
  CHECK(h.idle_timeout_ms == d.idle_timeout_ms);
  CHECK(h.request_timeout_ms == d.request_timeout_ms);
  CHECK(h.answer_timeout_ms == d.answer_timeout_ms);
  // Every key the reader knows is documented in the file.
  std::ifstream in{SECKILL_SOURCE_DIR "/cluster.conf"};
  std::string text{std::istreambuf_iterator<char>{in}, {}};
  for (auto key : config_keys()) {
    auto full = key.substr(0, key.find(' '));
    auto dot = full.find('.');
    auto section = "[" + full.substr(0, dot) + "]";
    auto name = full.substr(dot + 1);
    INFO(full);
    auto at = text.find("\n" + section + "\n");
    REQUIRE(at != std::string::npos);
    auto next = text.find("\n[", at + 1);
    auto body = text.substr(at, next == std::string::npos ? next : next - at);
    CHECK(body.find("\n" + name + " = ") != std::string::npos);
  }
}

TEST_CASE("config: the command line overrides the file", "[config]") {
  node_config c;
  auto problem = load("[seckill]\nwait-ms-max = 300\ndata-dir = \"/x\"\n",
                      {"--seckill.wait-ms-max=400", "--other=1"}, c);
  REQUIRE(problem.empty());
  CHECK(c.runtime.directory.queue.wait_ms_max == 400);
  CHECK(c.data_dir == "/x");
  CHECK(c.runtime.db_path == "/x/seckill.db");
}

TEST_CASE("config: bad input is an error naming the key", "[config]") {
  struct bad_case {
    std::string text;
    std::vector<std::string> args;
    std::string must_name;
  };
  std::vector<bad_case> cases{
    {"[seckill]\nbogus = 1\n", {}, "seckill.bogus"},
    {"[seckill]\nwait-ms-max = \"abc\"\n", {}, "seckill.wait-ms-max"},
    {"[seckill]\nwait-ms-max = 12abc\n", {}, "seckill.wait-ms-max"},
    {"[seckill]\nwait-ms-max = 0\n", {}, "seckill.wait-ms-max"},
    {"[seckill]\nwait-ms-max = 99999999\n", {}, "seckill.wait-ms-max"},
    {"[seckill]\nsessions-max = 99999999999999999999\n",
     {},
     "seckill.sessions-max"},
    {"[seckill]\nsynchronous = \"fast\"\n", {}, "seckill.synchronous"},
    {"[seckill]\nadmission-rate-per-s = -1\n",
     {},
     "seckill.admission-rate-per-s"},
    {"[seckill]\nadmission-rate-per-s = nan\n",
     {},
     "seckill.admission-rate-per-s"},
    {"[seckill]\ndata-dir = \"\"\n", {}, "seckill.data-dir"},
    {"[seckill]\njust words\n", {}, "key=value"},
    {"[seckill\nx=1\n", {}, "section"},
    {"", {"--seckill.queue-inflight-max=4096"}, "seckill.queue-inflight-max"},
    {"", {"--seckill.nope=1"}, "seckill.nope"},
    {"", {"--seckill.unpaid-max"}, "--seckill.unpaid-max"},
    {"[seckill]\nnode-id = \"n 1\"\n", {}, "seckill.node-id"},
    {"", {"--seckill.node-id="}, "seckill.node-id"},
    {"", {"--seckill.admin-token=short"}, "seckill.admin-token"},
    {"", {"--seckill.http-port=65536"}, "seckill.http-port"},
    {"", {"--seckill.http-port=80x"}, "seckill.http-port"},
    {"", {"--seckill.http-host=http://x"}, "seckill.http-host"},
    {"",
     {"--seckill.http-body-bytes-max=99999999"},
     "seckill.http-body-bytes-max"},
    {"",
     {"--seckill.http-request-line-bytes-max=9000"},
     "seckill.http-request-line-bytes-max"},
    {"", {"--cluster.port=-1"}, "cluster.port"},
    {"",
     {"--seckill.wait-ms-max=2000", "--seckill.http-answer-timeout-ms=1000"},
     "seckill.http-answer-timeout-ms"},
    {"", {"--cluster.bogus=x"}, "cluster.bogus"},
    {"[cluster]\nport = \"abc\"\n", {}, "cluster.port"},
    {"[cluster]\nbogus = 1\n", {}, "cluster.bogus"},
    {"[sekill]\nx = 1\n", {}, "[sekill]"},
    {"x = 1\n", {}, "before any [section]"},
    {"[scheduler]\nmax-threads = \"abc\"\n", {}, "scheduler.max-threads"},
    {"[scheduler]\npolicy = 'sharing'\n", {}, "scheduler.policy"},
    {"[middleman]\nheartbeat-interval = 200\n",
     {},
     "middleman.heartbeat-interval"},
    {"", {"--middleman.connection-timeout=1h"}, "middleman.connection-timeout"},
    {"", {"--middleman.bogus=1"}, "middleman.bogus"},
    {"[cluster]\nnodes = [\"n1@127.0.0.1\"]\n", {}, "cluster.nodes"},
    {"[cluster]\nnodes = [\"n1@127.0.0.1:0\"]\n", {}, "cluster.nodes"},
    {"[cluster]\nnodes = [\"n1@127.0.0.1:70000\"]\n", {}, "cluster.nodes"},
    {"[cluster]\nnodes = [\"@127.0.0.1:1\"]\n", {}, "cluster.nodes"},
    {"[cluster]\nnodes = [\"n 1@127.0.0.1:1\"]\n", {}, "cluster.nodes"},
    {"[cluster]\nnodes = [\"n1@:1\"]\n", {}, "cluster.nodes"},
    {"[cluster]\nnodes = [\"n1@h:1\", \"n1@h:2\"]\n", {}, "listed twice"},
    {"[cluster]\nnodes = [\"n1@h:1\", \"n2@h:1\"]\n", {}, "share an address"},
    {"[cluster]\nnodes = [\"n1@h:1\"\n", {}, "cluster.nodes"},
    {"", {"--cluster.nodes=n2@h:1,n3@h:2"}, "not one of cluster.nodes"},
    {"", {"--cluster.nodes=n1@h:1,n2@h:2"}, "heartbeat-interval"},
    {"",
     {"--cluster.nodes=n1@h:1,n2@h:2", "--middleman.heartbeat-interval=1s",
      "--middleman.connection-timeout=1s"},
     "connection-timeout must exceed"},
  };
  for (const auto& bc : cases) {
    node_config c;
    auto problem = load(bc.text, bc.args, c);
    INFO("input: " << bc.text << " args: " << bc.args.size());
    CHECK(problem.find(bc.must_name) != std::string::npos);
  }
  node_config c;
  std::vector<std::string> rest;
  CHECK(
    load_config("/nonexistent/cluster.conf", {}, c, rest).find("cannot read")
    != std::string::npos);
}

TEST_CASE("config: the node's own keys, from file and command line",
          "[config]") {
  node_config c;
  auto problem = load("[seckill]\nnode-id = \"edge-7\"\nhttp-port = 0\n"
                      "admin-token = \"0123456789abcdef\"\n"
                      "[cluster]\nhost = \"::1\"\nport = 4300\n",
                      {"--cluster.port=0", "--seckill.http-pipeline-max=4"}, c);
  REQUIRE(problem.empty());
  CHECK(c.node_id == "edge-7");
  CHECK(c.http.port == 0);
  CHECK(c.admin_token == "0123456789abcdef");
  CHECK(c.cluster_host == "::1");
  CHECK(c.cluster_port == 0);
  CHECK(c.http.pipeline_max == 4);
}

TEST_CASE("config: CAF's sections are read as strictly as ours", "[config]") {
  node_config c;
  auto problem = load("[scheduler]\nmax-threads = 2\n[seckill]\n"
                      "items-max = 5\n[middleman]\n"
                      "heartbeat-interval = 200ms\n",
                      {"--middleman.connection-timeout=2s"}, c);
  REQUIRE(problem.empty());
  CHECK(c.runtime.directory.items_max == 5);
  CHECK(c.scheduler_max_threads == 2);
  CHECK(c.heartbeat_interval_ms == 200);
  CHECK(c.connection_timeout_ms == 2'000);
}

TEST_CASE("config: cluster.nodes lists the members, and this node's entry sets "
          "its cluster address",
          "[config]") {
  for (const auto& arg :
       {std::string{"--cluster.nodes=[\"n1@127.0.0.1:5001\", "
                    "\"n2@10.0.0.2:5002\"]"},
        std::string{"--cluster.nodes=n1@127.0.0.1:5001,n2@10.0.0.2:5002"}}) {
    node_config c;
    std::vector<std::string> rest;
    // Off loopback: only with TLS (the files are checked at start, not
    // here).
    auto problem = load_config(
      {},
      {arg, "--seckill.node-id=n2", "--middleman.heartbeat-interval=200ms",
       "--middleman.connection-timeout=1s", "--openssl.certificate=n2.pem",
       "--openssl.key=n2.key", "--openssl.cafile=ca.pem"},
      c, rest);
    INFO(arg << ": " << problem);
    REQUIRE(problem.empty());
    CHECK(c.cluster_nodes
          == std::vector<std::string>{"n1@127.0.0.1:5001", "n2@10.0.0.2:5002"});
    CHECK(c.cluster_host == "10.0.0.2");
    CHECK(c.cluster_port == 5002);
  }
  node_config alone;
  std::vector<std::string> rest;
  REQUIRE(load_config({}, {"--cluster.port=7000"}, alone, rest).empty());
  CHECK(alone.cluster_nodes.empty());
  CHECK(alone.cluster_port == 7000);
}

TEST_CASE("config: a cluster port off loopback needs TLS with peer "
          "certificates - all three files or none",
          "[config][tls]") {
  auto load = [](std::vector<std::string> args) {
    node_config c;
    std::vector<std::string> rest;
    return load_config({}, args, c, rest);
  };
  const std::vector<std::string> member{
    "--cluster.nodes=n1@127.0.0.1:5001,n2@10.0.0.2:5002",
    "--middleman.heartbeat-interval=200ms",
    "--middleman.connection-timeout=1s"};
  auto with = [&](std::vector<std::string> more) {
    auto all = member;
    all.insert(all.end(), more.begin(), more.end());
    return all;
  };
  // n2 listens on 10.0.0.2; n1 on loopback still talks to n2 there.
  for (auto id : {"--seckill.node-id=n2", "--seckill.node-id=n1"}) {
    auto problem = load(with({id}));
    INFO(problem);
    CHECK(problem.find("not loopback") != std::string::npos);
    CHECK(problem.find("openssl.certificate") != std::string::npos);
  }
  // A loopback cluster without TLS only when asked for.
  const std::vector<std::string> loopback{
    "--cluster.nodes=n1@127.0.0.1:5001,n2@127.0.0.1:5002",
    "--middleman.heartbeat-interval=200ms",
    "--middleman.connection-timeout=1s"};
  auto plain = load(loopback);
  CHECK(plain.find("cluster.plain-loopback") != std::string::npos);
  auto asked = loopback;
  asked.push_back("--cluster.plain-loopback=true");
  CHECK(load(asked).empty());
  asked.push_back("--cluster.plain-loopback=yes");
  CHECK(load(asked).find("true or false") != std::string::npos);
  auto far = with({"--seckill.node-id=n2", "--cluster.plain-loopback=true"});
  CHECK(load(far).find("not loopback") != std::string::npos); // never off it
  CHECK(load({"--cluster.host=0.0.0.0"}).find("not loopback")
        != std::string::npos);
  CHECK(load({"--cluster.host=::"}).find("not loopback") != std::string::npos);
  for (auto host : {"127.0.0.1", "127.1.2.3", "::1", "localhost"})
    CHECK(load({std::string("--cluster.host=") + host}).empty());
  CHECK(!is_loopback_host("128.0.0.1"));
  CHECK(!is_loopback_host("10.0.0.1"));
  CHECK(!is_loopback_host("127.0.0.1.example.com"));
  // Two of three, or one: refused, naming what is there.
  auto two = load({"--openssl.certificate=a.pem", "--openssl.key=a.key"});
  CHECK(two.find("certificate, key and cafile together") != std::string::npos);
  CHECK(two.find("certificate key only") != std::string::npos);
  CHECK(load({"--openssl.cafile=ca.pem"}).find("cafile only")
        != std::string::npos);
  CHECK(load(with({"--seckill.node-id=n2", "--openssl.certificate=a.pem",
                   "--openssl.key=a.key", "--openssl.cafile=ca.pem"}))
          .empty());
  // From a file, as a section of its own.
  node_config c;
  CHECK(apply_config_text("[openssl]\ncertificate = \"a.pem\"\nkey = "
                          "\"a.key\"\ncafile = \"ca.pem\"\n",
                          "t.conf", c)
          .empty());
  CHECK(c.tls.on());
  CHECK(c.tls.cafile == "ca.pem");
  CHECK(apply_config_text("[openssl]\npassphrase = \"x\"\n", "t.conf", c)
          .find("unknown key openssl.passphrase")
        != std::string::npos);
}
