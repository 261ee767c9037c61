// The deterministic simulation (FoundationDB style): many users buy, retry,
// pay, cancel and let reservations expire, on several items in every
// deduction mode, while a seeded scheduler picks which actor runs next, time
// jumps, and the store fails transactions at a seeded rate. An auditor that
// knows only what the clients were told and what the SQLite file holds
// checks, at the end of every run, that:
//   - the file recovers, and its counters match its orders and the actors;
//   - no stock is sold twice: acknowledged units never exceed the stock;
//   - no user is over the limit, in the file or in what they were told;
//   - every acknowledged order is in the file exactly once, as acknowledged;
//   - a request that failed with store_unavailable left nothing behind;
//   - a retried request_id always got its original order back;
//   - nothing is lost: once every reservation expired, available + sold ==
//     total.
// SECKILL_SIM_SEEDS=N runs N seeds (default 200); SECKILL_SIM_SEED=S replays
// one. A failing run prints its seed and the violations.
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>

#include "actors/sale/item_book.hpp"
#include "messages/assert.hpp"
#include "tests/support/sim_world.hpp"

using namespace seckill;
using namespace seckill::test;

namespace {

// What the clients saw: every request and its answer.
struct sim_log {
  struct attempt {
    purchase p;
    errc code = errc::ok;
    std::string order_id;
  };
  std::vector<attempt> purchases;
  std::map<std::string, order> acked;   // order id -> last ack'd view
  std::map<std::string, order> settled; // order id -> ack'd pay/cancel answer
  int64_t answers = 0;
};

caf::behavior client(caf::event_based_actor* self, directory_actor dir,
                     std::shared_ptr<sim_log> log) {
  return {
    [=](purchase_atom, const purchase& p) {
      self->request(dir, caf::infinite, purchase_atom_v, p)
        .then(
          [=](order& o) {
            log->purchases.push_back({p, errc::ok, o.order_id});
            log->acked[o.order_id] = o;
            log->answers += 1;
          },
          [=](caf::error& err) {
            log->purchases.push_back({p, to_errc(err), {}});
            log->answers += 1;
          });
    },
    [=](pay_atom, const std::string& id) {
      self->request(dir, caf::infinite, pay_atom_v, id)
        .then(
          [=](order& o) {
            log->settled[id] = o;
            log->answers += 1;
          },
          [=](caf::error&) { log->answers += 1; });
    },
    [=](cancel_atom, const std::string& id) {
      self->request(dir, caf::infinite, cancel_atom_v, id)
        .then(
          [=](order& o) {
            log->settled[id] = o;
            log->answers += 1;
          },
          [=](caf::error&) { log->answers += 1; });
    },
  };
}

struct scenario {
  std::vector<item_spec> items;
  int users = 0;
  int operations = 0;
  double fail_rate = 0;
};

scenario make_scenario(std::mt19937_64& rng, int64_t now_ms) {
  scenario sc;
  auto pick = [&](int lo, int hi) {
    return std::uniform_int_distribution<int>{lo, hi}(rng);
  };
  sc.users = pick(3, 25);
  sc.operations = pick(200, 800);
  sc.fail_rate = pick(0, 3) * 0.05; // 0%, 5%, 10% or 15% of transactions
  int n = pick(1, 3);
  for (int i = 0; i < n; ++i) {
    item_spec s;
    s.item_id = "sku-" + std::to_string(i);
    s.total = pick(1, 12);
    s.per_user_limit = pick(1, 3);
    s.mode = static_cast<deduction_mode>(pick(0, 2));
    s.reserve_ttl_ms = pick(1, 4) * 1000;
    s.starts_at_ms = now_ms + pick(0, 1) * pick(1, 2000); // some start later
    sc.items.push_back(s);
  }
  return sc;
}

// One random client operation.
void act(sim_world& w, const scenario& sc, caf::actor& cl, sim_log& log,
         std::vector<purchase>& sent) {
  auto pick = [&](int lo, int hi) {
    return std::uniform_int_distribution<int>{lo, hi}(w.rng);
  };
  auto roll = pick(0, 99);
  if (roll < 60 || log.acked.empty()) {
    purchase p;
    if (!sent.empty() && pick(0, 4) == 0) {
      p = sent[static_cast<std::size_t>(pick(0, int(sent.size()) - 1))];
    } else { // a new request
      const auto& item =
        sc.items[static_cast<std::size_t>(pick(0, int(sc.items.size()) - 1))];
      p.item_id = item.item_id;
      p.user_id = "u" + std::to_string(pick(0, sc.users - 1));
      p.request_id = "r" + std::to_string(sent.size());
      p.quantity = pick(1, 2);
      sent.push_back(p);
      if (pick(0, 4) == 0) { // a double click: a second request at once,
        purchase twin = p;   // before the session has heard of the first
        twin.request_id = "r" + std::to_string(sent.size());
        sent.push_back(twin);
        caf::anon_send(cl, purchase_atom_v, twin);
      }
    }
    caf::anon_send(cl, purchase_atom_v, p);
    return;
  }
  auto it = log.acked.begin();
  std::advance(it, pick(0, int(log.acked.size()) - 1));
  if (roll < 85)
    caf::anon_send(cl, pay_atom_v, it->first);
  else
    caf::anon_send(cl, cancel_atom_v, it->first);
}

// What the runs exercised, summed over seeds and printed once: a simulation
// that stops exercising something shows it here.
struct sim_totals {
  std::map<std::string, int64_t> outcomes; // purchase answers by code
  int64_t settled = 0, failed_transactions = 0, retries_same = 0;
  int64_t expired_in_file = 0, confirmed_in_file = 0, cancelled_in_file = 0;
};
sim_totals totals;

std::map<std::string, item_spec> specs_of(const scenario& sc) {
  std::map<std::string, item_spec> out;
  for (const auto& s : sc.items)
    out[s.item_id] = s;
  return out;
}

// What the clients were told must be possible: final sales never exceed the
// stock (an order-mode purchase or a payment acknowledged is a final sale;
// a reservation is not, it may expire and sell again), and a retried
// request_id never yields a second order.
// Whether acknowledged order `q` still held its units at `t_ms`: from its
// creation until it was cancelled or its deadline passed, for ever once paid
// or final. The item may free them later than this (its expiry timer runs
// after the deadline), never sooner.
bool held_at(const sim_log& log, const order& q, int64_t t_ms) {
  if (q.created_ms > t_ms)
    return false;
  if (auto s = log.settled.find(q.order_id); s != log.settled.end()) {
    if (s->second.state == order_state::confirmed)
      return true;
    if (s->second.state == order_state::cancelled)
      return s->second.updated_ms > t_ms;
  }
  // A view acknowledged after the order ended (a replay) says when it ended;
  // its deadline is cleared then.
  if (q.state == order_state::expired || q.state == order_state::cancelled)
    return q.updated_ms > t_ms;
  return q.expires_ms == 0 || q.expires_ms > t_ms;
}

// No moment at which a user held more than the limit of an item: at each
// acknowledged order's creation, it and the user's orders still held then.
void audit_held_at_once(const scenario& sc, const sim_log& log,
                        audit_report& r) {
  auto specs = specs_of(sc);
  std::map<std::pair<std::string, std::string>, std::vector<const order*>> by;
  for (const auto& [id, o] : log.acked)
    by[{o.item_id, o.user_id}].push_back(&o);
  for (const auto& [key, orders] : by)
    for (const order* o : orders) {
      int64_t units = 0;
      for (const order* q : orders)
        units += held_at(log, *q, o->created_ms) ? q->quantity : 0;
      if (units > specs[key.first].per_user_limit)
        r.fail("user " + key.second + " held " + std::to_string(units) + " of "
               + key.first + " at once, when " + o->order_id + " was placed");
    }
}

void audit_acks(const scenario& sc, const sim_log& log, audit_report& r) {
  audit_held_at_once(sc, log, r);
  auto specs = specs_of(sc);
  std::map<std::pair<std::string, std::string>, std::string> first_order;
  std::map<std::string, int64_t> sold; // per item, final sales acknowledged
  std::map<std::pair<std::string, std::string>, int64_t> bought;
  auto sale = [&](const order& o) {
    sold[o.item_id] += o.quantity;
    bought[{o.item_id, o.user_id}] += o.quantity;
  };
  for (const auto& a : log.purchases) {
    if (a.code != errc::ok)
      continue;
    auto key = std::make_pair(a.p.item_id, a.p.request_id);
    auto [it, fresh] = first_order.emplace(key, a.order_id);
    if (!fresh && it->second != a.order_id)
      r.fail("request " + a.p.request_id + " got two orders");
    totals.retries_same += fresh ? 0 : 1;
    if (fresh && specs[a.p.item_id].mode == deduction_mode::order)
      sale(log.acked.at(a.order_id));
  }
  for (const auto& [id, o] : log.settled)
    if (o.state == order_state::confirmed
        && specs[log.acked.at(id).item_id].mode != deduction_mode::order)
      sale(log.acked.at(id));
  for (const auto& [item, units] : sold)
    if (units > specs[item].total)
      r.fail("item " + item + ": " + std::to_string(units)
             + " units sold to acknowledged buyers but only "
             + std::to_string(specs[item].total) + " in stock");
  for (const auto& [key, units] : bought)
    if (units > specs[key.first].per_user_limit)
      r.fail("user " + key.second + " was sold " + std::to_string(units)
             + " of " + key.first);
}

// The file against the acknowledgements and the rules.
void audit_file(const scenario& sc, const sim_log& log, const recovery& rec,
                audit_report& r) {
  auto specs = specs_of(sc);
  std::map<std::string, order> in_file;
  std::set<std::pair<std::string, std::string>> requests_in_file;
  for (const auto& item : rec.items) {
    const auto& c = item.record.counters;
    if (c.reserved != 0)
      r.fail("item " + item.record.spec.item_id + " still holds reservations");
    std::map<std::string, int64_t> held;
    for (const auto& o : item.orders) {
      totals.expired_in_file += o.state == order_state::expired;
      totals.confirmed_in_file += o.state == order_state::confirmed;
      totals.cancelled_in_file += o.state == order_state::cancelled;
      if (!in_file.emplace(o.order_id, o).second)
        r.fail("order " + o.order_id + " is in the file twice");
      if (!requests_in_file.emplace(o.item_id, o.request_id).second)
        r.fail("request " + o.request_id + " has two orders in the file");
      if (counts_for_user(o.state))
        held[o.user_id] += o.quantity;
    }
    for (const auto& [user, units] : held)
      if (units > specs[item.record.spec.item_id].per_user_limit)
        r.fail("file: user " + user + " holds " + std::to_string(units));
  }
  for (const auto& [id, o] : log.acked) {
    auto it = in_file.find(id);
    if (it == in_file.end()) {
      r.fail("acknowledged order " + id + " is not in the file");
      continue;
    }
    const auto& f = it->second;
    if (f.user_id != o.user_id || f.quantity != o.quantity
        || f.request_id != o.request_id)
      r.fail("order " + id + " in the file differs from its acknowledgement");
  }
  for (const auto& [id, o] : log.settled)
    if (in_file.count(id) != 0 && in_file[id].state != o.state)
      r.fail("order " + id + " was acknowledged " + to_string(o.state)
             + " but the file says " + to_string(in_file[id].state));
  // store_unavailable promises that this attempt took nothing. The order may
  // still exist if another attempt with the same request_id succeeded or
  // ended in an unknown outcome (a hop timed out: shard_unavailable).
  std::set<std::pair<std::string, std::string>> maybe_placed;
  for (const auto& b : log.purchases)
    if (b.code == errc::ok || b.code == errc::shard_unavailable)
      maybe_placed.emplace(b.p.item_id, b.p.request_id);
  for (const auto& a : log.purchases) {
    auto key = std::make_pair(a.p.item_id, a.p.request_id);
    if (a.code == errc::store_unavailable && maybe_placed.count(key) == 0
        && requests_in_file.count(key) != 0)
      r.fail("request " + a.p.request_id
             + " was told store_unavailable but its order is in the file");
  }
}

audit_report run_seed(uint64_t seed) {
  audit_report r;
  std::mt19937_64 scenario_rng{seed};
  temp_dir dir; // outlives the world: the file is read after it is gone
  sim_options opts;
  opts.seed = seed;
  opts.db_path = (dir.path / "sim.db").string();
  opts.directory.queue.wait_ms_max = 2'000;
  opts.sessions.session.rate_per_s = 50;
  opts.sessions.session.burst = 20;
  opts.sessions.session.idle_timeout_ms = 5'000;
  auto fail_rng = std::make_shared<std::mt19937_64>(seed * 7919 + 1);
  auto fail_rate = std::make_shared<double>(0);
  opts.fail_transaction = [fail_rng, fail_rate] {
    bool fail =
      std::uniform_real_distribution<double>{0, 1}(*fail_rng) < *fail_rate;
    totals.failed_transactions += fail ? 1 : 0;
    return fail;
  };
  std::string db;
  scenario sc;
  auto log = std::make_shared<sim_log>();
  {
    sim_world w{opts};
    sc = make_scenario(scenario_rng, w.now_ms());
    db = w.db_path;
    for (const auto& spec : sc.items)
      if (auto err = w.call(
            w.directory, [](item_view&) {}, create_atom_v, spec))
        r.fail("create " + spec.item_id + ": " + w.sys.render(err));
    *fail_rate = sc.fail_rate; // creation is not the point of the test
    auto cl = w.sys.spawn(client, w.directory, log);
    std::vector<purchase> sent;
    for (int i = 0; i < sc.operations; ++i) {
      act(w, sc, cl, *log, sent);
      for (int k = std::uniform_int_distribution<int>{0, 6}(w.rng); k > 0; --k)
        w.step_random();
      if (std::uniform_int_distribution<int>{0, 9}(w.rng) == 0)
        w.advance_ms(std::uniform_int_distribution<int>{1, 900}(w.rng));
    }
    *fail_rate = 0; // let the end state settle
    w.drain();      // answers everything; every reservation expires
    audit_acks(sc, *log, r);
    for (const auto& spec : sc.items) {
      stock_view v;
      w.call(
        w.directory, [&](stock_view& x) { v = x; }, stock_atom_v, spec.item_id);
      if (v.counters.available + v.counters.sold != spec.total)
        r.fail("item " + spec.item_id + ": stock lost, available="
               + std::to_string(v.counters.available)
               + " sold=" + std::to_string(v.counters.sold));
    }
    // The world is torn down here, without any goodbye to the store.
    caf::anon_send_exit(cl, caf::exit_reason::kill);
  }
  for (const auto& a : log->purchases)
    totals.outcomes[to_string(a.code)] += 1;
  totals.settled += static_cast<int64_t>(log->settled.size());
  auto rec = recover(db);
  if (!rec.ok())
    r.fail("recovery: " + rec.error);
  else
    audit_file(sc, *log, rec, r);
  if (assertion_failures > 0)
    r.fail(std::to_string(assertion_failures) + " assertions failed");
  return r;
}

} // namespace

TEST_CASE("simulation: the auditor's invariants hold for every seed",
          "[simulation]") {
  auto single = env_or("SECKILL_SIM_SEED", 0);
  auto seeds = env_or("SECKILL_SIM_SEEDS", 200);
  auto first = single != 0 ? single : 1;
  auto last = single != 0 ? single : seeds;
  int failed = 0;
  for (auto seed = first; seed <= last; ++seed) {
    auto r = run_seed(seed);
    if (!r.violations.empty()) {
      ++failed;
      UNSCOPED_INFO(describe(seed, r));
    }
  }
  std::printf(
    "simulation: %llu seeds, %lld store transactions failed, "
    "%lld retries answered with their order, %lld pay/cancel acks; "
    "in the files: %lld confirmed, %lld cancelled, %lld expired; "
    "purchase answers:",
    static_cast<unsigned long long>(last - first + 1),
    (long long)totals.failed_transactions, (long long)totals.retries_same,
    (long long)totals.settled, (long long)totals.confirmed_in_file,
    (long long)totals.cancelled_in_file, (long long)totals.expired_in_file);
  for (const auto& [code, n] : totals.outcomes)
    std::printf(" %s=%lld", code.c_str(), (long long)n);
  std::printf("\n");
  INFO("seeds run: " << (last - first + 1));
  CHECK(failed == 0);
  // The runs must exercise what the auditor checks.
  CHECK(totals.failed_transactions > 0);
  CHECK(totals.outcomes["ok"] > 0);
  CHECK(totals.outcomes["sold_out"] > 0);
  CHECK(totals.outcomes["store_unavailable"] > 0);
  CHECK(totals.retries_same > 0);
  CHECK(totals.expired_in_file > 0);
}

TEST_CASE("simulation: a planted bug (stock check skipped) is caught by the "
          "auditor",
          "[simulation]") {
  int caught_by_auditor =
    planted_bug_caught(planted_bug::skip_stock_check, 20, run_seed);
  std::printf("planted bug: the auditor caught it in %d of 20 seeds\n",
              caught_by_auditor);
  CHECK(caught_by_auditor > 0);
}

namespace {

// The auditor catches `bug` in at least `min_caught` of 20 seeds (seeds 1 to
// 20, so the count is the same on every run).
void check_planted(planted_bug bug, int min_caught) {
  int caught_by_auditor = planted_bug_caught(bug, 20, run_seed);
  std::printf("planted bug (%s): the auditor caught it in %d of 20 seeds\n",
              to_string(bug), caught_by_auditor);
  INFO("planted bug: " << to_string(bug));
  CHECK(caught_by_auditor >= min_caught);
}

} // namespace

TEST_CASE("simulation: a planted bug (per-user limit check skipped in the "
          "item) is caught by the auditor in at least 5 of 20 seeds",
          "[simulation]") {
  check_planted(planted_bug::skip_user_limit, 5);
}

TEST_CASE("simulation: a planted bug (answer before commit) is caught by the "
          "auditor in at least 5 of 20 seeds",
          "[simulation]") {
  check_planted(planted_bug::ack_before_commit, 5);
}

TEST_CASE("simulation: a planted bug (failed commit not undone) is caught by "
          "the auditor in at least 5 of 20 seeds",
          "[simulation]") {
  check_planted(planted_bug::skip_commit_undo, 5);
}
