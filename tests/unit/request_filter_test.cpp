// The request filter sent with a refusing status: it never misses an
// ordered request id (a retry must reach the item), and lets few others
// through (each costs one hop to the item).
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "actors/sale/request_filter.hpp"

using namespace seckill;

TEST_CASE("request filter: every ordered id is held, few others", "[filter]") {
  std::vector<std::string> ordered;
  for (int i = 0; i < 10'000; ++i)
    ordered.push_back("req-" + std::to_string(i));
  auto bits = make_request_filter(ordered);
  CHECK(bits.size() == filter_words(ordered.size()));
  for (const auto& id : ordered)
    REQUIRE(filter_may_hold(bits, id));
  int false_positives = 0;
  constexpr int others = 100'000;
  for (int i = 0; i < others; ++i)
    false_positives += filter_may_hold(bits, "other-" + std::to_string(i));
  INFO(false_positives << " of " << others);
  CHECK(false_positives < others / 500); // expected about 1 in 2,000
}

TEST_CASE("request filter: no orders, no filter, nothing held", "[filter]") {
  std::vector<std::string> none;
  auto bits = make_request_filter(none);
  CHECK(bits.empty());
  CHECK_FALSE(filter_may_hold(bits, "anything"));
  std::vector<std::string> one{"r1"};
  auto small = make_request_filter(one);
  CHECK(small.size() == 1);
  CHECK(filter_may_hold(small, "r1"));
}
