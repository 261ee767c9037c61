// Rendezvous hashing (see placement.hpp).
#include "actors/base/placement.hpp"

#include "messages/assert.hpp"

namespace seckill {

namespace {

// FNV-1a over the bytes, then splitmix64's finalizer: FNV alone mixes the
// last bytes poorly, and node ids often differ only there ("n1", "n2").
uint64_t mix(uint64_t h) {
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  h ^= h >> 31;
  return h;
}

uint64_t fnv1a(uint64_t h, const std::string& s) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

uint32_t best(const std::vector<std::string>& nodes, const std::string& key,
              const std::vector<bool>* live) {
  SECKILL_ASSERT(!nodes.empty(), "a cluster has at least one node");
  SECKILL_ASSERT(live == nullptr || live->size() == nodes.size(),
                 "one live flag per node");
  bool any = false;
  uint32_t winner = 0;
  uint64_t top = 0;
  for (uint32_t i = 0; i < nodes.size(); ++i) {
    if (live != nullptr && !(*live)[i])
      continue;
    auto w = rendezvous_weight(nodes[i], key);
    if (!any || w > top || (w == top && nodes[i] < nodes[winner])) {
      any = true;
      winner = i;
      top = w;
    }
  }
  if (!any)
    return best(nodes, key, nullptr);
  return winner;
}

} // namespace

uint64_t rendezvous_weight(const std::string& node, const std::string& key) {
  auto h = fnv1a(0xcbf29ce484222325ULL, node);
  h = fnv1a(h ^ 0xff, key);
  return mix(h);
}

uint32_t item_owner(const std::vector<std::string>& nodes,
                    const std::string& item_id) {
  return best(nodes, "item/" + item_id, nullptr);
}

uint32_t user_owner(const std::vector<std::string>& nodes,
                    const std::vector<bool>& live, const std::string& user_id) {
  return best(nodes, "user/" + user_id, &live);
}

} // namespace seckill
