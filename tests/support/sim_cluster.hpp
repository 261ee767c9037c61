// A deterministic cluster for the cluster simulation: several seckill nodes
// in ONE CAF actor system on CAF's test coordinator (no threads; each job run
// by hand, in an order a seeded RNG picks; time advanced by hand). Each node
// has its own store on its own SQLite file, its relays, its session manager
// and its directory, spawned by spawn_node (node/wiring.hpp), the wiring of
// a real node. "Another node" is decided by seckill's node index (hop.hpp),
// not by CAF's node id, so every cross-node request still goes through a
// relay, and the relays' link model is the network:
// a seeded delay per message, or a loss while either end is cut off.
//
// The test plays the membership actor: it decides which nodes each node
// believes up, builds each node's routes and pushes them to the node's
// directory, session manager and relays. It can cut a node off (its links
// lose everything both ways), crash one (its actors are killed with their
// mailboxes) and restart it from its SQLite file (recover(), as a real node
// does).
//
// Messages that do not go through a relay cross between nodes at once here,
// even while a node is cut off: item status pushes to edge queues, adopt
// announcements and settlement notices. All three are soft state that the
// receiver re-checks (README: the item never trusts a session; a queue
// re-subscribes when its owner comes back).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "actors/cluster/relay.hpp"
#include "tests/support/sim_world.hpp"

namespace seckill::test {

/// A fresh directory for the nodes' SQLite files, removed on destruction:
/// under /dev/shm when there is one, else the system's temp dir. The
/// simulation tests logic, not the disk, and the fsyncs SQLite still makes
/// (creating, recovering and closing files) would cost a real disk more than
/// the whole run.
struct sim_dir {
  std::filesystem::path path;
  sim_dir();
  ~sim_dir();
  sim_dir(const sim_dir&) = delete;
  sim_dir& operator=(const sim_dir&) = delete;
};

/// The network between the nodes (shared by every relay): a delay per message
/// crossing from one node to another, or a loss when either end is cut off.
struct link_model {
  explicit link_model(uint64_t seed, std::size_t nodes, int64_t delay_ms_max);
  /// Milliseconds from `from` to `to`; negative: the message is lost.
  int64_t delay(uint32_t from, uint32_t to);

  std::mt19937_64 rng;
  int64_t delay_ms_max;
  std::vector<bool> cut; // by node: every link to and from it loses
  int64_t crossed = 0;
  int64_t lost = 0;
};

struct cluster_options {
  uint64_t seed = 1;
  std::filesystem::path dir; // the nodes' SQLite files: <dir>/<node>.db
  std::vector<std::string> node_ids{"n1", "n2", "n3"};
  std::size_t relays_per_node = 2;
  int64_t hop_timeout_ms = 1'000;
  int64_t link_delay_ms_max = 20;
  /// Store fault injection, asked once per transaction of node `node`.
  std::function<bool(uint32_t node)> fail_transaction;
  session_manager_config sessions; // its session.cluster is set per node
  directory_config directory;
};

/// One seckill node's actors (the current incarnation).
struct sim_node {
  std::string db_path;
  int incarnation = 0; // grows with every start
  bool running = false;
  store_actor store;
  session_manager_actor sessions;
  directory_actor directory;
  std::vector<caf::actor> relays;
  std::shared_ptr<relay_counters> counters = std::make_shared<relay_counters>();
};

class sim_cluster {
public:
  explicit sim_cluster(cluster_options opts);
  ~sim_cluster();
  sim_cluster(const sim_cluster&) = delete;
  sim_cluster& operator=(const sim_cluster&) = delete;

  uint32_t size() const { return static_cast<uint32_t>(nodes.size()); }
  int64_t now_ms() const;
  clock_fn clock() const;

  /// Runs one job chosen by the seeded RNG; false if there was none.
  bool step_random();
  /// Runs jobs (in seeded random order) until none is left; no time passes.
  void run_random(std::size_t max_steps = 1'000'000);
  /// Advances simulated time, firing due timers.
  void advance_ms(int64_t ms);
  /// Runs and fires every pending timer, in time order, until the cluster
  /// is quiet.
  void drain(std::size_t max_rounds = 1'000'000);

  // -- Membership, played by the test ----------------------------------------

  /// Whether node i's membership believes node j up (j == i: always).
  bool believes_up(uint32_t i, uint32_t j) const;
  /// What the membership of every running node will say from the next push.
  void set_believed_up(uint32_t node, bool up);
  /// Pushes every running node its routes (to directory, sessions, relays).
  void push_routes();
  /// Runs each routes receiver until its mailbox is empty, so that every
  /// routes pushed so far is applied before anything else happens.
  void settle_routes();
  /// Cuts the node's links off (every message to or from it is lost) or
  /// heals them. Routes are the membership's business: push them apart.
  void set_cut(uint32_t node, bool cut);
  /// Kills the node's actors at once (their mailboxes are dropped), and cuts
  /// its links. The items and queues die with the directory (linked).
  void crash(uint32_t node);
  /// Starts the node again from its SQLite file and heals its links. Its
  /// actors get routes in which only the node itself is up (as a real
  /// node's membership pushes at start) until the membership says more.
  void restart(uint32_t node);

  /// Sends a request from the test actor and runs the cluster (firing timers
  /// when it is otherwise quiet) until it is answered. Returns the error
  /// (none on success); `sec::request_timeout` if no answer ever came.
  template <class Handle, class OnValue, class... Ts>
  caf::error call(const Handle& dest, OnValue on_value, Ts&&... xs) {
    caf::error result;
    auto handle = self->request(dest, caf::infinite, std::forward<Ts>(xs)...);
    for (int round = 0; round < 10'000 && self->mailbox().empty(); ++round) {
      run_random();
      if (self->mailbox().empty() && !sched.trigger_timeout())
        break;
    }
    if (self->mailbox().empty())
      return caf::make_error(caf::sec::request_timeout);
    std::move(handle).receive(
      on_value, [&](caf::error& err) { result = std::move(err); });
    return result;
  }

  std::mt19937_64 rng; // the scheduler's choices
  cluster_options opts;
  sim_config_holder cfg;
  caf::actor_system sys;
  caf::scheduler::test_coordinator& sched;
  caf::scoped_actor self;
  std::shared_ptr<link_model> links;
  std::shared_ptr<const std::vector<std::string>> names;
  std::vector<sim_node> nodes;
  /// Read by the simulated clients when they send: the entry point of each
  /// node (a dead handle while it is crashed) and its incarnation.
  std::shared_ptr<std::vector<directory_actor>> directories;
  std::shared_ptr<std::vector<int>> incarnations;

private:
  void start(uint32_t node);
  routes view_of(uint32_t node);
  std::vector<caf::actor> routes_receivers(uint32_t node) const;

  std::vector<bool> believed_up_;
  uint64_t routes_version_ = 0;
};

} // namespace seckill::test
