// The membership actor (see membership.hpp).
#include "actors/cluster/membership.hpp"
#include "actors/base/strangers.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>

#include <caf/event_based_actor.hpp>
#include <caf/io/middleman.hpp>
#include <caf/openssl/manager.hpp>
#include <spdlog/spdlog.h>

#include "messages/assert.hpp"
#include "messages/errors.hpp"
#include "messages/limits.hpp"
#include "messages/log_text.hpp"
#include "messages/node_id.hpp"

namespace seckill {

bool parse_member(const std::string& text, member_spec& out,
                  std::string& error) {
  auto at = text.find('@');
  auto colon = text.rfind(':');
  if (at == std::string::npos || colon == std::string::npos || colon < at) {
    error = "expected ID@HOST:PORT";
    return false;
  }
  out.id = text.substr(0, at);
  out.host = text.substr(at + 1, colon - at - 1);
  auto port = text.substr(colon + 1);
  if (!valid_node_id(out.id)) {
    error = "the id must be " + node_id_syntax();
    return false;
  }
  if (out.host.empty()) {
    error = "the host is empty";
    return false;
  }
  if (port.empty() || port.size() > 5
      || !std::all_of(port.begin(), port.end(),
                      [](char c) { return c >= '0' && c <= '9'; })
      || std::stoi(port) < 1 || std::stoi(port) > 65535) {
    error = "the port must be 1 to 65535";
    return false;
  }
  out.port = static_cast<uint16_t>(std::stoi(port));
  return true;
}

bool tcp_reachable(const std::string& host, uint16_t port, int timeout_ms) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found)
      != 0)
    return false;
  bool ok = false;
  for (auto* a = found; a != nullptr && !ok; a = a->ai_next) {
    int fd =
      ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0)
      continue;
    if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
      ok = true;
    } else if (errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      if (::poll(&p, 1, timeout_ms) == 1) {
        int err = 0;
        socklen_t len = sizeof err;
        ok =
          ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
      }
    }
    ::close(fd);
  }
  ::freeaddrinfo(found);
  return ok;
}

namespace {

// Milliseconds a probe may take: a live peer on a LAN answers in well
// under that, and a lost one costs this much per attempt, on its own thread.
constexpr int probe_timeout_ms = 1'000;

// Probes one peer's cluster port on a thread of its own (detached): it
// blocks, by design, for at most probe_timeout_ms per request.
caf::behavior prober(caf::event_based_actor*) {
  return {
    [](caf::connect_atom, const std::string& host, uint16_t port) {
      return tcp_reachable(host, port, probe_timeout_ms);
    },
  };
}

int64_t now(membership_pointer self) {
  return self->state.env.now_ms();
}

peer_hello my_hello(membership_pointer self) {
  const auto& env = self->state.env;
  return peer_hello{env.members[env.self].id,
                    env.member_texts,
                    caf::actor_cast<caf::actor>(self),
                    env.directory,
                    env.sessions,
                    env.admin};
}

// The cluster as this node sees it now, with the current version.
routes make_routes(membership_pointer self) {
  const auto& st = self->state;
  routes r;
  r.self = st.env.self;
  r.version = st.version;
  for (uint32_t j = 0; j < st.env.members.size(); ++j) {
    peer_ref p;
    p.node_id = st.env.members[j].id;
    if (j == st.env.self) {
      p.up = true;
      p.directory = st.env.directory;
      p.sessions = st.env.sessions;
      p.admin = st.env.admin;
    } else if (st.peers[j].phase == peer_phase::up) {
      p.up = true;
      p.directory = st.peers[j].hello.directory;
      p.sessions = st.peers[j].hello.sessions;
      p.admin = st.peers[j].hello.admin;
    }
    r.members.push_back(std::move(p));
  }
  return r;
}

void push_routes(membership_pointer self) {
  auto& st = self->state;
  ++st.version;
  auto r = make_routes(self);
  // The session manager first: the directory has the items re-announce
  // their unpaid orders through it, which it must route by these routes.
  for (const auto& dest : {st.env.sessions, st.env.directory})
    if (dest)
      self->send(dest, routes_atom_v, r);
  for (const auto& relay : st.env.relays)
    self->send(relay, routes_atom_v, r);
}

void connect(membership_pointer self, uint32_t j);

// Tries again after the backoff, doubling it up to the last.
void retry_later(membership_pointer self, uint32_t j) {
  auto& p = self->state.peers[j];
  p.phase = peer_phase::down;
  p.backoff_ms = p.backoff_ms == 0
                   ? limits::reconnect_first_ms
                   : std::min(p.backoff_ms * 2, limits::reconnect_last_ms);
  self->delayed_send(self, std::chrono::milliseconds{p.backoff_ms}, tick_atom_v,
                     j);
}

int find_peer(membership_pointer self, const std::string& id) {
  const auto& m = self->state.env.members;
  for (std::size_t j = 0; j < m.size(); ++j)
    if (m[j].id == id)
      return static_cast<int>(j);
  return -1;
}

// A hello from node j: valid if it names j and lists the same members.
bool valid_hello(membership_pointer self, uint32_t j, const peer_hello& h) {
  const auto& env = self->state.env;
  if (h.members != env.member_texts) {
    spdlog::error("peer_refused peer={} reason=\"its cluster.nodes differs "
                  "from ours; items would be placed differently\"",
                  env.members[j].id);
    return false;
  }
  return h.node_id == env.members[j].id && h.cluster && h.directory
         && h.sessions && h.admin;
}

// Handles by object: after a connection flap CAF's new proxy of an actor
// compares equal (==) to the dead one.
bool same_object(const caf::actor& a, const caf::actor& b) {
  return caf::actor_cast<caf::actor_control_block*>(a)
         == caf::actor_cast<caf::actor_control_block*>(b);
}

void peer_up(membership_pointer self, uint32_t j, peer_hello h) {
  auto& p = self->state.peers[j];
  if (p.phase == peer_phase::up && same_object(p.hello.cluster, h.cluster))
    return;
  if (p.phase == peer_phase::up) {
    // New handles before the old ones were reported down (a restart or a
    // flap faster than CAF's down message): down first, so the relays fail
    // calls to the old ones and the directories announce items again.
    spdlog::info("peer_replaced peer={}", self->state.env.members[j].id);
    if (p.hello.cluster)
      self->demonitor(p.hello.cluster);
    p.phase = peer_phase::down;
    push_routes(self);
  }
  self->monitor(h.cluster);
  spdlog::info("peer_up peer={} attempts={} node={}",
               self->state.env.members[j].id, p.attempts,
               caf::to_string(h.cluster->node()));
  p.hello = std::move(h);
  p.phase = peer_phase::up;
  p.since_ms = now(self);
  p.backoff_ms = 0;
  p.attempts = 0;
  push_routes(self);
}

// Asks the middleman to connect and then says hello. The middleman
// connects synchronously, so it is asked only right after a probe reached
// the peer: a peer that drops packets would otherwise block it, and every
// connect, publish and unpublish queued behind it, for minutes.
void handshake(membership_pointer self, uint32_t j) {
  auto& st = self->state;
  const auto& m = st.env.members[j];
  auto t = std::chrono::milliseconds{st.env.hop_timeout_ms};
  auto connector = st.env.tls ? self->system().openssl_manager().actor_handle()
                              : self->system().middleman().actor_handle();
  self->request(connector, t, caf::connect_atom_v, m.host, m.port)
    .then(
      [self, j, t](caf::node_id&, caf::strong_actor_ptr& ptr,
                   std::set<std::string>&) {
        if (!ptr) {
          retry_later(self, j);
          return;
        }
        auto peer = caf::actor_cast<caf::actor>(ptr);
        self->request(peer, t, hello_atom_v, my_hello(self))
          .then(
            [self, j](peer_hello& h) {
              if (!valid_hello(self, j, h)) {
                retry_later(self, j);
                return;
              }
              peer_up(self, j, std::move(h));
            },
            [self, j](caf::error& err) {
              spdlog::debug("peer_hello_failed peer={} error={}",
                            self->state.env.members[j].id,
                            log_text(self->system().render(err)));
              retry_later(self, j);
            });
      },
      [self, j](caf::error& err) {
        auto& p = self->state.peers[j];
        if (p.attempts == 1 || p.attempts % 10 == 0)
          spdlog::info("peer_unreachable peer={} attempts={} error={}",
                       self->state.env.members[j].id, p.attempts,
                       log_text(self->system().render(err)));
        retry_later(self, j);
      });
}

void connect(membership_pointer self, uint32_t j) {
  auto& st = self->state;
  auto& p = st.peers[j];
  if (p.phase != peer_phase::down)
    return;
  p.phase = peer_phase::connecting;
  p.attempts += 1;
  if (!st.probers[j])
    st.probers[j] = self->spawn<caf::detached + caf::linked>(prober);
  const auto& m = st.env.members[j];
  self
    ->request(st.probers[j], std::chrono::milliseconds{2 * probe_timeout_ms},
              caf::connect_atom_v, m.host, m.port)
    .then(
      [self, j](bool reachable) {
        if (reachable) {
          handshake(self, j);
          return;
        }
        auto& p = self->state.peers[j];
        if (p.attempts == 1 || p.attempts % 10 == 0)
          spdlog::info("peer_unreachable peer={} attempts={}",
                       self->state.env.members[j].id, p.attempts);
        retry_later(self, j);
      },
      [self, j](caf::error&) { retry_later(self, j); });
}

void on_down(membership_pointer self, const caf::down_msg& dm) {
  auto& st = self->state;
  for (uint32_t j = 0; j < st.peers.size(); ++j) {
    auto& p = st.peers[j];
    if (p.phase != peer_phase::up
        || caf::actor_cast<caf::actor_control_block*>(p.hello.cluster)
             != caf::actor_cast<caf::actor_control_block*>(dm.source))
      continue;
    spdlog::warn("peer_down peer={} reason={}", st.env.members[j].id,
                 log_text(self->system().render(dm.reason)));
    p.phase = peer_phase::down;
    p.hello = peer_hello{};
    p.since_ms = now(self);
    push_routes(self);
    if (st.env.self < j)
      retry_later(self, j);
  }
}

std::vector<member_view> make_views(membership_pointer self) {
  const auto& st = self->state;
  std::vector<member_view> out;
  for (uint32_t j = 0; j < st.env.members.size(); ++j) {
    const auto& m = st.env.members[j];
    member_view v;
    v.node_id = m.id;
    v.endpoint = m.host + ":" + std::to_string(m.port);
    if (j == st.env.self) {
      v.state = "self";
    } else {
      const auto& p = st.peers[j];
      v.state = p.phase == peer_phase::up           ? "up"
                : p.phase == peer_phase::connecting ? "connecting"
                                                    : "down";
      v.since_ms = p.since_ms;
    }
    out.push_back(std::move(v));
  }
  return out;
}

} // namespace

caf::behavior membership_impl(membership_pointer self, membership_env env) {
  survive_strangers(self, "membership");
  SECKILL_ASSERT(!env.members.empty() && env.self < env.members.size()
                   && env.members.size() <= limits::cluster_nodes_max,
                 "this node is one of at most cluster_nodes_max members");
  auto& st = self->state;
  st.env = std::move(env);
  st.peers.resize(st.env.members.size());
  st.probers.resize(st.env.members.size());
  for (auto& p : st.peers)
    p.since_ms = now(self);
  self->set_down_handler([self](caf::down_msg& dm) { on_down(self, dm); });
  // Of two members, the one listed first connects; it starts once it knows
  // the node's admin actor (the actor a peer's hello is answered with).
  auto start = [self] {
    auto& st = self->state;
    for (uint32_t j = st.env.self + 1; j < st.env.members.size(); ++j)
      connect(self, j);
    push_routes(self);
  };
  if (st.env.admin)
    start();
  return {
    [self, start](admin_atom, caf::actor& admin) {
      if (self->state.env.admin)
        return;
      self->state.env.admin = std::move(admin);
      start();
    },
    [self](hello_atom, peer_hello& h) -> caf::result<peer_hello> {
      auto j = find_peer(self, h.node_id);
      if (j < 0 || static_cast<uint32_t>(j) == self->state.env.self
          || !valid_hello(self, static_cast<uint32_t>(j), h))
        return make_error(errc::forbidden);
      peer_up(self, static_cast<uint32_t>(j), std::move(h));
      return my_hello(self);
    },
    [self](tick_atom, uint32_t j) { connect(self, j); },
    [self](nodes_atom) { return make_views(self); },
    // The same view the other actors were pushed last.
    [self](routes_atom) { return make_routes(self); },
  };
}

} // namespace seckill
