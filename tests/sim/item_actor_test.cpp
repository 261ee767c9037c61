// The item actor and the directory, driven through their messages on the
// deterministic world with a real store: durability before the answer,
// rollback on a failed commit, every deduction mode, expiry by the clock,
// admin changes, status pushes, idempotency and the batch limit.
#include <catch2/catch.hpp>

#include <algorithm>
#include <memory>

#include "actors/sale/item.hpp"
#include "messages/limits.hpp"
#include "tests/support/sim_world.hpp"

using namespace seckill;
using namespace seckill::test;

namespace {

struct item_fixture {
  std::shared_ptr<bool> fail = std::make_shared<bool>(false);
  std::unique_ptr<sim_world> w;

  item_fixture() {
    sim_options opts;
    auto flag = fail;
    opts.fail_transaction = [flag] { return *flag; };
    w = std::make_unique<sim_world>(opts);
  }

  item_spec spec(const std::string& id, int64_t total,
                 deduction_mode mode = deduction_mode::order) {
    return test_spec(id, total, mode, w->now_ms(), 2, 10'000);
  }

  errc create(const item_spec& s) {
    return to_errc(w->call(
      w->directory, [](item_view&) {}, create_atom_v, s));
  }

  item_actor item(const std::string& id) {
    item_actor out;
    w->call(
      w->directory,
      [&](caf::actor& i, caf::actor&) { out = caf::actor_cast<item_actor>(i); },
      lookup_atom_v, id);
    return out;
  }

  // Buys at the item itself (queues and sessions are tested apart).
  errc buy(const item_actor& it, const std::string& item_id,
           const std::string& user, const std::string& req, int64_t qty = 1,
           order* out = nullptr) {
    purchase p{item_id, user, req, qty};
    return to_errc(w->call(
      it,
      [&](order& o) {
        if (out != nullptr)
          *out = o;
      },
      purchase_atom_v, p));
  }

  errc order_op(const item_actor& it, bool pay, const std::string& id,
                order* out = nullptr) {
    auto on = [&](order& o) {
      if (out != nullptr)
        *out = o;
    };
    return pay ? to_errc(w->call(it, on, pay_atom_v, id))
               : to_errc(w->call(it, on, cancel_atom_v, id));
  }

  stock_counters stock(const std::string& id) {
    stock_view v;
    w->call(
      w->directory, [&](stock_view& x) { v = x; }, stock_atom_v, id);
    return v.counters;
  }
};

// Sends all purchases at once (not one at a time) and collects the answers
// in the order they arrive.
template <class Handle>
std::vector<errc> fire(sim_world& w, const Handle& dest,
                       std::vector<purchase> ps) {
  auto out = std::make_shared<std::vector<errc>>();
  w.sys.spawn([dest, ps, out](caf::event_based_actor* self) {
    for (const auto& p : ps)
      self->request(dest, caf::infinite, purchase_atom_v, p)
        .then([out](order&) { out->push_back(errc::ok); },
              [out](caf::error& e) { out->push_back(to_errc(e)); });
  });
  w.run_random();
  return *out;
}

std::vector<purchase> crowd(const std::string& item, int n, int first = 0) {
  std::vector<purchase> ps;
  for (int i = first; i < first + n; ++i)
    ps.push_back(
      purchase{item, "u" + std::to_string(i), "r" + std::to_string(i), 1});
  return ps;
}

int count(const std::vector<errc>& xs, errc x) {
  return static_cast<int>(std::count(xs.begin(), xs.end(), x));
}

bool same(const stock_counters& c, int64_t available, int64_t reserved,
          int64_t sold) {
  return c.available == available && c.reserved == reserved && c.sold == sold;
}

} // namespace

TEST_CASE_METHOD(item_fixture,
                 "item: order mode sells exactly the stock, "
                 "durably, and a retry takes nothing more",
                 "[item]") {
  REQUIRE(create(spec("a", 3)) == errc::ok);
  auto it = item("a");
  order o1, again;
  REQUIRE(buy(it, "a", "u1", "r1", 2, &o1) == errc::ok);
  CHECK(o1.state == order_state::confirmed);
  CHECK(o1.order_id == "a.1");
  REQUIRE(buy(it, "a", "u1", "r1", 2, &again) == errc::ok);
  CHECK(again.order_id == o1.order_id);
  CHECK(buy(it, "a", "u1", "r1", 1) == errc::request_conflict);
  CHECK(buy(it, "a", "u9", "r1", 2) == errc::request_conflict);
  CHECK(buy(it, "a", "u1", "r2", 1) == errc::user_limit_exceeded);
  CHECK(buy(it, "a", "u2", "r3", 2) == errc::sold_out);
  CHECK(buy(it, "a", "u2", "r4", 1) == errc::ok);
  CHECK(buy(it, "a", "u3", "r5", 1) == errc::sold_out);
  CHECK(same(stock("a"), 0, 0, 3));
  auto rec = recover(w->db_path);
  REQUIRE(rec.ok());
  REQUIRE(rec.items.size() == 1);
  CHECK(same(rec.items[0].record.counters, 0, 0, 3));
  CHECK(rec.items[0].orders.size() == 2);
}

TEST_CASE_METHOD(item_fixture,
                 "item: a failed commit answers "
                 "store_unavailable and gives the stock back",
                 "[item]") {
  REQUIRE(create(spec("a", 2)) == errc::ok);
  auto it = item("a");
  *fail = true;
  CHECK(buy(it, "a", "u1", "r1") == errc::store_unavailable);
  CHECK(same(stock("a"), 2, 0, 0));
  *fail = false;
  order o;
  CHECK(buy(it, "a", "u1", "r1", 1, &o) == errc::ok); // the retry succeeds
  CHECK(same(stock("a"), 1, 0, 1));
  auto rec = recover(w->db_path);
  REQUIRE(rec.ok());
  CHECK(rec.items[0].orders.size() == 1);
  CHECK(rec.items[0].orders[0].order_id == o.order_id);
}

TEST_CASE_METHOD(item_fixture,
                 "item: a failed commit also undoes the "
                 "changes queued behind it",
                 "[item]") {
  REQUIRE(create(spec("a", 5)) == errc::ok);
  auto it = item("a");
  *fail = true;
  // Sent at once: the first goes to the store alone, the others wait in the
  // pending batch; the failure undoes all of them, in reverse order.
  auto answers = fire(*w, it, crowd("a", 4));
  REQUIRE(answers.size() == 4);
  CHECK(count(answers, errc::store_unavailable) == 4);
  CHECK(same(stock("a"), 5, 0, 0));
  item_view v;
  w->call(
    it, [&](item_view& x) { v = x; }, view_atom_v);
  CHECK(v.commit_failures == 1);
  CHECK(v.orders == 0);
  CHECK(v.record.next_order_seq == 1);
}

TEST_CASE_METHOD(item_fixture,
                 "item: group commit puts concurrent buyers "
                 "into few store transactions",
                 "[item]") {
  REQUIRE(create(spec("a", 100)) == errc::ok);
  auto answers = fire(*w, item("a"), crowd("a", 100));
  CHECK(count(answers, errc::ok) == 100);
  store_stats ss;
  w->call(
    w->store, [&](store_stats& x) { ss = x; }, stats_atom_v);
  // One transaction for the creation, then the first buyer alone, then
  // everyone who arrived meanwhile: far fewer than one per buyer.
  CHECK(ss.transactions < 10);
  CHECK(same(stock("a"), 0, 0, 100));
}

TEST_CASE_METHOD(item_fixture, "item: a full pending batch answers busy",
                 "[item][limits]") {
  auto n = static_cast<int>(limits::batch_orders_max) + 2;
  REQUIRE(create(spec("a", n)) == errc::ok);
  auto& s = w->sched;
  auto it = item("a");
  // Deliver all purchases to the item before the store may run: one batch
  // in flight (1), a full pending batch (batch_orders_max), one refused.
  auto out = std::make_shared<std::vector<errc>>();
  auto ps = crowd("a", n);
  w->sys.spawn([it, ps, out](caf::event_based_actor* self) {
    for (const auto& p : ps)
      self->request(it, caf::infinite, purchase_atom_v, p)
        .then([out](order&) { out->push_back(errc::ok); },
              [out](caf::error& e) { out->push_back(to_errc(e)); });
  });
  auto not_store = [&](caf::resumable* r) {
    auto* a = dynamic_cast<caf::abstract_actor*>(r);
    return a == nullptr || a->address() != w->store.address();
  };
  auto ran = s.run_jobs_filtered(not_store);
  INFO("jobs run without the store: " << ran << ", answers: " << out->size()
                                      << ", jobs left: " << s.jobs.size());
  CHECK(count(*out, errc::busy) == 1);
  w->run_random();
  CHECK(count(*out, errc::busy) == 1);
  CHECK(count(*out, errc::ok) == n - 1);
}

TEST_CASE_METHOD(item_fixture,
                 "item: reserve mode holds stock until pay, "
                 "cancel or the deadline",
                 "[item]") {
  REQUIRE(create(spec("r", 3, deduction_mode::reserve)) == errc::ok);
  auto it = item("r");
  order a, b, c, out;
  REQUIRE(buy(it, "r", "u1", "q1", 1, &a) == errc::ok);
  REQUIRE(buy(it, "r", "u2", "q2", 1, &b) == errc::ok);
  REQUIRE(buy(it, "r", "u3", "q3", 1, &c) == errc::ok);
  CHECK(a.state == order_state::reserved);
  CHECK(a.expires_ms == a.created_ms + 10'000);
  CHECK(same(stock("r"), 0, 3, 0));
  CHECK(buy(it, "r", "u4", "q4") == errc::sold_out);
  CHECK(order_op(it, true, a.order_id, &out) == errc::ok);
  CHECK(out.state == order_state::confirmed);
  CHECK(order_op(it, true, a.order_id) == errc::ok); // paying twice: same
  CHECK(order_op(it, false, a.order_id) == errc::not_cancellable);
  CHECK(order_op(it, false, b.order_id, &out) == errc::ok);
  CHECK(out.state == order_state::cancelled);
  CHECK(order_op(it, true, b.order_id) == errc::not_payable);
  CHECK(same(stock("r"), 1, 1, 1));
  w->advance_ms(10'000); // c's deadline: the timer expires it
  w->run_random();
  CHECK(same(stock("r"), 2, 0, 1));
  CHECK(order_op(it, true, c.order_id) == errc::expired);
  CHECK(order_op(it, true, "r.99") == errc::unknown_order);
  auto rec = recover(w->db_path);
  REQUIRE(rec.ok());
  CHECK(same(rec.items[0].record.counters, 2, 0, 1));
}

TEST_CASE_METHOD(item_fixture,
                 "item: a payment after the deadline is "
                 "refused even before the timer fires",
                 "[item]") {
  REQUIRE(create(spec("r", 1, deduction_mode::reserve)) == errc::ok);
  auto it = item("r");
  order a;
  REQUIRE(buy(it, "r", "u1", "q1", 1, &a) == errc::ok);
  // Move the clock without firing timers: only the check at pay time stands.
  w->sched.clock().current_time += std::chrono::milliseconds(10'000);
  CHECK(order_op(it, true, a.order_id) == errc::expired);
  CHECK(same(stock("r"), 1, 0, 0));
}

TEST_CASE_METHOD(item_fixture,
                 "item: pay mode takes stock at payment and "
                 "refuses it when none is left",
                 "[item]") {
  REQUIRE(create(spec("p", 1, deduction_mode::pay)) == errc::ok);
  auto it = item("p");
  order a, b, out;
  REQUIRE(buy(it, "p", "u1", "q1", 1, &a) == errc::ok);
  REQUIRE(buy(it, "p", "u2", "q2", 1, &b) == errc::ok);
  CHECK(a.state == order_state::pending);
  CHECK(same(stock("p"), 1, 0, 0));
  CHECK(order_op(it, true, b.order_id, &out) == errc::ok);
  CHECK(out.state == order_state::confirmed);
  CHECK(same(stock("p"), 0, 0, 1));
  CHECK(order_op(it, true, a.order_id) == errc::sold_out);
  CHECK(order_op(it, false, a.order_id) == errc::ok);
}

TEST_CASE_METHOD(item_fixture,
                 "item: not started, paused, resumed and "
                 "ended, pushed to subscribers",
                 "[item]") {
  auto s = spec("w", 5);
  s.starts_at_ms = w->now_ms() + 5'000;
  s.ends_at_ms = w->now_ms() + 60'000;
  REQUIRE(create(s) == errc::ok);
  auto it = item("w");
  auto seen = std::make_shared<std::vector<item_status>>();
  auto listener = w->sys.spawn([seen](caf::event_based_actor*) {
    return caf::behavior{
      [seen](status_atom, const status_update& u) {
        seen->push_back(u.status);
      },
    };
  });
  w->call(
    it, [](status_update&) {}, subscribe_atom_v,
    caf::actor_cast<caf::actor>(listener));
  CHECK(buy(it, "w", "u1", "r1") == errc::not_started);
  w->advance_ms(5'000);
  w->run_random();
  CHECK(buy(it, "w", "u1", "r1") == errc::ok);
  w->call(
    it, [](item_view&) {}, pause_atom_v);
  CHECK(buy(it, "w", "u2", "r2") == errc::paused);
  w->call(
    it, [](item_view&) {}, resume_atom_v);
  CHECK(buy(it, "w", "u2", "r2") == errc::ok);
  w->advance_ms(55'000);
  w->run_random();
  CHECK(buy(it, "w", "u3", "r3") == errc::ended);
  CHECK(to_errc(w->call(
          it, [](item_view&) {}, resume_atom_v))
        == errc::ended);
  std::vector<item_status> expected{item_status::on_sale, item_status::paused,
                                    item_status::on_sale, item_status::ended};
  CHECK(*seen == expected);
  auto rec = recover(w->db_path);
  REQUIRE(rec.ok());
  CHECK(rec.items[0].record.admin == admin_state::active);
}

TEST_CASE_METHOD(item_fixture,
                 "directory: creation is validated and "
                 "routes by item and order id",
                 "[item][directory]") {
  auto bad = spec("x", 0);
  CHECK(create(bad) == errc::invalid_item);
  bad = spec("no.dots", 1);
  CHECK(create(bad) == errc::invalid_id);
  REQUIRE(create(spec("a", 1)) == errc::ok);
  CHECK(create(spec("a", 1)) == errc::item_exists);
  *fail = true;
  CHECK(create(spec("b", 1)) == errc::store_unavailable);
  *fail = false;
  CHECK(create(spec("b", 1)) == errc::ok); // the failed one never existed
  std::vector<std::string> ids;
  w->call(
    w->directory, [&](std::vector<std::string>& x) { ids = x; }, list_atom_v);
  CHECK(ids == std::vector<std::string>{"a", "b"});
  CHECK(to_errc(w->call(
          w->directory, [](stock_view&) {}, stock_atom_v, std::string{"zz"}))
        == errc::unknown_item);
  CHECK(to_errc(w->call(
          w->directory, [](order&) {}, pay_atom_v, std::string{"zz.1"}))
        == errc::unknown_order);
  CHECK(to_errc(w->call(
          w->directory, [](order&) {}, order_atom_v, std::string{"garbage"}))
        == errc::unknown_order);
  order o;
  CHECK(to_errc(w->call(
          w->directory, [&](order& x) { o = x; }, purchase_atom_v,
          purchase{"a", "u1", "r1", 1}))
        == errc::ok);
  order again;
  CHECK(to_errc(w->call(
          w->directory, [&](order& x) { again = x; }, order_atom_v, o.order_id))
        == errc::ok);
  CHECK(again == o);
}
