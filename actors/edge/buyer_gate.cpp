// The buyer gate (see buyer_gate.hpp).
#include "actors/edge/buyer_gate.hpp"

#include <random>

#include "actors/edge/http_rules.hpp"
#include "actors/edge/routes.hpp"
#include "actors/sale/item_book.hpp"
#include "messages/assert.hpp"

namespace seckill {

bool is_buyer_route(const route& rt) {
  switch (rt.kind) {
    case route_kind::item_purchase:
    case route_kind::item_token:
    case route_kind::item_quiz:
    case route_kind::order_get:
    case route_kind::order_pay:
    case route_kind::order_cancel: return true;
    default: return false;
  }
}

http::response unauthenticated(tokens::fault f) {
  std::string detail = describe(f);
  auto resp = problem_response(errc::unauthenticated,
                               f == tokens::fault::missing
                                 ? "no Authorization: Bearer buyer token"
                                 : "the buyer token: " + detail);
  // RFC 6750, section 3: the scheme, and why a presented token failed.
  std::string challenge = "Bearer realm=\"seckill\"";
  if (f != tokens::fault::missing)
    challenge +=
      ", error=\"invalid_token\", error_description=\"" + detail + "\"";
  resp.headers.emplace_back("WWW-Authenticate", challenge);
  return resp;
}

errc sale_token_errc(tokens::fault f) {
  return f == tokens::fault::none ? errc::ok : errc::invalid_token;
}

errc challenge_errc(tokens::fault f) {
  switch (f) {
    case tokens::fault::none: return errc::ok;
    case tokens::fault::too_fast: return errc::too_fast;
    case tokens::fault::wrong_answer: return errc::wrong_answer;
    default: return errc::invalid_token; // forged, expired, malformed
  }
}

buyer_gate::buyer_gate(buyer_config cfg, std::shared_ptr<node_switches> sw)
  : cfg_(std::move(cfg)), sw_(std::move(sw)) {
  SECKILL_ASSERT(cfg_.sale_secret.size() >= limits::secret_bytes_min,
                 "the sale secret is long enough for HS256");
  SECKILL_ASSERT(cfg_.auth == buyer_auth::open
                   || cfg_.jwt_secret.size() >= limits::secret_bytes_min,
                 "the buyer JWT secret is long enough for HS256");
  SECKILL_ASSERT(sw_ != nullptr, "the quiz's kind is a switch");
}

namespace {

void count(std::array<std::atomic<int64_t>, buyer_counters::faults>& a,
           tokens::fault f) {
  auto i = static_cast<std::size_t>(f);
  SECKILL_ASSERT(i < a.size(), "every fault has a counter");
  a[i].fetch_add(1, std::memory_order_relaxed);
}

/// "Bearer X" -> X; anything else -> "" (missing).
std::string bearer_of(const std::string& authorization) {
  constexpr std::string_view scheme = "Bearer ";
  if (authorization.size() <= scheme.size()
      || authorization.compare(0, scheme.size(), scheme) != 0)
    return {};
  return authorization.substr(scheme.size());
}

} // namespace

bool buyer_gate::authenticate(const std::string& authorization, int64_t now_ms,
                              std::string& buyer, http::response& refused) {
  if (cfg_.auth == buyer_auth::open)
    return buyer.clear(), true;
  auto token = bearer_of(authorization);
  auto f = tokens::fault::missing;
  tokens::jwt_claims claims;
  if (!token.empty())
    f = tokens::verify_jwt(token, cfg_.jwt_secret, now_ms, cfg_.jwt_leeway_ms,
                           claims);
  // The subject is a user id like any other: hostile bytes go no further.
  if (f == tokens::fault::none && !valid_id(claims.sub))
    f = tokens::fault::subject;
  if (f != tokens::fault::none) {
    count(counters_.jwt_refused, f);
    refused = unauthenticated(f);
    return false;
  }
  buyer = std::move(claims.sub);
  return true;
}

errc buyer_gate::check_sale_token(const std::string& token,
                                  const std::string& user,
                                  const std::string& item, int64_t now_ms,
                                  std::string& why) {
  auto f =
    tokens::check_sale_token(token, cfg_.sale_secret, user, item, now_ms);
  if (f == tokens::fault::none)
    return errc::ok;
  count(counters_.sale_token_refused, f);
  why = std::string{"the sale token: "} + describe(f)
        + (f == tokens::fault::signature
             ? " (forged, or issued for another user or item)"
             : "");
  return sale_token_errc(f);
}

std::string buyer_gate::issue_sale_token(const std::string& user,
                                         const std::string& item,
                                         int64_t now_ms, int64_t& expires_ms) {
  expires_ms = now_ms + cfg_.sale_token_ttl_ms;
  counters_.sale_tokens_issued.fetch_add(1, std::memory_order_relaxed);
  return tokens::mint_sale_token(cfg_.sale_secret, user, item, now_ms,
                                 expires_ms);
}

tokens::issued_challenge buyer_gate::issue_challenge(const std::string& user,
                                                     const std::string& item,
                                                     int64_t now_ms,
                                                     tokens::quiz_kind& kind,
                                                     int& bits) {
  kind = sw_->quiz_kind.load() != 0 ? tokens::quiz_kind::pow
                                    : tokens::quiz_kind::arithmetic;
  bits =
    kind == tokens::quiz_kind::pow ? static_cast<int>(sw_->pow_bits.load()) : 0;
  thread_local std::mt19937 gen{std::random_device{}()};
  std::uniform_int_distribution<int> term{10, 99};
  auto salt = tokens::random_hex(8);
  SECKILL_ASSERT(!salt.empty(), "OpenSSL's generator gives random bytes");
  counters_.challenges_issued.fetch_add(1, std::memory_order_relaxed);
  return tokens::mint_challenge(cfg_.sale_secret, user, item, kind, bits,
                                now_ms, salt, term(gen), term(gen));
}

errc buyer_gate::redeem_challenge(const std::string& challenge,
                                  const std::string& answer,
                                  const std::string& user,
                                  const std::string& item, int64_t now_ms,
                                  std::string& why) {
  tokens::challenge_facts facts;
  auto f = tokens::check_challenge(challenge, cfg_.sale_secret, user, item,
                                   answer, now_ms, cfg_.quiz_min_ms,
                                   limits::quiz_ttl_ms, facts);
  if (f != tokens::fault::none) {
    why = std::string{"the challenge: "} + describe(f);
    if (f == tokens::fault::too_fast)
      why += " (at least " + std::to_string(cfg_.quiz_min_ms)
             + " ms after it was issued)";
    return challenge_errc(f);
  }
  std::lock_guard<std::mutex> guard{mtx_};
  // Forget what expired: a challenge past its life fails its check anyway.
  while (!used_expiry_.empty() && used_expiry_.front().first <= now_ms) {
    used_.erase(used_expiry_.front().second);
    used_expiry_.pop_front();
  }
  if (used_.count(challenge) != 0) {
    counters_.challenges_replayed.fetch_add(1, std::memory_order_relaxed);
    why = "this challenge already bought a sale token: ask for a new one";
    return errc::challenge_used;
  }
  if (used_.size() >= limits::used_challenges_max) {
    why = "too many challenges redeemed on this node right now";
    return errc::busy;
  }
  used_.insert(challenge);
  used_expiry_.emplace_back(facts.issued_ms + limits::quiz_ttl_ms, challenge);
  SECKILL_ASSERT(used_.size() == used_expiry_.size()
                   && used_.size() <= limits::used_challenges_max,
                 "each used challenge expires once, and the set is bounded");
  counters_.challenges_redeemed.fetch_add(1, std::memory_order_relaxed);
  return errc::ok;
}

std::string buyer_gate::issue_ticket(const std::string& user,
                                     const std::string& item, int64_t number,
                                     int64_t now_ms) {
  return tokens::mint_ticket(cfg_.sale_secret, cfg_.node_id, user, item, number,
                             now_ms + cfg_.ticket_ttl_ms);
}

errc buyer_gate::check_ticket(const std::string& ticket,
                              const std::string& user, const std::string& item,
                              int64_t now_ms, int64_t& number,
                              std::string& why) {
  number = 0;
  auto node = tokens::ticket_node(ticket);
  if (!node.empty() && node != cfg_.node_id)
    return errc::ok; // another node's line: a newcomer here
  auto f = tokens::check_ticket(ticket, cfg_.sale_secret, cfg_.node_id, user,
                                item, now_ms, number);
  if (f == tokens::fault::none)
    return errc::ok;
  why = std::string{"the ticket: "} + describe(f)
        + (f == tokens::fault::signature
             ? " (forged, or issued for another user or item)"
             : "");
  return errc::invalid_token;
}

std::size_t buyer_gate::used_challenges() {
  std::lock_guard<std::mutex> guard{mtx_};
  return used_.size();
}

} // namespace seckill
