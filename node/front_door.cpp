// The front door (see front_door.hpp): the gate ticket and the handler.
#include "node/front_door.hpp"

#include <atomic>
#include <memory>
#include <utility>

#include <caf/send.hpp>

#include "actors/edge/bridge.hpp"
#include "actors/edge/routes.hpp"
#include "messages/assert.hpp"

namespace seckill {

namespace {

// A request the front gate admitted: in flight until answered once, or
// until the last copy of its reply function is gone unanswered (a bridge
// that stopped), so the gate's count can neither leak nor go negative.
class gate_ticket {
public:
  gate_ticket(std::shared_ptr<front_gate> gate, gate_class cls,
              int64_t started_us, steady_us_fn now_us, http::reply_fn reply)
    : gate_(std::move(gate)), cls_(cls), started_us_(started_us),
      now_us_(std::move(now_us)), reply_(std::move(reply)) {}

  gate_ticket(const gate_ticket&) = delete;
  gate_ticket& operator=(const gate_ticket&) = delete;

  ~gate_ticket() {
    if (!answered_.exchange(true))
      gate_->done(cls_, started_us_, now_us_(), 0);
  }

  void answer(http::response resp) {
    if (answered_.exchange(true))
      return; // the reply function's contract: once; later calls ignored
    gate_->done(cls_, started_us_, now_us_(), resp.status);
    reply_(std::move(resp));
  }

private:
  std::shared_ptr<front_gate> gate_;
  gate_class cls_;
  int64_t started_us_;
  steady_us_fn now_us_;
  http::reply_fn reply_;
  std::atomic<bool> answered_{false};
};

} // namespace

http::handler_fn front_door(std::vector<bridge_actor> bridges,
                            std::shared_ptr<front_gate> gate,
                            steady_us_fn now_us, std::string admin_token) {
  SECKILL_ASSERT(!bridges.empty(), "the front door hands over to a bridge");
  auto next = std::make_shared<std::atomic<std::size_t>>(0);
  // Everything is copied into the handler: no state shared with the node.
  return [bridges = std::move(bridges), next, gate = std::move(gate),
          now_us = std::move(now_us), token = std::move(admin_token)](
           http::request req, http::reply_fn reply) {
    auto started = now_us();
    auto rt = match_route(req.method, req.target);
    auto cls = classify(rt, req, token);
    http::response refused;
    if (!gate->admit(req, cls, started, refused)) {
      gate->observe(cls, started, now_us(), refused.status);
      return reply(std::move(refused));
    }
    auto ticket = std::make_shared<gate_ticket>(gate, cls, started, now_us,
                                                std::move(reply));
    auto i = next->fetch_add(1, std::memory_order_relaxed) % bridges.size();
    caf::anon_send(bridges[i], http_exchange{std::move(req), std::move(rt),
                                             [ticket](http::response r) {
                                               ticket->answer(std::move(r));
                                             }});
  };
}

} // namespace seckill
