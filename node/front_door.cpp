// The front door (see front_door.hpp): the gate ticket and the handler.
#include "node/front_door.hpp"

#include <atomic>
#include <memory>
#include <utility>

#include <caf/send.hpp>

#include "actors/edge/bridge.hpp"
#include "actors/edge/http_rules.hpp"
#include "actors/edge/routes.hpp"
#include "actors/sale/item_book.hpp"
#include "messages/assert.hpp"
#include "messages/dto.hpp"

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

void count_refused(bridge_counters& c, errc code) {
  c.purchases[static_cast<std::size_t>(code)].fetch_add(
    1, std::memory_order_relaxed);
  c.requests[static_cast<std::size_t>(route_kind::item_purchase)]
            [static_cast<std::size_t>(code)]
              .fetch_add(1, std::memory_order_relaxed);
}

// The purchase's body, parsed and checked before any actor sees it: false
// and the refusal in `refused` if it must go no further.
bool check_purchase(const front_door_env& env, http_exchange& ex,
                    http::response& refused) {
  purchase_extras extras{ex.buyer, {}, {}};
  std::string why;
  auto& p = ex.parsed;
  auto code = parse_purchase_json(ex.request.body, ex.rt.id, p, &why, &extras);
  if (code == errc::ok)
    code = validate_purchase(p);
  if (code == errc::ok && !ex.buyer.empty() && p.user_id != ex.buyer)
    code = errc::user_mismatch, why = "user_id is not the buyer token's sub";
  if (code == errc::ok && !extras.sale_token.empty()) {
    code = env.buyers->check_sale_token(extras.sale_token, p.user_id, p.item_id,
                                        env.now_ms(), why);
    p.sale_token_ok = code == errc::ok;
  }
  if (code == errc::ok && !extras.ticket.empty())
    code = env.buyers->check_ticket(extras.ticket, p.user_id, p.item_id,
                                    env.now_ms(), p.ticket, why);
  if (code == errc::ok)
    return true;
  count_refused(*env.counters, code);
  refused = problem_response(code, why);
  return false;
}

} // namespace

http::handler_fn front_door(front_door_env env) {
  SECKILL_ASSERT(!env.bridges.empty() && env.gate && env.buyers && env.counters,
                 "the front door hands over to a bridge, through its gates");
  auto next = std::make_shared<std::atomic<std::size_t>>(0);
  // Everything is copied into the handler: no state shared with the node.
  return [env = std::move(env), next](http::request req, http::reply_fn reply) {
    auto started = env.now_us();
    auto rt = match_route(req.method, req.target);
    auto cls = classify(rt, req, env.admin_token);
    http::response refused;
    if (!env.gate->admit(req, cls, started, refused)) {
      env.gate->observe(cls, started, env.now_us(), refused.status);
      return reply(std::move(refused));
    }
    auto ticket = std::make_shared<gate_ticket>(env.gate, cls, started,
                                                env.now_us, std::move(reply));
    http_exchange ex{std::move(req), std::move(rt), {}, {}, {}};
    if (is_buyer_route(ex.rt)
        && (!env.buyers->authenticate(ex.request.authorization, env.now_ms(),
                                      ex.buyer, refused)
            || (ex.rt.kind == route_kind::item_purchase
                && !check_purchase(env, ex, refused))))
      return ticket->answer(std::move(refused));
    ex.reply = [ticket](http::response r) { ticket->answer(std::move(r)); };
    auto i = next->fetch_add(1, std::memory_order_relaxed) % env.bridges.size();
    caf::anon_send(env.bridges[i], std::move(ex));
  };
}

} // namespace seckill
