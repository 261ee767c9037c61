// The node's front door: the HTTP server's handler. On the server's I/O
// thread, for each complete request, it matches the route (once: the
// bridge gets it with the exchange), lets the front gate classify and admit
// it, then on a buyer route lets the buyer gate authenticate the buyer
// (401) and, for a purchase, parses the body and checks its sale token
// (400, 403), and answers a refusal right there, before any actor sees the
// request. An admitted request goes to one of the bridges, round robin,
// holding a gate ticket that keeps it counted in flight until its one
// answer.
//
// It must never block (it runs on an I/O thread), answer a request twice,
// or let the gate's in-flight count leak or go negative.
#pragma once

#include <string>
#include <vector>

#include "actors/base/clock.hpp"
#include "actors/edge/bridge.hpp"
#include "actors/edge/buyer_gate.hpp"
#include "actors/edge/front_gate.hpp"
#include "node/http/server.hpp"

namespace seckill {

struct front_door_env {
  std::vector<bridge_actor> bridges; // not empty
  std::shared_ptr<front_gate> gate;
  std::shared_ptr<buyer_gate> buyers;
  /// Purchases refused at the door are counted with the bridges' own.
  std::shared_ptr<bridge_counters> counters;
  steady_us_fn now_us;
  clock_fn now_ms; // the tokens' clock (Unix epoch)
  std::string admin_token;
};

/// The handler for `http::server`: the gates first, then the bridges.
http::handler_fn front_door(front_door_env env);

} // namespace seckill
