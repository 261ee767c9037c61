// Restarts. A world is torn down in the middle of a sale without any warning
// and a new one recovers the exact state from the SQLite file (releasing the
// reservations that expired while it was down); and a real process selling
// through the real, threaded runtime is killed with SIGKILL in the middle of
// a flash crowd: every order it acknowledged is in the file, the counters
// agree, and a new runtime on the same file sells exactly the rest.
#include <catch2/catch.hpp>

#include <csignal>
#include <cstdio>
#include <set>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include "node/runtime.hpp"
#include "tests/support/sim_world.hpp"

using namespace seckill;
using namespace seckill::test;

namespace {

item_spec spec_of(const std::string& id, int64_t total, deduction_mode mode,
                  int64_t starts_at_ms) {
  return test_spec(id, total, mode, starts_at_ms, 2, 5'000);
}

std::map<std::string, stock_view> stocks(sim_world& w,
                                         const std::vector<std::string>& ids) {
  std::map<std::string, stock_view> out;
  for (const auto& id : ids)
    w.call(
      w.directory, [&](stock_view& v) { out[id] = v; }, stock_atom_v, id);
  return out;
}

errc buy(sim_world& w, const std::string& item, const std::string& user,
         const std::string& req, order* out = nullptr) {
  return to_errc(w.call(
    w.directory,
    [&](order& o) {
      if (out != nullptr)
        *out = o;
    },
    purchase_atom_v, purchase{item, user, req, 1}));
}

} // namespace

TEST_CASE("restart: a new world recovers the exact state, and releases "
          "reservations that expired while it was down",
          "[restart]") {
  temp_dir dir;
  sim_options opts;
  opts.db_path = (dir.path / "r.db").string();
  std::vector<std::string> ids{"o", "r", "p"};
  std::map<std::string, stock_view> before;
  std::vector<order> acked;
  {
    sim_world w{opts};
    auto t = w.now_ms();
    for (auto [id, mode] : {std::pair{"o", deduction_mode::order},
                            std::pair{"r", deduction_mode::reserve},
                            std::pair{"p", deduction_mode::pay}})
      REQUIRE(!w.call(
        w.directory, [](item_view&) {}, create_atom_v,
        spec_of(id, 5, mode, t)));
    for (int u = 0; u < 4; ++u)
      for (const auto& id : ids) {
        order o;
        auto user = "u" + std::to_string(u);
        REQUIRE(buy(w, id, user, id + user, &o) == errc::ok);
        acked.push_back(o);
      }
    // Pay one reservation and one pay-mode order; cancel one reservation.
    REQUIRE(!w.call(
      w.directory, [](order&) {}, pay_atom_v, std::string{"r.1"}));
    REQUIRE(!w.call(
      w.directory, [](order&) {}, pay_atom_v, std::string{"p.1"}));
    REQUIRE(!w.call(
      w.directory, [](order&) {}, cancel_atom_v, std::string{"r.2"}));
    before = stocks(w, ids);
    // Torn down here: no shutdown, no final flush, nothing.
  }
  CHECK(before["r"].counters.reserved == 2);
  SECTION("restarted before the deadlines: the same state") {
    sim_world w{opts};
    auto after = stocks(w, ids);
    for (const auto& id : ids) {
      CHECK(after[id].counters == before[id].counters);
      CHECK(after[id].status == before[id].status);
    }
    for (const auto& o : acked) {
      order now;
      REQUIRE(!w.call(
        w.directory, [&](order& x) { now = x; }, order_atom_v, o.order_id));
      CHECK(now.user_id == o.user_id);
      CHECK(now.request_id == o.request_id);
    }
    CHECK(buy(w, "o", "u9", "new") == errc::ok); // the sale goes on
    CHECK(buy(w, "o", "u0", "ou0") == errc::ok); // a retry: same order
  }
  SECTION("restarted after the deadlines: expired reservations return") {
    opts.clock_offset_ms = 6'000;
    sim_world w{opts};
    auto after = stocks(w, ids);
    CHECK(after["r"].counters.reserved == 0);
    CHECK(after["r"].counters.available == before["r"].counters.available + 2);
    CHECK(after["r"].counters.sold == before["r"].counters.sold);
    CHECK(to_errc(w.call(
            w.directory, [](order&) {}, pay_atom_v, std::string{"r.3"}))
          == errc::expired);
    auto rec = recover(opts.db_path); // the release itself is durable
    REQUIRE(rec.ok());
    for (const auto& item : rec.items)
      CHECK(item.record.counters.reserved == 0);
  }
}

namespace {

constexpr int64_t crowd_stock = 20'000;

// Sends every purchase at once through the item's queue; on each
// acknowledgement writes "<order_id> <request_id>" to `fd` (one write, so
// a line is never torn by the kill).
void sell(caf::actor_system& sys, const caf::actor& queue, int first, int count,
          int fd) {
  sys.spawn([=](caf::event_based_actor* self) {
    auto q = caf::actor_cast<queue_actor>(queue);
    for (int i = first; i < first + count; ++i) {
      auto req = "r" + std::to_string(i);
      purchase p{"k", "u" + std::to_string(i), req, 1};
      // Bounded well below the test's own waits: the actor system's
      // destructor waits for this actor, and a purchase still in a session
      // when the runtime stops is never answered.
      self->request(q, std::chrono::seconds(10), purchase_atom_v, p)
        .then(
          [=](order& o) {
            auto line = o.order_id + " " + req + "\n";
            if (fd >= 0 && ::write(fd, line.data(), line.size()) < 0)
              std::_Exit(4);
          },
          [](caf::error&) {});
    }
  });
}

// The child's crowd: waves of `wave` purchases, the next one 2 ms after the
// previous one is answered, and none started once `stop_at` purchases were
// sent. So the parent's kill lands in the middle of the sale however the two
// processes are scheduled (a busy machine once let a flood sell everything
// before the parent read its 500th acknowledgement).
void sell_paced(caf::actor_system& sys, const caf::actor& queue, int stop_at,
                int fd) {
  constexpr int wave = 100;
  sys.spawn([=](caf::event_based_actor* self) -> caf::behavior {
    auto q = caf::actor_cast<queue_actor>(queue);
    auto next = std::make_shared<int>(0);
    auto left = std::make_shared<int>(0);
    auto launch = [=]() {
      for (int k = 0; k < wave && *next < stop_at; ++k, ++*next) {
        auto req = "r" + std::to_string(*next);
        purchase p{"k", "u" + std::to_string(*next), req, 1};
        *left += 1;
        self->request(q, std::chrono::seconds(60), purchase_atom_v, p)
          .then(
            [=](order& o) {
              auto line = o.order_id + " " + req + "\n";
              if (fd >= 0 && ::write(fd, line.data(), line.size()) < 0)
                std::_Exit(4);
              if (--*left == 0)
                self->delayed_send(self, std::chrono::milliseconds(2),
                                   tick_atom_v);
            },
            [=](caf::error&) {
              if (--*left == 0)
                self->delayed_send(self, std::chrono::milliseconds(2),
                                   tick_atom_v);
            });
      }
    };
    launch();
    return {[=](tick_atom) { launch(); }};
  });
}

caf::actor start(caf::actor_system& sys, const std::string& db, runtime& rt) {
  runtime_config rc;
  rc.db_path = db;
  rc.directory.queue.rate_per_s = 1'000'000;
  rc.directory.queue.waiting_max = 100'000;
  rc.directory.queue.wait_ms_max = 5'000; // the crowd waits, never busy
  rc.sessions.sessions_max = 1'000'000;
  if (auto err = start_runtime(sys, rc, rt); !err.empty())
    throw std::runtime_error(err);
  caf::scoped_actor self{sys};
  caf::actor queue;
  self
    ->request(rt.directory, std::chrono::seconds(10), lookup_atom_v,
              std::string{"k"})
    .receive([&](caf::actor&, caf::actor& q) { queue = q; },
             [](caf::error&) {});
  return queue;
}

[[noreturn]] void child(const std::string& db, int fd) {
  caf::actor_system_config cfg;
  register_types(cfg);
  caf::actor_system sys{cfg};
  runtime rt;
  runtime_config rc;
  rc.db_path = db;
  if (!start_runtime(sys, rc, rt).empty())
    std::_Exit(3);
  item_spec s;
  s.item_id = "k";
  s.total = crowd_stock;
  caf::scoped_actor self{sys};
  bool ok = false;
  self->request(rt.directory, std::chrono::seconds(10), create_atom_v, s)
    .receive([&](item_view&) { ok = true; }, [](caf::error&) {});
  stop_runtime(sys, rt);
  if (!ok)
    std::_Exit(5);
  runtime rt2; // the same file, as a node would use it
  auto queue = start(sys, db, rt2);
  sell_paced(sys, queue, static_cast<int>(crowd_stock) * 3 / 4, fd);
  for (;;)
    ::pause(); // until SIGKILL
}

} // namespace

TEST_CASE("restart: SIGKILL in the middle of a flash crowd loses no "
          "acknowledged order, and the sale goes on exactly",
          "[restart][crash]") {
  temp_dir dir;
  auto db = (dir.path / "crash.db").string();
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  auto pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    child(db, fds[1]);
  }
  ::close(fds[1]);
  auto* in = ::fdopen(fds[0], "r");
  std::map<std::string, std::string> acked; // request id -> order id
  char line[256];
  auto read_ack = [&] {
    if (std::fgets(line, sizeof line, in) == nullptr)
      return false;
    std::string text{line};
    auto sp = text.find(' ');
    if (sp != std::string::npos && text.back() == '\n')
      acked[text.substr(sp + 1, text.size() - sp - 2)] = text.substr(0, sp);
    return true;
  };
  while (acked.size() < 500 && read_ack())
    ; // the crowd is selling
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  while (read_ack())
    ; // acknowledgements written before the kill
  std::fclose(in);
  REQUIRE(WIFSIGNALED(status));
  REQUIRE(acked.size() >= 500);
  auto rec = recover(db);
  REQUIRE(rec.ok()); // counters and orders agree
  REQUIRE(rec.items.size() == 1);
  std::map<std::string, std::string> in_file;
  for (const auto& o : rec.items[0].orders)
    in_file[o.request_id] = o.order_id;
  int missing = 0;
  for (const auto& [req, id] : acked)
    missing += in_file.count(req) == 0 || in_file[req] != id ? 1 : 0;
  CHECK(missing == 0);
  auto sold = rec.items[0].record.counters.sold;
  INFO("acknowledged " << acked.size() << ", in the file " << sold);
  CHECK(sold >= static_cast<int64_t>(acked.size()));
  CHECK(sold < crowd_stock); // the kill landed in the middle of the sale
  // A new runtime on the same file sells exactly the rest.
  caf::actor_system_config cfg;
  register_types(cfg);
  caf::actor_system sys{cfg};
  runtime rt;
  auto queue = start(sys, db, rt);
  auto remaining = crowd_stock - sold;
  int more = 100;
  sell(sys, queue, 1'000'000, static_cast<int>(remaining) + more, -1);
  caf::scoped_actor self{sys};
  // A retry of an acknowledged request gets its order back, nothing more.
  auto [req, id] = *acked.begin();
  auto user = "u" + req.substr(1);
  self
    ->request(queue, std::chrono::seconds(60), purchase_atom_v,
              purchase{"k", user, req, 1})
    .receive([&](order& o) { CHECK(o.order_id == id); },
             [&](caf::error& e) { FAIL(sys.render(e)); });
  stock_view v;
  v.counters.available = -1; // not read yet
  for (int i = 0; i < 600 && v.counters.available != 0; ++i) {
    if (i > 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    self
      ->request(rt.directory, std::chrono::seconds(10), stock_atom_v,
                std::string{"k"})
      .receive([&](stock_view& x) { v = x; }, [](caf::error&) {});
  }
  CHECK(v.counters.available == 0);
  CHECK(v.counters.sold == crowd_stock);
  stop_runtime(sys, rt);
}
