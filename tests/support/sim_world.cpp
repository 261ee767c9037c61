// The deterministic test world (see sim_world.hpp).
#include "tests/support/sim_world.hpp"

#include "actors/sale/item_book.hpp"
#include "messages/assert.hpp"

#include <atomic>
#include <cstdlib>
#include <sstream>
#include <stdexcept>
#include <unistd.h>

namespace seckill::test {

temp_dir::temp_dir() {
  static std::atomic<int> counter{0};
  auto name = "seckill-test-" + std::to_string(::getpid()) + "-"
              + std::to_string(counter++);
  path = std::filesystem::temp_directory_path() / name;
  std::filesystem::remove_all(path);
  std::filesystem::create_directories(path);
}

temp_dir::~temp_dir() {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

sim_config_holder::sim_config_holder() {
  register_types(*this);
  set("scheduler.policy", caf::atom("testing"));
}

namespace {

std::string pick_db(const sim_options& opts, const temp_dir& dir) {
  return opts.db_path.empty() ? (dir.path / "sim.db").string() : opts.db_path;
}

} // namespace

sim_world::sim_world(sim_options options)
  : rng(options.seed), opts(std::move(options)), sys(cfg),
    sched(dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler())),
    self(sys, true), db_path(pick_db(opts, dir)) {
  // Actors still alive at the end are dropped, not awaited: nothing runs
  // them once the test stops stepping the scheduler.
  sys.await_actors_before_shutdown(false);
  // Start the simulated wall clock at a realistic instant.
  sched.clock().current_time +=
    std::chrono::hours(24 * 365 * 50)
    + std::chrono::milliseconds(opts.clock_offset_ms);
  auto w = sim_wiring(db_path, clock());
  w.store.fail_transaction = opts.fail_transaction;
  w.sessions = opts.sessions;
  w.directory = opts.directory;
  node_actors actors;
  if (auto problem = spawn_node(sys, std::move(w), actors); !problem.empty())
    throw std::runtime_error(problem);
  store = actors.store;
  sessions = actors.sessions;
  directory = actors.directory;
  run_random();
}

sim_world::~sim_world() {
  for (auto h : {caf::actor_cast<caf::actor>(directory),
                 caf::actor_cast<caf::actor>(sessions),
                 caf::actor_cast<caf::actor>(store)})
    self->send_exit(h, caf::exit_reason::user_shutdown);
  sched.run();
}

int64_t sim_world::now_ms() const {
  using namespace std::chrono;
  return duration_cast<milliseconds>(sched.clock().now().time_since_epoch())
    .count();
}

std::string describe(uint64_t seed, const audit_report& r) {
  std::ostringstream out;
  out << "seed " << seed << " (replay: SECKILL_SIM_SEED=" << seed << "):";
  std::size_t shown = 0;
  for (const auto& v : r.violations)
    if (++shown <= 20)
      out << "\n  - " << v;
  if (r.violations.size() > 20)
    out << "\n  ... and " << (r.violations.size() - 20) << " more";
  return out.str();
}

uint64_t env_or(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v == nullptr ? fallback : std::strtoull(v, nullptr, 10);
}

int assertion_failures = 0;

void count_assertion(const char*) {
  ++assertion_failures;
}

namespace {

bool& planted_flag(planted_bug bug) {
  switch (bug) {
    case planted_bug::skip_stock_check:
      return testing::planted_skip_stock_check;
    case planted_bug::skip_user_limit: return testing::planted_skip_user_limit;
    case planted_bug::ack_before_commit:
      return testing::planted_ack_before_commit;
    case planted_bug::skip_commit_undo:
      return testing::planted_skip_commit_undo;
  }
  throw std::logic_error("no such planted bug");
}

} // namespace

const char* to_string(planted_bug bug) {
  switch (bug) {
    case planted_bug::skip_stock_check: return "stock check skipped";
    case planted_bug::skip_user_limit: return "per-user limit check skipped";
    case planted_bug::ack_before_commit: return "answer before commit";
    case planted_bug::skip_commit_undo: return "failed commit not undone";
  }
  return "?";
}

int planted_bug_caught(planted_bug bug, uint64_t seeds,
                       const std::function<audit_report(uint64_t)>& run_seed) {
  testing::set_assertion_hook(count_assertion);
  auto& flag = planted_flag(bug);
  flag = true;
  int caught = 0;
  for (uint64_t seed = 1; seed <= seeds; ++seed) {
    assertion_failures = 0;
    auto r = run_seed(seed);
    // Only the auditor's own findings count here, not the assertions'.
    for (const auto& v : r.violations)
      if (v.find("assertions failed") == std::string::npos) {
        ++caught;
        break;
      }
  }
  flag = false;
  testing::set_assertion_hook(nullptr);
  assertion_failures = 0;
  return caught;
}

node_wiring sim_wiring(const std::string& db_path, clock_fn clock) {
  auto rec = recover(db_path);
  if (!rec.ok())
    throw std::runtime_error("recovery of " + db_path
                             + " failed: " + rec.error);
  node_wiring w;
  w.items = std::move(rec.items);
  w.store.path = db_path;
  w.store.synchronous = "OFF";
  w.store.exclusive = false;
  w.store.reserve_bytes = 0;
  w.store_detached = false;
  w.clock = std::move(clock);
  return w;
}

clock_fn clock_of(caf::scheduler::test_coordinator& sched) {
  auto* s = &sched;
  return [s] {
    using namespace std::chrono;
    return static_cast<int64_t>(
      duration_cast<milliseconds>(s->clock().now().time_since_epoch()).count());
  };
}

bool step_random(caf::scheduler::test_coordinator& sched,
                 std::mt19937_64& rng) {
  auto& jobs = sched.jobs;
  if (jobs.empty())
    return false;
  std::uniform_int_distribution<std::size_t> pick{0, jobs.size() - 1};
  std::swap(jobs.front(), jobs[pick(rng)]);
  sched.run_once();
  return true;
}

clock_fn sim_world::clock() const {
  return clock_of(sched);
}

bool sim_world::step_random() {
  return seckill::test::step_random(sched, rng);
}

void sim_world::run_random(std::size_t max_steps) {
  for (std::size_t i = 0; i < max_steps && step_random(); ++i)
    ; // nop
}

void sim_world::advance_ms(int64_t ms) {
  sched.advance_time(std::chrono::milliseconds(ms));
}

void sim_world::drain(std::size_t max_rounds) {
  for (std::size_t i = 0; i < max_rounds; ++i) {
    run_random();
    if (sched.trigger_timeouts() == 0 && sched.jobs.empty())
      return;
  }
}

} // namespace seckill::test
