// The strict [seckill] configuration reader: the shipped cluster.conf is
// valid and says what the code's defaults are; the command line overrides
// the file; every kind of bad input is an error naming the key.
#include <catch2/catch.hpp>

#include <fstream>

#include "node/config.hpp"
#include "tests/sim_world.hpp"

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
  auto problem = load_config(SECKILL_SOURCE_DIR "/cluster.conf", {},
                             from_file, rest);
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
  CHECK(a.directory.queue.hop_timeout_ms == b.directory.queue.hop_timeout_ms);
  CHECK(a.sessions.sessions_max == b.sessions.sessions_max);
  CHECK(a.sessions.session.rate_per_s == b.sessions.session.rate_per_s);
  CHECK(a.sessions.session.burst == b.sessions.session.burst);
  CHECK(a.sessions.session.unpaid_max == b.sessions.session.unpaid_max);
  CHECK(a.sessions.session.idle_timeout_ms
        == b.sessions.session.idle_timeout_ms);
  // Every key the reader knows is documented in the file.
  std::ifstream in{SECKILL_SOURCE_DIR "/cluster.conf"};
  std::string text{std::istreambuf_iterator<char>{in}, {}};
  for (auto key : config_keys()) {
    auto name = key.substr(8, key.find(' ') - 8); // drop "seckill."
    CHECK(text.find("\n" + name + " = ") != std::string::npos);
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
    {"[seckill]\nsessions-max = 99999999999999999999\n", {},
     "seckill.sessions-max"},
    {"[seckill]\nsynchronous = \"fast\"\n", {}, "seckill.synchronous"},
    {"[seckill]\nadmission-rate-per-s = -1\n", {},
     "seckill.admission-rate-per-s"},
    {"[seckill]\nadmission-rate-per-s = nan\n", {},
     "seckill.admission-rate-per-s"},
    {"[seckill]\ndata-dir = \"\"\n", {}, "seckill.data-dir"},
    {"[seckill]\njust words\n", {}, "key=value"},
    {"[seckill\nx=1\n", {}, "section"},
    {"", {"--seckill.queue-inflight-max=4096"}, "seckill.queue-inflight-max"},
    {"", {"--seckill.nope=1"}, "seckill.nope"},
    {"", {"--seckill.unpaid-max"}, "--seckill.unpaid-max"},
  };
  for (const auto& bc : cases) {
    node_config c;
    auto problem = load(bc.text, bc.args, c);
    INFO("input: " << bc.text << " args: " << bc.args.size());
    CHECK(problem.find(bc.must_name) != std::string::npos);
  }
  node_config c;
  std::vector<std::string> rest;
  CHECK(load_config("/nonexistent/cluster.conf", {}, c, rest).find(
          "cannot read")
        != std::string::npos);
}

TEST_CASE("config: other sections are left to CAF", "[config]") {
  node_config c;
  auto problem = load("[scheduler]\nmax-threads = 2\n[seckill]\n"
                      "items-max = 5\n",
                      {}, c);
  CHECK(problem.empty());
  CHECK(c.runtime.directory.items_max == 5);
}
