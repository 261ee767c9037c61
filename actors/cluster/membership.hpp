// The membership actor: one per node, the node's view of the cluster. It
// knows the members from cluster.nodes, connects to them through CAF's
// middleman, and tells the node's directory, session manager and relays who
// is up (`routes`) whenever that changes.
//
// Connections: of two members, the one listed first connects to the other
// (so a pair never races two connections), retrying with a doubling backoff
// (limits::reconnect_first_ms to reconnect_last_ms) while the other is
// unreachable. Once connected, the two exchange a hello with their actors'
// handles and their member lists; lists that differ would place items
// differently, so such a peer is refused (and logged), never used.
// A peer is down when its membership actor's proxy dies: CAF kills the
// proxies of a node whose connection is lost (a killed process at once, a
// hung one after the middleman's heartbeat timeout). A peer that restarts
// is a new process with new actors: the next hello replaces the handles.
// CAF 0.17 may hand back a cached proxy of the dead process for a while; the
// hello to it fails and the backoff tries again (docs/ARCHITECTURE.md,
// "Reconnecting is weak"). The middleman connects synchronously: it is asked
// only after a probe (a non-blocking connect with a deadline, on a thread of
// its own) reached the peer, so one lost peer cannot block the middleman for
// everyone. It must never: block, or report a peer up before its hello arrived.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <caf/stateful_actor.hpp>

#include "actors/base/clock.hpp"
#include "messages/type_ids.hpp"

namespace seckill {

/// One entry of cluster.nodes: "n1@127.0.0.1:4242".
struct member_spec {
  std::string id;
  std::string host;
  uint16_t port = 0;
};

/// Whether a TCP connection to HOST:PORT opens within `timeout_ms`
/// (blocking; the membership runs it on a thread of its own).
bool tcp_reachable(const std::string& host, uint16_t port, int timeout_ms);

/// Parses "ID@HOST:PORT"; false (and `error` says why) if it is not one.
bool parse_member(const std::string& text, member_spec& out,
                  std::string& error);

struct membership_env {
  std::vector<member_spec> members;      // cluster.nodes order
  std::vector<std::string> member_texts; // as configured, for the hello
  uint32_t self = 0;
  caf::actor directory;
  caf::actor sessions;
  caf::actor admin;
  std::vector<caf::actor> relays;
  clock_fn now_ms;
  int64_t hop_timeout_ms = 5'000; // a connect and a hello
  /// Connect through CAF's OpenSSL module (the cluster port is TLS with
  /// peer certificates) instead of the plain middleman.
  bool tls = false;
};

enum class peer_phase : uint8_t { down, connecting, up };

struct peer_link {
  peer_phase phase = peer_phase::down;
  peer_hello hello;       // its handles, once up
  int64_t since_ms = 0;   // when it entered the phase
  int64_t backoff_ms = 0; // before the next attempt
  uint64_t attempts = 0;  // since it was last up
};

struct membership_state {
  membership_env env;
  std::vector<peer_link> peers;    // by node index; self's entry unused
  std::vector<caf::actor> probers; // by node index, spawned when needed
  uint64_t version = 0;
  static inline const char* name = "seckill.membership";
};

using membership_pointer = caf::stateful_actor<membership_state>*;

/// Messages: `(admin_atom, caf::actor)` (the node's admin actor, if the env
/// had none: connecting starts then), `(hello_atom, peer_hello) ->
/// peer_hello` (a peer connecting,
/// forwarded by the admin actor), `(nodes_atom) -> vector<member_view>`,
/// `(routes_atom) -> routes`.
caf::behavior membership_impl(membership_pointer self, membership_env env);

} // namespace seckill
