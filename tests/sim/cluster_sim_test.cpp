// The cluster simulation (FoundationDB style): three seckill nodes in one
// actor system on CAF's test coordinator (sim_cluster.hpp), each with its own
// SQLite file, relays, session manager and directory. Items are created
// through random nodes (each lands on its owner); then a crowd buys, retries
// (on any node, same request_id), double-clicks, pays and cancels through
// random nodes while:
//   - every message crossing between nodes is delayed 0-20 ms (seeded), so
//     cross-node traffic is reordered;
//   - up to one fault per node strikes at a seeded moment, alone, in turn or
//     together with the others: a cut (the node's links lose everything
//     both ways; the membership, played by the test, notices after a seeded
//     delay and pushes routes marking it down; later the links heal, the
//     routes mark it up again and the directories re-announce their items),
//     a crash (its actors die with their mailboxes; it restarts from its
//     SQLite file) or a blip (its links lose everything for up to 300 ms,
//     too briefly for the membership to notice);
//   - the stores fail transactions at a seeded rate (0-10%).
// After the last fault has healed and every timer has fired, the auditor,
// which knows only what the clients were told and what the three files hold,
// checks that:
//   - every file recovers, and holds only items its node owns;
//   - no item is sold beyond its stock (in the files and in the answers);
//   - no user is over the per-user limit (in the files and in the answers);
//   - every acknowledged order is in its owner's file exactly once, with the
//     acknowledged user, request and quantity; acknowledged pays and cancels
//     are in the file as acknowledged;
//   - a retried request_id that got an order always got the same order;
//   - store_unavailable left nothing behind;
//   - every request got exactly one answer (a lost message costs a
//     shard_unavailable, never a hang), the only exception being requests
//     held by a node when it crashed (their HTTP connection would break);
//   - while a node was cut off or down, a request whose entry node and item
//     owner were on opposite sides never succeeded, and once every node had
//     applied the routes saying so, it was answered shard_unavailable;
//   - after the heal every node serves every item again (probes), and
//     available + sold == total once every reservation has expired.
// Not simulated: the messages that bypass the relays (item status pushes,
// adopt announcements, settlement notices) cross at once even over a cut
// link; items are created, and the fault-free routes pushed, before the
// crowd comes; the HTTP bridge and the real membership actor are not here
// (the test plays the membership; a client waits for its answer without a
// deadline, so a hang shows).
// SECKILL_SIM_SEEDS=N runs N seeds (default 100); SECKILL_SIM_SEED=S replays
// one. A failing run prints its seed and the violations.
#include <catch2/catch.hpp>

#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>

#include "actors/base/placement.hpp"
#include "actors/sale/item_book.hpp"
#include "messages/assert.hpp"
#include "tests/support/sim_cluster.hpp"

using namespace seckill;
using namespace seckill::test;

namespace {

// -- What the clients saw -----------------------------------------------------

enum class op_kind : uint8_t { purchase, pay, cancel, create };

struct request_rec {
  op_kind kind = op_kind::purchase;
  uint32_t node = 0;    // the entry node: whose directory the client asked
  purchase p;           // purchases
  std::string order_id; // pay / cancel: the order
  item_spec spec;       // create
  std::string item_id;
  bool probe = false;    // sent after the last heal
  int64_t sent_ms = -1;  // -1: the client never sent it
  uint64_t sent_seq = 0; // its place among all sends (1, 2, ...)
  int incarnation = 0;   // of the entry node when it was sent
  int answers = 0;
  errc code = errc::ok;
  int64_t answered_ms = 0;
  uint64_t answered_seq = 0; // sends so far when its answer came
  order answer;              // when code == ok
};

struct cluster_log {
  std::vector<request_rec> reqs;
  uint64_t sends = 0;                 // requests sent so far, by every client
  std::map<std::string, order> acked; // purchases: order id -> view
  std::map<std::string, order_state> settled; // acknowledged pay / cancel
  std::set<std::string> created;              // acknowledged creations
};

void record_answer(cluster_log& log, std::size_t idx, errc code, const order* o,
                   int64_t now_ms) {
  auto& r = log.reqs[idx];
  r.answers += 1;
  if (r.answers > 1)
    return; // the auditor reports it; the first answer stands
  r.code = code;
  r.answered_ms = now_ms;
  r.answered_seq = log.sends;
  if (code == errc::ok && r.kind == op_kind::create)
    log.created.insert(r.item_id);
  if (o == nullptr)
    return;
  r.answer = *o;
  if (r.kind == op_kind::purchase)
    log.acked[o->order_id] = *o;
  else
    log.settled[r.order_id] = o->state;
}

// A crowd member: sends request `idx` of the log to its entry node's current
// directory (a dead one while that node is down) and writes the answer back.
caf::behavior client(caf::event_based_actor* self,
                     std::shared_ptr<cluster_log> log,
                     std::shared_ptr<std::vector<directory_actor>> dirs,
                     std::shared_ptr<std::vector<int>> incarnations,
                     clock_fn now) {
  return {
    [=](uint64_t idx) {
      auto& r = log->reqs[idx];
      r.sent_ms = now();
      r.sent_seq = ++log->sends;
      r.incarnation = (*incarnations)[r.node];
      auto dir = (*dirs)[r.node];
      auto on_order = [=](order& o) {
        record_answer(*log, idx, errc::ok, &o, now());
      };
      auto on_error = [=](caf::error& err) {
        record_answer(*log, idx, to_errc(err), nullptr, now());
      };
      switch (r.kind) {
        case op_kind::purchase:
          self->request(dir, caf::infinite, purchase_atom_v, r.p)
            .then(on_order, on_error);
          break;
        case op_kind::pay:
          self->request(dir, caf::infinite, pay_atom_v, r.order_id)
            .then(on_order, on_error);
          break;
        case op_kind::cancel:
          self->request(dir, caf::infinite, cancel_atom_v, r.order_id)
            .then(on_order, on_error);
          break;
        case op_kind::create:
          self->request(dir, caf::infinite, create_atom_v, r.spec)
            .then(
              [=](item_view&) {
                record_answer(*log, idx, errc::ok, nullptr, now());
              },
              on_error);
          break;
      }
    },
  };
}

// -- The scenario -------------------------------------------------------------

/// cut: the node's links lose everything until they heal, and the membership
/// says so; crash: its actors die, and it restarts from its file; blip: its
/// links lose everything for a moment, too short for the membership to
/// notice (the relays' hop timeouts end what was lost).
enum class fault_kind : uint8_t { cut, crash, blip };

struct fault_plan {
  fault_kind kind = fault_kind::cut;
  uint32_t node = 0;
  int start_op = 0;
  int64_t detect_ms = 0; // until the membership pushes "down"
  int64_t down_ms = 0;   // then until the links heal / the node restarts
  int64_t up_ms = 0;     // then until the membership pushes "up"
  bool settle = false;   // every receiver applies "down" before anything else
};

struct scenario {
  std::vector<item_spec> items; // the first `initial` before the crowd comes
  std::size_t initial = 0;      // the rest while it buys, maybe in a fault
  int users = 0;
  int operations = 0;
  double fail_rate = 0;
  std::vector<fault_plan> faults; // each on its own node; they may overlap
};

fault_plan make_fault(std::mt19937_64& rng, uint32_t node, int operations) {
  auto pick = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>{lo, hi}(rng);
  };
  fault_plan f;
  auto roll = pick(0, 99);
  f.kind = roll < 40   ? fault_kind::cut
           : roll < 75 ? fault_kind::crash
                       : fault_kind::blip;
  f.node = node;
  f.start_op = static_cast<int>(pick(operations / 10, operations * 3 / 4));
  // Detection sometimes comes after the hop timeout (1 s): lost calls then
  // end by their timeout, else by the routes.
  f.detect_ms = pick(0, 2) == 0 ? pick(1'000, 1'600) : pick(0, 600);
  f.down_ms = f.kind == fault_kind::blip ? pick(1, 300) : pick(100, 2'500);
  f.up_ms = pick(0, 300);
  f.settle = pick(0, 1) == 1;
  return f;
}

scenario make_scenario(std::mt19937_64& rng, int64_t now_ms, uint32_t nodes) {
  scenario sc;
  auto pick = [&](int lo, int hi) {
    return std::uniform_int_distribution<int>{lo, hi}(rng);
  };
  sc.users = pick(3, 30);
  sc.operations = pick(300, 1000);
  sc.fail_rate = pick(0, 2) * 0.05; // 0%, 5% or 10% of transactions
  int n = pick(1, 4);
  for (int i = 0; i < n; ++i) {
    item_spec s;
    s.item_id = "sku-" + std::to_string(i);
    s.total = pick(1, 20);
    s.per_user_limit = pick(1, 3);
    s.mode = static_cast<deduction_mode>(pick(0, 2));
    s.reserve_ttl_ms = pick(1, 4) * 1000;
    s.starts_at_ms = now_ms + pick(0, 1) * pick(1, 2000); // some start later
    sc.items.push_back(s);
  }
  sc.initial = sc.items.size();
  for (int i = 0, late = pick(0, 2); i < late; ++i) {
    auto s = sc.items[std::size_t(pick(0, n - 1))];
    s.item_id = "sku-" + std::to_string(n + i);
    s.starts_at_ms = now_ms;
    sc.items.push_back(s);
  }
  // Up to one fault per node, at seeded moments: alone, one after another,
  // or several at once (a node cut off while another restarts).
  auto first = static_cast<uint32_t>(pick(0, int(nodes) - 1));
  int faults = pick(0, 9) == 0 ? 0 : pick(1, int(nodes));
  for (int i = 0; i < faults; ++i)
    sc.faults.push_back(
      make_fault(rng, (first + uint32_t(i)) % nodes, sc.operations));
  return sc;
}

std::map<std::string, item_spec> specs_of(const scenario& sc) {
  std::map<std::string, item_spec> out;
  for (const auto& s : sc.items)
    out[s.item_id] = s;
  return out;
}

// -- Faults: the membership and the network, played by the test ---------------

/// A time when node `node` was cut off or down: from the fault until the
/// routes said it was up again, as places among the clients' sends (a
/// request with `from < sent_seq <= to` was sent inside). `strict_from`:
/// from when every node had applied the routes saying it was down (0: the
/// test did not wait for that).
struct fault_window {
  uint32_t node = 0;
  fault_kind kind = fault_kind::cut;
  uint64_t from = 0;
  uint64_t strict_from = 0;
  uint64_t to = 0;
  bool ended = false;
};

/// Plays one fault through its phases as simulated time passes.
struct fault_runner {
  fault_plan plan;
  const cluster_log* log = nullptr;
  int phase = 0; // 0 not yet, 1 faulty, 2 detected, 3 healed, 4 over
  int64_t phase_at = 0;
  fault_window window;

  bool done() const { return phase == 4; }
  void tick(sim_cluster& w, int op);
  void next_phase(int64_t now) {
    phase += 1;
    phase_at = now;
  }
};

void fault_runner::tick(sim_cluster& w, int op) {
  const auto& f = plan;
  auto now = w.now_ms();
  if (phase == 0 && op >= f.start_op) {
    if (f.kind == fault_kind::crash)
      w.crash(f.node);
    else
      w.set_cut(f.node, true);
    window = fault_window{f.node, f.kind, log->sends, 0, 0, false};
    next_phase(now);
  } else if (f.kind == fault_kind::blip) {
    if (phase == 1 && now >= phase_at + f.down_ms) { // over, unnoticed
      w.set_cut(f.node, false);
      phase = 4;
    }
  } else if (phase == 1 && now >= phase_at + f.detect_ms) {
    w.set_believed_up(f.node, false);
    w.push_routes();
    if (f.settle) {
      w.settle_routes();
      window.strict_from = log->sends;
    }
    next_phase(now);
  } else if (phase == 2 && now >= phase_at + f.down_ms) {
    if (f.kind == fault_kind::cut)
      w.set_cut(f.node, false);
    else
      w.restart(f.node);
    next_phase(now);
  } else if (phase == 3 && now >= phase_at + f.up_ms) {
    // Quiet first (no time passes): every request sent while the node was
    // believed down has had its answer before it is believed up again, so
    // the window check below holds exactly.
    w.run_random();
    w.set_believed_up(f.node, true);
    w.push_routes();
    window.to = log->sends;
    window.ended = true;
    next_phase(now);
  }
}

using fault_runners = std::vector<fault_runner>;

bool all_done(const fault_runners& faults) {
  for (const auto& f : faults)
    if (!f.done())
      return false;
  return true;
}

// -- The auditor --------------------------------------------------------------

// What the runs exercised, summed over seeds and printed once: a simulation
// that stops exercising something shows it here.
struct sim_totals {
  std::map<std::string, int64_t> outcomes; // purchase answers by code
  int64_t requests = 0, settled = 0, retries_same = 0, retry_refused = 0;
  int64_t cuts = 0, crashes = 0, blips = 0;
  int64_t window_requests = 0, window_refused = 0;
  int64_t lost_with_node = 0, link_crossed = 0, link_lost = 0;
  uint64_t retry_refused_seed = 0; // the first seed that showed one
  int64_t relay_failed_down = 0, relay_refused_down = 0, relay_timeouts = 0;
  int64_t failed_transactions = 0, max_latency_ms = 0;
  int64_t confirmed_in_file = 0, expired_in_file = 0, cancelled_in_file = 0;
};
sim_totals totals;

struct audit_input {
  uint64_t seed = 0;
  std::vector<std::string> nodes; // ids, in cluster order
  std::map<std::string, item_spec> specs;
  const cluster_log* log = nullptr;
  std::vector<fault_window> windows;
  std::vector<int> final_incarnations;
};

uint32_t owner_of(const audit_input& in, const std::string& item_id) {
  return item_owner(in.nodes, item_id);
}

std::string describe_req(const request_rec& r) {
  static const char* kinds[] = {"purchase", "pay", "cancel", "create"};
  std::ostringstream out;
  out << kinds[static_cast<int>(r.kind)] << " of "
      << (r.kind == op_kind::purchase ? r.p.request_id
          : r.kind == op_kind::create ? r.item_id
                                      : r.order_id)
      << " (item " << r.item_id << ", user " << r.p.user_id << ") at node "
      << r.node << " sent #" << r.sent_seq << " at " << r.sent_ms
      << " ms, answered " << to_string(r.code) << " at " << r.answered_ms;
  return out.str();
}

// Final sales the clients were told of never exceed the stock (an order-mode
// purchase or an acknowledged payment is a final sale; a reservation is not),
// no user is told more than the limit, and a retried request_id never yields
// a second order.
void audit_acks(const audit_input& in, audit_report& r) {
  const auto& log = *in.log;
  std::map<std::pair<std::string, std::string>, std::string> first_order;
  std::map<std::string, int64_t> sold;
  std::map<std::pair<std::string, std::string>, int64_t> bought;
  auto sale = [&](const order& o) {
    sold[o.item_id] += o.quantity;
    bought[{o.item_id, o.user_id}] += o.quantity;
  };
  for (const auto& a : log.reqs) {
    if (a.kind != op_kind::purchase || a.answers == 0 || a.code != errc::ok)
      continue;
    auto key = std::make_pair(a.p.item_id, a.p.request_id);
    auto [it, fresh] = first_order.emplace(key, a.answer.order_id);
    if (!fresh && it->second != a.answer.order_id)
      r.fail("request " + a.p.request_id + " got two orders: " + it->second
             + " and " + a.answer.order_id);
    totals.retries_same += fresh ? 0 : 1;
    if (fresh && in.specs.at(a.p.item_id).mode == deduction_mode::order)
      sale(a.answer);
  }
  for (const auto& [id, state] : log.settled)
    if (state == order_state::confirmed && log.acked.count(id) != 0
        && in.specs.at(log.acked.at(id).item_id).mode != deduction_mode::order)
      sale(log.acked.at(id));
  for (const auto& [item, units] : sold)
    if (units > in.specs.at(item).total)
      r.fail("item " + item + ": " + std::to_string(units)
             + " units sold to acknowledged buyers but only "
             + std::to_string(in.specs.at(item).total) + " in stock");
  for (const auto& [key, units] : bought)
    if (units > in.specs.at(key.first).per_user_limit)
      r.fail("user " + key.second + " was told " + std::to_string(units)
             + " units of " + key.first + " are theirs");
}

// A retry of an acknowledged purchase, through any node's edge queue after
// a sell-out or the end, gets its order back: the refusing status carries a
// filter of the ordered request ids (actors/sale/request_filter.hpp). Before it
// did, 432 retries in the default 100 seeds were told sold_out or ended.
void count_refused_retries(const audit_input& in, audit_report& r) {
  const auto& log = *in.log;
  std::map<std::pair<std::string, std::string>, uint64_t> first_ack;
  for (const auto& a : log.reqs)
    if (a.kind == op_kind::purchase && a.answers > 0 && a.code == errc::ok) {
      auto key = std::make_pair(a.p.item_id, a.p.request_id);
      auto [it, fresh] = first_ack.emplace(key, a.answered_seq);
      if (!fresh)
        it->second = std::min(it->second, a.answered_seq);
    }
  for (const auto& a : log.reqs) {
    auto i = first_ack.find({a.p.item_id, a.p.request_id});
    if (a.kind == op_kind::purchase && a.answers > 0
        && (a.code == errc::sold_out || a.code == errc::ended)
        && i != first_ack.end() && a.sent_seq > i->second) {
      totals.retry_refused += 1;
      if (totals.retry_refused_seed == 0)
        totals.retry_refused_seed = in.seed;
      r.fail("retry " + a.p.request_id + " of item " + a.p.item_id
             + " was told " + to_string(a.code)
             + " after its order was acknowledged");
    }
  }
}

// Whether request `q` and fault window `w` put the entry node and the
// item's owner on opposite sides of the fault.
bool crosses(const audit_input& in, const request_rec& q,
             const fault_window& w) {
  return (q.node == w.node) != (owner_of(in, q.item_id) == w.node);
}

void audit_window(const audit_input& in, const fault_window& w,
                  audit_report& r) {
  auto node = "node " + std::to_string(w.node)
              + (w.kind == fault_kind::cut ? " (cut off)" : " (crashed)");
  for (const auto& q : in.log->reqs) {
    if (q.sent_seq <= w.from || (w.ended && q.sent_seq > w.to) || q.answers == 0
        || !crosses(in, q, w))
      continue;
    totals.window_requests += 1;
    totals.window_refused += q.code == errc::shard_unavailable ? 1 : 0;
    if (q.code == errc::ok)
      r.fail(node + " was unreachable, yet this succeeded across: "
             + describe_req(q));
    else if (w.strict_from > 0 && q.sent_seq > w.strict_from
             && q.code != errc::shard_unavailable)
      r.fail(node + " was known down everywhere, yet not shard_unavailable: "
             + describe_req(q));
  }
}

/// A sanity bound on any answer: the waiting room holds a purchase at most
/// 2 s and a hop lasts at most the hop timeout (1 s), and lines of a few
/// purchases form behind slow hops; an answer much later came from some
/// unrelated timer (a hang that happened to end), not from the design.
constexpr int64_t answer_ms_max = 10'000;

// Every request was answered exactly once, except those held by a node that
// crashed, and in bounded time; after the last heal every node serves every
// item.
void audit_answers(const audit_input& in, audit_report& r) {
  for (const auto& q : in.log->reqs) {
    if (q.sent_ms < 0) {
      r.fail("never sent: " + describe_req(q));
      continue;
    }
    if (q.answers > 1)
      r.fail("answered " + std::to_string(q.answers)
             + " times: " + describe_req(q));
    if (q.answers == 0) {
      if (q.incarnation < in.final_incarnations[q.node])
        totals.lost_with_node += 1; // its node crashed holding it
      else
        r.fail("never answered (hangs): " + describe_req(q));
      continue;
    }
    auto latency_ms = q.answered_ms - q.sent_ms;
    totals.max_latency_ms = std::max(totals.max_latency_ms, latency_ms);
    if (latency_ms > answer_ms_max)
      r.fail("answered only after " + std::to_string(latency_ms)
             + " ms: " + describe_req(q));
    if (q.probe && q.code == errc::shard_unavailable)
      r.fail("after the heal, a node still cannot reach the item: "
             + describe_req(q));
  }
  for (const auto& w : in.windows) {
    if (!w.ended)
      r.fail("node " + std::to_string(w.node) + " never came back");
    audit_window(in, w, r);
  }
}

/// What the files hold, all nodes together.
struct file_index {
  std::set<std::string> items;
  std::map<std::string, order> orders;                    // by order id
  std::set<std::pair<std::string, std::string>> requests; // (item, request)
};

// One node's file: recovered, only its own items, no reservation left, the
// stock and every user's limit kept, every order and request once.
void audit_file(const audit_input& in, uint32_t node, const recovery& rec,
                file_index& files, audit_report& r) {
  if (!rec.ok()) {
    r.fail("recovery of node " + std::to_string(node) + ": " + rec.error);
    return;
  }
  for (const auto& item : rec.items) {
    const auto& id = item.record.spec.item_id;
    const auto& c = item.record.counters;
    files.items.insert(id);
    if (owner_of(in, id) != node)
      r.fail("item " + id + " is in the file of node " + std::to_string(node)
             + ", which does not own it");
    if (c.reserved != 0)
      r.fail("item " + id + " still holds reservations");
    std::map<std::string, int64_t> held;
    int64_t confirmed = 0;
    for (const auto& o : item.orders) {
      totals.expired_in_file += o.state == order_state::expired;
      totals.confirmed_in_file += o.state == order_state::confirmed;
      totals.cancelled_in_file += o.state == order_state::cancelled;
      if (!files.orders.emplace(o.order_id, o).second)
        r.fail("order " + o.order_id + " is in the files twice");
      if (!files.requests.emplace(o.item_id, o.request_id).second)
        r.fail("request " + o.request_id + " has two orders in the files");
      if (counts_for_user(o.state))
        held[o.user_id] += o.quantity;
      if (o.state == order_state::confirmed)
        confirmed += o.quantity;
    }
    auto spec = in.specs.count(id) != 0 ? in.specs.at(id) : item.record.spec;
    if (confirmed > spec.total || c.sold > spec.total)
      r.fail("file: item " + id + " sold " + std::to_string(confirmed) + " of "
             + std::to_string(spec.total));
    for (const auto& [user, units] : held)
      if (units > spec.per_user_limit)
        r.fail("file: user " + user + " holds " + std::to_string(units) + " of "
               + id);
  }
}

// The files against the acknowledgements.
void audit_files(const audit_input& in, const std::vector<recovery>& files,
                 audit_report& r) {
  const auto& log = *in.log;
  file_index index;
  for (uint32_t k = 0; k < files.size(); ++k)
    audit_file(in, k, files[k], index, r);
  auto& in_files = index.orders;
  for (const auto& id : log.created)
    if (index.items.count(id) == 0)
      r.fail("item " + id + " was created (acknowledged) but is in no file");
  for (const auto& [id, o] : log.acked) {
    auto it = in_files.find(id);
    if (it == in_files.end()) {
      r.fail("acknowledged order " + id + " is not in its owner's file");
      continue;
    }
    const auto& f = it->second;
    if (f.user_id != o.user_id || f.quantity != o.quantity
        || f.request_id != o.request_id || f.item_id != o.item_id)
      r.fail("order " + id + " in the file differs from its acknowledgement");
  }
  for (const auto& [id, state] : log.settled)
    if (in_files.count(id) != 0 && in_files[id].state != state)
      r.fail("order " + id + " was acknowledged " + to_string(state)
             + " but the file says " + to_string(in_files[id].state));
  // store_unavailable promises that this attempt took nothing; another
  // attempt with the same request_id may have placed it (ok), or may have an
  // unknown outcome (shard_unavailable, or no answer: its node crashed).
  std::set<std::pair<std::string, std::string>> maybe_placed;
  for (const auto& b : log.reqs)
    if (b.kind == op_kind::purchase
        && (b.answers == 0 || b.code == errc::ok
            || b.code == errc::shard_unavailable))
      maybe_placed.emplace(b.p.item_id, b.p.request_id);
  for (const auto& a : log.reqs) {
    auto key = std::make_pair(a.p.item_id, a.p.request_id);
    if (a.kind == op_kind::purchase && a.answers > 0
        && a.code == errc::store_unavailable && maybe_placed.count(key) == 0
        && index.requests.count(key) != 0)
      r.fail("request " + a.p.request_id
             + " was told store_unavailable but its order is in the file");
  }
}

// -- One seeded run -----------------------------------------------------------

struct crowd {
  sim_cluster& w;
  const scenario& sc;
  std::shared_ptr<cluster_log> log;
  std::vector<caf::actor> clients;
  std::vector<std::size_t> purchases; // indexes of new purchases sent

  int pick(int lo, int hi) {
    return std::uniform_int_distribution<int>{lo, hi}(w.rng);
  }
  void send(const request_rec& r, std::size_t client) {
    log->reqs.push_back(r);
    caf::anon_send(clients[client], uint64_t{log->reqs.size() - 1});
  }
  void act();
  void probe();
};

// One random client operation, through a random node.
void crowd::act() {
  auto node = static_cast<uint32_t>(pick(0, int(w.size()) - 1));
  auto client = static_cast<std::size_t>(pick(0, int(clients.size()) - 1));
  if (sc.items.size() > sc.initial && pick(0, 99) == 0) {
    // An operator creates a late item (again, if not yet acknowledged).
    const auto& spec =
      sc.items[std::size_t(pick(int(sc.initial), int(sc.items.size()) - 1))];
    if (log->created.count(spec.item_id) == 0) {
      request_rec r;
      r.kind = op_kind::create;
      r.node = node;
      r.spec = spec;
      r.item_id = spec.item_id;
      send(r, client);
      return;
    }
  }
  auto roll = pick(0, 99);
  if (roll < 60 || log->acked.empty()) {
    request_rec r;
    r.node = node;
    if (!purchases.empty() && pick(0, 4) == 0) { // a retry, on any node
      r.p =
        log->reqs[purchases[std::size_t(pick(0, int(purchases.size()) - 1))]].p;
    } else {
      auto i = std::size_t(pick(0, int(sc.items.size()) - 1));
      const auto& item = sc.items[i];
      r.p.item_id = item.item_id;
      r.p.user_id = "u" + std::to_string(pick(0, sc.users - 1));
      r.p.request_id = "r" + std::to_string(purchases.size());
      r.p.quantity = pick(1, 2);
      purchases.push_back(log->reqs.size());
    }
    r.item_id = r.p.item_id;
    send(r, client);
    if (pick(0, 9) == 0)
      send(r, client); // a double click: the same request at once
    return;
  }
  auto it = log->acked.begin();
  std::advance(it, pick(0, int(log->acked.size()) - 1));
  request_rec r;
  r.kind = roll < 85 ? op_kind::pay : op_kind::cancel;
  r.node = node;
  r.order_id = it->first;
  r.item_id = it->second.item_id;
  r.p.user_id = it->second.user_id;
  send(r, client);
}

// After the last heal: a fresh buyer for every item on every node.
void crowd::probe() {
  for (const auto& item : sc.items)
    for (uint32_t k = 0; k < w.size(); ++k) {
      request_rec r;
      r.node = k;
      r.probe = true;
      r.p.item_id = item.item_id;
      r.p.user_id = "probe-" + item.item_id + "-" + std::to_string(k);
      r.p.request_id = r.p.user_id;
      r.p.quantity = 1;
      r.item_id = item.item_id;
      send(r, 0);
    }
}

void run_crowd(sim_cluster& w, crowd& c, fault_runners& faults) {
  for (int i = 0; i < c.sc.operations; ++i) {
    for (auto& f : faults)
      f.tick(w, i);
    c.act();
    for (int k = c.pick(0, 60); k > 0; --k)
      w.step_random();
    // Time passes: a few ms between most operations, and now and then a
    // stall (nothing runs for 100-800 ms, then every due timer fires at
    // once, hop timeouts among them, as after a pause of the process).
    if (c.pick(0, 2) == 0)
      w.advance_ms(c.pick(1, 30));
    if (c.pick(0, 29) == 0)
      w.advance_ms(c.pick(100, 800));
  }
  // Every fault runs to its end: the node heals and is believed up again.
  for (int guard = 0; guard < 100'000 && !all_done(faults); ++guard) {
    w.run_random();
    w.advance_ms(10);
    for (auto& f : faults)
      f.tick(w, INT_MAX);
  }
}

// Each item's stock through a random node: once every reservation has
// expired, available + sold == total.
void check_stock(sim_cluster& w, const scenario& sc, const cluster_log& log,
                 audit_report& r) {
  for (std::size_t i = 0; i < sc.items.size(); ++i) {
    const auto& spec = sc.items[i];
    auto k = std::uniform_int_distribution<uint32_t>{0, w.size() - 1}(w.rng);
    stock_view v;
    if (auto err = w.call((*w.directories)[k], [&](stock_view& x) { v = x; },
                          stock_atom_v, spec.item_id)) {
      if (i >= sc.initial && log.created.count(spec.item_id) == 0
          && to_errc(err) == errc::unknown_item)
        continue; // a late item whose creation never got through
      r.fail("stock of " + spec.item_id + " at node " + std::to_string(k) + ": "
             + w.sys.render(err));
      continue;
    }
    if (v.counters.available + v.counters.sold != spec.total
        || v.counters.reserved != 0)
      r.fail("item " + spec.item_id
             + ": stock lost, available=" + std::to_string(v.counters.available)
             + " reserved=" + std::to_string(v.counters.reserved)
             + " sold=" + std::to_string(v.counters.sold));
  }
}

void create_items(sim_cluster& w, const scenario& sc, audit_report& r) {
  for (std::size_t i = 0; i < sc.initial; ++i) {
    const auto& spec = sc.items[i];
    auto k = std::uniform_int_distribution<uint32_t>{0, w.size() - 1}(w.rng);
    if (auto err =
          w.call((*w.directories)[k], [](item_view&) {}, create_atom_v, spec))
      r.fail("create " + spec.item_id + " through node " + std::to_string(k)
             + ": " + w.sys.render(err));
  }
  w.run_random(); // the owners' announcements reach every node
}

void count_world(const sim_cluster& w, const fault_runners& faults) {
  totals.link_crossed += w.links->crossed;
  totals.link_lost += w.links->lost;
  for (const auto& n : w.nodes) {
    totals.relay_failed_down += n.counters->failed_down;
    totals.relay_refused_down += n.counters->refused_down;
    totals.relay_timeouts += n.counters->failed_timeout;
  }
  for (const auto& f : faults)
    (f.plan.kind == fault_kind::cut     ? totals.cuts
     : f.plan.kind == fault_kind::crash ? totals.crashes
                                        : totals.blips) += 1;
}

cluster_options make_options(uint64_t seed, const sim_dir& dir,
                             std::shared_ptr<double> fail_rate) {
  cluster_options opts;
  opts.seed = seed;
  opts.dir = dir.path;
  opts.directory.queue.wait_ms_max = 2'000;
  opts.sessions.session.rate_per_s = 50;
  opts.sessions.session.burst = 20;
  opts.sessions.session.idle_timeout_ms = 5'000;
  auto fail_rng = std::make_shared<std::mt19937_64>(seed * 7919 + 1);
  opts.fail_transaction = [fail_rng, fail_rate](uint32_t) {
    bool fail =
      std::uniform_real_distribution<double>{0, 1}(*fail_rng) < *fail_rate;
    totals.failed_transactions += fail ? 1 : 0;
    return fail;
  };
  return opts;
}

void audit_run(audit_input& in, const std::vector<std::string>& dbs,
               audit_report& r) {
  audit_acks(in, r);
  count_refused_retries(in, r);
  audit_answers(in, r);
  std::vector<recovery> files;
  for (const auto& db : dbs)
    files.push_back(recover(db));
  audit_files(in, files, r);
  for (const auto& q : in.log->reqs)
    if (q.kind == op_kind::purchase && q.answers > 0)
      totals.outcomes[to_string(q.code)] += 1;
  totals.requests += static_cast<int64_t>(in.log->reqs.size());
  totals.settled += static_cast<int64_t>(in.log->settled.size());
}

audit_report run_seed(uint64_t seed) {
  audit_report r;
  std::mt19937_64 scenario_rng{seed};
  sim_dir dir; // outlives the cluster: the files are read after it is gone
  auto fail_rate = std::make_shared<double>(0);
  auto log = std::make_shared<cluster_log>();
  audit_input in;
  in.seed = seed;
  in.log = log.get();
  std::vector<std::string> dbs;
  try {
    sim_cluster w{make_options(seed, dir, fail_rate)};
    auto sc = make_scenario(scenario_rng, w.now_ms(), w.size());
    in.nodes = *w.names;
    in.specs = specs_of(sc);
    create_items(w, sc, r);
    *fail_rate = sc.fail_rate; // creation is not the point of the test
    crowd c{w, sc, log, {}, {}};
    for (int i = 0; i < 4; ++i)
      c.clients.push_back(
        w.sys.spawn(client, log, w.directories, w.incarnations, w.clock()));
    fault_runners faults;
    for (const auto& plan : sc.faults)
      faults.push_back(fault_runner{plan, log.get(), 0, 0, {}});
    run_crowd(w, c, faults);
    *fail_rate = 0; // let the end state settle
    w.drain();      // answers everything; every reservation expires
    c.probe();
    w.drain();
    check_stock(w, sc, *log, r);
    for (const auto& f : faults)
      if (f.plan.kind != fault_kind::blip)
        in.windows.push_back(f.window);
    in.final_incarnations = *w.incarnations;
    count_world(w, faults);
    for (const auto& n : w.nodes)
      dbs.push_back(n.db_path);
    for (const auto& cl : c.clients)
      caf::anon_send_exit(cl, caf::exit_reason::kill);
    // The cluster is torn down here, without any goodbye to the stores.
  } catch (const std::exception& e) {
    r.fail(std::string{"the run stopped: "} + e.what());
    return r;
  }
  audit_run(in, dbs, r);
  if (assertion_failures > 0)
    r.fail(std::to_string(assertion_failures) + " assertions failed");
  return r;
}

void print_totals(uint64_t seeds, double seconds) {
  const auto& t = totals;
  auto n = [](int64_t x) { return static_cast<long long>(x); };
  std::printf("cluster simulation: %llu seeds in %.1f s, %lld requests\n",
              (unsigned long long)seeds, seconds, n(t.requests));
  std::printf("  faults: %lld cuts, %lld crashes, %lld blips; %lld store "
              "transactions failed\n",
              n(t.cuts), n(t.crashes), n(t.blips), n(t.failed_transactions));
  std::printf("  links: %lld messages crossed, %lld lost; relays: %lld calls "
              "failed at once (node down), %lld refused, %lld timed out\n",
              n(t.link_crossed), n(t.link_lost), n(t.relay_failed_down),
              n(t.relay_refused_down), n(t.relay_timeouts));
  std::printf("  %lld requests across a fault (%lld shard_unavailable); %lld "
              "lost with a crashed node; longest answer %lld ms\n",
              n(t.window_requests), n(t.window_refused), n(t.lost_with_node),
              n(t.max_latency_ms));
  std::printf("  %lld retries answered with their order; %lld retries told "
              "sold_out/ended at an edge after their order was acknowledged "
              "(a violation; first seen with seed %llu); %lld pay/cancel "
              "acks\n",
              n(t.retries_same), n(t.retry_refused),
              (unsigned long long)t.retry_refused_seed, n(t.settled));
  std::printf("  in the files: %lld confirmed, %lld cancelled, %lld expired; "
              "purchase answers:",
              n(t.confirmed_in_file), n(t.cancelled_in_file),
              n(t.expired_in_file));
  for (const auto& [code, count] : t.outcomes)
    std::printf(" %s=%lld", code.c_str(), n(count));
  std::printf("\n");
}

// -- The auditor's self-test: fabricated logs it must reject ------------------

audit_input fabricated_input(cluster_log& log) {
  audit_input in;
  in.nodes = {"n1", "n2", "n3"};
  item_spec s;
  s.item_id = "sku-0";
  s.total = 1;
  s.per_user_limit = 1;
  s.mode = deduction_mode::order;
  in.specs[s.item_id] = s;
  in.log = &log;
  in.final_incarnations = {1, 1, 1};
  return in;
}

request_rec fabricated_ok(const std::string& user, const std::string& req,
                          const std::string& order_id, uint32_t node) {
  request_rec q;
  q.node = node;
  q.p = purchase{"sku-0", user, req, 1};
  q.item_id = "sku-0";
  q.sent_ms = 10;
  q.sent_seq = 10;
  q.incarnation = 1;
  q.answers = 1;
  q.answered_ms = 20;
  q.answer = order{order_id, "sku-0", user, req, 1, order_state::confirmed};
  return q;
}

bool mentions(const audit_report& r, const std::string& what) {
  for (const auto& v : r.violations)
    if (v.find(what) != std::string::npos)
      return true;
  return false;
}

} // namespace

TEST_CASE("cluster simulation: the auditor's invariants hold for every seed "
          "while nodes are cut off and crash on a lossy network",
          "[sim][cluster]") {
  auto single = env_or("SECKILL_SIM_SEED", 0);
  auto seeds = env_or("SECKILL_SIM_SEEDS", 100);
  auto first = single != 0 ? single : 1;
  auto last = single != 0 ? single : seeds;
  int failed = 0;
  auto started = std::chrono::steady_clock::now();
  for (auto seed = first; seed <= last; ++seed) {
    auto r = run_seed(seed);
    if (!r.violations.empty()) {
      ++failed;
      auto text = describe(seed, r);
      std::printf("%s\n", text.c_str());
      UNSCOPED_INFO(text);
    }
  }
  std::chrono::duration<double> took =
    std::chrono::steady_clock::now() - started;
  print_totals(last - first + 1, took.count());
  INFO("seeds run: " << (last - first + 1));
  CHECK(failed == 0);
  if (single != 0)
    return; // one seed need not exercise everything
  // The runs must exercise what the auditor checks.
  CHECK(totals.outcomes["ok"] > 0);
  CHECK(totals.outcomes["sold_out"] > 0);
  CHECK(totals.outcomes["shard_unavailable"] > 0);
  CHECK(totals.cuts > 0);
  CHECK(totals.crashes > 0);
  CHECK(totals.blips > 0);
  CHECK(totals.link_lost > 0);
  CHECK(totals.window_refused > 0);
  CHECK(totals.relay_failed_down + totals.relay_timeouts > 0);
  CHECK(totals.retries_same > 0);
  CHECK(totals.failed_transactions > 0);
  CHECK(totals.expired_in_file > 0);
}

TEST_CASE("cluster simulation: the auditor rejects fabricated violations",
          "[sim][cluster]") {
  SECTION("two acknowledged buyers of the last unit: oversold") {
    cluster_log log;
    log.reqs = {fabricated_ok("u1", "r1", "sku-0.1", 0),
                fabricated_ok("u2", "r2", "sku-0.2", 1)};
    auto in = fabricated_input(log);
    audit_report r;
    audit_acks(in, r);
    CHECK(mentions(r, "2 units sold to acknowledged buyers but only 1"));
  }
  SECTION("a retry given a second order") {
    cluster_log log;
    log.reqs = {fabricated_ok("u1", "r1", "sku-0.1", 0),
                fabricated_ok("u1", "r1", "sku-0.2", 2)};
    auto in = fabricated_input(log);
    audit_report r;
    audit_acks(in, r);
    CHECK(mentions(r, "got two orders"));
  }
  SECTION("a success across a cut, and a request that hangs") {
    cluster_log log;
    auto owner = item_owner({"n1", "n2", "n3"}, "sku-0");
    auto across = fabricated_ok("u1", "r1", "sku-0.1", (owner + 1) % 3);
    auto hangs = fabricated_ok("u2", "r2", "", owner);
    hangs.answers = 0;
    log.reqs = {across, hangs};
    auto in = fabricated_input(log);
    in.windows = {fault_window{owner, fault_kind::cut, 0, 5, 100, true}};
    audit_report r;
    audit_answers(in, r);
    CHECK(mentions(r, "was unreachable, yet this succeeded across"));
    CHECK(mentions(r, "never answered (hangs)"));
  }
  SECTION("an acknowledged order missing from its owner's file") {
    cluster_log log;
    log.reqs = {fabricated_ok("u1", "r1", "sku-0.1", 0)};
    log.acked["sku-0.1"] = log.reqs[0].answer;
    auto in = fabricated_input(log);
    std::vector<recovery> files(3); // three empty, healthy files
    audit_report r;
    audit_files(in, files, r);
    CHECK(mentions(r, "is not in its owner's file"));
  }
}

TEST_CASE("cluster simulation: a planted bug (stock check skipped) is caught "
          "by the auditor",
          "[sim][cluster]") {
  const uint64_t seeds = 8;
  int caught_by_auditor =
    planted_bug_caught(planted_bug::skip_stock_check, seeds, run_seed);
  std::printf("cluster planted bug: the auditor caught it in %d of %llu "
              "seeds\n",
              caught_by_auditor, (unsigned long long)seeds);
  CHECK(caught_by_auditor > 0);
}

// Found by the simulation, and fixed in relay.cpp: a call to a node that
// the routes declare down is failed at once, also when its request or its
// answer was lost on a cut link. Before, the relay sent its own failure back
// over the link (lost again, so one hop timeout late), and dropped a call
// from its table as soon as the answer left the other node (so the routes
// could no longer fail it while that answer was lost). A session's line
// stayed blocked meanwhile, and the purchases queued behind went out after
// the heal: the window check failed for seeds 20, 321, 409, 433, 701, 884,
// 916 and 986 of the first 1000 (the first half of the fix alone still
// failed seed 660).
TEST_CASE("cluster simulation: a relay fails a call lost on a cut link at "
          "once when the routes say its node is down, else after one hop "
          "timeout",
          "[sim][cluster]") {
  sim_dir dir;
  cluster_options opts;
  opts.dir = dir.path;
  opts.link_delay_ms_max = 0; // every message crosses at once, or is lost
  sim_cluster w{opts};
  std::string item = "sku-x";
  for (int i = 0; item_owner(*w.names, item) != 2; ++i)
    item = "sku-x" + std::to_string(i); // an item node 2 would own
  auto relay = w.nodes[0].relays[0];
  auto h = w.self->request(relay, caf::infinite, relay_atom_v, uint32_t{2},
                           caf::actor_cast<caf::actor>(w.nodes[2].directory),
                           stock_atom_v, item);
  auto start = w.now_ms();
  auto node_2_down = [&] {
    w.set_believed_up(2, false);
    w.push_routes();
    w.run_random();
  };
  SECTION("the request is lost, then node 2 is declared down: at once") {
    w.set_cut(2, true);
    w.run_random();
    CHECK(w.self->mailbox().empty());
    node_2_down();
    CHECK(w.now_ms() == start);
  }
  SECTION("the request is lost, nobody says anything: one hop timeout") {
    w.set_cut(2, true);
    w.run_random();
    w.advance_ms(opts.hop_timeout_ms - 1);
    w.run_random();
    CHECK(w.self->mailbox().empty());
    w.advance_ms(1);
    w.run_random();
  }
  SECTION("the answer is lost, then node 2 is declared down: at once") {
    while (w.sched.prioritize(relay)) // the request crosses, alone
      w.sched.run_once();
    w.set_cut(2, true); // before node 2 answers (unknown_item)
    w.run_random();
    CHECK(w.self->mailbox().empty());
    node_2_down();
    CHECK(w.now_ms() == start);
  }
  REQUIRE_FALSE(w.self->mailbox().empty());
  caf::error result;
  std::move(h).receive([](stock_view&) { FAIL("a value from a cut node"); },
                       [&](caf::error& err) { result = std::move(err); });
  CHECK(to_errc(result) == errc::shard_unavailable);
}
