// seckill-bench-tokens: what the buyer gate's checks cost on this machine,
// one thread, per check (docs/BENCHMARKS.md, "Buyers"). Each row runs the
// check `--n` times (default 200000) on the same inputs a request brings
// and prints nanoseconds per check and checks per second of one core.
//   ./build/seckill-bench-tokens [--n=200000]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>

#include "actors/edge/buyer_gate.hpp"
#include "messages/buyer_tokens.hpp"

using namespace seckill;

namespace {

int64_t now_ns() {
  using namespace std::chrono;
  return duration_cast<nanoseconds>(steady_clock::now().time_since_epoch())
    .count();
}

int64_t wall_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch())
    .count();
}

void row(const char* what, long n, const std::function<bool()>& check) {
  long held = 0;
  auto t0 = now_ns();
  for (long i = 0; i < n; ++i)
    held += check() ? 1 : 0;
  auto ns = static_cast<double>(now_ns() - t0) / static_cast<double>(n);
  std::printf("  %-44s %9.0f ns %12.0f /s  (%ld held)\n", what, ns, 1e9 / ns,
              held);
}

} // namespace

int main(int argc, char** argv) {
  long n = 200'000;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--n=", 0) == 0 && std::atol(a.c_str() + 4) > 0) {
      n = std::atol(a.c_str() + 4);
    } else {
      std::fprintf(stderr, "usage: seckill-bench-tokens [--n=200000]\n");
      return 2;
    }
  }
  buyer_config cfg;
  cfg.jwt_secret = "bench-buyer-secret-0123456789abcdefghijkl";
  cfg.sale_secret = "bench-sale-secret-0123456789abcdefghijklm";
  cfg.node_id = "n1";
  buyer_gate gate{cfg, std::make_shared<node_switches>()};
  auto now = wall_ms();
  tokens::jwt_claims claims{"buyer-123456", now / 1000 + 3600, 0};
  auto jwt = "Bearer " + tokens::mint_jwt(cfg.jwt_secret, claims);
  auto forged =
    "Bearer " + tokens::mint_jwt("not-the-secret-0123456789abcdefghij", claims);
  auto garbage = "Bearer " + std::string(600, 'x');
  int64_t expires = 0;
  auto sale = gate.issue_sale_token("buyer-123456", "sku-1", now, expires);
  auto forged_sale = sale;
  forged_sale.back() = forged_sale.back() == 'A' ? 'B' : 'A';
  auto ticket = gate.issue_ticket("buyer-123456", "sku-1", 42, now);
  std::string buyer, why;
  http::response refused;
  int64_t number = 0;
  std::printf("buyer gate checks, one thread, %ld each\n", n);
  row("buyer JWT, valid", n,
      [&] { return gate.authenticate(jwt, now, buyer, refused); });
  row("buyer JWT, forged (another secret)", n,
      [&] { return gate.authenticate(forged, now, buyer, refused); });
  row("buyer JWT, garbage (600 bytes)", n,
      [&] { return gate.authenticate(garbage, now, buyer, refused); });
  row("sale token, valid", n, [&] {
    return gate.check_sale_token(sale, "buyer-123456", "sku-1", now, why)
           == errc::ok;
  });
  row("sale token, forged", n, [&] {
    return gate.check_sale_token(forged_sale, "buyer-123456", "sku-1", now, why)
           == errc::ok;
  });
  row("waiting-room ticket, valid", n, [&] {
    return gate.check_ticket(ticket, "buyer-123456", "sku-1", now, number, why)
           == errc::ok;
  });
  row("sale token, issued", n, [&] {
    return !gate.issue_sale_token("buyer-123456", "sku-1", now, expires)
              .empty();
  });
  return 0;
}
