// seckill-bench: a flash crowd against one or more seckill nodes, over HTTP.
//
// Plain POSIX sockets and one epoll thread (bench_engine.*); no CAF, so it
// measures the node from the outside, the way buyers see it. Prints a live
// line per second on stderr, a table on stdout at the end, optionally a CSV of
// every second and a gnuplot PNG, then checks the run against the node's own
// stock counters (bench_check.*). Exit code: 0 ok, 1 a check failed, 2 usage.
// It must never need more memory than its flags allow: every table is bounded
// (see bench_config.hpp).
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sys/stat.h>
#include <unistd.h>

#include "bench_check.hpp"
#include "bench_config.hpp"
#include "bench_engine.hpp"

namespace bench {
namespace {

void on_signal(int) {
  stop_requested = 1;
}

std::string csv_column(std::string key) {
  for (auto& c : key)
    if (c == ' ')
      c = '_';
  return key;
}

void print_table(const bench_config& cfg, const run_stats& s) {
  double secs = s.elapsed_s > 0 ? s.elapsed_s : 1;
  uint64_t orders = s.outcomes.get("201");
  std::printf("\nseckill-bench run=%s mode=%s nodes=%zu connections=%d "
              "items=%zu users=%llu\n",
              cfg.run.c_str(), cfg.open_loop ? "open" : "closed",
              cfg.nodes.size(), cfg.connections, cfg.items.size(),
              static_cast<unsigned long long>(cfg.users));
  std::printf("  %-26s %12.2f\n", "elapsed s", s.elapsed_s);
  std::printf("  %-26s %12llu\n", "attempts",
              static_cast<unsigned long long>(s.sent));
  std::printf("  %-26s %12llu\n", "answered",
              static_cast<unsigned long long>(s.answered));
  std::printf("  %-26s %12llu\n", "connect failures",
              static_cast<unsigned long long>(s.connect_failures));
  std::printf("  %-26s %12.1f\n", "attempts/s", s.sent / secs);
  std::printf("  %-26s %12.1f\n", "durable orders/s (201)", orders / secs);
  uint64_t all = 0;
  for (auto& [key, n] : s.outcomes.all())
    all += n;
  std::printf("  %-26s %12s %8s\n", "outcome", "count", "share");
  for (auto& [key, n] : s.outcomes.all())
    std::printf("  %-26s %12llu %7.2f%%\n", key.c_str(),
                static_cast<unsigned long long>(n),
                all ? 100.0 * static_cast<double>(n) / all : 0.0);
  std::printf("  latency ms (%s)\n",
              cfg.open_loop ? "from the scheduled send" : "from the send");
  std::printf("  %-10s %10s %10s %10s %10s %10s\n", "class", "p50", "p90",
              "p99", "p99.9", "max");
  auto row = [](const char* name, const latency_histogram& h) {
    if (h.count() == 0)
      return;
    std::printf("  %-10s %10.2f %10.2f %10.2f %10.2f %10.2f\n", name,
                h.percentile_us(50) / 1000.0, h.percentile_us(90) / 1000.0,
                h.percentile_us(99) / 1000.0, h.percentile_us(99.9) / 1000.0,
                h.max_us() / 1000.0);
  };
  row("all", s.latency);
  row("admitted", s.latency_admitted); // 2xx
  row("refused", s.latency_refused);   // 4xx
  row("shed", s.latency_shed);         // 5xx
}

// DOMAIN: a sold-out must reach every waiter within 10 ms of the last unit.
void print_sold_out_notice(const bench_config& cfg, const run_stats& s) {
  for (uint32_t i = 0; i < cfg.items.size(); ++i) {
    auto n = notice_of(s, i);
    if (n.waiters == 0)
      continue;
    std::printf("  sold-out notice, item %s: %llu requests in flight at the "
                "last 201 were answered sold_out within p50 %.2f ms, p99 "
                "%.2f ms, max %.2f ms of it\n",
                cfg.items[i].c_str(),
                static_cast<unsigned long long>(n.waiters), n.p50_us / 1000.0,
                n.p99_us / 1000.0, n.max_us / 1000.0);
  }
  if (s.sold_out_answers_overflow)
    std::printf("  sold-out notice: not measured (over %zu sold_out answers)\n",
                sold_out_answers_max);
}

bool write_csv(const std::string& file, const run_stats& s) {
  std::ofstream out(file);
  if (!out)
    return false;
  out << "second,sent,answered,p50_us,p99_us,max_us";
  for (auto& [key, n] : s.outcomes.all())
    out << "," << csv_column(key);
  out << "\n";
  for (auto& r : s.rows) {
    out << r.second << "," << r.sent << "," << r.answered << "," << r.p50_us
        << "," << r.p99_us << "," << r.max_us;
    for (auto& [key, n] : s.outcomes.all()) {
      auto i = r.outcomes.find(key);
      out << "," << (i == r.outcomes.end() ? 0 : i->second);
    }
    out << "\n";
  }
  return static_cast<bool>(out);
}

bool on_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos)
      end = dirs.size();
    std::string candidate = dirs.substr(start, end - start) + "/" + program;
    if (end > start && ::access(candidate.c_str(), X_OK) == 0)
      return true;
    start = end + 1;
  }
  return false;
}

// The plot is a convenience: any problem is a note, never a failure.
void write_plot(const bench_config& cfg, const run_stats& s) {
  if (!on_path("gnuplot")) {
    std::fprintf(stderr, "note: gnuplot is not on PATH; --plot=%s skipped\n",
                 cfg.plot_file.c_str());
    return;
  }
  std::string csv =
    cfg.csv_file.empty() ? cfg.plot_file + ".csv" : cfg.csv_file;
  std::string script = cfg.plot_file + ".gp";
  if (cfg.csv_file.empty() && !write_csv(csv, s)) {
    std::fprintf(stderr, "note: cannot write %s; plot skipped\n", csv.c_str());
    return;
  }
  std::ofstream gp(script);
  gp << "set terminal png size 1000,500\nset output '" << cfg.plot_file
     << "'\nset datafile separator ','\nset key autotitle columnhead\n"
     << "set xlabel 'second'\nset ylabel 'latency ms'\n"
     << "plot '" << csv << "' using 1:($4/1000) with lines title 'p50', '"
     << csv << "' using 1:($5/1000) with lines title 'p99'\n";
  gp.close();
  std::string cmd = "gnuplot '" + script + "'";
  if (std::system(cmd.c_str()) != 0)
    std::fprintf(stderr, "note: gnuplot failed on %s\n", script.c_str());
  else
    std::fprintf(stderr, "plot written to %s\n", cfg.plot_file.c_str());
}

bool read_stock_before(const bench_config& cfg,
                       std::vector<stock_view>& before) {
  before.resize(cfg.items.size());
  for (size_t i = 0; i < cfg.items.size(); ++i) {
    std::string error;
    if (!fetch_stock(cfg.nodes[0], cfg.items[i], cfg.timeout_ms, before[i],
                     error)) {
      std::printf("FAIL item %s: stock not readable before the run: %s\n",
                  cfg.items[i].c_str(), error.c_str());
      return false;
    }
  }
  return true;
}

} // namespace
} // namespace bench

int main(int argc, char** argv) {
  using namespace bench;
  bench_config cfg;
  std::string error;
  if (!parse_flags(argc, argv, cfg, error)) {
    std::fprintf(stderr, "seckill-bench: %s\n%s", error.c_str(), usage_text());
    return 2;
  }
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::signal(SIGPIPE, SIG_IGN);
  std::vector<stock_view> before;
  if (cfg.check && !read_stock_before(cfg, before))
    return 1;
  run_stats stats;
  engine load(cfg, stats);
  if (!load.start(error)) {
    std::fprintf(stderr, "seckill-bench: %s\n", error.c_str());
    return 2;
  }
  load.run();
  print_table(cfg, stats);
  print_sold_out_notice(cfg, stats);
  if (stats.rows_truncated)
    std::printf("note: only the first %zu seconds are in the CSV\n",
                csv_rows_max);
  if (!cfg.csv_file.empty() && !write_csv(cfg.csv_file, stats))
    std::fprintf(stderr, "note: cannot write %s\n", cfg.csv_file.c_str());
  if (!cfg.plot_file.empty())
    write_plot(cfg, stats);
  if (!cfg.check)
    return 0;
  std::printf("\n");
  return check_run(cfg, stats, before) ? 0 : 1;
}
