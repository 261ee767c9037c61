// The admin actor (see admin.hpp). Every answer is assembled from requests
// to the actors that own the state; each request carries the gather
// timeout, so a gathering always ends.
#include "actors/edge/admin.hpp"
#include "actors/base/strangers.hpp"

#include <algorithm>
#include <memory>
#include <optional>

#include <caf/typed_event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include "actors/sale/admission_queue.hpp"
#include "actors/sale/item.hpp"
#include "messages/log_text.hpp"
#include "messages/secret.hpp"

namespace seckill {

namespace {

using detail_fn = std::function<void(std::optional<item_detail>)>;

std::chrono::milliseconds gather_timeout(admin_pointer self) {
  return std::chrono::milliseconds{self->state.env.gather_timeout_ms};
}

// Asks the directory for the item's actors, then both for their views.
// Calls `done` once: with the detail, or without it if any step failed.
void fetch_detail(admin_pointer self, const std::string& id, detail_fn done) {
  auto t = gather_timeout(self);
  self->request(self->state.env.directory, t, lookup_atom_v, id)
    .then(
      [self, t, done](caf::actor& item, caf::actor& queue) {
        auto q = caf::actor_cast<queue_actor>(queue);
        self->request(caf::actor_cast<item_actor>(item), t, view_atom_v)
          .then(
            [self, t, q, done](item_view& iv) {
              self->request(q, t, view_atom_v)
                .then(
                  [iv, done](queue_view& qv) {
                    done(item_detail{iv, qv});
                  },
                  [done](caf::error&) { done(std::nullopt); });
            },
            [done](caf::error&) { done(std::nullopt); });
      },
      [done](caf::error&) { done(std::nullopt); });
}

// Fans out fetch_detail over `ids`, at most `gather_window` at a time (CAF
// searches an actor's pending replies linearly), and answers with what came
// back, in id order. Items that did not answer in time are left out.
constexpr std::size_t gather_window = 64;

struct fan_in {
  std::vector<std::string> ids;
  std::vector<std::optional<item_detail>> slots;
  std::size_t next = 0; // the next id to ask about
  std::size_t left = 0; // answers still to come
  std::function<void(std::vector<item_detail>)> done;
};

void fetch_next(admin_pointer self, std::shared_ptr<fan_in> acc) {
  auto i = acc->next++;
  fetch_detail(self, acc->ids[i], [self, acc, i](std::optional<item_detail> d) {
    acc->slots[i] = std::move(d);
    if (acc->next < acc->ids.size())
      fetch_next(self, acc);
    if (--acc->left > 0)
      return;
    std::vector<item_detail> out;
    for (auto& s : acc->slots)
      if (s)
        out.push_back(std::move(*s));
    acc->done(std::move(out));
  });
}

void fetch_all(admin_pointer self, std::vector<std::string> ids,
               std::function<void(std::vector<item_detail>)> done) {
  if (ids.empty()) {
    done({});
    return;
  }
  auto acc = std::make_shared<fan_in>();
  acc->slots.resize(ids.size());
  acc->left = ids.size();
  acc->ids = std::move(ids);
  acc->done = std::move(done);
  auto first = std::min(gather_window, acc->ids.size());
  for (std::size_t k = 0; k < first; ++k)
    fetch_next(self, acc);
}

caf::result<std::vector<item_detail>> on_list(admin_pointer self) {
  auto rp = self->make_response_promise<std::vector<item_detail>>();
  self->request(self->state.env.directory, gather_timeout(self), list_atom_v)
    .then(
      [self, rp](std::vector<std::string>& ids) mutable {
        fetch_all(self, std::move(ids),
                  [rp](std::vector<item_detail> all) mutable {
                    rp.deliver(std::move(all));
                  });
      },
      [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
  return rp;
}

caf::result<item_detail> on_view(admin_pointer self, const std::string& id) {
  auto rp = self->make_response_promise<item_detail>();
  fetch_detail(self, id, [rp](std::optional<item_detail> d) mutable {
    if (d)
      rp.deliver(std::move(*d));
    else
      rp.deliver(make_error(errc::unknown_item));
  });
  return rp;
}

// Pause, resume and end go to the item itself, which persists them.
template <class Atom>
caf::result<item_view> on_admin(admin_pointer self, Atom atom,
                                const std::string& id) {
  auto rp = self->make_response_promise<item_view>();
  auto t = gather_timeout(self);
  self->request(self->state.env.directory, t, lookup_atom_v, id)
    .then(
      [self, rp, t, atom](caf::actor& item, caf::actor&) mutable {
        self->request(caf::actor_cast<item_actor>(item), t, atom)
          .then([rp](item_view& v) mutable { rp.deliver(std::move(v)); },
                [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
      },
      [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
  return rp;
}

// Status: the identity, then the directory's, sessions' and store's counts.
// For a peer (`for_peer`), only what a member shows in `nodes`.
caf::result<node_status> on_status(admin_pointer self, bool for_peer) {
  auto rp = self->make_response_promise<node_status>();
  auto status = std::make_shared<node_status>(self->state.env.identity);
  auto t = gather_timeout(self);
  auto fail = [rp](caf::error& err) mutable { rp.deliver(std::move(err)); };
  self->request(self->state.env.directory, t, list_atom_v, true)
    .then(
      [self, rp, status, t, fail,
       for_peer](std::vector<std::string>& ids) mutable {
        status->items = static_cast<int64_t>(ids.size());
        self->request(self->state.env.sessions, t, sessions_atom_v)
          .then(
            [self, rp, status, t, fail, for_peer](int64_t n) mutable {
              status->sessions = n;
              // The store may be busy committing: answer without its
              // counters (left at zero) rather than not at all.
              auto finish = [self, rp, status, for_peer]() mutable {
                status->now_ms = self->state.env.now_ms();
                if (self->state.env.live)
                  self->state.env.live(*status);
                if (!for_peer) {
                  rp.deliver(*status);
                  return;
                }
                node_status counts;
                counts.node_id = status->node_id;
                counts.items = status->items;
                counts.sessions = status->sessions;
                counts.http.connections_open = status->http.connections_open;
                counts.http.requests = status->http.requests;
                counts.now_ms = status->now_ms;
                rp.deliver(std::move(counts));
              };
              self->request(self->state.env.store, t, stats_atom_v)
                .then(
                  [status, finish](store_stats& s) mutable {
                    status->store = s;
                    finish();
                  },
                  [finish](caf::error&) mutable { finish(); });
            },
            fail);
      },
      fail);
  return rp;
}

// The one member of a node alone: itself, at its bound cluster endpoint.
member_view alone_view(const admin_env& env) {
  member_view v;
  v.node_id = env.identity.node_id;
  node_status bound = env.identity; // the endpoints are known once bound
  if (env.live)
    env.live(bound);
  v.endpoint = bound.cluster_endpoint;
  v.state = "self";
  return v;
}

// Nodes: the membership's view, then each live member's own status (this
// node's directly, the others' through their admin actors, each bounded by
// the gather timeout; one that does not answer keeps its counts at -1).
caf::result<std::vector<member_view>> on_nodes(admin_pointer self) {
  auto rp = self->make_response_promise<std::vector<member_view>>();
  auto t = gather_timeout(self);
  auto gather = [self, rp, t](std::vector<member_view> views,
                              const routes& r) mutable {
    struct acc_t {
      std::vector<member_view> views;
      std::size_t left = 0;
    };
    auto acc = std::make_shared<acc_t>();
    acc->views = std::move(views);
    auto finish = [acc, rp]() mutable {
      if (--acc->left == 0)
        rp.deliver(acc->views);
    };
    acc->left = 1; // released below, after every request is out
    for (std::size_t j = 0; j < acc->views.size() && j < r.members.size();
         ++j) {
      auto admin =
        j == r.self ? caf::actor_cast<caf::actor>(self) : r.members[j].admin;
      if (!admin || !r.members[j].up)
        continue;
      acc->left += 1;
      self
        ->request(caf::actor_cast<admin_actor>(admin), t, peer_atom_v,
                  status_atom_v)
        .then(
          [acc, j, finish](node_status& s) mutable {
            auto& v = acc->views[j];
            v.items = s.items;
            v.sessions = s.sessions;
            v.connections = s.http.connections_open;
            v.requests = s.http.requests;
            finish();
          },
          [finish](caf::error&) mutable { finish(); });
    }
    finish();
  };
  auto& env = self->state.env;
  if (!env.membership) {
    auto v = alone_view(env);
    routes r;
    r.members.push_back(peer_ref{v.node_id, true, {}, {}, {}});
    gather({v}, r);
    return rp;
  }
  auto fail = [rp](caf::error& err) mutable { rp.deliver(std::move(err)); };
  self->request(env.membership, t, nodes_atom_v)
    .then(
      [self, t, gather, fail](std::vector<member_view>& views) mutable {
        self->request(self->state.env.membership, t, routes_atom_v)
          .then([views, gather](routes& r) mutable { gather(views, r); }, fail);
      },
      fail);
  return rp;
}

// errc::ok if `key` is the node's admin token. A refusal is counted and
// logged (at most a line a second, with how many were left out), naming
// the command and the sender's node, never the key.
errc admit(admin_pointer self, const admin_key& key, const char* command) {
  auto& st = self->state;
  auto code = check_secret(key, st.env.token);
  if (code == errc::ok)
    return code;
  ++st.refused;
  int64_t skipped = 0;
  if (st.refusals.allow(st.env.now_ms(), skipped)) {
    auto sender = self->current_sender();
    spdlog::warn("admin_refused command={} reason={} sender_node={} "
                 "refused_total={} skipped={}",
                 command, to_string(code),
                 sender ? caf::to_string(sender->node()) : "unknown",
                 st.refused, skipped);
  }
  return code;
}

// Serves a command when the key admits it, else answers the refusal.
template <class T, class Serve>
caf::result<T> admitted(admin_pointer self, const admin_key& key,
                        const char* command, Serve&& serve) {
  if (auto code = admit(self, key, command); code != errc::ok)
    return make_error(code);
  return serve();
}

// Every member's view, from the membership (or this node's, alone).
caf::result<std::vector<member_view>> on_members(admin_pointer self) {
  auto& env = self->state.env;
  if (!env.membership)
    return std::vector<member_view>{alone_view(env)};
  self->delegate(env.membership, nodes_atom_v);
  return caf::delegated<std::vector<member_view>>{};
}

caf::result<switches_view> on_switches(admin_pointer self) {
  auto& env = self->state.env;
  if (!env.switches || !env.gate_stats)
    return make_error(errc::not_found); // a node without a front gate
  return view_of(*env.switches, *env.gate_stats, steady_clock_us()());
}

caf::result<switches_view> on_switch(admin_pointer self,
                                     const std::string& name,
                                     const std::string& value) {
  auto& env = self->state.env;
  if (!env.switches || !env.gate_stats)
    return make_error(errc::not_found);
  std::string why;
  if (auto code = check_switch(name, value, why); code != errc::ok) {
    spdlog::warn("switch_refused name={} reason={}", log_text(name),
                 log_text(why));
    return make_error(code);
  }
  auto before = switch_value(*env.switches, name);
  set_switch(*env.switches, name, value);
  spdlog::warn("switch_changed name={} from={} to={}", name, before,
               switch_value(*env.switches, name));
  return view_of(*env.switches, *env.gate_stats, steady_clock_us()());
}

caf::result<peer_hello> on_hello(admin_pointer self, peer_hello& h) {
  if (!self->state.env.membership)
    return make_error(errc::forbidden); // not a cluster member
  self->delegate(self->state.env.membership, hello_atom_v, std::move(h));
  return caf::delegated<peer_hello>{};
}

} // namespace

admin_actor::behavior_type admin_impl(admin_pointer self, admin_env env) {
  survive_strangers(self, "admin");
  self->state.env = std::move(env);
  auto& sessions = self->state.env.sessions;
  auto& directory = self->state.env.directory;
  return {
    [self](status_atom, const admin_key& key) {
      return admitted<node_status>(self, key, "status",
                                   [&] { return on_status(self, false); });
    },
    [self](list_atom, const admin_key& key) {
      return admitted<std::vector<item_detail>>(self, key, "items",
                                                [&] { return on_list(self); });
    },
    [self](view_atom, const admin_key& key, const std::string& id) {
      return admitted<item_detail>(self, key, "item",
                                   [&] { return on_view(self, id); });
    },
    [self, &sessions](sessions_atom, const admin_key& key) {
      return admitted<sessions_view>(self, key, "sessions", [&] {
        return self->delegate(sessions, view_atom_v);
      });
    },
    [self, &sessions](user_atom, const admin_key& key, const std::string& id) {
      return admitted<user_view>(self, key, "user", [&] {
        return self->delegate(sessions, user_atom_v, id);
      });
    },
    [self, &directory](create_atom, const admin_key& key, item_spec& spec) {
      return admitted<item_view>(self, key, "create-item", [&] {
        return self->delegate(directory, create_atom_v, std::move(spec));
      });
    },
    [self](pause_atom a, const admin_key& key, const std::string& id) {
      return admitted<item_view>(self, key, "pause",
                                 [&] { return on_admin(self, a, id); });
    },
    [self](resume_atom a, const admin_key& key, const std::string& id) {
      return admitted<item_view>(self, key, "resume",
                                 [&] { return on_admin(self, a, id); });
    },
    [self](end_atom a, const admin_key& key, const std::string& id) {
      return admitted<item_view>(self, key, "end",
                                 [&] { return on_admin(self, a, id); });
    },
    [self](nodes_atom, const admin_key& key) {
      return admitted<std::vector<member_view>>(self, key, "nodes",
                                                [&] { return on_nodes(self); });
    },
    [self](nodes_atom, const admin_key& key, bool) {
      return admitted<std::vector<member_view>>(
        self, key, "nodes", [&] { return on_members(self); });
    },
    [self](switch_atom, const admin_key& key) {
      return admitted<switches_view>(self, key, "switch",
                                     [&] { return on_switches(self); });
    },
    [self](switch_atom, const admin_key& key, const std::string& name,
           const std::string& value) {
      return admitted<switches_view>(
        self, key, "switch", [&] { return on_switch(self, name, value); });
    },
    [self](peer_atom, status_atom) { return on_status(self, true); },
    [self](hello_atom, peer_hello& h) { return on_hello(self, h); },
  };
}

} // namespace seckill
