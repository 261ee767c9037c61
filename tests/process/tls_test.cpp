// The cluster port over TLS with peer certificates ([openssl] in
// cluster.conf), with real processes and certificates made by
// examples/tls/make-certs.sh: three members sell across each other over
// TLS; the operator's CLI gets in only with a certificate the cluster's CA
// signed; a plain CAF client, a CLI without TLS, a CLI or a member with a
// certificate of another CA get nothing, and their failed connections do
// not cut the members' links (CAF 0.17.6 let one failed TLS connection
// drop every other: node/openssl_fix.cpp); a member restarted after an
// impostor held its place rejoins and sells its items again. And the start
// refusals: files that do not fit together, a non-loopback cluster port
// without TLS.
#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>

#include "actors/edge/admin.hpp"
#include "messages/type_ids.hpp"
#include "tests/support/ledger_audit.hpp"
#include "tests/support/node_harness.hpp"
#include "tests/support/sim_world.hpp"

using namespace seckill::test;

namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

/// A CA and certificates for `names` in `dir` (examples/tls/make-certs.sh).
void make_certs(const std::filesystem::path& dir,
                const std::vector<std::string>& names) {
  std::vector<std::string> args{std::string(SECKILL_SOURCE_DIR)
                                  + "/examples/tls/make-certs.sh",
                                dir.string()};
  args.insert(args.end(), names.begin(), names.end());
  std::string out;
  INFO(out);
  REQUIRE(run_process("/bin/bash", args, out, 30'000) == 0);
}

/// The three TLS flags for NAME's certificate from `dir`, trusting the CA
/// of `ca_dir`: the node's [openssl] keys, or (`prefix` "--tls-") the
/// CLI's.
std::vector<std::string> tls_flags(const std::filesystem::path& dir,
                                   const std::string& name,
                                   const std::filesystem::path& ca_dir,
                                   const std::string& prefix) {
  bool node = prefix == "--openssl.";
  return {prefix + (node ? "certificate=" : "cert=")
            + (dir / (name + ".pem")).string(),
          prefix + "key=" + (dir / (name + ".key")).string(),
          prefix + (node ? "cafile=" : "ca=") + (ca_dir / "ca.pem").string()};
}

std::vector<std::string> tls_args(const std::filesystem::path& dir,
                                  const std::string& name,
                                  const std::filesystem::path& ca_dir) {
  return tls_flags(dir, name, ca_dir, "--openssl.");
}

std::vector<std::string> cli_tls(const std::filesystem::path& dir,
                                 const std::string& name,
                                 const std::filesystem::path& ca_dir) {
  return tls_flags(dir, name, ca_dir, "--tls-");
}

int cli(uint16_t port, std::vector<std::string> args,
        const std::vector<std::string>& tls, std::string& out) {
  args.push_back("--node=127.0.0.1:" + std::to_string(port));
  args.insert(args.end(), tls.begin(), tls.end());
  int rc = run_cli(args, out);
  UNSCOPED_INFO("seckill-cli " << args.front() << ": " << out);
  return rc;
}

} // namespace

TEST_CASE("tls: a cluster over TLS with peer certificates sells across its "
          "members - nobody without the CA's certificate gets in or cuts "
          "a link",
          "[tls][cluster]") {
  temp_dir tmp;
  auto pki = tmp.path / "pki";
  auto rogue = tmp.path / "rogue";
  make_certs(pki, {"member", "cli"});
  make_certs(rogue, {"member", "cli"});
  cluster_of_three c((tmp.path / "c").string(), tls_args(pki, "member", pki));
  for (std::size_t i = 0; i < c.size; ++i)
    CHECK(contains(c.node(i).log(), "cluster_tls"));

  // Items on every member, bought through every member: each purchase that
  // does not land on the owner crosses a TLS link.
  std::vector<item_def> items;
  for (auto id : {"tls-a", "tls-b", "tls-c", "tls-d", "tls-e", "tls-f"})
    items.push_back(item_def{id, 10, 1});
  REQUIRE(c.create_items(items) == "");
  std::vector<bool> owners(c.size, false);
  for (const auto& it : items)
    owners[c.owner_of(it.item_id)] = true;
  int bought = 0;
  for (std::size_t via = 0; via < c.size; ++via) {
    http_client http(c.http_port(via));
    for (const auto& it : items) {
      auto user = "u" + std::to_string(via);
      auto r = purchase(http, it.item_id, user, 1, user + "-" + it.item_id);
      INFO("via n" << via + 1 << " " << it.item_id << ": " << r.body);
      CHECK(r.status == 201);
      bought += r.status == 201;
    }
  }
  CHECK(bought == 18);

  // The CLI: with the CA's certificate it works, without TLS or with
  // another CA's certificate it gets nothing.
  const auto port = c.node(0).cluster_port();
  std::string out;
  CHECK(cli(port, {"nodes", "--json"}, cli_tls(pki, "cli", pki), out) == 0);
  CHECK(count_of(out, "\"state\":\"up\"") == 2);
  CHECK(cli(port, {"status"}, {}, out) == 3);
  CHECK(contains(out, "--tls-cert"));
  CHECK(cli(port, {"status"}, cli_tls(rogue, "cli", rogue), out) == 3);
  CHECK(cli(port, {"status"}, cli_tls(rogue, "cli", pki), out) == 2);
  CHECK(contains(out, "--tls-cert")); // named: not signed by --tls-ca
  // A plain CAF client finds no actor on the port.
  {
    caf::actor_system_config cfg;
    seckill::register_types(cfg);
    cfg.load<caf::io::middleman>();
    cfg.set("scheduler.max-threads", 1);
    caf::actor_system sys{cfg};
    auto admin =
      sys.middleman().remote_actor<seckill::admin_actor>("127.0.0.1", port);
    CHECK(!admin);
  }

  // An impostor n3: a certificate of another CA (which it trusts itself).
  // The members never take it in.
  c.node(2).kill9();
  REQUIRE(wait_for_log(c.node(0), "peer_down peer=n3", 1, 10'000));
  REQUIRE(wait_for_log(c.node(1), "peer_down peer=n3", 1, 10'000));
  auto up_before = count_of(c.node(0).log(), "peer_up peer=n3");
  auto up_before_2 = count_of(c.node(1).log(), "peer_up peer=n3");
  {
    auto args = c.node_args(2);
    auto bad = tls_args(rogue, "member", rogue);
    args.insert(args.end(), bad.begin(), bad.end()); // later arguments win
    node_process impostor(c.data_dir(2), args);
    // Members retry with a doubling backoff; 3 s is several attempts.
    probe::pause_ms(3'000);
    CHECK(count_of(c.node(0).log(), "peer_up peer=n3") == up_before);
    CHECK(count_of(c.node(1).log(), "peer_up peer=n3") == up_before_2);
    CHECK(!contains(impostor.log(), "peer_up"));
    CHECK(cli(port, {"nodes", "--json"}, cli_tls(pki, "cli", pki), out) == 0);
    CHECK(count_of(out, "\"state\":\"up\"") == 1); // n2 only
    CHECK(impostor.terminate() == 0);
  }
  // Every failed connection above left the members' own link alone.
  CHECK(!contains(c.node(0).log(), "peer_down peer=n2"));
  CHECK(!contains(c.node(1).log(), "peer_down peer=n1"));

  // The real n3 rejoins and its items sell again through the others. Right
  // after the impostor a member's connects to n3's port can time out for a
  // while (CAF connects synchronously; seen twice in 2026-12 runs, one
  // member joining after 9 s, the other later than the old 15 s bound):
  // the bound here is 30 s.
  c.restart(2);
  REQUIRE(c.wait_joined(2, 30'000) == "");
  http_client http(c.http_port(0));
  for (const auto& it : items) {
    if (c.owner_of(it.item_id) != 2)
      continue;
    auto r = purchase(http, it.item_id, "after", 1, "after-" + it.item_id);
    INFO(it.item_id << ": " << r.body);
    CHECK(r.status == 201);
  }
  for (std::size_t i = 0; i < c.size; ++i)
    CHECK(c.node(i).terminate() == 0);
}

TEST_CASE("tls: a node refuses to start on TLS files that do not fit and on "
          "a non-loopback cluster port without TLS",
          "[tls][config]") {
  temp_dir tmp;
  auto pki = tmp.path / "pki";
  auto rogue = tmp.path / "rogue";
  make_certs(pki, {"member"});
  make_certs(rogue, {"member"});
  auto start = [&](std::vector<std::string> extra, std::string& out) {
    std::vector<std::string> args{
      std::string("--config-file=") + SECKILL_SOURCE_DIR + "/cluster.conf",
      "--seckill.data-dir=" + (tmp.path / "data").string(),
      "--seckill.http-port=0", "--cluster.port=0"};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_process(SECKILL_NODE_BIN, args, out, 15'000);
  };
  std::string out;
  // Another CA's certificate.
  auto mixed = tls_args(rogue, "member", pki);
  CHECK(start(mixed, out) == 2);
  CHECK(contains(out, "openssl.certificate"));
  CHECK(contains(out, "is not signed by openssl.cafile"));
  // A key of another certificate.
  auto wrong_key = tls_args(pki, "member", pki);
  wrong_key[1] = "--openssl.key=" + (rogue / "member.key").string();
  CHECK(start(wrong_key, out) == 2);
  CHECK(contains(out, "does not belong to openssl.certificate"));
  // A missing file, named.
  auto missing = tls_args(pki, "member", pki);
  missing[2] = "--openssl.cafile=" + (tmp.path / "nope.pem").string();
  CHECK(start(missing, out) == 2);
  CHECK(contains(out, "openssl.cafile"));
  CHECK(contains(out, "nope.pem"));
  // Two of three.
  CHECK(start({mixed[0], mixed[1]}, out) == 2);
  CHECK(contains(out, "certificate, key and cafile together"));
  // A cluster port on every address, no TLS.
  CHECK(start({"--cluster.host=0.0.0.0"}, out) == 2);
  CHECK(contains(out, "not loopback"));
}

TEST_CASE("tls: examples/cluster-3/run.sh with three members over TLS sells "
          "exactly the stock",
          "[tls][example]") {
  std::string out;
  int rc = run_process("/bin/bash",
                       {"-c", std::string("cd ") + SECKILL_SOURCE_DIR
                                + " && bash examples/cluster-3/run.sh"},
                       out, 120'000);
  INFO(out);
  REQUIRE(rc == 0);
  CHECK(contains(out, "3 members: 3 up"));
  for (auto item : {"c3-phone", "c3-watch", "c3-tablet", "c3-buds"})
    CHECK(contains(out, std::string(item) + ": n1 0/100 n2 0/100 n3 0/100"));
  // 600 buyers, 400 units: every answer a 201 or a 409 sold_out.
  std::size_t sold = 0;
  for (auto line : {"n1 201: ", "n2 201: ", "n3 201: "}) {
    auto at = out.find(line);
    REQUIRE(at != std::string::npos);
    sold += std::stoul(out.substr(at + std::string(line).size()));
  }
  CHECK(sold == 400);
}
