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
#include <set>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/all.hpp>
#include <caf/event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include "node/config.hpp"
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
  int64_t workers = 0; // CAF scheduler threads (0: CAF's default)
  std::string mode = "order";
  std::string config_file; // default: ./cluster.conf if it exists
  bool keep = false;
  node_config node; // [seckill] of the config, then --seckill.*
};

// One driver's tally; each driver writes only its own, main reads at the end.
struct tally {
  std::map<std::string, int64_t> outcomes;
  std::vector<order> orders;
  std::vector<clk::time_point> acked_at; // one per entry of `orders`
  std::vector<int64_t> latency_us;
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
            out->acked_at.push_back(clk::now());
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

bool parse_crowd_flag(const std::string& a, options& opt) {
  if (a == "--keep") {
    opt.keep = true;
    return true;
  }
  auto eq = a.find('=');
  if (a.rfind("--", 0) != 0 || eq == std::string::npos) {
    std::fprintf(stderr, "unknown argument: %s\n", a.c_str());
    return false;
  }
  auto key = a.substr(2, eq - 2);
  auto val = a.substr(eq + 1);
  std::map<std::string, int64_t*> ints{
    {"stock", &opt.stock},       {"users", &opt.users},
    {"attempts", &opt.attempts}, {"limit", &opt.limit},
    {"clients", &opt.clients},   {"window", &opt.window},
    {"workers", &opt.workers}};
  if (key == "mode") {
    opt.mode = val;
    return true;
  }
  auto i = ints.find(key);
  if (i == ints.end()) {
    std::fprintf(stderr, "unknown option --%s\n", key.c_str());
    return false;
  }
  char* end = nullptr;
  *i->second = std::strtoll(val.c_str(), &end, 10);
  if (val.empty() || *end != '\0') {
    std::fprintf(stderr, "bad value for --%s: '%s'\n", key.c_str(),
                 val.c_str());
    return false;
  }
  return true;
}

bool parse_args(int argc, char** argv, options& opt) {
  std::vector<std::string> args(argv + 1, argv + argc);
  const std::string cf = "--config-file=";
  opt.config_file =
    std::filesystem::exists("cluster.conf") ? "cluster.conf" : "";
  std::vector<std::string> flags;
  for (const auto& a : args)
    if (a.rfind(cf, 0) == 0)
      opt.config_file = a.substr(cf.size());
    else
      flags.push_back(a);
  std::vector<std::string> rest;
  if (auto problem = load_config(opt.config_file, flags, opt.node, rest);
      !problem.empty()) {
    std::fprintf(stderr, "bad configuration: %s\n", problem.c_str());
    return false;
  }
  for (const auto& a : rest)
    if (!parse_crowd_flag(a, opt))
      return false;
  bool ok = opt.stock > 0 && opt.users > 0 && opt.attempts > 0 && opt.limit > 0
            && opt.clients > 0 && opt.window > 0 && opt.workers >= 0;
  if (!ok)
    std::fprintf(stderr, "stock, users, attempts, limit, clients and window "
                         "must be positive\n");
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
  // An order is durable when first acknowledged; retries come later.
  std::map<std::string, clk::time_point> first_ack;
  for (auto& t : tallies) {
    for (std::size_t i = 0; i < t->orders.size(); ++i) {
      auto [it, fresh] =
        first_ack.emplace(t->orders[i].order_id, t->acked_at[i]);
      if (!fresh)
        it->second = std::min(it->second, t->acked_at[i]);
    }
    for (auto& [k, v] : t->outcomes)
      r.outcomes[k] += v;
    r.orders.insert(r.orders.end(), t->orders.begin(), t->orders.end());
    r.latency_us.insert(r.latency_us.end(), t->latency_us.begin(),
                        t->latency_us.end());
  }
  auto last_ack = t0;
  for (const auto& kvp : first_ack)
    last_ack = std::max(last_ack, kvp.second);
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
  const auto& q = opt.node.runtime.directory.queue;
  std::printf("\nflash crowd: stock=%lld users=%lld attempts/user=%lld "
              "limit=%lld mode=%s synchronous=%s admission=%.0f/s "
              "inflight=%zu clients=%lld window=%lld config=%s\n\n",
              (long long)opt.stock, (long long)opt.users,
              (long long)opt.attempts, (long long)opt.limit, opt.mode.c_str(),
              opt.node.runtime.synchronous.c_str(), q.rate_per_s,
              q.inflight_max, (long long)opt.clients, (long long)opt.window,
              opt.config_file.empty() ? "(none)" : opt.config_file.c_str());
  std::printf("| %-30s | %12s |\n|%s|%s|\n", "what", "value",
              std::string(32, '-').c_str(), std::string(14, '-').c_str());
  auto row = [](const std::string& k, const std::string& v) {
    std::printf("| %-30s | %12s |\n", k.c_str(), v.c_str());
  };
  auto num = [](double x, int prec = 0) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", prec, x);
    return std::string{buf};
  };
  row("attempts", num(attempts));
  row("sold (units, from the item)", num(stock.counters.sold));
  row("reserved (units)", num(stock.counters.reserved));
  std::set<std::string> distinct;
  for (const auto& o : r.orders)
    distinct.insert(o.order_id);
  auto ok = r.outcomes.count("ok") ? r.outcomes.at("ok") : 0;
  row("orders (distinct)", num(double(distinct.size())));
  row("retries answered w/ order", num(double(ok) - double(distinct.size())));
  for (auto& [k, v] : r.outcomes)
    if (k != "ok")
      row("rejected: " + k, num(v));
  row("wall time (s)", num(r.seconds, 3));
  row("attempts answered / s", num(attempts / r.seconds));
  row("durable orders / s",
      num(double(distinct.size()) / std::max(r.sold_seconds, 1e-9)));
  row("latency p50 (us)", num(percentile(lat, 0.50)));
  row("latency p99 (us)", num(percentile(lat, 0.99)));
  row("latency max (us)", num(percentile(lat, 1.0)));
  row("store transactions", num(ss.transactions));
  row("item batches committed", num(ss.batches));
  row("rows per transaction",
      num(ss.transactions ? double(ss.rows_written) / ss.transactions : 0, 1));
  row("commit latency avg (us)",
      num(ss.transactions ? double(ss.commit_us_total) / ss.transactions : 0));
  row("commit latency max (us)", num(ss.commit_us_max));
  std::printf("\n");
}

} // namespace

int main(int argc, char** argv) {
  options opt;
  if (!parse_args(argc, argv, opt))
    return 2;
  auto rcfg = opt.node.runtime;
  // Its own file: the demo never touches a node's seckill.db.
  rcfg.db_path = opt.node.data_dir + "/crowd.db";
  std::filesystem::create_directories(opt.node.data_dir);
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
  self
    ->request(rt.directory, std::chrono::seconds(10), lookup_atom_v,
              spec.item_id)
    .receive([&](caf::actor&, caf::actor& q) { queue = q; },
             [&](caf::error&) {});
  auto result = run_crowd(sys, caf::actor_cast<queue_actor>(queue),
                          make_crowd(opt, spec.item_id), opt);
  stock_view stock;
  store_stats ss;
  self
    ->request(rt.directory, std::chrono::seconds(10), stock_atom_v,
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
