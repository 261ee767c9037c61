// The front of the sale on a real seckill-node over real HTTP: buyers sign
// in with a JWT, a sale token is issued only once the sale is on, a quiz
// or a proof of work buys it, and each refusal is the designed answer.
// Every wait is bounded; nothing asserts on wall-clock speed.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <map>
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
  auto m = c.request("GET", "/metrics", {}, {admin_header()});
  CHECK(m.body.find("seckill_buyer_jwt_refused_total{reason=\"signature\"} 1\n")
        != std::string::npos);
  CHECK(m.body.find("seckill_buyer_jwt_refused_total{reason=\"missing\"} 1\n")
        != std::string::npos);
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

TEST_CASE("buyers: a crowd through the waiting room - every ticket holder "
          "who comes back is served in ticket order and no one twice",
          "[buyer]") {
  temp_dir tmp;
  node_process node(
    (tmp.path / "data").string(),
    buyer_args({"--seckill.admission-rate-per-s=20",
                "--seckill.admission-burst=1", "--seckill.waiting-room-max=2",
                "--seckill.wait-ms-max=50"}));
  http_client admin(node.http_port());
  item_def d;
  d.item_id = "wr";
  d.total = 1'000;
  REQUIRE(create_item(admin, d).status == 201);
  constexpr int buyers = 40;
  auto body_of = [](int i, const std::string& ticket) {
    auto user = "w" + std::to_string(i);
    auto body = R"({"quantity":1,"request_id":"r)" + std::to_string(i)
                + R"(","sale_token":")" + sale_token(user, "wr") + "\"";
    if (!ticket.empty())
      body += R"(,"ticket":")" + ticket + "\"";
    return body + "}";
  };
  // The crowd at once: four connections, ten buyers each, all pipelined.
  std::vector<http_reply> first(buyers);
  std::vector<std::thread> crowd;
  for (int k = 0; k < 4; ++k)
    crowd.emplace_back([&, k] {
      http_client c(node.http_port());
      std::string bytes;
      for (int i = k; i < buyers; i += 4) {
        auto body = body_of(i, {});
        bytes += "POST /api/v1/items/wr/purchase HTTP/1.1\r\nHost: x\r\n"
                 + buyer_header("w" + std::to_string(i))
                 + "\r\nContent-Type: application/json\r\nContent-Length: "
                 + std::to_string(body.size()) + "\r\n\r\n" + body;
      }
      c.send_raw(bytes);
      for (int i = k; i < buyers; i += 4)
        first[i] = c.read_reply();
    });
  for (auto& t : crowd)
    t.join();
  std::map<int64_t, int> holder_of; // ticket number -> buyer
  std::map<int, std::string> ticket_of;
  int served_at_once = 0;
  for (int i = 0; i < buyers; ++i) {
    INFO("buyer " << i << ": " << first[i].status << " " << first[i].body);
    if (first[i].status == 201) {
      ++served_at_once;
      continue;
    }
    REQUIRE(problem_mismatch(first[i], 429, "queued") == "");
    CHECK(!first[i].header("retry-after").empty());
    auto ticket = json_field(first[i].body, "ticket");
    auto number = std::stoll(ticket.substr(ticket.find('.', 3) + 1));
    CHECK(json_int(first[i].body, "position") >= 1);
    holder_of[number] = i;
    ticket_of[i] = ticket;
  }
  REQUIRE(holder_of.size() >= 20); // the room holds 2: most got tickets
  // Another buyer presenting a holder's ticket is refused.
  http_client c(node.http_port());
  auto [some_number, some_holder] = *holder_of.begin();
  auto stolen = body_of(buyers + 1, ticket_of[some_holder]);
  auto r = c.request("POST", "/api/v1/items/wr/purchase", stolen,
                     {buyer_header("w" + std::to_string(buyers + 1))});
  CHECK(problem_mismatch(r, 403, "invalid_token") == "");
  (void)some_number;
  // Every holder comes back with its ticket, in random order, until served.
  std::map<int, int64_t> order_seq_of; // buyer -> the order's number
  std::vector<int> left;
  for (auto& [number, i] : holder_of)
    left.push_back(i);
  for (int round = 0; round < 100 && !left.empty(); ++round) {
    std::vector<int> still;
    for (auto k = left.size(); k-- > 0;) { // back to front: not in order
      auto i = left[k];
      auto reply =
        c.request("POST", "/api/v1/items/wr/purchase", body_of(i, ticket_of[i]),
                  {buyer_header("w" + std::to_string(i))});
      if (reply.status == 200 || reply.status == 201) {
        auto id = json_field(reply.body, "order_id");
        order_seq_of[i] = std::stoll(id.substr(id.rfind('.') + 1));
      } else {
        INFO(reply.body);
        REQUIRE(reply.status == 429);
        ticket_of[i] = json_field(reply.body, "ticket");
        still.push_back(i);
      }
    }
    std::reverse(still.begin(), still.end());
    left = still;
    sleep_ms(100);
  }
  REQUIRE(left.empty());
  // Served in the order the tickets were issued: their orders' numbers grow
  // with the ticket numbers.
  int64_t last = 0;
  for (auto& [number, i] : holder_of) {
    INFO("ticket " << number << " buyer " << i);
    CHECK(order_seq_of[i] > last);
    last = order_seq_of[i];
  }
  // No one twice: one order per buyer, the stock says as much.
  auto stock = c.request("GET", "/api/v1/items/wr/stock");
  CHECK(json_int(stock.body, "sold")
        == served_at_once + static_cast<int64_t>(holder_of.size()));
  std::string out;
  REQUIRE(run_cli({"--node", "127.0.0.1:" + std::to_string(node.cluster_port()),
                   "--json", "item", "wr"},
                  out)
          == 0);
  CHECK(json_int(out, "tickets_issued")
        == static_cast<int64_t>(holder_of.size()));
  CHECK(node.terminate() == 0);
}
