// The relay (see relay.hpp).
#include "actors/cluster/relay.hpp"
#include "actors/base/strangers.hpp"

#include <chrono>
#include <tuple>

#include <caf/event_based_actor.hpp>
#include <caf/sec.hpp>
#include <spdlog/spdlog.h>

#include "actors/base/hop.hpp"
#include "actors/sale/item.hpp"
#include "messages/assert.hpp"
#include "messages/errors.hpp"
#include "messages/limits.hpp"

namespace seckill {

const char* to_string(relay_kind x) {
  switch (x) {
    case relay_kind::purchase_session: return "purchase_session";
    case relay_kind::purchase_item: return "purchase_item";
    case relay_kind::directory: return "directory";
    case relay_kind::other: return "other";
  }
  return "invalid";
}

namespace {

bool is_up(relay_pointer self, uint32_t node) {
  const auto& up = self->state.up;
  return node < up.size() && up[node];
}

// Runs `f` after the link model's delay from `from` to `to`; a lost message
// runs `lost` after the hop timeout instead (no answer ever comes).
void after_link(relay_pointer self, uint32_t from, uint32_t to,
                std::function<void()> f, std::function<void()> lost) {
  auto& st = self->state;
  int64_t d = st.env.link ? st.env.link(from, to) : 0;
  if (d == 0) {
    f();
    return;
  }
  auto id = st.next_timer++;
  if (d < 0) {
    d = st.env.hop_timeout_ms;
    f = std::move(lost);
  }
  st.timers.emplace(id, std::move(f));
  self->delayed_send(self, std::chrono::milliseconds{d}, tick_atom_v, id);
}

// Answers call `id` once: takes it out of the table and delivers. An answer
// from the other node (`crosses`) first travels the link back, and until it
// lands the call is still in flight: its node going down fails it at once,
// and a lost answer fails it after the hop timeout. A failure this relay
// decides itself (the hop timed out, the node went down) never travels: it
// is delivered at once. An answer to a call already failed finds nothing.
using answer_fn = std::function<void(caf::response_promise&)>;

void finish(relay_pointer self, uint64_t id, answer_fn answer,
            bool crosses = true) {
  auto& st = self->state;
  auto i = st.pending.find(id);
  if (i == st.pending.end())
    return;
  if (crosses) {
    auto land = [self, id, answer] { finish(self, id, answer, false); };
    auto lost = [self, id] {
      finish(
        self, id,
        [](caf::response_promise& rp) {
          rp.deliver(make_error(errc::shard_unavailable));
        },
        false);
    };
    after_link(self, i->second.node, st.env.self_node, std::move(land),
               std::move(lost));
    return;
  }
  auto call = std::move(i->second);
  st.pending.erase(i);
  st.env.counters->pending -= 1;
  answer(call.rp);
}

void fail(relay_pointer self, uint64_t id, caf::error err) {
  auto& st = self->state;
  bool timed_out = err == caf::sec::request_timeout; // decided here
  if (timed_out) {
    st.env.counters->failed_timeout += 1;
    err = make_error(errc::shard_unavailable);
  } else if (err.category() != errc_category) {
    err = make_error(errc::shard_unavailable); // a dead receiver, a lost link
  }
  finish(
    self, id, [err](caf::response_promise& rp) { rp.deliver(err); },
    !timed_out);
}

// Sends `xs...` to `dest` on node `node` as call `id`, expecting an `R`.
template <class R, class... Ts>
caf::result<caf::message> forward(relay_pointer self, relay_kind kind,
                                  uint32_t node, caf::actor dest, Ts... xs) {
  auto& st = self->state;
  if (!dest || !is_up(self, node)) {
    st.env.counters->refused_down += 1;
    return make_error(errc::shard_unavailable);
  }
  if (st.pending.size() >= limits::relay_pending_max)
    return make_error(errc::busy, limits::busy_full_table_retry_ms);
  st.env.counters->calls[static_cast<std::size_t>(kind)] += 1;
  st.env.counters->pending += 1;
  auto id = st.next_id++;
  st.pending.emplace(id, relay_call{node, self->make_response_promise()});
  auto send = [self, id, dest, args = std::make_tuple(std::move(xs)...)]() {
    if (self->state.pending.count(id) == 0)
      return; // failed meanwhile (its node went down)
    auto t = std::chrono::milliseconds{self->state.env.hop_timeout_ms};
    std::apply(
      [&](const auto&... a) {
        self->request(dest, t, a...)
          .then(
            [self, id](R& r) {
              auto v = std::make_shared<R>(std::move(r));
              finish(self, id,
                     [v](caf::response_promise& rp) { rp.deliver(*v); });
            },
            [self, id](caf::error& err) { fail(self, id, std::move(err)); });
      },
      args);
  };
  auto lost = [self, id]() { fail(self, id, caf::sec::request_timeout); };
  after_link(self, st.env.self_node, node, std::move(send), std::move(lost));
  return caf::delegated<caf::message>{};
}

void on_routes(relay_pointer self, const routes& r) {
  auto& st = self->state;
  SECKILL_ASSERT(r.self == st.env.self_node, "routes are for this node");
  st.up = live_members(r);
  std::vector<uint64_t> doomed;
  for (const auto& kvp : st.pending)
    if (!is_up(self, kvp.second.node))
      doomed.push_back(kvp.first);
  for (auto id : doomed) {
    st.env.counters->failed_down += 1;
    finish(
      self, id,
      [](caf::response_promise& rp) {
        rp.deliver(make_error(errc::shard_unavailable));
      },
      false);
  }
  if (!doomed.empty())
    spdlog::info("relay_failed_in_flight calls={} reason=node_down",
                 doomed.size());
}

// The purchase path's forwards: edge queue -> the user's session manager,
// user session -> item, directory -> the owner's directory.
caf::message_handler purchase_forwards(relay_pointer self) {
  using k = relay_kind;
  return {
    [self](relay_atom, uint32_t node, caf::actor& dest, purchase_atom a,
           purchase& p, caf::actor& item, int64_t limit) {
      // Marked as already routed: the receiver serves it, whatever its own
      // view of who is up, so a purchase never ping-pongs between nodes.
      return forward<order>(self, k::purchase_session, node, dest, a,
                            owner_atom_v, std::move(p), std::move(item), limit);
    },
    [self](relay_atom, uint32_t node, caf::actor& dest, purchase_atom a,
           purchase& p) {
      return forward<order>(self, k::purchase_item, node, dest, a,
                            std::move(p));
    },
  };
}

// An order's and an item's calls to the owner's directory.
caf::message_handler directory_forwards(relay_pointer self) {
  using k = relay_kind;
  return {
    [self](relay_atom, uint32_t node, caf::actor& dest, pay_atom a,
           std::string& id) {
      return forward<order>(self, k::directory, node, dest, a, std::move(id));
    },
    [self](relay_atom, uint32_t node, caf::actor& dest, cancel_atom a,
           std::string& id) {
      return forward<order>(self, k::directory, node, dest, a, std::move(id));
    },
    [self](relay_atom, uint32_t node, caf::actor& dest, order_atom a,
           std::string& id) {
      return forward<order>(self, k::directory, node, dest, a, std::move(id));
    },
    [self](relay_atom, uint32_t node, caf::actor& dest, stock_atom a,
           std::string& id) {
      return forward<stock_view>(self, k::directory, node, dest, a,
                                 std::move(id));
    },
    [self](relay_atom, uint32_t node, caf::actor& dest, view_atom a,
           std::string& id) {
      return forward<item_view>(self, k::directory, node, dest, a,
                                std::move(id));
    },
    [self](relay_atom, uint32_t node, caf::actor& dest, create_atom a,
           item_spec& spec) {
      return forward<item_view>(self, k::directory, node, dest, a,
                                std::move(spec));
    },
  };
}

// Sessions' views, status subscriptions and a member's status.
caf::message_handler other_forwards(relay_pointer self) {
  using k = relay_kind;
  return {
    [self](relay_atom, uint32_t node, caf::actor& dest, user_atom a,
           std::string& id) {
      return forward<user_view>(self, k::other, node, dest, a, owner_atom_v,
                                std::move(id));
    },
    [self](relay_atom, uint32_t node, caf::actor& dest, subscribe_atom a,
           caf::actor& listener) {
      return forward<status_update>(self, k::other, node, dest, a,
                                    std::move(listener));
    },
    [self](relay_atom, uint32_t node, caf::actor& dest, status_atom a) {
      return forward<node_status>(self, k::other, node, dest, a);
    },
  };
}

// The relay's own messages: who is up, and its timers.
caf::message_handler own_messages(relay_pointer self) {
  return {
    [self](routes_atom, const routes& r) { on_routes(self, r); },
    [self](tick_atom, uint64_t timer) {
      auto& timers = self->state.timers;
      auto i = timers.find(timer);
      if (i == timers.end())
        return;
      auto f = std::move(i->second);
      timers.erase(i);
      f();
    },
  };
}

} // namespace

caf::behavior relay_impl(relay_pointer self, relay_env env) {
  survive_strangers(self, "relay");
  SECKILL_ASSERT(env.counters != nullptr, "a relay counts what it relays");
  self->state.env = std::move(env);
  self->state.up.assign(self->state.env.self_node + 1, false);
  self->state.up[self->state.env.self_node] = true;
  return purchase_forwards(self)
    .or_else(directory_forwards(self))
    .or_else(other_forwards(self))
    .or_else(own_messages(self));
}

} // namespace seckill
