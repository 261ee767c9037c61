// The relay: the node's border for requests to actors on other nodes. Every
// hop that crosses to another node (queue's purchase to a remote user's
// session manager, a session's purchase to a remote item, the directory's
// calls to an item's owner) goes through one of the node's relays, which
//   - sends it with the hop timeout (a lost peer cannot hold a request),
//   - keeps it in its table of calls in flight, by destination node, and
//   - when the membership actor says a node went down, fails every call in
//     flight to it at once with shard_unavailable (CAF 0.17 would leave them
//     to their timeout: docs/ARCHITECTURE.md, "No node_down_msg"), and refuses
//     new ones without sending until the node is up again.
// A late answer to a call already failed is dropped: each call is answered
// exactly once. The table is bounded (`relay_pending_max`): beyond it a call
// is answered busy. Callers reach their relay by a local request without a
// timeout: the relay guarantees the answer.
//
// Tests give the relay a link model: a delay (or a loss) per message and
// direction between two nodes, so the deterministic simulation can delay,
// reorder and lose what crosses between nodes. Production has none.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <unordered_map>
#include <vector>

#include <caf/actor.hpp>
#include <caf/response_promise.hpp>
#include <caf/stateful_actor.hpp>

#include "messages/type_ids.hpp"

namespace seckill {

/// What crosses a node boundary, for /metrics.
enum class relay_kind : uint8_t {
  purchase_session, // edge queue -> the user's session manager
  purchase_item,    // user session -> the item
  directory,        // a directory (or admin) -> the owner's directory
  other,            // subscriptions, views, peer status
};
constexpr std::size_t relay_kinds = 4;
const char* to_string(relay_kind x);

/// Counters shared by a node's relays (atomics: read by /metrics).
struct relay_counters {
  std::array<std::atomic<int64_t>, relay_kinds> calls{};
  std::atomic<int64_t> failed_down{0};    // failed at once: node went down
  std::atomic<int64_t> refused_down{0};   // not sent: node known down
  std::atomic<int64_t> failed_timeout{0}; // no answer within the hop timeout
  std::atomic<int64_t> pending{0};        // in flight now, all relays
};

/// Milliseconds a message from node `from` to node `to` takes; negative: it
/// is lost. Tests only.
using link_fn = std::function<int64_t(uint32_t from, uint32_t to)>;

struct relay_env {
  uint32_t self_node = 0;
  int64_t hop_timeout_ms = 5'000;
  std::shared_ptr<relay_counters> counters;
  link_fn link; // empty: messages cross at once
};

struct relay_call {
  uint32_t node = 0;
  caf::response_promise rp;
};

struct relay_state {
  relay_env env;
  std::vector<bool> up; // by node index; unknown nodes are down
  std::unordered_map<uint64_t, relay_call> pending;
  std::unordered_map<uint64_t, std::function<void()>> timers; // link model
  uint64_t next_id = 1;
  uint64_t next_timer = 1;
  static inline const char* name = "seckill.relay";
};

using relay_pointer = caf::stateful_actor<relay_state>*;

/// Messages: `(relay_atom, uint32_t node, caf::actor dest, ...)` with the
/// request for `dest` after it (see relay.cpp for the list), and
/// `(routes_atom, routes)` from the membership actor.
caf::behavior relay_impl(relay_pointer self, relay_env env);

} // namespace seckill
