// The REST bridge actor (see bridge.hpp): one handler per route that
// validates, makes its hops and answers. The route itself is pure
// (routes.cpp), and so are the token, ETag and problem+json rules
// (http_rules.cpp).
#include "actors/edge/bridge.hpp"
#include "messages/secret.hpp"

#include <chrono>
#include <cstdio>

#include <spdlog/spdlog.h>

#include "actors/edge/metrics.hpp"
#include "actors/sale/admission_queue.hpp"
#include "actors/sale/item_book.hpp"
#include "messages/assert.hpp"
#include "messages/dto.hpp"
#include "messages/limits.hpp"

namespace seckill {

// -- The actor ------------------------------------------------------------------

namespace {

using exchange_ptr = std::shared_ptr<http_exchange>;

std::chrono::milliseconds hop(bridge_pointer self) {
  return std::chrono::milliseconds{self->state.env.hop_timeout_ms};
}

void count(bridge_pointer self, route_kind r, errc outcome) {
  auto& c = *self->state.env.counters;
  c.requests[static_cast<std::size_t>(r)][static_cast<std::size_t>(outcome)]
    .fetch_add(1, std::memory_order_relaxed);
}

void answer(bridge_pointer self, const exchange_ptr& ex, route_kind r,
            http::response resp) {
  count(self, r, errc::ok);
  ex->reply(std::move(resp));
}

void fail(bridge_pointer self, const exchange_ptr& ex, route_kind r, errc code,
          const std::string& detail, int64_t retry_after_ms = 0) {
  count(self, r, code);
  ex->reply(problem_response(code, detail, retry_after_ms));
}

void fail(bridge_pointer self, const exchange_ptr& ex, route_kind r,
          const caf::error& err) {
  auto code = to_errc(err);
  auto detail = code == errc::shard_unavailable ? self->system().render(err)
                                                : std::string{};
  fail(self, ex, r, code, detail, retry_after_ms(err));
}

http::response json_response(int status, const google::protobuf::Message& m) {
  http::response r;
  r.status = status;
  r.body = to_json(m);
  return r;
}

// Orders are the purchase path's answer: printed without protobuf.
http::response json_response(int status, const order& o) {
  http::response r;
  r.status = status;
  r.body = order_json(o);
  return r;
}

auto failer(bridge_pointer self, exchange_ptr ex, route_kind r) {
  return [self, ex, r](caf::error& err) { fail(self, ex, r, err); };
}

/// What a render of a shared answer ends with: the response, or the error.
using shared_done = std::function<void(caf::expected<http::response>)>;
using shared_render = std::function<void(shared_done)>;

// Joins `ex` to the render of `slot` under way, or starts one; every waiter
// gets the same answer (or error) when it is done.
void serve_shared(bridge_pointer self, shared_answer bridge_state::*slot,
                  std::atomic<int64_t> bridge_counters::*renders, route_kind r,
                  exchange_ptr ex, const shared_render& render) {
  auto& sh = self->state.*slot;
  if (sh.waiting.size() >= limits::shared_answer_waiters_max)
    return fail(self, ex, r, errc::busy,
                "too many requests wait for this answer",
                limits::shared_answer_retry_ms);
  sh.waiting.push_back(std::move(ex));
  if (sh.rendering)
    return;
  sh.rendering = true;
  ((*self->state.env.counters).*renders)
    .fetch_add(1, std::memory_order_relaxed);
  render([self, slot, r](caf::expected<http::response> out) {
    auto& sh = self->state.*slot;
    auto waiting = std::move(sh.waiting);
    sh.waiting.clear();
    sh.rendering = false;
    for (auto& w : waiting) {
      if (out)
        answer(self, w, r, *out);
      else
        fail(self, w, r, out.error());
    }
  });
}

// -- Items ------------------------------------------------------------------------

void on_item_get(bridge_pointer self, exchange_ptr ex, const route& rt) {
  self->request(self->state.env.directory, hop(self), view_atom_v, rt.id)
    .then(
      [self, ex](item_view& v) {
        auto resp = json_response(200, to_proto(v.record.spec, v.status));
        auto tag = etag_of(resp.body);
        resp.headers.emplace_back("ETag", tag);
        // Static details change only with the status (a few times a sale):
        // caches may keep them briefly, and revalidate cheaply (304).
        resp.headers.emplace_back("Cache-Control", "public, max-age=5");
        if (etag_matches(ex->request.if_none_match, tag)) {
          resp.status = 304;
          resp.body.clear();
        }
        answer(self, ex, route_kind::item_get, std::move(resp));
      },
      failer(self, ex, route_kind::item_get));
}

http::response stock_response(const stock_view& v) {
  auto resp = json_response(200, to_proto(v));
  resp.headers.emplace_back("Cache-Control", "no-store");
  return resp;
}

void on_item_stock(bridge_pointer self, exchange_ptr ex, const route& rt) {
  auto& st = self->state;
  auto edge_ms = st.env.switches ? st.env.switches->edge_reads_ms.load() : 0;
  auto now = steady_clock_us()() / 1000; // ages never jump with the wall clock
  if (edge_ms > 0) {
    auto i = st.edge_stocks.find(rt.id);
    if (i != st.edge_stocks.end()) {
      auto age = now - i->second.asked_ms;
      if (age >= 0 && age <= edge_ms) {
        auto resp = stock_response(i->second.view);
        resp.headers.emplace_back("X-Stock-Age-Ms", std::to_string(age));
        return answer(self, ex, route_kind::item_stock, std::move(resp));
      }
    }
  }
  self->request(st.env.directory, hop(self), stock_atom_v, rt.id)
    .then(
      [self, ex, id = rt.id, now, edge_ms](stock_view& v) {
        auto& cache = self->state.edge_stocks;
        if (edge_ms > 0) {
          if (cache.size() >= limits::items_per_node_max
              && cache.count(id) == 0)
            cache.clear();
          cache[id] = edge_stock{v, now};
        } else if (!cache.empty()) {
          cache.clear(); // switched off: nothing stale may come back
        }
        answer(self, ex, route_kind::item_stock, stock_response(v));
      },
      failer(self, ex, route_kind::item_stock));
}

bool essential_only(bridge_pointer self) {
  auto& sw = self->state.env.switches;
  return sw && sw->essential_only.load();
}

void on_items_list(bridge_pointer self, exchange_ptr ex) {
  if (essential_only(self))
    return fail(self, ex, route_kind::items_list, errc::overloaded,
                "non-essential work is off on this node (essential-only): "
                "the item list is not served",
                limits::essential_only_retry_ms);
  serve_shared(
    self, &bridge_state::items_list, &bridge_counters::items_list_renders,
    route_kind::items_list, std::move(ex), [self](shared_done done) {
      self
        ->request(self->state.env.admin, hop(self), list_atom_v,
                  self->state.env.admin_token)
        .then(
          [done](std::vector<item_detail>& all) {
            v1::ItemList list;
            for (auto& d : all)
              *list.add_items() = to_proto(d.item.record.spec, d.item.status);
            done(json_response(200, list));
          },
          [done](caf::error& err) { done(std::move(err)); });
    });
}

void on_items_create(bridge_pointer self, exchange_ptr ex) {
  item_spec spec;
  std::string why;
  if (auto code = parse_item_json(ex->request.body, spec, &why);
      code != errc::ok)
    return fail(self, ex, route_kind::items_create, code, why);
  if (auto code = validate_spec(spec); code != errc::ok)
    return fail(self, ex, route_kind::items_create, code,
                "see the item fields' ranges in the README");
  self
    ->request(self->state.env.admin, hop(self), create_atom_v,
              self->state.env.admin_token, spec)
    .then(
      [self, ex](item_view& v) {
        auto resp = json_response(201, to_proto(v.record.spec, v.status));
        resp.headers.emplace_back("Location",
                                  "/api/v1/items/" + v.record.spec.item_id);
        answer(self, ex, route_kind::items_create, std::move(resp));
      },
      failer(self, ex, route_kind::items_create));
}

template <class Atom>
void on_item_admin(bridge_pointer self, exchange_ptr ex, const route& rt,
                   Atom atom) {
  self
    ->request(self->state.env.admin, hop(self), atom,
              self->state.env.admin_token, rt.id)
    .then(
      [self, ex, rt](item_view& v) {
        answer(self, ex, rt.kind,
               json_response(200, to_proto(v.record.spec, v.status)));
      },
      failer(self, ex, rt.kind));
}

// -- Purchases and orders -----------------------------------------------------------

void count_purchase(bridge_pointer self, errc outcome) {
  self->state.env.counters->purchases[static_cast<std::size_t>(outcome)]
    .fetch_add(1, std::memory_order_relaxed);
}

// The front door parsed, validated and checked the body (its sale token
// included): what reaches here goes on.
// 429 queued: the queue's number for the buyer's place, signed here for
// its user, item and this node, with the place and the ETA.
void answer_queued(bridge_pointer self, const exchange_ptr& ex,
                   const std::string& user, const std::string& item,
                   const queued_facts& q) {
  constexpr auto r = route_kind::item_purchase;
  count_purchase(self, errc::queued);
  count(self, r, errc::queued);
  auto& buyers = self->state.env.buyers;
  auto detail = "you are number " + std::to_string(q.position)
                + " in line: retry with this ticket";
  auto resp = problem_response(errc::queued, detail, q.eta_ms);
  if (buyers) {
    auto ticket =
      buyers->issue_ticket(user, item, q.ticket, self->state.env.now_ms());
    resp.body.insert(
      resp.body.size() - 1,
      ",\"ticket\":\"" + ticket + "\",\"position\":"
        + std::to_string(q.position) + ",\"eta_ms\":" + std::to_string(q.eta_ms)
        + ",\"likely_sold_out\":" + (q.likely_sold_out ? "true" : "false"));
  }
  ex->reply(std::move(resp));
}

void on_purchase(bridge_pointer self, exchange_ptr ex) {
  constexpr auto r = route_kind::item_purchase;
  auto user = ex->parsed.user_id;
  auto item = ex->parsed.item_id;
  self
    ->request(self->state.env.directory, hop(self), purchase_atom_v,
              std::move(ex->parsed))
    .then(
      [self, ex](order& o) {
        count_purchase(self, errc::ok);
        bool replay = o.replayed; // an earlier request's order: 200
        auto& c = *self->state.env.counters;
        (replay ? c.orders_replayed : c.orders_created).fetch_add(1);
        auto resp = json_response(replay ? 200 : 201, o);
        resp.headers.emplace_back("Location", "/api/v1/orders/" + o.order_id);
        answer(self, ex, r, std::move(resp));
      },
      [self, ex, user, item](caf::error& err) {
        if (queued_facts q; queued_of(err, q))
          return answer_queued(self, ex, user, item, q);
        count_purchase(self, to_errc(err));
        fail(self, ex, r, err);
      });
}

// -- Sale tokens and challenges -------------------------------------------------

// The refusal of a token or a challenge for an item not on sale: the start
// time and a Retry-After until it when upcoming.
bool refuse_unless_on_sale(bridge_pointer self, const exchange_ptr& ex,
                           route_kind r, const item_view& v, int64_t now_ms) {
  auto code = status_refusal(v.status);
  if (code == errc::ok)
    return false;
  if (code != errc::not_started) {
    fail(self, ex, r, code, {});
    return true;
  }
  auto starts = v.record.spec.starts_at_ms;
  count(self, r, code);
  auto resp = problem_response(
    code, "the sale starts at " + std::to_string(starts) + " (Unix ms)",
    std::max<int64_t>(1, starts - now_ms));
  resp.body.insert(resp.body.size() - 1,
                   ",\"starts_at_ms\":" + std::to_string(starts));
  ex->reply(std::move(resp));
  return true;
}

// The buyer of a token or quiz request: the JWT's subject, or with
// buyer-auth open the query's user_id; "" (answered 400) if neither holds.
std::string buyer_of(bridge_pointer self, const exchange_ptr& ex,
                     const route& rt) {
  auto user = ex->buyer.empty() ? rt.user_id : ex->buyer;
  if (!valid_id(user)) {
    fail(self, ex, rt.kind, errc::invalid_id,
         "the query needs ?user_id= the buyer (buyer-auth is open)");
    return {};
  }
  return user;
}

template <class Then>
void with_item_view(bridge_pointer self, const exchange_ptr& ex,
                    const route& rt, Then then) {
  if (!self->state.env.buyers)
    return fail(self, ex, rt.kind, errc::not_found, "no buyer gate here");
  self->request(self->state.env.directory, hop(self), view_atom_v, rt.id)
    .then(
      [self, ex, rt, then](item_view& v) {
        auto now = self->state.env.now_ms();
        if (refuse_unless_on_sale(self, ex, rt.kind, v, now))
          return;
        then(v, now);
      },
      failer(self, ex, rt.kind));
}

void on_item_token(bridge_pointer self, exchange_ptr ex, const route& rt) {
  std::string challenge, answer_text, why;
  if (auto code =
        parse_token_json(ex->request.body, challenge, answer_text, &why);
      code != errc::ok)
    return fail(self, ex, rt.kind, code, why);
  auto user = buyer_of(self, ex, rt);
  if (user.empty())
    return;
  with_item_view(self, ex, rt, [=](const item_view& v, int64_t now) {
    auto& gate = *self->state.env.buyers;
    if (v.record.spec.admission == admission_mode::quiz) {
      std::string why;
      if (challenge.empty())
        return fail(self, ex, rt.kind, errc::token_required,
                    "this item's token needs a solved challenge: GET "
                    "/api/v1/items/"
                      + rt.id + "/quiz, then post its challenge and answer");
      if (auto code = gate.redeem_challenge(challenge, answer_text, user, rt.id,
                                            now, why);
          code != errc::ok)
        return fail(self, ex, rt.kind, code, why);
    }
    int64_t expires = 0;
    auto token = gate.issue_sale_token(user, rt.id, now, expires);
    http::response resp;
    resp.status = 200;
    resp.body = "{\"sale_token\":\"" + token
                + "\",\"expires_ms\":" + std::to_string(expires) + "}";
    resp.headers.emplace_back("Cache-Control", "no-store");
    answer(self, ex, rt.kind, std::move(resp));
  });
}

void on_item_quiz(bridge_pointer self, exchange_ptr ex, const route& rt) {
  auto user = buyer_of(self, ex, rt);
  if (user.empty())
    return;
  with_item_view(self, ex, rt, [=](const item_view& v, int64_t now) {
    if (v.record.spec.admission != admission_mode::quiz)
      return fail(self, ex, rt.kind, errc::not_found,
                  "item " + rt.id + " has no quiz (admission "
                    + to_string(v.record.spec.admission) + ")");
    tokens::quiz_kind kind{};
    int bits = 0;
    auto c =
      self->state.env.buyers->issue_challenge(user, rt.id, now, kind, bits);
    http::response resp;
    resp.status = 200;
    resp.body = "{\"challenge\":\"" + c.challenge + "\",\"question\":\""
                + c.question + "\",\"kind\":\"" + to_string(kind)
                + "\",\"difficulty_bits\":" + std::to_string(bits)
                + ",\"issued_ms\":" + std::to_string(now) + "}";
    resp.headers.emplace_back("Cache-Control", "no-store");
    answer(self, ex, rt.kind, std::move(resp));
  });
}

template <class Atom>
void on_order_change(bridge_pointer self, exchange_ptr ex, const route& rt,
                     Atom atom) {
  std::string user, why;
  auto code = parse_user_json(ex->request.body, user, &why, ex->buyer);
  if (code == errc::ok && !valid_id(user))
    code = errc::invalid_id;
  if (code == errc::ok && !ex->buyer.empty() && user != ex->buyer)
    code = errc::user_mismatch, why = "user_id is not the buyer token's sub";
  if (code != errc::ok)
    return fail(self, ex, rt.kind, code, why);
  auto dir = self->state.env.directory;
  // The owner check first; the order's user never changes.
  self->request(dir, hop(self), order_atom_v, rt.id)
    .then(
      [self, ex, rt, user, atom, dir](order& o) {
        if (o.user_id != user)
          return fail(self, ex, rt.kind, errc::unknown_order, {});
        self->request(dir, hop(self), atom, rt.id)
          .then(
            [self, ex, rt](order& changed) {
              spdlog::info("order_changed order={} state={}", changed.order_id,
                           to_string(changed.state));
              answer(self, ex, rt.kind, json_response(200, changed));
            },
            failer(self, ex, rt.kind));
      },
      failer(self, ex, rt.kind));
}

void on_order_get(bridge_pointer self, exchange_ptr ex, const route& rt) {
  const auto& buyer = ex->buyer;
  if (!buyer.empty() && !rt.user_id.empty() && rt.user_id != buyer)
    return fail(self, ex, rt.kind, errc::user_mismatch,
                "?user_id= is not the buyer token's sub");
  auto user = buyer.empty() ? rt.user_id : buyer;
  if (!valid_id(user))
    return fail(self, ex, rt.kind, errc::invalid_id,
                "the query needs ?user_id= the order's user");
  self->request(self->state.env.directory, hop(self), order_atom_v, rt.id)
    .then(
      [self, ex, rt, user](order& o) {
        if (o.user_id != user)
          return fail(self, ex, rt.kind, errc::unknown_order, {});
        answer(self, ex, rt.kind, json_response(200, o));
      },
      failer(self, ex, rt.kind));
}

// -- Node ---------------------------------------------------------------------------

// 200 while the store acknowledges; 503 while its commits fail (a full disk:
// it may pass) and after it stopped acknowledging for good (its file was
// lost), so that a load balancer sends buyers elsewhere and the operator
// sees why.
void on_healthz(bridge_pointer self, exchange_ptr ex) {
  const auto& health = self->state.env.store_health;
  auto fault = health ? health->fault.load() : store_fault::none;
  auto failing = health ? health->failing.load() : 0;
  const char* status = fault != store_fault::none ? "store_failed"
                       : failing > 0              ? "store_failing"
                                                  : "ok";
  http::response resp;
  resp.status = fault != store_fault::none || failing > 0 ? 503 : 200;
  resp.body = "{\"status\":\"" + std::string{status} + "\",\"node_id\":\""
              + self->state.env.node_id + "\"";
  if (fault != store_fault::none)
    resp.body += ",\"store_fault\":\"" + std::string{to_string(fault)} + "\"";
  if (failing > 0)
    resp.body += ",\"failed_commits\":" + std::to_string(failing);
  resp.body += "}";
  resp.headers.emplace_back("Cache-Control", "no-store");
  answer(self, ex, route_kind::healthz, std::move(resp));
}

// /metrics: the node's status, its items (left out with essential-only on:
// gathering them asks every item and queue), and the members.
void on_metrics(bridge_pointer self, exchange_ptr ex) {
  serve_shared(
    self, &bridge_state::metrics, &bridge_counters::metrics_renders,
    route_kind::metrics, std::move(ex), [self](shared_done done) {
      auto admin = self->state.env.admin;
      auto fail = [done](caf::error& err) { done(std::move(err)); };
      auto write = [self, admin, done,
                    fail](const node_status& st,
                          const std::vector<item_detail>& items) {
        self
          ->request(admin, hop(self), nodes_atom_v, self->state.env.admin_token,
                    false)
          .then(
            [self, done, st, items](std::vector<member_view>& members) {
              auto& env = self->state.env;
              switches_view sw;
              if (env.switches && env.gate_stats)
                sw =
                  view_of(*env.switches, *env.gate_stats, steady_clock_us()());
              http::response resp;
              resp.content_type = "text/plain; version=0.0.4";
              resp.body = format_metrics(
                *env.counters, st, items, env.remote.get(), members,
                env.gate_stats.get(), sw, env.buyers.get());
              done(std::move(resp));
            },
            fail);
      };
      self
        ->request(admin, hop(self), status_atom_v, self->state.env.admin_token)
        .then(
          [self, admin, write, fail](node_status& st) {
            if (essential_only(self))
              return write(st, {});
            self
              ->request(admin, hop(self), list_atom_v,
                        self->state.env.admin_token)
              .then([st, write](
                      std::vector<item_detail>& items) { write(st, items); },
                    fail);
          },
          fail);
    });
}

errc check_path_id(const route& rt) {
  switch (rt.kind) {
    case route_kind::item_get:
    case route_kind::item_stock:
    case route_kind::item_purchase:
    case route_kind::item_token:
    case route_kind::item_quiz:
    case route_kind::item_pause:
    case route_kind::item_resume:
    case route_kind::item_end:
      return valid_id(rt.id) ? errc::ok : errc::unknown_item;
    case route_kind::order_get:
    case route_kind::order_pay:
    case route_kind::order_cancel:
      return item_of_order(rt.id).empty() ? errc::unknown_order : errc::ok;
    default: return errc::ok;
  }
}

void dispatch(bridge_pointer self, exchange_ptr ex) {
  const auto& rt = ex->rt;
  if (rt.kind == route_kind::unmatched) {
    count(self, rt.kind, rt.error);
    auto resp =
      problem_response(rt.error, ex->request.method + " " + ex->request.target);
    if (!rt.allow.empty())
      resp.headers.emplace_back("Allow", rt.allow);
    return ex->reply(std::move(resp));
  }
  // An id no item or order can have is answered here: hostile bytes never
  // reach the directory or the logs.
  if (auto code = check_path_id(rt); code != errc::ok)
    return fail(self, ex, rt.kind, code, "no such id can exist");
  if (is_admin(rt.kind)) {
    if (auto code =
          check_token(ex->request.authorization, self->state.env.admin_token);
        code != errc::ok)
      return fail(self, ex, rt.kind, code, {});
  }
  switch (rt.kind) {
    case route_kind::healthz: return on_healthz(self, ex);
    case route_kind::metrics: return on_metrics(self, ex);
    case route_kind::items_create: return on_items_create(self, ex);
    case route_kind::items_list: return on_items_list(self, ex);
    case route_kind::item_get: return on_item_get(self, ex, rt);
    case route_kind::item_stock: return on_item_stock(self, ex, rt);
    case route_kind::item_purchase: return on_purchase(self, ex);
    case route_kind::item_token: return on_item_token(self, ex, rt);
    case route_kind::item_quiz: return on_item_quiz(self, ex, rt);
    case route_kind::item_pause:
      return on_item_admin(self, ex, rt, pause_atom_v);
    case route_kind::item_resume:
      return on_item_admin(self, ex, rt, resume_atom_v);
    case route_kind::item_end: return on_item_admin(self, ex, rt, end_atom_v);
    case route_kind::order_get: return on_order_get(self, ex, rt);
    case route_kind::order_pay:
      return on_order_change(self, ex, rt, pay_atom_v);
    case route_kind::order_cancel:
      return on_order_change(self, ex, rt, cancel_atom_v);
    case route_kind::unmatched: break;
  }
  SECKILL_ASSERT(false, "every matched route has a handler");
}

} // namespace

bridge_actor::behavior_type bridge_impl(bridge_pointer self, bridge_env env) {
  SECKILL_ASSERT(env.counters != nullptr, "a bridge counts what it answers");
  self->state.env = std::move(env);
  return {
    [self](http_exchange& ex) {
      dispatch(self, std::make_shared<http_exchange>(std::move(ex)));
    },
  };
}

} // namespace seckill
