// seckill-bench check (see bench_check.hpp for what it compares and why).
#include "bench_check.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

namespace bench {

namespace {

// A blocking request with Connection: close; the answer is read until it is
// complete or the socket times out.
bool http_get(const endpoint& node, const std::string& path,
              uint64_t timeout_ms, http_response& out, std::string& error) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(node.host.c_str(), node.port.c_str(), &hints, &res) != 0) {
    error = "cannot resolve " + node.host;
    return false;
  }
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{static_cast<time_t>(timeout_ms / 1000),
             static_cast<suseconds_t>((timeout_ms % 1000) * 1000)};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  bool ok = ::connect(fd, res->ai_addr, res->ai_addrlen) == 0;
  freeaddrinfo(res);
  std::string req = "GET " + path + " HTTP/1.1\r\nHost: " + node.host + ":"
                    + node.port + "\r\nConnection: close\r\n\r\n";
  ok = ok
       && ::send(fd, req.data(), req.size(), MSG_NOSIGNAL)
            == static_cast<ssize_t>(req.size());
  std::string in;
  size_t used = 0;
  auto parsed = parse_result::incomplete;
  char chunk[4096];
  while (ok && parsed == parse_result::incomplete) {
    ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
    if (n <= 0)
      break;
    in.append(chunk, static_cast<size_t>(n));
    parsed = parse_response(in, out, used);
  }
  ::close(fd);
  if (parsed != parse_result::complete) {
    error = ok ? "no complete answer" : std::string(std::strerror(errno));
    return false;
  }
  return true;
}

bool check_item(const bench_config& cfg, const run_stats& stats, size_t i,
                const stock_view& before) {
  const std::string& item = cfg.items[i];
  stock_view after;
  std::string error;
  if (!fetch_stock(cfg.nodes[0], item, cfg.timeout_ms, after, error)) {
    std::printf("FAIL item %s: stock not readable after the run: %s\n",
                item.c_str(), error.c_str());
    return false;
  }
  bool ok = true;
  long long taken =
    (after.sold + after.reserved) - (before.sold + before.reserved);
  auto seen = static_cast<long long>(stats.item_orders[i]);
  auto ambiguous = static_cast<long long>(stats.item_ambiguous[i]);
  if (stats.orders_overflow) {
    std::printf("SKIP item %s: more than --orders-max=%llu distinct orders; "
                "could not check sold against the answers\n",
                item.c_str(), static_cast<unsigned long long>(cfg.orders_max));
  } else if (taken == seen) {
    std::printf("PASS item %s: sold+reserved grew by %lld = %lld distinct "
                "orders answered 201/200\n",
                item.c_str(), taken, seen);
  } else if (taken > seen && taken - seen <= ambiguous) {
    std::printf("PASS item %s: sold+reserved grew by %lld, %lld orders seen; "
                "the %lld unseen are within %lld ambiguous answers "
                "(transport/5xx)\n",
                item.c_str(), taken, seen, taken - seen, ambiguous);
  } else {
    std::printf("FAIL item %s: sold+reserved grew by %lld but %lld distinct "
                "orders were answered (%lld ambiguous answers)\n",
                item.c_str(), taken, seen, ambiguous);
    ok = false;
  }
  if (stats.item_sold_out[i] > 0) {
    bool empty = after.available == 0;
    std::printf("%s item %s: answered sold_out %llu times; available=%lld "
                "status=%s\n",
                empty ? "PASS" : "FAIL", item.c_str(),
                static_cast<unsigned long long>(stats.item_sold_out[i]),
                after.available, after.status.c_str());
    ok = ok && empty;
  }
  return ok;
}

bool check_limits(const bench_config& cfg, const run_stats& stats) {
  uint64_t over = 0;
  uint64_t worst = 0;
  uint64_t worst_key = 0;
  for (auto& [key, n] : stats.user_item_orders) {
    if (n > cfg.limit)
      over += 1;
    if (n > worst) {
      worst = n;
      worst_key = key;
    }
  }
  if (over == 0) {
    std::printf("PASS per-user limit: no user holds more than --limit=%llu "
                "orders of an item (%zu user-item pairs with orders)\n",
                static_cast<unsigned long long>(cfg.limit),
                stats.user_item_orders.size());
    return true;
  }
  uint64_t items = cfg.items.size();
  std::printf("FAIL per-user limit: %llu user-item pairs above --limit=%llu; "
              "e.g. user %s holds %llu orders of item %s\n",
              static_cast<unsigned long long>(over),
              static_cast<unsigned long long>(cfg.limit),
              user_id(cfg, worst_key / items).c_str(),
              static_cast<unsigned long long>(worst),
              cfg.items[worst_key % items].c_str());
  return false;
}

} // namespace

bool fetch_stock(const endpoint& node, const std::string& item,
                 uint64_t timeout_ms, stock_view& out, std::string& error) {
  http_response r;
  if (!http_get(node, "/api/v1/items/" + item + "/stock", timeout_ms, r, error))
    return false;
  if (r.status != 200) {
    error = "status " + std::to_string(r.status) + " " + r.body;
    return false;
  }
  // The proto3 JSON mapping prints int64 as strings; json_member takes both.
  out.available = std::atoll(json_member(r.body, "available").c_str());
  out.reserved = std::atoll(json_member(r.body, "reserved").c_str());
  out.sold = std::atoll(json_member(r.body, "sold").c_str());
  out.status = json_member(r.body, "status");
  return true;
}

bool check_run(const bench_config& cfg, const run_stats& stats,
               const std::vector<stock_view>& before) {
  bool ok = true;
  for (size_t i = 0; i < cfg.items.size(); ++i)
    ok = check_item(cfg, stats, i, before[i]) && ok;
  if (stats.orders_overflow)
    std::printf("SKIP per-user limit: more than --orders-max orders\n");
  else
    ok = check_limits(cfg, stats) && ok;
  if (stats.order_user_mismatch == 0) {
    std::printf("PASS orders: every 201/200 named an order of its own user\n");
  } else {
    std::printf("FAIL orders: %llu answers named no order or another user's "
                "order\n",
                static_cast<unsigned long long>(stats.order_user_mismatch));
    ok = false;
  }
  return ok;
}

} // namespace bench
