// Rendezvous placement: every node computes the same owner, keys spread
// over the nodes, adding a node moves only the keys it wins, and a user
// whose node is down moves while every other user stays.
#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <vector>

#include "actors/base/placement.hpp"

using namespace seckill;

namespace {

const std::vector<std::string> three{"n1", "n2", "n3"};

std::string key(int i) {
  return "sku-" + std::to_string(i);
}

} // namespace

TEST_CASE("placement: the owner depends only on the ids, not on the order",
          "[placement]") {
  const std::vector<std::string> shuffled{"n3", "n1", "n2"};
  for (int i = 0; i < 500; ++i) {
    auto a = three[item_owner(three, key(i))];
    auto b = shuffled[item_owner(shuffled, key(i))];
    CHECK(a == b);
    CHECK(item_owner(three, key(i)) == item_owner(three, key(i)));
  }
  // Fixed values: a change of the hash would move every item of every
  // running cluster, and must be a deliberate, visible change.
  CHECK(rendezvous_weight("n1", "item/sku-1") == 8546055182344410736ULL);
  CHECK(rendezvous_weight("n2", "user/u1") == 1667790026130920905ULL);
  CHECK(item_owner(three, "sku-1") == 2);
}

TEST_CASE("placement: items spread over the nodes", "[placement]") {
  std::map<uint32_t, int> count;
  constexpr int n = 3000;
  for (int i = 0; i < n; ++i)
    count[item_owner(three, key(i))] += 1;
  REQUIRE(count.size() == 3);
  for (const auto& [node, c] : count) {
    INFO("node " << three[node] << " owns " << c << " of " << n);
    CHECK(c > n / 4);      // an even share is n / 3
    CHECK(c < n * 5 / 12); // within about 25% of it
  }
}

TEST_CASE("placement: adding a node moves only the keys it wins",
          "[placement]") {
  const std::vector<std::string> four{"n1", "n2", "n3", "n4"};
  int moved = 0;
  for (int i = 0; i < 2000; ++i) {
    auto before = three[item_owner(three, key(i))];
    auto after = four[item_owner(four, key(i))];
    if (before != after) {
      CHECK(after == "n4");
      ++moved;
    }
  }
  CHECK(moved > 300); // about a quarter of 2000
  CHECK(moved < 700);
}

TEST_CASE("placement: a user whose node is down goes to the next, and no other "
          "user moves",
          "[placement]") {
  std::vector<bool> all{true, true, true};
  std::vector<bool> n2_down{true, false, true};
  int moved = 0;
  for (int i = 0; i < 1000; ++i) {
    auto user = "u" + std::to_string(i);
    auto home = user_owner(three, all, user);
    auto now = user_owner(three, n2_down, user);
    CHECK(now != 1);
    if (home == 1)
      ++moved;
    else
      CHECK(now == home);
  }
  CHECK(moved > 0);
  // Nobody live: the best-ranked node overall (callers never pass this,
  // since a node counts itself live, but the answer stays defined).
  std::vector<bool> none{false, false, false};
  CHECK(user_owner(three, none, "u1") == user_owner(three, all, "u1"));
  // Users and items are placed independently.
  int differ = 0;
  for (int i = 0; i < 300; ++i)
    differ += user_owner(three, all, key(i)) != item_owner(three, key(i));
  CHECK(differ > 0);
}
