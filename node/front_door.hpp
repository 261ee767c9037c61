// The node's front door: the HTTP server's handler. On the server's I/O
// thread, for each complete request, it matches the route (once: the
// bridge gets it with the exchange), lets the front gate classify and admit
// it, and answers a refusal right there, before any actor sees the request.
// An admitted request goes to one of the bridges, round robin, holding a
// gate ticket that keeps it counted in flight until its one answer.
//
// It must never block (it runs on an I/O thread), answer a request twice,
// or let the gate's in-flight count leak or go negative.
#pragma once

#include <string>
#include <vector>

#include "actors/base/clock.hpp"
#include "actors/edge/bridge.hpp"
#include "actors/edge/front_gate.hpp"
#include "node/http/server.hpp"

namespace seckill {

/// The handler for `http::server`: the gate first, then the bridges (not
/// empty).
http::handler_fn front_door(std::vector<bridge_actor> bridges,
                            std::shared_ptr<front_gate> gate,
                            steady_us_fn now_us, std::string admin_token);

} // namespace seckill
