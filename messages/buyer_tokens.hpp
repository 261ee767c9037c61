// The signed strings of the front of the sale, all checked without a
// lookup (any node with the secret can check any of them):
//   a buyer JWT      the site's login service signs {sub, exp, nbf?} with
//                    HS256 (RFC 7519): who the buyer is;
//   a sale token     the node signs (user, item, issued, expires) once the
//                    item is on sale: the hidden purchase URL;
//   a challenge      the node signs (user, item, kind, bits, issued, salt,
//                    the answer's MAC): a quiz or a proof of work whose
//                    answer buys a sale token.
// HMAC-SHA-256, SHA-256 and base64 are OpenSSL's (libssl-dev); JSON is
// nlohmann/json's. Pure: no clock (the caller passes now), no state. The
// set of challenges already redeemed is the caller's (one use each).
//
// Every check is total: any byte string, of any length, is answered with a
// fault, never an exception or a crash, in time bounded by
// limits::jwt_bytes_max (a longer string is malformed before it is
// decoded). Signatures are compared in constant time (CRYPTO_memcmp).
// The only algorithm is HS256: "none", "HS512", "RS256" and any other
// header are refused before the signature is looked at, so a token cannot
// choose how it is checked.
//
// This file needs only OpenSSL and nlohmann/json (no CAF): seckill-bench
// compiles it to mint its buyers' tokens.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace seckill::tokens {

/// Why a presented string was refused (none: it holds).
enum class fault : uint8_t {
  none,
  missing,       // nothing presented
  malformed,     // not the format at all (parts, base64url, JSON, size)
  algorithm,     // a JWT whose header is not {"alg":"HS256"}
  signature,     // signed with another secret, or changed after signing
  expired,       // past exp (JWT) or its expiry (sale token, challenge)
  not_yet_valid, // a JWT before its nbf
  subject,       // a JWT without a string "sub"
  too_fast,      // a challenge answered sooner than the quiz's minimum
  wrong_answer,  // a challenge answered wrongly
};

/// The fault's name ("signature"), for metrics and logs.
const char* to_string(fault f);

/// A sentence for a problem's detail ("the token's signature does not
/// match").
const char* describe(fault f);

// -- Primitives ----------------------------------------------------------------

/// Base64url without padding (RFC 4648, section 5).
std::string base64url_encode(std::string_view bytes);

/// False on any character outside the url alphabet, on '=', on a length no
/// encoding has (4k+1), and on a non-canonical spelling (unused low bits of
/// the last character set): one byte string has one text.
bool base64url_decode(std::string_view text, std::string& out);

/// HMAC-SHA-256 of `data` under `key`: 32 bytes.
std::string hmac_sha256(std::string_view key, std::string_view data);

/// SHA-256 of `data`: 32 bytes.
std::string sha256(std::string_view data);

/// The number of leading zero bits of `bytes`.
int leading_zero_bits(std::string_view bytes);

/// `n` random bytes from OpenSSL's generator, as lower-case hex; "" if it
/// failed.
std::string random_hex(std::size_t n);

// -- Buyer JWTs ------------------------------------------------------------------

struct jwt_claims {
  std::string sub;
  int64_t exp_s = 0; // seconds since the epoch
  int64_t nbf_s = 0; // 0: none
};

/// A token as a login service signs it (for tests, the CLI and the bench).
std::string mint_jwt(std::string_view secret, const jwt_claims& c);

/// Checks `token` at `now_ms`, allowing `leeway_ms` of clock skew on exp
/// and nbf; fills `out` when none. The subject's syntax is the caller's.
fault verify_jwt(std::string_view token, std::string_view secret,
                 int64_t now_ms, int64_t leeway_ms, jwt_claims& out);

// -- Sale tokens ------------------------------------------------------------------

/// "s1.ISSUED_MS.EXPIRES_MS.SIG": SIG binds user, item and both times.
std::string mint_sale_token(std::string_view secret, std::string_view user,
                            std::string_view item, int64_t issued_ms,
                            int64_t expires_ms);

/// Checks `token` for `user` and `item` at `now_ms`: a token of another
/// user or item fails its signature.
fault check_sale_token(std::string_view token, std::string_view secret,
                       std::string_view user, std::string_view item,
                       int64_t now_ms);

// -- Waiting-room tickets ----------------------------------------------------------

/// "t1.NODE.NUMBER.EXPIRES_MS.SIG": SIG binds node, user, item, the
/// ticket's number in that node's queue, and the expiry.
std::string mint_ticket(std::string_view secret, std::string_view node,
                        std::string_view user, std::string_view item,
                        int64_t number, int64_t expires_ms);

/// The node a ticket names ("" if it is not a ticket at all); unchecked.
std::string_view ticket_node(std::string_view ticket);

/// Checks `ticket` for `node`, `user` and `item` at `now_ms`; its number
/// in `number` when none.
fault check_ticket(std::string_view ticket, std::string_view secret,
                   std::string_view node, std::string_view user,
                   std::string_view item, int64_t now_ms, int64_t& number);

// -- Challenges ------------------------------------------------------------------

enum class quiz_kind : uint8_t { arithmetic, pow };

const char* to_string(quiz_kind k);

/// What a challenge says of itself once its signature holds.
struct challenge_facts {
  quiz_kind kind = quiz_kind::arithmetic;
  int bits = 0; // pow: leading zero bits asked for
  int64_t issued_ms = 0;
};

/// A challenge and, for arithmetic, the question ("What is 37 + 48?")
/// whose answer it holds as a MAC. `salt`: random, fresh per challenge.
struct issued_challenge {
  std::string challenge;
  std::string question;
};

/// Arithmetic: `a + b` asked, its sum the answer. Pow: `bits` leading zero
/// bits of SHA-256(challenge + answer) asked, answer any decimal nonce.
issued_challenge mint_challenge(std::string_view secret, std::string_view user,
                                std::string_view item, quiz_kind kind, int bits,
                                int64_t issued_ms, std::string_view salt, int a,
                                int b);

/// Checks `challenge` for `user` and `item` and its `answer` at `now_ms`:
/// signature, then age (too_fast under `min_ms`, expired over `ttl_ms`),
/// then the answer. Fills `facts` once the signature holds.
fault check_challenge(std::string_view challenge, std::string_view secret,
                      std::string_view user, std::string_view item,
                      std::string_view answer, int64_t now_ms, int64_t min_ms,
                      int64_t ttl_ms, challenge_facts& facts);

/// A nonce that solves a pow challenge of `bits` (the bench's and tests'
/// solver): counts up from 0.
std::string solve_pow(std::string_view challenge, int bits);

} // namespace seckill::tokens
