// The buyer gate: who may buy, and when, decided on the HTTP thread before
// any actor sees the request (README.md, "Buyers").
//   Buyer routes (purchase, token, quiz, order read, pay, cancel) carry
//   `Authorization: Bearer JWT`, signed HS256 by the site's login service
//   with the buyer secret; the buyer is its `sub`, which must be a valid id.
//   Anything else is 401 unauthenticated with WWW-Authenticate: Bearer, and
//   the detail says why (missing, malformed, algorithm, signature, expired).
//   With `seckill.buyer-auth = "open"` (a node behind a trusted gateway) no
//   JWT is read and the body's user_id is the buyer, as before.
//   A sale token (POST .../token, issued by the bridge once the item is on
//   sale) binds user, item and expiry under the sale secret; a purchase that
//   carries one is checked here: forged, expired, or of another user or item
//   is 403 invalid_token. One that holds marks the purchase
//   (`sale_token_ok`); a token or quiz item refuses a purchase without it
//   (its queue, then the item: token_required).
//   A waiting-room ticket (429 queued, admission_queue.hpp) is signed here
//   for user, item and this node; a retry presenting it is checked here and
//   goes on with its number (`purchase::ticket`), or 403 invalid_token.
//   A quiz item's token costs a challenge (GET .../quiz): arithmetic for a
//   person, or a proof of work. Each challenge buys one token: the gate
//   remembers the challenges redeemed on this node until they expire, at
//   most limits::used_challenges_max (then busy until the oldest expire).
//
// The secrets are shared by every member of a cluster, so a JWT, a sale
// token or a challenge issued or checked on one node holds on every other.
// Thread-safe: any I/O thread and any bridge call it; only the set of used
// challenges takes a lock. It must never: accept an algorithm but HS256,
// compare a signature in time that depends on its bytes, or let the used
// set grow past its bound.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>

#include "actors/edge/switches.hpp"
#include "messages/buyer_tokens.hpp"
#include "messages/errors.hpp"
#include "messages/http.hpp"
#include "messages/limits.hpp"

namespace seckill {

enum class buyer_auth : uint8_t { jwt, open };

struct buyer_config {
  buyer_auth auth = buyer_auth::jwt;
  std::string jwt_secret;  // at least limits::secret_bytes_min with jwt
  std::string sale_secret; // at least limits::secret_bytes_min
  int64_t jwt_leeway_ms = limits::jwt_leeway_ms_default;
  int64_t sale_token_ttl_ms = limits::sale_token_ttl_ms_default;
  int64_t quiz_min_ms = limits::quiz_min_ms_default;
  /// This node (its tickets name it) and how long a ticket holds.
  std::string node_id;
  int64_t ticket_ttl_ms = limits::ticket_ttl_ms_default;
};

/// What the gate refused and issued, for /metrics and seckill-cli status.
struct buyer_counters {
  static constexpr std::size_t faults = 10; // tokens::fault's values
  std::array<std::atomic<int64_t>, faults> jwt_refused{};
  std::array<std::atomic<int64_t>, faults> sale_token_refused{};
  std::atomic<int64_t> sale_tokens_issued{0};
  std::atomic<int64_t> challenges_issued{0};
  std::atomic<int64_t> challenges_redeemed{0};
  std::atomic<int64_t> challenges_replayed{0};
};

/// Whether a route is a buyer's (needs the buyer JWT).
struct route;
bool is_buyer_route(const route& rt);

/// The 401 for a JWT refused with `f` (detail and WWW-Authenticate).
http::response unauthenticated(tokens::fault f);

/// The code a sale token's or a challenge's fault is answered with.
errc sale_token_errc(tokens::fault f);
errc challenge_errc(tokens::fault f);

class buyer_gate {
public:
  buyer_gate(buyer_config cfg, std::shared_ptr<node_switches> sw);

  buyer_gate(const buyer_gate&) = delete;
  buyer_gate& operator=(const buyer_gate&) = delete;

  const buyer_config& config() const { return cfg_; }
  buyer_counters& counters() { return counters_; }

  /// The buyer of a request on a buyer route, at `now_ms`: true and
  /// `buyer` (the JWT's subject; "" with buyer-auth open), or false and
  /// the 401 in `refused`.
  bool authenticate(const std::string& authorization, int64_t now_ms,
                    std::string& buyer, http::response& refused);

  /// ok, or invalid_token with the reason in `why`.
  errc check_sale_token(const std::string& token, const std::string& user,
                        const std::string& item, int64_t now_ms,
                        std::string& why);

  /// A sale token for `user` and `item`, valid from `now_ms` for the
  /// configured TTL; its expiry in `expires_ms`.
  std::string issue_sale_token(const std::string& user, const std::string& item,
                               int64_t now_ms, int64_t& expires_ms);

  /// A challenge of the kind and bits the switches say now.
  tokens::issued_challenge issue_challenge(const std::string& user,
                                           const std::string& item,
                                           int64_t now_ms,
                                           tokens::quiz_kind& kind, int& bits);

  /// Redeems `challenge` answered with `answer`: ok once per challenge; else
  /// the code (too_fast, wrong_answer, challenge_used, invalid_token, busy)
  /// and the reason in `why`.
  errc redeem_challenge(const std::string& challenge, const std::string& answer,
                        const std::string& user, const std::string& item,
                        int64_t now_ms, std::string& why);

  /// A waiting-room ticket (this node's queue's number `number`) for
  /// `user` and `item`, valid for the configured TTL.
  std::string issue_ticket(const std::string& user, const std::string& item,
                           int64_t number, int64_t now_ms);

  /// ok and the ticket's number in `number` (0: a ticket of another node,
  /// whose line is not here: the retry is a newcomer), or invalid_token
  /// with the reason in `why` (forged, of another user or item, expired).
  errc check_ticket(const std::string& ticket, const std::string& user,
                    const std::string& item, int64_t now_ms, int64_t& number,
                    std::string& why);

  /// Challenges remembered as used now.
  std::size_t used_challenges();

private:
  buyer_config cfg_;
  std::shared_ptr<node_switches> sw_;
  buyer_counters counters_;
  std::mutex mtx_; // guards the used set
  std::unordered_set<std::string> used_;
  std::deque<std::pair<int64_t, std::string>> used_expiry_; // oldest first
};

} // namespace seckill
