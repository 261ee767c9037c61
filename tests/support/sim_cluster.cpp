// The deterministic cluster (see sim_cluster.hpp).
#include "tests/support/sim_cluster.hpp"

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <system_error>
#include <unistd.h>

#include <caf/mailbox_element.hpp>

namespace seckill::test {

sim_dir::sim_dir() {
  static std::atomic<int> counter{0};
  std::error_code ec;
  std::filesystem::path base = "/dev/shm";
  if (!std::filesystem::is_directory(base, ec)
      || ::access(base.c_str(), W_OK) != 0)
    base = std::filesystem::temp_directory_path();
  path = base
         / ("seckill-cluster-sim-" + std::to_string(::getpid()) + "-"
            + std::to_string(counter++));
  std::filesystem::remove_all(path, ec);
  std::filesystem::create_directories(path);
}

sim_dir::~sim_dir() {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

link_model::link_model(uint64_t seed, std::size_t nodes, int64_t max_ms)
  : rng(seed), delay_ms_max(max_ms), cut(nodes, false) {
  // nop
}

int64_t link_model::delay(uint32_t from, uint32_t to) {
  if (cut[from] || cut[to]) {
    ++lost;
    return -1;
  }
  ++crossed;
  return std::uniform_int_distribution<int64_t>{0, delay_ms_max}(rng);
}

sim_cluster::sim_cluster(cluster_options options)
  : rng(options.seed), opts(std::move(options)), sys(cfg),
    sched(dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler())),
    self(sys, true),
    links(std::make_shared<link_model>(opts.seed * 31 + 7, opts.node_ids.size(),
                                       opts.link_delay_ms_max)),
    names(std::make_shared<const std::vector<std::string>>(opts.node_ids)),
    nodes(opts.node_ids.size()),
    directories(
      std::make_shared<std::vector<directory_actor>>(opts.node_ids.size())),
    incarnations(std::make_shared<std::vector<int>>(opts.node_ids.size(), 0)),
    believed_up_(opts.node_ids.size(), true) {
  // Actors still alive at the end are dropped, not awaited: nothing runs
  // them once the test stops stepping the scheduler.
  sys.await_actors_before_shutdown(false);
  sched.clock().current_time += std::chrono::hours(24 * 365 * 50);
  for (uint32_t k = 0; k < size(); ++k) {
    nodes[k].db_path = (opts.dir / (opts.node_ids[k] + ".db")).string();
    start(k);
  }
  push_routes();
  run_random();
}

sim_cluster::~sim_cluster() {
  for (uint32_t k = 0; k < size(); ++k) {
    if (!nodes[k].running)
      continue;
    for (const auto& h : routes_receivers(k))
      self->send_exit(h, caf::exit_reason::user_shutdown);
    self->send_exit(nodes[k].store, caf::exit_reason::user_shutdown);
  }
  sched.run();
}

int64_t sim_cluster::now_ms() const {
  return clock()();
}

clock_fn sim_cluster::clock() const {
  return clock_of(sched);
}

bool sim_cluster::step_random() {
  return seckill::test::step_random(sched, rng);
}

void sim_cluster::run_random(std::size_t max_steps) {
  for (std::size_t i = 0; i < max_steps && step_random(); ++i)
    ; // nop
}

void sim_cluster::advance_ms(int64_t ms) {
  sched.advance_time(std::chrono::milliseconds(ms));
}

void sim_cluster::drain(std::size_t max_rounds) {
  // One timer at a time, earliest first, with everything it causes run
  // before the next: firing all timers at once (trigger_timeouts) would fire
  // a hop's timeout together with the link delays that bring its answer,
  // and fail calls a real network would have answered in time.
  for (std::size_t i = 0; i < max_rounds; ++i) {
    run_random();
    if (!sched.trigger_timeout())
      return;
  }
}

void sim_cluster::start(uint32_t k) {
  auto& n = nodes[k];
  auto w = sim_wiring(n.db_path, clock());
  if (opts.fail_transaction)
    w.store.fail_transaction = [f = opts.fail_transaction, k] { return f(k); };
  w.self_node = k;
  w.nodes = names;
  w.relays = opts.relays_per_node;
  w.relay.hop_timeout_ms = opts.hop_timeout_ms;
  w.relay.counters = n.counters;
  w.relay.link = [l = links](uint32_t from, uint32_t to) {
    return l->delay(from, to);
  };
  w.sessions = opts.sessions;
  w.sessions.session.hop_timeout_ms = opts.hop_timeout_ms;
  w.directory = opts.directory;
  node_actors actors;
  if (auto problem = spawn_node(sys, std::move(w), actors); !problem.empty())
    throw std::runtime_error(problem);
  n.store = actors.store;
  n.sessions = actors.sessions;
  n.directory = actors.directory;
  n.relays = actors.cluster.relays;
  n.running = true;
  n.incarnation += 1;
  (*directories)[k] = n.directory;
  (*incarnations)[k] = n.incarnation;
}

bool sim_cluster::believes_up(uint32_t i, uint32_t j) const {
  return i == j || (believed_up_[i] && believed_up_[j] && nodes[j].running);
}

void sim_cluster::set_believed_up(uint32_t node, bool up) {
  believed_up_[node] = up;
}

routes sim_cluster::view_of(uint32_t i) {
  routes r;
  r.self = i;
  r.version = ++routes_version_;
  for (uint32_t j = 0; j < size(); ++j) {
    peer_ref p;
    p.node_id = (*names)[j];
    if (believes_up(i, j)) { // as membership.cpp: a down peer has no handles
      p.up = true;
      p.directory = caf::actor_cast<caf::actor>(nodes[j].directory);
      p.sessions = caf::actor_cast<caf::actor>(nodes[j].sessions);
    }
    r.members.push_back(std::move(p));
  }
  return r;
}

std::vector<caf::actor> sim_cluster::routes_receivers(uint32_t k) const {
  const auto& n = nodes[k];
  std::vector<caf::actor> out{caf::actor_cast<caf::actor>(n.directory),
                              caf::actor_cast<caf::actor>(n.sessions)};
  out.insert(out.end(), n.relays.begin(), n.relays.end());
  return out;
}

void sim_cluster::push_routes() {
  for (uint32_t i = 0; i < size(); ++i) {
    if (!nodes[i].running)
      continue;
    auto r = view_of(i);
    for (const auto& h : routes_receivers(i))
      self->send(h, routes_atom_v, r);
  }
}

void sim_cluster::settle_routes() {
  for (uint32_t i = 0; i < size(); ++i)
    if (nodes[i].running)
      for (const auto& h : routes_receivers(i))
        while (sched.prioritize(h))
          sched.run_once();
}

void sim_cluster::set_cut(uint32_t node, bool cut) {
  links->cut[node] = cut;
}

void sim_cluster::crash(uint32_t k) {
  auto& n = nodes[k];
  set_cut(k, true);
  auto victims = routes_receivers(k);
  victims.push_back(caf::actor_cast<caf::actor>(n.store));
  // An urgent kill is handled before anything already in the mailbox: the
  // messages the node had not handled yet die with it, as in a real crash
  // (requests among them are answered with an error by CAF).
  for (const auto& h : victims) {
    auto ptr = caf::actor_cast<caf::strong_actor_ptr>(h);
    ptr->get()->enqueue(
      caf::make_mailbox_element(
        nullptr, caf::make_message_id(caf::message_priority::high), {},
        caf::exit_msg{self->address(), caf::exit_reason::kill}),
      nullptr);
  }
  for (const auto& h : victims)
    while (sched.prioritize(h))
      sched.run_once();
  n.running = false;
}

void sim_cluster::restart(uint32_t k) {
  start(k);
  set_cut(k, false);
  push_routes();
}

} // namespace seckill::test
