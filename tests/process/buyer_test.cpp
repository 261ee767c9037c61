// The front of the sale on a real seckill-node over real HTTP: buyers sign
// in with a JWT, a sale token is issued only once the sale is on, a quiz
// or a proof of work buys it, and each refusal is the designed answer.
// Every wait is bounded; nothing asserts on wall-clock speed.
#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "messages/buyer_tokens.hpp"
#include "tests/support/node_harness.hpp"
#include "tests/support/sim_world.hpp"

using namespace seckill;
using namespace seckill::test;

namespace {

std::vector<std::string> buyer_args(std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"--seckill.session-rate-per-s=1000",
                                   "--seckill.session-burst=1000",
                                   "--seckill.quiz-min-ms=300"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

std::string buy_body(const std::string& request_id,
                     const std::string& sale = {}) {
  auto body = R"({"quantity":1,"request_id":")" + request_id + "\"";
  if (!sale.empty())
    body += R"(,"sale_token":")" + sale + "\"";
  return body + "}";
}

http_reply buy(http_client& c, const std::string& item, const std::string& user,
               const std::string& request_id, const std::string& sale = {}) {
  return c.request("POST", "/api/v1/items/" + item + "/purchase",
                   buy_body(request_id, sale), {buyer_header(user)});
}

http_reply ask_token(http_client& c, const std::string& item,
                     const std::string& user, const std::string& body = {}) {
  return c.request("POST", "/api/v1/items/" + item + "/token", body,
                   {buyer_header(user)});
}

void sleep_ms(int64_t ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

/// "What is 37 + 48?" -> "85".
std::string sum_of(const std::string& question) {
  int a = 0, b = 0;
  REQUIRE(std::sscanf(question.c_str(), "What is %d + %d?", &a, &b) == 2);
  return std::to_string(a + b);
}

} // namespace

TEST_CASE("buyers: no JWT, a forged or expired JWT is 401 and takes nothing",
          "[buyer]") {
  temp_dir tmp;
  node_process node((tmp.path / "data").string(), buyer_args());
  http_client c(node.http_port());
  c.set_auto_buyer(false);
  item_def d;
  d.item_id = "jw";
  d.total = 5;
  d.admission = "open";
  REQUIRE(create_item(c, d).status == 201);
  auto body = R"({"user_id":"alice","quantity":1,"request_id":"r1"})";
  auto target = "/api/v1/items/jw/purchase";
  auto none = c.request("POST", target, body);
  CHECK(problem_mismatch(none, 401, "unauthenticated") == "");
  CHECK(none.header("www-authenticate") == "Bearer realm=\"seckill\"");
  tokens::jwt_claims claims{"alice", epoch_ms() / 1000 + 60, 0};
  auto forged =
    tokens::mint_jwt("not-the-node-secret-0123456789abcdef", claims);
  auto r = c.request("POST", target, body, {"Authorization: Bearer " + forged});
  CHECK(problem_mismatch(r, 401, "unauthenticated") == "");
  CHECK(r.body.find("signature") != std::string::npos);
  CHECK(r.header("www-authenticate").find("error=\"invalid_token\"")
        != std::string::npos);
  auto old = buyer_jwt("alice", -120); // expired beyond the leeway
  r = c.request("POST", target, body, {"Authorization: Bearer " + old});
  CHECK(problem_mismatch(r, 401, "unauthenticated") == "");
  CHECK(r.body.find("expired") != std::string::npos);
  auto none_alg =
    tokens::base64url_encode(R"({"alg":"none"})") + "."
    + tokens::base64url_encode(R"({"sub":"alice","exp":9999999999})") + ".";
  r = c.request("POST", target, body, {"Authorization: Bearer " + none_alg});
  CHECK(problem_mismatch(r, 401, "unauthenticated") == "");
  CHECK(r.body.find("HS256") != std::string::npos);
  // The body's user must be the JWT's subject.
  r = c.request("POST", target, body, {buyer_header("mallory")});
  CHECK(problem_mismatch(r, 403, "user_mismatch") == "");
  auto stock = c.request("GET", "/api/v1/items/jw/stock");
  CHECK(json_int(stock.body, "available") == 5);
  // The right JWT buys; the user is the JWT's even without a body user_id.
  CHECK(c.request("POST", target, body, {buyer_header("alice")}).status == 201);
  CHECK(buy(c, "jw", "bob", "r2").status == 201);
  auto order =
    c.request("GET", "/api/v1/orders/jw.2", {}, {buyer_header("bob")});
  CHECK(json_field(order.body, "user_id") == "bob");
  CHECK(node.terminate() == 0);
}

TEST_CASE("buyers: a sale token only once the sale is on, and a purchase "
          "needs it",
          "[buyer]") {
  temp_dir tmp;
  node_process node((tmp.path / "data").string(), buyer_args());
  http_client c(node.http_port());
  item_def d;
  d.item_id = "tk";
  d.total = 3;
  d.starts_at_ms = epoch_ms() + 1'500;
  REQUIRE(create_item(c, d).status == 201);
  auto early = ask_token(c, "tk", "alice");
  CHECK(problem_mismatch(early, 403, "not_started") == "");
  CHECK(json_int(early.body, "starts_at_ms") == d.starts_at_ms);
  CHECK(!early.header("retry-after").empty());
  for (int i = 0; i < 100 && epoch_ms() < d.starts_at_ms + 50; ++i)
    sleep_ms(50);
  auto got = ask_token(c, "tk", "alice");
  REQUIRE(got.status == 200);
  auto sale = json_field(got.body, "sale_token");
  CHECK(json_int(got.body, "expires_ms") > epoch_ms());
  // Without, with a forged one, with another user's: refused at the door.
  CHECK(problem_mismatch(buy(c, "tk", "alice", "a1"), 403, "token_required")
        == "");
  auto forged = sale;
  forged.back() = forged.back() == 'A' ? 'B' : 'A';
  CHECK(
    problem_mismatch(buy(c, "tk", "alice", "a1", forged), 403, "invalid_token")
    == "");
  CHECK(problem_mismatch(buy(c, "tk", "bob", "b1", sale), 403, "invalid_token")
        == "");
  CHECK(json_int(c.request("GET", "/api/v1/items/tk/stock").body, "available")
        == 3);
  auto placed = buy(c, "tk", "alice", "a1", sale);
  CHECK(placed.status == 201);
  // A retry of the same request comes back with its order.
  CHECK(buy(c, "tk", "alice", "a1", sale).status == 200);
  // Another user's cancel is 404, as if the order did not exist.
  auto id = json_field(placed.body, "order_id");
  CHECK(problem_mismatch(c.request("POST", "/api/v1/orders/" + id + "/cancel",
                                   {}, {buyer_header("bob")}),
                         404, "unknown_order")
        == "");
  // Sold out: no token either.
  CHECK(buy(c, "tk", "bob", "b1",
            json_field(ask_token(c, "tk", "bob").body, "sale_token"))
          .status
        == 201);
  CHECK(buy(c, "tk", "carol", "c1",
            json_field(ask_token(c, "tk", "carol").body, "sale_token"))
          .status
        == 201);
  CHECK(problem_mismatch(ask_token(c, "tk", "dave"), 409, "sold_out") == "");
  CHECK(node.terminate() == 0);
}

TEST_CASE("buyers: a quiz answered too fast, wrongly or twice is refused - "
          "solved it buys a token",
          "[buyer]") {
  temp_dir tmp;
  node_process node((tmp.path / "data").string(), buyer_args());
  http_client c(node.http_port());
  item_def d;
  d.item_id = "qz";
  d.total = 5;
  d.admission = "quiz";
  REQUIRE(create_item(c, d).status == 201);
  CHECK(problem_mismatch(ask_token(c, "qz", "alice"), 403, "token_required")
        == "");
  auto quiz =
    c.request("GET", "/api/v1/items/qz/quiz", {}, {buyer_header("alice")});
  REQUIRE(quiz.status == 200);
  CHECK(json_field(quiz.body, "kind") == "arithmetic");
  auto challenge = json_field(quiz.body, "challenge");
  auto answer = sum_of(json_field(quiz.body, "question"));
  auto body =
    R"({"challenge":")" + challenge + R"(","answer":")" + answer + "\"}";
  CHECK(problem_mismatch(ask_token(c, "qz", "alice", body), 403, "too_fast")
        == "");
  sleep_ms(350);
  auto wrong = R"({"challenge":")" + challenge + R"(","answer":"1000"})";
  CHECK(
    problem_mismatch(ask_token(c, "qz", "alice", wrong), 403, "wrong_answer")
    == "");
  CHECK(problem_mismatch(ask_token(c, "qz", "bob", body), 403, "invalid_token")
        == "");
  auto got = ask_token(c, "qz", "alice", body);
  REQUIRE(got.status == 200);
  CHECK(
    problem_mismatch(ask_token(c, "qz", "alice", body), 403, "challenge_used")
    == "");
  CHECK(buy(c, "qz", "alice", "a1", json_field(got.body, "sale_token")).status
        == 201);

  // Proof of work, switched on at run time through the CLI.
  std::string out;
  REQUIRE(run_cli({"--node", "127.0.0.1:" + std::to_string(node.cluster_port()),
                   "switch", "quiz-kind", "pow"},
                  out)
          == 0);
  REQUIRE(run_cli({"--node", "127.0.0.1:" + std::to_string(node.cluster_port()),
                   "switch", "pow-bits", "12"},
                  out)
          == 0);
  quiz = c.request("GET", "/api/v1/items/qz/quiz", {}, {buyer_header("bob")});
  REQUIRE(quiz.status == 200);
  CHECK(json_field(quiz.body, "kind") == "pow");
  CHECK(json_int(quiz.body, "difficulty_bits") == 12);
  challenge = json_field(quiz.body, "challenge");
  auto nonce = tokens::solve_pow(challenge, 12);
  sleep_ms(350);
  body = R"({"challenge":")" + challenge + R"(","answer":")" + nonce + "\"}";
  got = ask_token(c, "qz", "bob", body);
  REQUIRE(got.status == 200);
  CHECK(buy(c, "qz", "bob", "b1", json_field(got.body, "sale_token")).status
        == 201);
  CHECK(node.terminate() == 0);
}

TEST_CASE("buyers: seckill-cli buyer-token signs with the node's generated "
          "secret, and buyer-auth open believes the body",
          "[buyer]") {
  temp_dir tmp;
  auto dir = (tmp.path / "data").string();
  {
    // No secret configured: the node generates one into its data dir.
    node_process node(dir, {"--seckill.buyer-jwt-secret="});
    http_client c(node.http_port());
    c.set_auto_buyer(false);
    item_def d;
    d.item_id = "cl";
    d.admission = "open";
    REQUIRE(create_item(c, d).status == 201);
    std::string jwt;
    REQUIRE(run_process(SECKILL_CLI_BIN,
                        {"buyer-token", "--user", "alice", "--data-dir", dir},
                        jwt)
            == 0);
    while (!jwt.empty() && jwt.back() == '\n')
      jwt.pop_back();
    auto r = c.request("POST", "/api/v1/items/cl/purchase", buy_body("r1"),
                       {"Authorization: Bearer " + jwt});
    CHECK(r.status == 201);
    CHECK(json_field(r.body, "user_id") == "alice");
    CHECK(node.terminate() == 0);
  }
  node_process open(dir, {"--seckill.buyer-auth=open"});
  http_client c(open.http_port());
  c.set_auto_buyer(false);
  auto r = c.request("POST", "/api/v1/items/cl/purchase",
                     R"({"user_id":"bob","quantity":1,"request_id":"r2"})");
  CHECK(r.status == 201);
  CHECK(open.log().find("buyer_auth_open") != std::string::npos);
  CHECK(open.terminate() == 0);
}
