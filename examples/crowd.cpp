// seckill-crowd: a flash crowd through the sale core in one process.
//
// Starts the node's actors on a SQLite file (synchronous=FULL by default),
// creates one item and lets `users` buyers make `attempts` purchases each:
// the first a new request, the second a retry of the first (same request_id,
// as after a lost response), the rest new requests. Concurrency comes from
// `clients` driver actors with `window` purchases in flight each. Prints
// what was sold, why the rest was refused, and durable purchases per second,
// then checks the outcome: exactly min(stock, users * limit) sold, no user
// over the limit, counters consistent. Exit code 1 if a check fails.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "messages/limits.hpp"
#include "node/runtime.hpp"

using namespace seckill;
using clk = std::chrono::steady_clock;

namespace {

struct options {
  int64_t stock = 100;
  int64_t users = 10'000;
  int64_t attempts = 3;
  int64_t limit = 1;
  int64_t clients = 16;
  int64_t window = 64;
  double rate = 1'000'000; // admission rate: high, to measure the core
  int64_t inflight = 1024;  // queue -> item purchases in flight
  int64_t workers = 0;      // CAF scheduler threads (0: CAF's default)
  std::string mode = "order";
  std::string data_dir = "./data";
  std::string synchronous = "FULL";
  bool keep = false;
};

// One driver's tally; each driver writes only its own, main reads at the end.
struct tally {
  std::map<std::string, int64_t> outcomes;
  std::vector<order> orders;
  std::vector<int64_t> latency_us;
  clk::time_point last_ack{};
};

caf::behavior driver(caf::event_based_actor* self, queue_actor queue,
                     std::vector<purchase> slice, int64_t window,
                     std::shared_ptr<tally> out, caf::actor done) {
  // Shared, not captured by value: every request's callbacks capture it.
  auto work = std::make_shared<const std::vector<purchase>>(std::move(slice));
  auto next = std::make_shared<std::size_t>(0);
  auto open = std::make_shared<int64_t>(0);
  auto fire = std::make_shared<std::function<void()>>();
  *fire = [=] {
    while (*open < window && *next < work->size()) {
      const auto& p = (*work)[(*next)++];
      *open += 1;
      auto t0 = clk::now();
      auto finish = [=](const std::string& outcome) {
        out->outcomes[outcome] += 1;
        out->latency_us.push_back(
          std::chrono::duration_cast<std::chrono::microseconds>(clk::now() - t0)
            .count());
        *open -= 1;
        if (*next == work->size() && *open == 0) {
          self->send(done, caf::ok_atom_v);
          self->quit();
          return;
        }
        (*fire)();
      };
      self->request(queue, std::chrono::seconds(30), purchase_atom_v, p)
        .then(
          [=](order& o) {
            out->orders.push_back(o);
            out->last_ack = clk::now();
            finish("ok");
          },
          [=](caf::error& err) { finish(to_string(to_errc(err))); });
    }
  };
  (*fire)();
  return {[](caf::unit_t) {}};
}

std::vector<purchase> make_crowd(const options& opt, const std::string& item) {
  std::vector<purchase> all;
  for (int64_t u = 0; u < opt.users; ++u) {
    auto user = "u" + std::to_string(u);
    for (int64_t a = 0; a < opt.attempts; ++a) {
      // Attempt 2 retries attempt 1 (same request_id): it must not buy twice.
      auto req = user + "-r" + std::to_string(a == 1 ? 0 : a);
      all.push_back(purchase{item, user, req, 1});
    }
  }
  std::mt19937_64 rng{42};
  std::shuffle(all.begin(), all.end(), rng);
  return all;
}

int64_t percentile(std::vector<int64_t>& xs, double p) {
  if (xs.empty())
    return 0;
  auto i = static_cast<std::size_t>(p * static_cast<double>(xs.size() - 1));
  std::nth_element(xs.begin(), xs.begin() + static_cast<long>(i), xs.end());
  return xs[i];
}

bool parse_args(int argc, char** argv, options& opt) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto eq = a.find('=');
    if (a.rfind("--", 0) != 0 || eq == std::string::npos) {
      if (a == "--keep") {
        opt.keep = true;
        continue;
      }
      std::fprintf(stderr, "unknown argument: %s\n", a.c_str());
      return false;
    }
    auto key = a.substr(2, eq - 2);
    auto val = a.substr(eq + 1);
    try {
      if (key == "stock") opt.stock = std::stoll(val);
      else if (key == "users") opt.users = std::stoll(val);
      else if (key == "attempts") opt.attempts = std::stoll(val);
      else if (key == "limit") opt.limit = std::stoll(val);
      else if (key == "clients") opt.clients = std::stoll(val);
      else if (key == "window") opt.window = std::stoll(val);
      else if (key == "rate") opt.rate = std::stod(val);
      else if (key == "inflight") opt.inflight = std::stoll(val);
      else if (key == "workers") opt.workers = std::stoll(val);
      else if (key == "mode") opt.mode = val;
      else if (key == "data-dir") opt.data_dir = val;
      else if (key == "synchronous") opt.synchronous = val;
      else {
        std::fprintf(stderr, "unknown option --%s\n", key.c_str());
        return false;
      }
    } catch (const std::exception&) {
      std::fprintf(stderr, "bad value for --%s: '%s'\n", key.c_str(),
                   val.c_str());
      return false;
    }
  }
  bool ok = opt.stock > 0 && opt.users > 0 && opt.attempts > 0
            && opt.limit > 0 && opt.clients > 0 && opt.window > 0
            && opt.rate > 0 && opt.inflight > 0
            && opt.inflight <= int64_t{limits::queue_inflight_max};
  if (!ok)
    std::fprintf(stderr, "stock, users, attempts, limit, clients, window, "
                         "rate and inflight must be positive (inflight <= "
                         "%zu)\n", limits::queue_inflight_max);
  return ok;
}

} // namespace

namespace {

struct run_result {
  std::map<std::string, int64_t> outcomes;
  std::vector<order> orders;
  std::vector<int64_t> latency_us;
  double seconds = 0;      // first attempt to last answer
  double sold_seconds = 0; // first attempt to last acknowledged order
};

run_result run_crowd(caf::actor_system& sys, queue_actor queue,
                     std::vector<purchase> work, const options& opt) {
  caf::scoped_actor self{sys};
  std::vector<std::shared_ptr<tally>> tallies;
  auto clients = static_cast<std::size_t>(opt.clients);
  std::vector<std::vector<purchase>> slices(clients);
  for (std::size_t i = 0; i < work.size(); ++i)
    slices[i % clients].push_back(std::move(work[i]));
  auto t0 = clk::now();
  for (auto& slice : slices) {
    tallies.push_back(std::make_shared<tally>());
    sys.spawn(driver, queue, std::move(slice), opt.window, tallies.back(),
              caf::actor_cast<caf::actor>(self));
  }
  for (std::size_t i = 0; i < clients; ++i)
    self->receive([](caf::ok_atom) {});
  run_result r;
  r.seconds = std::chrono::duration<double>(clk::now() - t0).count();
  auto last_ack = t0;
  for (auto& t : tallies) {
    for (auto& [k, v] : t->outcomes)
      r.outcomes[k] += v;
    r.orders.insert(r.orders.end(), t->orders.begin(), t->orders.end());
    r.latency_us.insert(r.latency_us.end(), t->latency_us.begin(),
                        t->latency_us.end());
    last_ack = std::max(last_ack, t->last_ack);
  }
  r.sold_seconds = std::chrono::duration<double>(last_ack - t0).count();
  return r;
}

// Checks the outcome; prints each check and returns whether all passed.
bool audit(const run_result& r, const stock_view& stock, const options& opt) {
  std::map<std::string, int64_t> units_by_user;
  std::map<std::string, std::string> order_by_request;
  bool retries_same = true;
  for (const auto& o : r.orders) {
    auto [it, fresh] = order_by_request.emplace(o.request_id, o.order_id);
    if (fresh)
      units_by_user[o.user_id] += o.quantity;
    else if (it->second != o.order_id)
      retries_same = false;
  }
  int64_t sold_units = 0, over_limit = 0;
  for (auto& [u, n] : units_by_user) {
    sold_units += n;
    over_limit += n > opt.limit ? 1 : 0;
  }
  auto expected = std::min(opt.stock, opt.users * opt.limit);
  auto taken = stock.counters.sold + stock.counters.reserved;
  bool ok = true;
  auto check = [&](bool c, const char* what) {
    std::printf("  [%s] %s\n", c ? "ok" : "FAILED", what);
    ok = ok && c;
  };
  check(taken == expected, "units taken == min(stock, users * limit)");
  check(sold_units == taken, "acknowledged orders account for every unit");
  check(over_limit == 0, "no user above the per-user limit");
  check(retries_same, "a retried request_id got its original order back");
  check(stock.counters.available + taken == stock.total,
        "available + reserved + sold == total");
  return ok;
}

void print_table(const run_result& r, const stock_view& stock,
                 const store_stats& ss, const options& opt) {
  int64_t attempts = 0;
  for (auto& [k, v] : r.outcomes)
    attempts += v;
  auto lat = r.latency_us;
  std::printf("\nflash crowd: stock=%lld users=%lld attempts/user=%lld "
              "limit=%lld mode=%s synchronous=%s clients=%lld window=%lld\n\n",
              (long long) opt.stock, (long long) opt.users,
              (long long) opt.attempts, (long long) opt.limit,
              opt.mode.c_str(), opt.synchronous.c_str(),
              (long long) opt.clients, (long long) opt.window);
  std::printf("| %-28s | %12s |\n|%s|%s|\n", "what", "value",
              std::string(30, '-').c_str(), std::string(14, '-').c_str());
  auto row = [](const std::string& k, const std::string& v) {
    std::printf("| %-28s | %12s |\n", k.c_str(), v.c_str());
  };
  auto num = [](double x, int prec = 0) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", prec, x);
    return std::string{buf};
  };
  row("attempts", num(attempts));
  row("sold (units, from the item)", num(stock.counters.sold));
  row("reserved (units)", num(stock.counters.reserved));
  row("orders acknowledged", num(r.outcomes.count("ok") ? r.outcomes.at("ok") : 0));
  for (auto& [k, v] : r.outcomes)
    if (k != "ok")
      row("rejected: " + k, num(v));
  row("wall time (s)", num(r.seconds, 3));
  row("attempts answered / s", num(attempts / r.seconds));
  row("durable purchases / s", num(r.orders.size() / std::max(r.sold_seconds, 1e-9)));
  row("latency p50 (us)", num(percentile(lat, 0.50)));
  row("latency p99 (us)", num(percentile(lat, 0.99)));
  row("latency max (us)", num(percentile(lat, 1.0)));
  row("store transactions", num(ss.transactions));
  row("item batches committed", num(ss.batches));
  row("rows per transaction", num(ss.transactions ? double(ss.rows_written) / ss.transactions : 0, 1));
  row("commit latency avg (us)", num(ss.transactions ? double(ss.commit_us_total) / ss.transactions : 0));
  row("commit latency max (us)", num(ss.commit_us_max));
  std::printf("\n");
}

} // namespace

int main(int argc, char** argv) {
  options opt;
  if (!parse_args(argc, argv, opt))
    return 2;
  runtime_config rcfg;
  rcfg.synchronous = opt.synchronous;
  rcfg.db_path = opt.data_dir + "/crowd.db";
  rcfg.directory.queue.rate_per_s = opt.rate;
  rcfg.directory.queue.burst = std::min(opt.rate, 10'000.0);
  rcfg.directory.queue.waiting_max = 100'000;
  rcfg.directory.queue.inflight_max = static_cast<std::size_t>(opt.inflight);
  rcfg.sessions.sessions_max = 1'000'000;
  std::filesystem::create_directories(opt.data_dir);
  if (!opt.keep)
    for (auto ext : {"", "-wal", "-shm"})
      std::filesystem::remove(rcfg.db_path + ext);
  spdlog::set_level(spdlog::level::warn);
  caf::actor_system_config cfg;
  register_types(cfg);
  if (opt.workers > 0)
    cfg.set("scheduler.max-threads", static_cast<size_t>(opt.workers));
  caf::actor_system sys{cfg};
  runtime rt;
  if (auto err = start_runtime(sys, rcfg, rt); !err.empty()) {
    std::fprintf(stderr, "cannot start: %s\n", err.c_str());
    return 1;
  }
  item_spec spec;
  spec.item_id = "crowd-item";
  spec.name = "flash crowd demo item";
  spec.total = opt.stock;
  spec.per_user_limit = opt.limit;
  spec.reserve_ttl_ms = 60'000;
  if (!parse(opt.mode, spec.mode)) {
    std::fprintf(stderr, "bad value for --mode: '%s' (order|reserve|pay)\n",
                 opt.mode.c_str());
    return 2;
  }
  caf::scoped_actor self{sys};
  bool ok = false;
  self->request(rt.directory, std::chrono::seconds(10), create_atom_v, spec)
    .receive([&](item_view&) { ok = true; },
             [&](caf::error& err) {
               std::fprintf(stderr, "create failed: %s\n",
                            sys.render(err).c_str());
             });
  if (!ok)
    return 1;
  caf::actor queue;
  self->request(rt.directory, std::chrono::seconds(10), lookup_atom_v,
                spec.item_id)
    .receive([&](caf::actor&, caf::actor& q) { queue = q; },
             [&](caf::error&) {});
  auto result = run_crowd(sys, caf::actor_cast<queue_actor>(queue),
                          make_crowd(opt, spec.item_id), opt);
  stock_view stock;
  store_stats ss;
  self->request(rt.directory, std::chrono::seconds(10), stock_atom_v,
                spec.item_id)
    .receive([&](stock_view& v) { stock = v; }, [&](caf::error&) {});
  self->request(rt.store, std::chrono::seconds(10), stats_atom_v)
    .receive([&](store_stats& s) { ss = s; }, [&](caf::error&) {});
  print_table(result, stock, ss, opt);
  bool passed = audit(result, stock, opt);
  stop_runtime(sys, rt);
  std::printf("\n%s\n", passed ? "all checks passed" : "CHECKS FAILED");
  return passed ? 0 : 1;
}
