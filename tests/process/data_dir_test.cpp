// One process per data dir, and a store file that cannot be lost silently,
// tried with real node processes (issue 11, defects 1 and 3a):
// - a second seckill-node on the same data dir refuses to start (exit 2) and
//   names the first one's pid; before the fix it said node_ready, shared the
//   SQLite file, and both sold order `one.1` (one of the two 201s was lost);
// - a lock left by a node killed with SIGKILL does not stop the next start;
// - the SQLite file deleted under a running node: it stops acknowledging
//   (503 store_unavailable with Retry-After), /healthz says 503 and why, the
//   log says it, and a restart refuses the empty file instead of selling the
//   stock again.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include "tests/support/node_harness.hpp"
#include "tests/support/sim_world.hpp"

using namespace seckill::test;

namespace {

std::string node_bin() {
  return SECKILL_NODE_BIN;
}

std::vector<std::string> second_node_args(const std::string& dir) {
  return {"--config-file=" + std::string(SECKILL_SOURCE_DIR) + "/cluster.conf",
          "--seckill.data-dir=" + dir, "--seckill.http-port=0",
          "--cluster.port=0",
          std::string("--seckill.admin-token=") + node_process::token()};
}

} // namespace

TEST_CASE("data dir: a second node on the same data dir refuses to start and "
          "names the holder",
          "[process][data-dir]") {
  temp_dir dir;
  auto data = (dir.path / "d").string();
  node_process first{data};
  http_client c{first.http_port()};
  REQUIRE(create_item(c, item_def{"one", 1, 1}).status == 201);
  std::string out;
  int rc = run_process(node_bin(), second_node_args(data), out, 20'000);
  CHECK(rc == 2);
  CHECK(out.find("in use by another seckill-node (pid "
                 + std::to_string(first.pid()) + ",")
        != std::string::npos);
  CHECK(out.find("node_ready") == std::string::npos);
  // The first node still sells the one unit, once.
  CHECK(purchase(c, "one", "ua", 1, "ra").status == 201);
  CHECK(problem_mismatch(purchase(c, "one", "ub", 1, "rb"), 409, "sold_out")
        == "");
}

TEST_CASE("data dir: the lock of a node killed with SIGKILL does not outlive "
          "it",
          "[process][data-dir]") {
  temp_dir dir;
  auto data = (dir.path / "d").string();
  {
    node_process first{data};
    first.kill9();
  }
  node_process again{data}; // throws if it refuses to start
  http_client c{again.http_port()};
  CHECK(c.request("GET", "/healthz").status == 200);
}

TEST_CASE("data dir: the store file deleted under a running node stops it "
          "acknowledging, and a restart refuses the empty file",
          "[process][data-dir]") {
  temp_dir dir;
  auto data = (dir.path / "d").string();
  {
    node_process node{data};
    http_client c{node.http_port()};
    REQUIRE(create_item(c, item_def{"sku", 10, 5}).status == 201);
    REQUIRE(purchase(c, "sku", "u1", 1, "r1").status == 201);
    REQUIRE(std::filesystem::remove(data + "/seckill.db"));
    auto r = purchase(c, "sku", "u1", 1, "r2");
    CHECK(problem_mismatch(r, 503, "store_unavailable") == "");
    CHECK(!r.header("retry-after").empty());
    auto h = c.request("GET", "/healthz");
    CHECK(h.status == 503);
    CHECK(h.body.find("file_unlinked") != std::string::npos);
    CHECK(wait_for_log(node, "store_failed", 1, 5'000));
    // Nothing more is acknowledged, also for a new user.
    CHECK(purchase(c, "sku", "u2", 1, "r3").status == 503);
  }
  std::string out;
  int rc = run_process(node_bin(), second_node_args(data), out, 20'000);
  CHECK(rc != 0);
  CHECK(out.find("is missing") != std::string::npos);
  CHECK(out.find("node_ready") == std::string::npos);
}

TEST_CASE("data dir: a store file overwritten with garbage is refused at "
          "start with a message naming it, and the restored file sells on",
          "[process][data-dir]") {
  temp_dir dir;
  auto data = (dir.path / "d").string();
  auto db = data + "/seckill.db";
  {
    node_process node{data};
    http_client c{node.http_port()};
    REQUIRE(create_item(c, item_def{"sku", 10, 5}).status == 201);
    REQUIRE(purchase(c, "sku", "u1", 1, "r1").status == 201);
    REQUIRE(node.terminate() == 0);
  }
  auto backup = dir.path / "backup.db";
  std::filesystem::copy_file(db, backup);
  {
    // The pages after the header: the file still says it is SQLite.
    std::fstream f(db, std::ios::in | std::ios::out | std::ios::binary);
    REQUIRE(f);
    f.seekp(4'096);
    std::string junk(8'192, '\x5a');
    f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  std::string out;
  int rc = run_process(node_bin(), second_node_args(data), out, 20'000);
  INFO(out);
  CHECK(rc != 0);
  CHECK(out.find("seckill.db is damaged") != std::string::npos);
  CHECK(out.find("restore it from a backup") != std::string::npos);
  CHECK(out.find("node_ready") == std::string::npos);
  // The operator restores the backup: the order is there and it sells on.
  std::filesystem::copy_file(backup, db,
                             std::filesystem::copy_options::overwrite_existing);
  node_process node{data};
  http_client c{node.http_port()};
  CHECK(purchase(c, "sku", "u1", 1, "r1").status == 200);
  CHECK(purchase(c, "sku", "u2", 1, "r2").status == 201);
  CHECK(node.terminate() == 0);
}
