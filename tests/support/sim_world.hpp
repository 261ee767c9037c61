// A deterministic world for actor tests and the simulation: one CAF actor
// system on CAF's test coordinator (no threads; each job run by hand; time
// advanced by hand), the node's actors (store on a real SQLite file in a
// temp directory, session manager, directory: spawned by spawn_node,
// node/wiring.hpp, as a real node's are), and a seeded scheduler that
// picks which actor runs next. The same seed replays the same run.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <random>
#include <string>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include "actors/base/clock.hpp"
#include "actors/cluster/directory.hpp"
#include "actors/sale/session_manager.hpp"
#include "messages/type_ids.hpp"
#include "node/wiring.hpp"
#include "persistence/store.hpp"

namespace seckill::test {

/// A fresh directory under the system's temp dir, removed on destruction.
struct temp_dir {
  std::filesystem::path path;
  temp_dir();
  ~temp_dir();
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
};

/// An item on sale from `starts_at_ms`, with the limit and TTL a test needs.
inline item_spec test_spec(const std::string& id, int64_t total,
                           deduction_mode mode, int64_t starts_at_ms,
                           int64_t per_user_limit, int64_t reserve_ttl_ms) {
  item_spec s;
  s.item_id = id;
  s.total = total;
  s.per_user_limit = per_user_limit;
  s.mode = mode;
  s.reserve_ttl_ms = reserve_ttl_ms;
  s.starts_at_ms = starts_at_ms;
  return s;
}

/// The simulated wall clock of a test coordinator, in epoch milliseconds.
clock_fn clock_of(caf::scheduler::test_coordinator& sched);

/// A simulated node's wiring: the items recovered from `db_path` (throws if
/// that fails) and its store as the simulations run it: no fsync (they test
/// logic, not the disk), not exclusive (the auditor reads the file beside
/// it), on the test coordinator rather than a thread of its own.
node_wiring sim_wiring(const std::string& db_path, clock_fn clock);

/// Runs one job of `sched` picked by `rng`; false if there was none.
bool step_random(caf::scheduler::test_coordinator& sched, std::mt19937_64& rng);

// -- What the simulations share: their reports and their seeds -----------------

/// An auditor's findings for one seeded run; empty: every invariant held.
struct audit_report {
  std::vector<std::string> violations;
  void fail(const std::string& what) { violations.push_back(what); }
};

/// "seed S (replay: SECKILL_SIM_SEED=S):" and at most 20 violations.
std::string describe(uint64_t seed, const audit_report& r);

/// The environment variable `name` as a number, or `fallback`.
uint64_t env_or(const char* name, uint64_t fallback);

/// Always-on assertions that fired during a run (counted instead of
/// aborting while count_assertions() is installed as the hook).
extern int assertion_failures;
void count_assertion(const char* what);

/// The bugs a simulation can plant in the item (actors/sale/item_book.hpp,
/// namespace testing), one at a time.
enum class planted_bug {
  skip_stock_check,  // an oversell
  skip_user_limit,   // a user over the per-user limit
  ack_before_commit, // an answer before the store's commit reply
  skip_commit_undo,  // a failed commit's changes kept in memory
};
const char* to_string(planted_bug bug);

/// In how many of the seeds 1..`seeds` the auditor (not merely an
/// assertion) reported a violation, with `bug` planted in the item: the
/// proof that the auditor can fail.
int planted_bug_caught(planted_bug bug, uint64_t seeds,
                       const std::function<audit_report(uint64_t)>& run_seed);

struct sim_config_holder : caf::actor_system_config {
  sim_config_holder();
};

struct sim_options {
  uint64_t seed = 1;
  std::string db_path;                    // empty: <temp dir>/sim.db
  std::function<bool()> fail_transaction; // store fault injection
  int64_t clock_offset_ms = 0;            // a restart later than the last run
  session_manager_config sessions;
  directory_config directory;
};

class sim_world {
public:
  explicit sim_world(sim_options opts);
  ~sim_world();

  /// Milliseconds on the simulated wall clock.
  int64_t now_ms() const;
  clock_fn clock() const;

  /// Runs one job chosen by the seeded RNG; false if there was none.
  bool step_random();
  /// Runs jobs (in seeded random order) until none is left.
  void run_random(std::size_t max_steps = 1'000'000);
  /// Advances simulated time, firing due timers.
  void advance_ms(int64_t ms);
  /// Runs and fires every pending timer until the world is quiet.
  void drain(std::size_t max_rounds = 10'000);

  /// Sends a request from the blocking test actor, runs the world until it
  /// is quiet, and takes the answer. Returns the error (none on success);
  /// `sec::request_timeout` if the world went quiet without answering.
  template <class Handle, class OnValue, class... Ts>
  caf::error call(const Handle& dest, OnValue on_value, Ts&&... xs) {
    caf::error result;
    auto handle = self->request(dest, caf::infinite, std::forward<Ts>(xs)...);
    run_random();
    if (self->mailbox().empty())
      return caf::make_error(caf::sec::request_timeout);
    std::move(handle).receive(
      on_value, [&](caf::error& err) { result = std::move(err); });
    return result;
  }

  std::mt19937_64 rng;
  sim_options opts;
  temp_dir dir;
  sim_config_holder cfg;
  caf::actor_system sys;
  caf::scheduler::test_coordinator& sched;
  caf::scoped_actor self;
  store_actor store;
  session_manager_actor sessions;
  directory_actor directory;
  std::string db_path;
};

} // namespace seckill::test
