// The signed strings of the front of the sale (messages/buyer_tokens.hpp) and
// the buyer gate (actors/edge/buyer_gate.hpp), with hostile inputs: every
// way a token can be forged, changed, replayed, expired or malformed.
#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include "actors/edge/buyer_gate.hpp"
#include "actors/edge/routes.hpp"
#include "messages/buyer_tokens.hpp"
#include "messages/limits.hpp"

using namespace seckill;
using tokens::fault;

namespace {

const std::string secret = "unit-test-secret-0123456789abcdefghij";
const std::string other_secret = "another-secret-0123456789abcdefghijkl";
constexpr int64_t now_ms = 1'800'000'000'000;

std::string jwt_for(const std::string& sub, int64_t exp_s, int64_t nbf_s = 0,
                    const std::string& key = secret) {
  tokens::jwt_claims c;
  c.sub = sub;
  c.exp_s = exp_s;
  c.nbf_s = nbf_s;
  return tokens::mint_jwt(key, c);
}

fault verify(const std::string& token, int64_t leeway_ms = 0) {
  tokens::jwt_claims c;
  return tokens::verify_jwt(token, secret, now_ms, leeway_ms, c);
}

/// A JWT of `header` and `payload` (JSON texts) signed with `key`.
std::string hand_made(const std::string& header, const std::string& payload,
                      const std::string& key = secret) {
  auto part =
    tokens::base64url_encode(header) + "." + tokens::base64url_encode(payload);
  return part + "." + tokens::base64url_encode(tokens::hmac_sha256(key, part));
}

} // namespace

TEST_CASE("base64url: round trips and refuses what is not base64url",
          "[tokens]") {
  for (const std::string& s :
       std::vector<std::string>{"", "f", "fo", "foo", "foob", "fooba", "foobar",
                                std::string("\0\xff\xfe", 3)}) {
    std::string back;
    REQUIRE(tokens::base64url_decode(tokens::base64url_encode(s), back));
    CHECK(back == s);
  }
  CHECK(tokens::base64url_encode("\xfb\xff") == "-_8"); // url alphabet
  std::string out;
  CHECK_FALSE(tokens::base64url_decode("Zm9v=", out)); // padding
  CHECK_FALSE(tokens::base64url_decode("+/8", out));   // standard alphabet
  CHECK_FALSE(tokens::base64url_decode("Zm9vY", out)); // 4k+1 characters
  CHECK_FALSE(tokens::base64url_decode("Zm 9v", out)); // a space
  // "Zg" is "f"; "Zh" spells the same byte with a stray low bit: refused,
  // or a signature could be respelled (found by fuzz_buyer_tokens).
  CHECK(tokens::base64url_decode("Zg", out));
  CHECK_FALSE(tokens::base64url_decode("Zh", out));
  CHECK(tokens::leading_zero_bits(std::string("\x00\x00\x10", 3)) == 19);
  CHECK(tokens::leading_zero_bits(std::string("\x80", 1)) == 0);
}

TEST_CASE("buyer JWT: a valid token holds and names its subject", "[tokens]") {
  tokens::jwt_claims c;
  auto t = jwt_for("alice", now_ms / 1000 + 60);
  REQUIRE(tokens::verify_jwt(t, secret, now_ms, 0, c) == fault::none);
  CHECK(c.sub == "alice");
  // A token another implementation made (Python's hmac and base64, this
  // secret, header {"typ":"JWT","alg":"HS256"}, sub bob, exp 1800000060).
  CHECK(verify("eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9."
               "eyJzdWIiOiJib2IiLCJleHAiOjE4MDAwMDAwNjB9."
               "eVDJM-KXd9WX9D6ESvN393VKLnDBDguSqlD4uSLkU9Q")
        == fault::none);
}

TEST_CASE("buyer JWT: hostile tokens are refused, each with its reason",
          "[tokens]") {
  auto exp = now_ms / 1000 + 60;
  auto payload = R"({"sub":"alice","exp":)" + std::to_string(exp) + "}";
  auto good = jwt_for("alice", exp);
  CHECK(verify("") == fault::missing);
  // alg none: no signature at all, and with one.
  CHECK(verify(tokens::base64url_encode(R"({"alg":"none"})") + "."
               + tokens::base64url_encode(payload) + ".")
        == fault::algorithm);
  CHECK(verify(hand_made(R"({"alg":"none"})", payload)) == fault::algorithm);
  for (auto h :
       {R"({"alg":"HS512"})", R"({"alg":"RS256"})", R"({"alg":"hs256"})",
        R"({"typ":"JWT"})", R"({"alg":256})",
        R"({"alg":"HS256","crit":["exp"]})", R"({"alg":"HS256","jwk":{}})"})
    CHECK(verify(hand_made(h, payload)) == fault::algorithm);
  // A changed payload keeps the old signature.
  auto dot = good.find('.');
  auto dot2 = good.find('.', dot + 1);
  auto forged = good.substr(0, dot + 1)
                + tokens::base64url_encode(R"({"sub":"mallory","exp":)"
                                           + std::to_string(exp) + "}")
                + good.substr(dot2);
  CHECK(verify(forged) == fault::signature);
  // Another secret's signature.
  CHECK(verify(jwt_for("alice", exp, 0, other_secret)) == fault::signature);
  // One bit of the signature flipped.
  auto flipped = good;
  flipped.back() = flipped.back() == 'A' ? 'B' : 'A';
  CHECK(verify(flipped) == fault::signature);
  // Expired by one second (exp is in seconds), valid one before it.
  CHECK(verify(jwt_for("alice", now_ms / 1000)) == fault::expired);
  CHECK(verify(jwt_for("alice", now_ms / 1000 + 1)) == fault::none);
  CHECK(verify(jwt_for("alice", now_ms / 1000), 1) == fault::none); // leeway
  CHECK(verify(jwt_for("alice", exp, now_ms / 1000 + 10))
        == fault::not_yet_valid);
  CHECK(verify(jwt_for("alice", exp, now_ms / 1000 + 10), 10'000)
        == fault::none);
  // Claims of the wrong shape.
  CHECK(verify(hand_made(R"({"alg":"HS256"})", R"({"exp":1900000000})"))
        == fault::subject);
  CHECK(verify(hand_made(R"({"alg":"HS256"})", R"({"sub":7,"exp":1900000000})"))
        == fault::subject);
  CHECK(verify(hand_made(R"({"alg":"HS256"})", R"({"sub":"a"})"))
        == fault::malformed); // no exp: a token for ever is refused
  CHECK(verify(hand_made(R"({"alg":"HS256"})", R"({"sub":"a","exp":"x"})"))
        == fault::malformed);
  // Malformed: parts, base64, JSON, size.
  for (const std::string& t : std::vector<std::string>{
         "abc", "a.b", "a.b.c.d", "..", "!!.@@.##",
         tokens::base64url_encode("[1]") + ".e30.sig", good + "x.y"})
    CHECK(verify(t) == fault::malformed);
  CHECK(verify(std::string(limits::jwt_bytes_max + 1, 'a'))
        == fault::malformed);
  std::string huge =
    hand_made(R"({"alg":"HS256"})", R"({"sub":")" + std::string(5000, 'a')
                                      + R"(","exp":1900000000})");
  CHECK(verify(huge) == fault::malformed);
}

TEST_CASE("sale token: bound to user, item and time", "[tokens]") {
  auto t =
    tokens::mint_sale_token(secret, "alice", "sku-1", now_ms, now_ms + 60'000);
  auto check = [&](const std::string& token, const std::string& user,
                   const std::string& item, int64_t at) {
    return tokens::check_sale_token(token, secret, user, item, at);
  };
  CHECK(check(t, "alice", "sku-1", now_ms) == fault::none);
  CHECK(check(t, "alice", "sku-1", now_ms + 59'999) == fault::none);
  CHECK(check(t, "alice", "sku-1", now_ms + 60'000) == fault::expired);
  CHECK(check(t, "bob", "sku-1", now_ms) == fault::signature);
  CHECK(check(t, "alice", "sku-2", now_ms) == fault::signature);
  CHECK(tokens::check_sale_token(t, other_secret, "alice", "sku-1", now_ms)
        == fault::signature);
  // A later expiry written into the token breaks its signature.
  auto stretched = t;
  auto at = stretched.find(std::to_string(now_ms + 60'000));
  stretched.replace(at, 13, std::to_string(now_ms + 99'000));
  CHECK(check(stretched, "alice", "sku-1", now_ms) == fault::signature);
  // The separator cannot be smuggled: "al" + "ice\nsku-1" is not a pair.
  CHECK(check(t, "alice\nsku-1", "", now_ms) == fault::signature);
  CHECK(check("", "alice", "sku-1", now_ms) == fault::missing);
  for (const std::string& bad : std::vector<std::string>{
         "s1", "s1.1.2", "s2.1.2.x", "s1.-1.2.x", "s1.01.2.x", "s1.1.2.x.y",
         std::string(300, 's')})
    CHECK(check(bad, "alice", "sku-1", now_ms) == fault::malformed);
}

TEST_CASE("ticket: bound to node, user, item, number and expiry", "[tokens]") {
  auto t =
    tokens::mint_ticket(secret, "n1", "alice", "sku-1", 7, now_ms + 1'000);
  int64_t n = 0;
  CHECK(tokens::check_ticket(t, secret, "n1", "alice", "sku-1", now_ms, n)
        == fault::none);
  CHECK(n == 7);
  CHECK(tokens::ticket_node(t) == "n1");
  CHECK(tokens::check_ticket(t, secret, "n1", "bob", "sku-1", now_ms, n)
        == fault::signature);
  CHECK(tokens::check_ticket(t, secret, "n2", "alice", "sku-1", now_ms, n)
        == fault::signature);
  // Another node's name written in (found by fuzz_buyer_tokens).
  auto moved = t;
  moved.replace(3, 2, "n9");
  CHECK(tokens::check_ticket(moved, secret, "n1", "alice", "sku-1", now_ms, n)
        == fault::signature);
  auto renumbered = t;
  renumbered.replace(renumbered.find(".7."), 3, ".1.");
  CHECK(
    tokens::check_ticket(renumbered, secret, "n1", "alice", "sku-1", now_ms, n)
    == fault::signature);
  CHECK(
    tokens::check_ticket(t, secret, "n1", "alice", "sku-1", now_ms + 1'000, n)
    == fault::expired);
}

TEST_CASE("challenge: arithmetic and proof of work, bound and timed",
          "[tokens]") {
  auto c = tokens::mint_challenge(secret, "alice", "sku-1",
                                  tokens::quiz_kind::arithmetic, 0, now_ms,
                                  "00ff00ff00ff00ff", 37, 48);
  CHECK(c.question == "What is 37 + 48?");
  tokens::challenge_facts f;
  auto check = [&](const std::string& ch, const std::string& user,
                   const std::string& item, const std::string& answer,
                   int64_t at) {
    return tokens::check_challenge(ch, secret, user, item, answer, at, 1'000,
                                   limits::quiz_ttl_ms, f);
  };
  CHECK(check(c.challenge, "alice", "sku-1", "85", now_ms + 1'000)
        == fault::none);
  CHECK(check(c.challenge, "alice", "sku-1", "85", now_ms + 999)
        == fault::too_fast);
  CHECK(check(c.challenge, "alice", "sku-1", "86", now_ms + 1'000)
        == fault::wrong_answer);
  CHECK(check(c.challenge, "alice", "sku-1", "085", now_ms + 1'000)
        == fault::wrong_answer);
  CHECK(check(c.challenge, "alice", "sku-1", "-85", now_ms + 1'000)
        == fault::wrong_answer);
  CHECK(
    check(c.challenge, "alice", "sku-1", "85", now_ms + limits::quiz_ttl_ms + 1)
    == fault::expired);
  CHECK(check(c.challenge, "bob", "sku-1", "85", now_ms + 1'000)
        == fault::signature);
  CHECK(check(c.challenge, "alice", "sku-2", "85", now_ms + 1'000)
        == fault::signature);
  // An earlier issue time written in (to skip the wait) breaks the signature.
  auto early = c.challenge;
  early.replace(early.find(std::to_string(now_ms)), 13,
                std::to_string(now_ms - 5'000));
  CHECK(check(early, "alice", "sku-1", "85", now_ms + 10) == fault::signature);

  auto p =
    tokens::mint_challenge(secret, "alice", "sku-1", tokens::quiz_kind::pow, 12,
                           now_ms, "0123456789abcdef", 0, 0);
  auto nonce = tokens::solve_pow(p.challenge, 12);
  CHECK(check(p.challenge, "alice", "sku-1", nonce, now_ms + 1'000)
        == fault::none);
  CHECK(f.kind == tokens::quiz_kind::pow);
  CHECK(f.bits == 12);
  // A nonce that gives fewer zero bits than asked.
  for (int n = 0;; ++n) {
    auto hash = tokens::sha256(p.challenge + std::to_string(n));
    if (tokens::leading_zero_bits(hash) < 12) {
      CHECK(
        check(p.challenge, "alice", "sku-1", std::to_string(n), now_ms + 1'000)
        == fault::wrong_answer);
      break;
    }
  }
  // Fewer bits claimed than issued: the signature covers the difficulty.
  auto easier = p.challenge;
  easier.replace(easier.find(".12."), 4, ".1.");
  CHECK(check(easier, "alice", "sku-1", "0", now_ms + 1'000)
        == fault::signature);
  for (const std::string& bad : std::vector<std::string>{
         "q1", "q1.x.0.1.s.m.sig", "q1.a.0.1.s.m", std::string(600, 'q')})
    CHECK(check(bad, "alice", "sku-1", "1", now_ms + 1'000)
          == fault::malformed);
}

TEST_CASE("buyer gate: JWT, sale token and a challenge redeemed once",
          "[tokens]") {
  auto sw = std::make_shared<node_switches>();
  buyer_config cfg;
  cfg.jwt_secret = secret;
  cfg.sale_secret = other_secret;
  cfg.quiz_min_ms = 1'000;
  buyer_gate gate{cfg, sw};
  std::string buyer;
  http::response refused;
  CHECK_FALSE(gate.authenticate("", now_ms, buyer, refused));
  CHECK(refused.status == 401);
  bool has_challenge = false;
  for (auto& [name, value] : refused.headers)
    has_challenge =
      has_challenge
      || (name == "WWW-Authenticate" && value.rfind("Bearer realm=", 0) == 0);
  CHECK(has_challenge);
  CHECK_FALSE(gate.authenticate("Basic abc", now_ms, buyer, refused));
  auto t = jwt_for("alice", now_ms / 1000 + 60);
  REQUIRE(gate.authenticate("Bearer " + t, now_ms, buyer, refused));
  CHECK(buyer == "alice");
  // A subject no user id can be: refused at the gate.
  CHECK_FALSE(gate.authenticate("Bearer " + jwt_for("a b", now_ms / 1000 + 60),
                                now_ms, buyer, refused));
  CHECK(refused.body.find("subject") != std::string::npos);

  int64_t expires = 0;
  auto sale = gate.issue_sale_token("alice", "sku-1", now_ms, expires);
  CHECK(expires == now_ms + cfg.sale_token_ttl_ms);
  std::string why;
  CHECK(gate.check_sale_token(sale, "alice", "sku-1", now_ms, why) == errc::ok);
  CHECK(gate.check_sale_token(sale, "bob", "sku-1", now_ms, why)
        == errc::invalid_token);
  CHECK(why.find("another user or item") != std::string::npos);

  tokens::quiz_kind kind{};
  int bits = 0;
  sw->quiz_kind = 1;
  sw->pow_bits = 8;
  auto c = gate.issue_challenge("alice", "sku-1", now_ms, kind, bits);
  CHECK(kind == tokens::quiz_kind::pow);
  CHECK(bits == 8);
  auto nonce = tokens::solve_pow(c.challenge, 8);
  CHECK(gate.redeem_challenge(c.challenge, nonce, "alice", "sku-1",
                              now_ms + 500, why)
        == errc::too_fast);
  CHECK(gate.redeem_challenge(c.challenge, nonce, "alice", "sku-1",
                              now_ms + 1'000, why)
        == errc::ok);
  CHECK(gate.redeem_challenge(c.challenge, nonce, "alice", "sku-1",
                              now_ms + 1'001, why)
        == errc::challenge_used);
  // Another user replaying it fails its signature before the used set.
  CHECK(gate.redeem_challenge(c.challenge, nonce, "bob", "sku-1",
                              now_ms + 1'001, why)
        == errc::invalid_token);
  CHECK(gate.used_challenges() == 1);
  // Once expired it is forgotten (and fails its age check anyway).
  auto c2 = gate.issue_challenge("alice", "sku-1",
                                 now_ms + limits::quiz_ttl_ms + 10, kind, bits);
  CHECK(gate.redeem_challenge(c2.challenge, tokens::solve_pow(c2.challenge, 8),
                              "alice", "sku-1",
                              now_ms + limits::quiz_ttl_ms + 1'010, why)
        == errc::ok);
  CHECK(gate.used_challenges() == 1);
}

TEST_CASE("buyer routes: which routes need the buyer JWT", "[tokens]") {
  for (auto [method, target] : {std::pair{"POST", "/api/v1/items/a/purchase"},
                                std::pair{"POST", "/api/v1/items/a/token"},
                                std::pair{"GET", "/api/v1/items/a/quiz"},
                                std::pair{"GET", "/api/v1/orders/a.1"},
                                std::pair{"POST", "/api/v1/orders/a.1/pay"},
                                std::pair{"POST", "/api/v1/orders/a.1/cancel"}})
    CHECK(is_buyer_route(match_route(method, target)));
  for (auto [method, target] :
       {std::pair{"GET", "/api/v1/items/a"},
        std::pair{"GET", "/api/v1/items/a/stock"}, std::pair{"GET", "/healthz"},
        std::pair{"POST", "/api/v1/items"}})
    CHECK_FALSE(is_buyer_route(match_route(method, target)));
}
