// The layers in front of the item, driven through the directory on the
// deterministic world: the admission queue (token bucket, bounded waiting
// room, maximum wait, first come first served, sold-out / not-started
// answered at the edge) and the user sessions (rate limit, double clicks,
// unpaid cap, idle retirement, the session limit).
#include <catch2/catch.hpp>

#include <map>
#include <memory>
#include <set>

#include "actors/sale/admission_queue.hpp"
#include "tests/support/sim_world.hpp"

using namespace seckill;
using namespace seckill::test;

namespace {

struct answer {
  std::string user;
  errc code = errc::ok;
  int64_t retry_after_ms = 0;
  std::string order_id;
  queued_facts queued; // with code queued
};

using answers = std::shared_ptr<std::vector<answer>>;

// Sends all purchases at once through the directory; answers are appended
// in the order they arrive, as the world runs.
answers fire(sim_world& w, std::vector<purchase> ps) {
  auto out = std::make_shared<std::vector<answer>>();
  auto dir = w.directory;
  w.sys.spawn([dir, ps, out](caf::event_based_actor* self) {
    for (const auto& p : ps)
      self->request(dir, caf::infinite, purchase_atom_v, p)
        .then(
          [out, p](order& o) {
            out->push_back({p.user_id, errc::ok, 0, o.order_id, {}});
          },
          [out, p](caf::error& e) {
            answer a{p.user_id, to_errc(e), retry_after_ms(e), {}, {}};
            queued_of(e, a.queued);
            out->push_back(a);
          });
  });
  w.run_random();
  return out;
}

std::vector<purchase> users(const std::string& item, int n, int first = 0) {
  std::vector<purchase> ps;
  for (int i = first; i < first + n; ++i)
    ps.push_back({item, "u" + std::to_string(i), "r" + std::to_string(i), 1});
  return ps;
}

int count(const std::vector<answer>& xs, errc code) {
  int n = 0;
  for (const auto& x : xs)
    n += x.code == code ? 1 : 0;
  return n;
}

item_spec make_spec(sim_world& w, const std::string& id, int64_t total,
                    deduction_mode mode = deduction_mode::order) {
  return test_spec(id, total, mode, w.now_ms(), 3, 60'000);
}

void create(sim_world& w, const item_spec& s) {
  REQUIRE(!w.call(
    w.directory, [](item_view&) {}, create_atom_v, s));
}

queue_view queue_of(sim_world& w, const std::string& id) {
  caf::actor q;
  w.call(
    w.directory, [&](caf::actor&, caf::actor& x) { q = x; }, lookup_atom_v, id);
  queue_view v;
  w.call(
    caf::actor_cast<queue_actor>(q), [&](queue_view& x) { v = x; },
    view_atom_v);
  return v;
}

/// A slow queue; without tickets (`tickets_max` 0) a full room says busy.
sim_options slow_queue(double rate, std::size_t waiting_max,
                       int64_t wait_ms_max, std::size_t tickets_max = 0) {
  sim_options o;
  o.directory.queue.rate_per_s = rate;
  o.directory.queue.burst = 1;
  o.directory.queue.waiting_max = waiting_max;
  o.directory.queue.wait_ms_max = wait_ms_max;
  o.directory.queue.tickets_max = tickets_max;
  return o;
}

stock_view stock_of(sim_world& w, const std::string& id) {
  stock_view v;
  w.call(
    w.directory, [&](stock_view& x) { v = x; }, stock_atom_v, id);
  return v;
}

int64_t order_seq(const std::string& order_id) {
  return std::stoll(order_id.substr(order_id.rfind('.') + 1));
}

} // namespace

TEST_CASE("queue: a full waiting room answers busy at once, with a hint, "
          "and waiters are served first come first served",
          "[queue][limits]") {
  sim_world w{slow_queue(10, 3, 5'000)};
  create(w, make_spec(w, "q", 100));
  auto out = fire(w, users("q", 6));
  // One token passes at once, three wait, two find the room full.
  REQUIRE(out->size() == 3);
  CHECK(count(*out, errc::busy) == 2);
  for (const auto& a : *out)
    if (a.code == errc::busy)
      CHECK(a.retry_after_ms > 0);
  CHECK(queue_of(w, "q").waiting == 3);
  for (int i = 0; i < 3; ++i) { // one token per 100 ms
    w.advance_ms(100);
    w.run_random();
  }
  REQUIRE(out->size() == 6);
  std::vector<std::string> served;
  for (const auto& a : *out)
    if (a.code == errc::ok)
      served.push_back(a.user);
  // Arrival order is the order the crowd's requests reached the queue, so
  // only the relative order of the waiters is known: they were sent in order.
  REQUIRE(served.size() == 4);
  CHECK(std::is_sorted(served.begin() + 1, served.end()));
  CHECK(queue_of(w, "q").waiting == 0);
}

TEST_CASE("queue: behind a full room buyers get tickets - the line goes on "
          "in ticket order ahead of newcomers and each holder collects its "
          "answer once",
          "[queue][tickets]") {
  sim_world w{slow_queue(10, 3, 5'000, 100)};
  create(w, make_spec(w, "q", 100));
  auto out = fire(w, users("q", 10));
  // One passes, three wait in the room, six get tickets 1..6 at once.
  std::map<std::string, queued_facts> held;
  for (const auto& a : *out)
    if (a.code == errc::queued)
      held[a.user] = a.queued;
  REQUIRE(held.size() == 6);
  std::set<int64_t> numbers;
  for (const auto& [user, q] : held) {
    numbers.insert(q.ticket);
    CHECK(q.position == q.ticket); // the line was empty before them
    CHECK(q.eta_ms >= q.position * 100);
    CHECK_FALSE(q.likely_sold_out);
  }
  CHECK(numbers == std::set<int64_t>{1, 2, 3, 4, 5, 6});
  // Two newcomers while the line waits: they join its end.
  auto late = fire(w, users("q", 2, 10));
  REQUIRE(late->size() == 2);
  for (const auto& a : *late) {
    CHECK(a.code == errc::queued);
    CHECK(a.queued.ticket >= 7);
    held[a.user] = a.queued;
  }
  auto v = queue_of(w, "q");
  CHECK(v.tickets_issued == 8);
  CHECK(v.tickets_waiting == 8);
  CHECK(v.ticket_head == 1);
  // A holder who comes back early is told its place again.
  auto early = users("q", 1, 0);
  for (auto& [user, q] : held)
    if (q.ticket == 8)
      early = {{"q", user, "r" + user.substr(1), 1, 0, false, 8}};
  auto again = fire(w, early);
  REQUIRE(again->size() == 1);
  CHECK(again->front().code == errc::queued);
  CHECK(again->front().queued.ticket == 8);
  CHECK(again->front().queued.position == 8);
  // The room, then the line, one token per 100 ms.
  for (int i = 0; i < 12; ++i) {
    w.advance_ms(100);
    w.run_random();
  }
  v = queue_of(w, "q");
  CHECK(v.tickets_waiting == 0);
  // Every holder collects: orders in ticket order, one each.
  std::vector<purchase> collect;
  for (const auto& [user, q] : held)
    collect.push_back({"q", user, "r" + user.substr(1), 1, 0, false, q.ticket});
  auto got = fire(w, collect);
  REQUIRE(got->size() == held.size());
  std::map<int64_t, int64_t> seq_by_ticket;
  for (const auto& a : *got) {
    REQUIRE(a.code == errc::ok);
    seq_by_ticket[held[a.user].ticket] = order_seq(a.order_id);
  }
  int64_t last = 0;
  for (const auto& [ticket, seq] : seq_by_ticket) {
    INFO("ticket " << ticket);
    CHECK(seq > last); // served in the order the tickets were issued
    last = seq;
  }
  CHECK(queue_of(w, "q").tickets_served == 8);
  // Collected twice: the ticket is spent; the retry is a newcomer whose
  // request id gets its order back, never a second one.
  auto twice = fire(w, {collect.front()});
  REQUIRE(twice->size() == 1);
  CHECK(twice->front().code == errc::ok);
  CHECK(stock_of(w, "q").counters.sold == 12);
}

TEST_CASE("queue: the ticket line is bounded and says when the stock ahead "
          "is spoken for",
          "[queue][tickets]") {
  sim_world w{slow_queue(10, 1, 5'000, 4)};
  create(w, make_spec(w, "q", 3));
  auto out = fire(w, users("q", 8));
  // One passes, one waits, four tickets, then the bound: busy.
  CHECK(count(*out, errc::queued) == 4);
  CHECK(count(*out, errc::busy) == 2);
  int likely = 0;
  for (const auto& a : *out)
    likely += a.code == errc::queued && a.queued.likely_sold_out ? 1 : 0;
  // Three units: 1 sold, 1 in the room, so the first ticket may still buy
  // the last one; the other three tickets are likely sold out.
  CHECK(likely >= 3);
  for (int i = 0; i < 10; ++i) {
    w.advance_ms(100);
    w.run_random();
  }
  CHECK(stock_of(w, "q").counters.sold == 3);
  CHECK(queue_of(w, "q").tickets_waiting == 0);
}

TEST_CASE("queue: a newcomer whose turn would come after the maximum wait "
          "is answered busy at once",
          "[queue][limits]") {
  // One token per second and at most 500 ms of waiting: nobody may wait.
  sim_world w{slow_queue(1, 100, 500)};
  create(w, make_spec(w, "q", 100));
  auto out = fire(w, users("q", 3));
  REQUIRE(out->size() == 3); // the one with the token, two refused at once
  CHECK(count(*out, errc::busy) == 2);
  CHECK(queue_of(w, "q").waiting == 0);
  // The rule itself: the room's length, or the newcomer's turn.
  CHECK_FALSE(room_refuses(0, 10, 4, 500)); // its turn in 250 ms
  CHECK_FALSE(room_refuses(1, 10, 4, 500)); // in 500 ms
  CHECK(room_refuses(2, 10, 4, 500));       // in 750 ms
  CHECK(room_refuses(10, 10, 1e6, 500));    // the room is full
  CHECK_FALSE(room_refuses(9, 10, 1e6, 500));
}

TEST_CASE("queue: sold out is answered at the edge, to waiters and "
          "newcomers, without a hop to the item",
          "[queue]") {
  sim_world w{slow_queue(10, 100, 10'000)};
  create(w, make_spec(w, "q", 1));
  auto out = fire(w, users("q", 5));
  w.advance_ms(100); // the next token lets one waiter on: the last unit
  w.run_random();
  REQUIRE(out->size() == 5);
  CHECK(count(*out, errc::ok) == 1);
  CHECK(count(*out, errc::sold_out) == 4);
  auto before = queue_of(w, "q").admitted;
  auto later = fire(w, users("q", 10, 100));
  CHECK(count(*later, errc::sold_out) == 10);
  CHECK(queue_of(w, "q").admitted == before);
}

TEST_CASE("queue: after a sell-out, a retry of an acknowledged request "
          "still gets its order",
          "[queue]") {
  sim_world w{sim_options{}};
  create(w, make_spec(w, "q", 1));
  auto first = fire(w, users("q", 1));
  REQUIRE((*first)[0].code == errc::ok);
  CHECK(count(*fire(w, users("q", 1, 1)), errc::sold_out) == 1);
  auto retry = fire(w, users("q", 1));
  REQUIRE(retry->size() == 1);
  CHECK((*retry)[0].code == errc::ok);
  CHECK((*retry)[0].order_id == (*first)[0].order_id);
}

TEST_CASE("queue: a sale that has not started is answered at the edge",
          "[queue]") {
  sim_world w{sim_options{}};
  auto s = make_spec(w, "q", 5);
  s.starts_at_ms = w.now_ms() + 60'000;
  create(w, s);
  auto out = fire(w, users("q", 3));
  CHECK(count(*out, errc::not_started) == 3);
  CHECK(queue_of(w, "q").admitted == 0);
}

TEST_CASE("session: a user faster than a human is rate limited, with a hint",
          "[session][limits]") {
  sim_options o;
  o.sessions.session.rate_per_s = 1;
  o.sessions.session.burst = 2;
  sim_world w{o};
  create(w, make_spec(w, "s", 100));
  std::vector<purchase> ps;
  for (int i = 0; i < 4; ++i)
    ps.push_back({"s", "bot", "r" + std::to_string(i), 1});
  auto out = fire(w, ps);
  CHECK(count(*out, errc::ok) == 2);
  CHECK(count(*out, errc::rate_limited) == 2);
  for (const auto& a : *out)
    if (a.code == errc::rate_limited)
      CHECK(a.retry_after_ms > 0);
}

TEST_CASE("session: a double click buys once and both clicks get the order",
          "[session]") {
  sim_world w{sim_options{}};
  create(w, make_spec(w, "s", 10));
  auto out = fire(w, {{"s", "u1", "click", 1}, {"s", "u1", "click", 1}});
  REQUIRE(out->size() == 2);
  CHECK(count(*out, errc::ok) == 2);
  CHECK((*out)[0].order_id == (*out)[1].order_id);
  stock_view v;
  w.call(
    w.directory, [&](stock_view& x) { v = x; }, stock_atom_v, std::string{"s"});
  CHECK(v.counters.sold == 1);
}

TEST_CASE("session: unpaid reservations are capped until one is settled",
          "[session][limits]") {
  sim_options o;
  o.sessions.session.unpaid_max = 2;
  sim_world w{o};
  create(w, make_spec(w, "r", 10, deduction_mode::reserve));
  auto out = fire(w, {{"r", "u1", "a", 1}});
  out = fire(w, {{"r", "u1", "b", 1}});
  auto first = (*out)[0].order_id;
  out = fire(w, {{"r", "u1", "c", 1}});
  REQUIRE(out->size() == 1);
  CHECK((*out)[0].code == errc::unpaid_limit);
  CHECK(!w.call(
    w.directory, [](order&) {}, cancel_atom_v, first));
  w.run_random(); // the item's settlement notice reaches the session
  out = fire(w, {{"r", "u1", "c", 1}});
  CHECK((*out)[0].code == errc::ok);
}

TEST_CASE("session: idle sessions retire and the session limit holds",
          "[session][limits]") {
  sim_options o;
  o.sessions.sessions_max = 2;
  o.sessions.session.idle_timeout_ms = 1'000;
  sim_world w{o};
  create(w, make_spec(w, "s", 10));
  auto out = fire(w, users("s", 3));
  CHECK(count(*out, errc::ok) == 2);
  CHECK(count(*out, errc::busy) == 1); // no third session
  int64_t live = -1;
  w.call(
    w.sessions, [&](int64_t n) { live = n; }, sessions_atom_v);
  CHECK(live == 2);
  w.advance_ms(1'000);
  w.run_random();
  w.advance_ms(1'000);
  w.run_random();
  w.call(
    w.sessions, [&](int64_t n) { live = n; }, sessions_atom_v);
  CHECK(live == 0);
  out = fire(w, users("s", 1, 2)); // room again
  CHECK(count(*out, errc::ok) == 1);
}
