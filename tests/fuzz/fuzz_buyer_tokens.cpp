// libFuzzer target: arbitrary bytes as what a buyer presents to the front
// door (messages/buyer_tokens.hpp): a buyer JWT, a sale token, a
// waiting-room ticket, a challenge and its answer. The first byte picks
// which; the rest is the string. Asserted (an abort is a finding):
// - no crash, hang or sanitizer report on any input, of any length;
// - nothing forged holds: the checks run under a secret the fuzzer cannot
//   know, so an input that holds must be one of the strings minted here
//   (the seeds), byte for byte;
// - base64url decoding round-trips what it accepts (encode(decode(x)) == x);
// - a JWT that holds names a subject and an expiry in the future.
#include <cstddef>
#include <cstdint>
#include <string>

#include "messages/buyer_tokens.hpp"
#include "tests/fuzz/fuzz_support.hpp"

using seckill::fuzz::require;
namespace tokens = seckill::tokens;

namespace {

constexpr int64_t now_ms = 1'800'000'000'000;
const std::string secret = "fuzz-secret-0123456789abcdefghijklmnop";

// The strings a node or a login service would mint with the secret: the
// only inputs allowed to hold.
const std::string& minted_jwt() {
  static const std::string t =
    tokens::mint_jwt(secret, {"alice", now_ms / 1000 + 60, 0});
  return t;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size == 0)
    return 0;
  std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::string decoded;
  if (tokens::base64url_decode(text, decoded))
    require(tokens::base64url_encode(decoded) == text,
            "base64url decodes only what it encodes back the same");
  switch (data[0] % 4) {
    case 0: {
      tokens::jwt_claims c;
      auto f = tokens::verify_jwt(text, secret, now_ms, 0, c);
      if (f == tokens::fault::none) {
        require(text == minted_jwt(), "only a minted JWT holds");
        require(!c.sub.empty() && c.exp_s * 1000 > now_ms,
                "a JWT that holds has a subject and is not expired");
      }
      break;
    }
    case 1: {
      auto f = tokens::check_sale_token(text, secret, "alice", "sku-1", now_ms);
      require(f != tokens::fault::none
                || text
                     == tokens::mint_sale_token(secret, "alice", "sku-1",
                                                now_ms - 1, now_ms + 60'000),
              "only a minted sale token holds");
      break;
    }
    case 2: {
      int64_t number = 0;
      auto f = tokens::check_ticket(text, secret, "n1", "alice", "sku-1",
                                    now_ms, number);
      require(f != tokens::fault::none
                || text
                     == tokens::mint_ticket(secret, "n1", "alice", "sku-1", 7,
                                            now_ms + 60'000),
              "only a minted ticket holds");
      break;
    }
    default: {
      // "challenge answer": split at the last space.
      auto sp = text.rfind(' ');
      auto challenge =
        text.substr(0, sp == std::string::npos ? text.size() : sp);
      auto answer =
        sp == std::string::npos ? std::string{} : text.substr(sp + 1);
      tokens::challenge_facts facts;
      auto f = tokens::check_challenge(challenge, secret, "alice", "sku-1",
                                       answer, now_ms, 0, 120'000, facts);
      auto minted = tokens::mint_challenge(
        secret, "alice", "sku-1", tokens::quiz_kind::arithmetic, 0,
        now_ms - 1'000, "00ff00ff00ff00ff", 37, 48);
      require(f != tokens::fault::none
                || (challenge == minted.challenge && answer == "85"),
              "only a minted challenge with its answer holds");
      break;
    }
  }
  return 0;
}
