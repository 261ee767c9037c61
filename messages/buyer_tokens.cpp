// The signed strings of the front of the sale (see buyer_tokens.hpp).
#include "messages/buyer_tokens.hpp"

#include <array>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include <nlohmann/json.hpp>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "messages/limits.hpp"

namespace seckill::tokens {

const char* to_string(fault f) {
  switch (f) {
    case fault::none: return "none";
    case fault::missing: return "missing";
    case fault::malformed: return "malformed";
    case fault::algorithm: return "algorithm";
    case fault::signature: return "signature";
    case fault::expired: return "expired";
    case fault::not_yet_valid: return "not_yet_valid";
    case fault::subject: return "subject";
    case fault::too_fast: return "too_fast";
    case fault::wrong_answer: return "wrong_answer";
  }
  return "?";
}

const char* describe(fault f) {
  switch (f) {
    case fault::none: return "the token holds";
    case fault::missing: return "no token was presented";
    case fault::malformed: return "the token is malformed";
    case fault::algorithm: return "the token's algorithm is not HS256";
    case fault::signature: return "the token's signature does not match";
    case fault::expired: return "the token has expired";
    case fault::not_yet_valid: return "the token is not valid yet (nbf)";
    case fault::subject: return "the token names no subject (sub)";
    case fault::too_fast: return "the answer came sooner than a person answers";
    case fault::wrong_answer: return "the answer is wrong";
  }
  return "?";
}

// -- Primitives ----------------------------------------------------------------

std::string base64url_encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  auto n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                           reinterpret_cast<const unsigned char*>(bytes.data()),
                           static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  while (!out.empty() && out.back() == '=')
    out.pop_back();
  for (auto& ch : out)
    ch = ch == '+' ? '-' : ch == '/' ? '_' : ch;
  return out;
}

bool base64url_decode(std::string_view text, std::string& out) {
  if (text.size() % 4 == 1)
    return false;
  std::string std_text{text};
  for (auto& ch : std_text) {
    bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z')
              || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_';
    if (!ok)
      return false; // '+', '/' and '=' included: url form, no padding
    ch = ch == '-' ? '+' : ch == '_' ? '/' : ch;
  }
  auto pad = (4 - std_text.size() % 4) % 4;
  std_text.append(pad, '=');
  std::string bytes(std_text.size() / 4 * 3, '\0');
  auto n =
    EVP_DecodeBlock(reinterpret_cast<unsigned char*>(bytes.data()),
                    reinterpret_cast<const unsigned char*>(std_text.data()),
                    static_cast<int>(std_text.size()));
  if (n < 0 || static_cast<std::size_t>(n) < pad)
    return false;
  bytes.resize(static_cast<std::size_t>(n) - pad);
  // Only the canonical form: unused low bits of the last character must be
  // zero, or two strings would carry the same bytes (a signature changed in
  // its last character would still hold, and a challenge could be redeemed
  // once per spelling).
  if (base64url_encode(bytes) != text)
    return false;
  out = std::move(bytes);
  return true;
}

namespace {

// OpenSSL 3 looks the algorithm up by name on every one-shot HMAC() (about
// 1 us of the 2 us a sale token took, measured with seckill-bench-tokens):
// each thread keeps a keyed context per secret (a node has two) and
// re-initialises it with the same key (EVP_MAC_init with a null key).
struct keyed_mac {
  std::string key;
  EVP_MAC_CTX* ctx = nullptr;
  keyed_mac() = default;
  keyed_mac(const keyed_mac&) = delete;
  keyed_mac& operator=(const keyed_mac&) = delete;
  ~keyed_mac() { EVP_MAC_CTX_free(ctx); }
};

constexpr std::size_t keyed_macs_per_thread = 4;

EVP_MAC_CTX* mac_for(std::string_view key) {
  thread_local EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  thread_local std::array<keyed_mac, keyed_macs_per_thread> cache;
  thread_local std::size_t next = 0;
  if (mac == nullptr)
    return nullptr;
  for (auto& k : cache)
    if (k.ctx != nullptr && k.key == key)
      return EVP_MAC_init(k.ctx, nullptr, 0, nullptr) == 1 ? k.ctx : nullptr;
  auto& slot = cache[next++ % cache.size()];
  EVP_MAC_CTX_free(slot.ctx);
  slot.ctx = EVP_MAC_CTX_new(mac);
  slot.key.assign(key.data(), key.size());
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", digest, 0),
                         OSSL_PARAM_END};
  if (slot.ctx == nullptr
      || EVP_MAC_init(slot.ctx,
                      reinterpret_cast<const unsigned char*>(key.data()),
                      key.size(), params)
           != 1) {
    slot.key.clear();
    return nullptr;
  }
  return slot.ctx;
}

} // namespace

std::string hmac_sha256(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  std::size_t len = 0;
  auto* ctx = mac_for(key);
  bool ok =
    ctx != nullptr
    && EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(data.data()),
                      data.size())
         == 1
    && EVP_MAC_final(ctx, out, &len, sizeof out) == 1;
  // Always on, without messages/assert.hpp (this file links no CAF): a MAC
  // that could not be computed must never compare equal to anything.
  if (!ok || len != 32) {
    std::fprintf(stderr, "seckill: assertion failed: OpenSSL computes "
                         "HMAC-SHA-256\n");
    std::abort();
  }
  return std::string(reinterpret_cast<const char*>(out), len);
}

std::string sha256(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<const char*>(md), len);
}

int leading_zero_bits(std::string_view bytes) {
  int n = 0;
  for (unsigned char b : bytes) {
    if (b != 0) {
      while ((b & 0x80) == 0)
        ++n, b = static_cast<unsigned char>(b << 1);
      return n;
    }
    n += 8;
  }
  return n;
}

std::string random_hex(std::size_t n) {
  std::vector<unsigned char> raw(n);
  if (RAND_bytes(raw.data(), static_cast<int>(n)) != 1)
    return {};
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (auto ch : raw) {
    out += digits[ch >> 4];
    out += digits[ch & 15];
  }
  return out;
}

namespace {

bool same_bytes(std::string_view a, std::string_view b) {
  return a.size() == b.size()
         && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

/// The parts of `text` split at '.', exactly `n` of them.
bool split(std::string_view text, std::size_t n,
           std::vector<std::string_view>& parts) {
  parts.clear();
  std::size_t from = 0;
  while (parts.size() + 1 < n) {
    auto dot = text.find('.', from);
    if (dot == std::string_view::npos)
      return false;
    parts.push_back(text.substr(from, dot - from));
    from = dot + 1;
  }
  parts.push_back(text.substr(from));
  return parts.back().find('.') == std::string_view::npos;
}

/// A decimal int64 of at most 15 digits (milliseconds until the year
/// 33658), no sign, no leading zero.
bool read_ms(std::string_view text, int64_t& out) {
  if (text.empty() || text.size() > 15 || (text.size() > 1 && text[0] == '0')
      || text.find_first_not_of("0123456789") != std::string_view::npos)
    return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc{} && end == text.data() + text.size();
}

/// A JSON object's integer (or fractional: NumericDate may be) in seconds.
bool read_seconds(const nlohmann::json& j, const char* key, int64_t& out) {
  auto i = j.find(key);
  if (i == j.end() || !i->is_number())
    return false;
  auto v = i->get<double>();
  if (!(v >= 0 && v < 1e13))
    return false;
  out = static_cast<int64_t>(v);
  return true;
}

bool parse_object(std::string_view b64, nlohmann::json& out) {
  std::string text;
  if (!base64url_decode(b64, text))
    return false;
  out = nlohmann::json::parse(text, nullptr, false);
  return out.is_object();
}

std::string sign_b64(std::string_view secret, std::string_view data) {
  return base64url_encode(hmac_sha256(secret, data));
}

bool signature_holds(std::string_view secret, std::string_view data,
                     std::string_view sig_b64) {
  std::string sig;
  return base64url_decode(sig_b64, sig) && sig.size() == 32
         && same_bytes(sig, hmac_sha256(secret, data));
}

} // namespace

// -- Buyer JWTs ------------------------------------------------------------------

std::string mint_jwt(std::string_view secret, const jwt_claims& c) {
  nlohmann::json payload = {{"sub", c.sub}, {"exp", c.exp_s}};
  if (c.nbf_s > 0)
    payload["nbf"] = c.nbf_s;
  auto signed_part =
    base64url_encode(R"({"alg":"HS256","typ":"JWT"})") + "."
    + base64url_encode(
      payload.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  return signed_part + "." + sign_b64(secret, signed_part);
}

fault verify_jwt(std::string_view token, std::string_view secret,
                 int64_t now_ms, int64_t leeway_ms, jwt_claims& out) {
  if (token.empty())
    return fault::missing;
  std::vector<std::string_view> parts;
  if (token.size() > limits::jwt_bytes_max || !split(token, 3, parts))
    return fault::malformed;
  // The header almost every login service writes is known byte for byte;
  // any other is read and judged.
  static const std::string usual_header =
    base64url_encode(R"({"alg":"HS256","typ":"JWT"})");
  if (parts[0] != usual_header) {
    nlohmann::json header;
    if (!parse_object(parts[0], header))
      return fault::malformed;
    // The algorithm is ours to choose, never the token's: exactly HS256,
    // and no header that asks the checker for more ("crit") or another key.
    auto alg = header.find("alg");
    if (alg == header.end() || !alg->is_string() || *alg != "HS256"
        || header.contains("crit") || header.contains("jku")
        || header.contains("jwk"))
      return fault::algorithm;
  }
  auto signed_len = parts[0].size() + 1 + parts[1].size();
  if (!signature_holds(secret, token.substr(0, signed_len), parts[2]))
    return fault::signature;
  nlohmann::json payload;
  if (!parse_object(parts[1], payload))
    return fault::malformed;
  jwt_claims c;
  auto sub = payload.find("sub");
  if (sub == payload.end() || !sub->is_string())
    return fault::subject;
  c.sub = sub->get<std::string>();
  if (!read_seconds(payload, "exp", c.exp_s))
    return fault::malformed; // exp is required here: a token for ever is not
  if (payload.contains("nbf") && !read_seconds(payload, "nbf", c.nbf_s))
    return fault::malformed;
  if (now_ms >= c.exp_s * 1000 + leeway_ms)
    return fault::expired;
  if (c.nbf_s > 0 && now_ms + leeway_ms < c.nbf_s * 1000)
    return fault::not_yet_valid;
  out = std::move(c);
  return fault::none;
}

// -- Sale tokens ------------------------------------------------------------------

namespace {

std::string sale_data(std::string_view user, std::string_view item,
                      std::string_view issued, std::string_view expires) {
  std::string d = "sale\n";
  d.append(user).append("\n").append(item).append("\n");
  d.append(issued).append("\n").append(expires);
  return d;
}

} // namespace

std::string mint_sale_token(std::string_view secret, std::string_view user,
                            std::string_view item, int64_t issued_ms,
                            int64_t expires_ms) {
  auto issued = std::to_string(issued_ms);
  auto expires = std::to_string(expires_ms);
  return "s1." + issued + "." + expires + "."
         + sign_b64(secret, sale_data(user, item, issued, expires));
}

fault check_sale_token(std::string_view token, std::string_view secret,
                       std::string_view user, std::string_view item,
                       int64_t now_ms) {
  if (token.empty())
    return fault::missing;
  std::vector<std::string_view> parts;
  int64_t issued = 0, expires = 0;
  if (token.size() > limits::sale_token_bytes_max || !split(token, 4, parts)
      || parts[0] != "s1" || !read_ms(parts[1], issued)
      || !read_ms(parts[2], expires))
    return fault::malformed;
  if (!signature_holds(secret, sale_data(user, item, parts[1], parts[2]),
                       parts[3]))
    return fault::signature;
  return now_ms >= expires ? fault::expired : fault::none;
}

// -- Waiting-room tickets ----------------------------------------------------------

namespace {

std::string ticket_data(std::string_view node, std::string_view user,
                        std::string_view item, std::string_view number,
                        std::string_view expires) {
  std::string d = "ticket\n";
  d.append(node).append("\n").append(user).append("\n").append(item);
  d.append("\n").append(number).append("\n").append(expires);
  return d;
}

} // namespace

std::string mint_ticket(std::string_view secret, std::string_view node,
                        std::string_view user, std::string_view item,
                        int64_t number, int64_t expires_ms) {
  auto n = std::to_string(number);
  auto e = std::to_string(expires_ms);
  return "t1." + std::string{node} + "." + n + "." + e + "."
         + sign_b64(secret, ticket_data(node, user, item, n, e));
}

std::string_view ticket_node(std::string_view ticket) {
  std::vector<std::string_view> parts;
  if (ticket.size() > limits::ticket_bytes_max || !split(ticket, 5, parts)
      || parts[0] != "t1")
    return {};
  return parts[1];
}

fault check_ticket(std::string_view ticket, std::string_view secret,
                   std::string_view node, std::string_view user,
                   std::string_view item, int64_t now_ms, int64_t& number) {
  if (ticket.empty())
    return fault::missing;
  std::vector<std::string_view> parts;
  int64_t n = 0, expires = 0;
  if (ticket.size() > limits::ticket_bytes_max || !split(ticket, 5, parts)
      || parts[0] != "t1" || !read_ms(parts[2], n) || n == 0
      || !read_ms(parts[3], expires))
    return fault::malformed;
  // The node named is the checker's: a ticket is good only in its line.
  if (parts[1] != node
      || !signature_holds(
        secret, ticket_data(node, user, item, parts[2], parts[3]), parts[4]))
    return fault::signature;
  if (now_ms >= expires)
    return fault::expired;
  number = n;
  return fault::none;
}

// -- Challenges ------------------------------------------------------------------

const char* to_string(quiz_kind k) {
  return k == quiz_kind::pow ? "pow" : "arithmetic";
}

namespace {

std::string answer_mac(std::string_view secret, std::string_view salt,
                       std::string_view answer) {
  std::string d = "answer\n";
  d.append(salt).append("\n").append(answer);
  return base64url_encode(hmac_sha256(secret, d).substr(0, 16));
}

std::string challenge_data(std::string_view user, std::string_view item,
                           std::string_view body) {
  std::string d = "quiz\n";
  d.append(user).append("\n").append(item).append("\n").append(body);
  return d;
}

bool decimal_answer(std::string_view a) {
  if (a.empty() || a.size() > limits::answer_bytes_max)
    return false;
  for (char ch : a)
    if (ch < '0' || ch > '9')
      return false;
  return true;
}

} // namespace

issued_challenge mint_challenge(std::string_view secret, std::string_view user,
                                std::string_view item, quiz_kind kind, int bits,
                                int64_t issued_ms, std::string_view salt, int a,
                                int b) {
  issued_challenge out;
  bool pow = kind == quiz_kind::pow;
  auto mac =
    pow ? std::string{"-"} : answer_mac(secret, salt, std::to_string(a + b));
  auto body = std::string{"q1."} + (pow ? "p" : "a") + "."
              + std::to_string(pow ? bits : 0) + "." + std::to_string(issued_ms)
              + "." + std::string{salt} + "." + mac;
  out.challenge =
    body + "." + sign_b64(secret, challenge_data(user, item, body));
  out.question =
    pow ? "Find a decimal nonce N such that SHA-256(challenge + N) "
          "starts with "
            + std::to_string(bits) + " zero bits."
        : "What is " + std::to_string(a) + " + " + std::to_string(b) + "?";
  return out;
}

fault check_challenge(std::string_view challenge, std::string_view secret,
                      std::string_view user, std::string_view item,
                      std::string_view answer, int64_t now_ms, int64_t min_ms,
                      int64_t ttl_ms, challenge_facts& facts) {
  if (challenge.empty())
    return fault::missing;
  std::vector<std::string_view> p;
  int64_t bits = 0, issued = 0;
  if (challenge.size() > limits::challenge_bytes_max || !split(challenge, 7, p)
      || p[0] != "q1" || (p[1] != "a" && p[1] != "p")
      || !(p[2] == "0" || read_ms(p[2], bits)) || bits > 64
      || !read_ms(p[3], issued) || p[4].empty())
    return fault::malformed;
  auto body_len = challenge.size() - p[6].size() - 1;
  if (!signature_holds(
        secret, challenge_data(user, item, challenge.substr(0, body_len)),
        p[6]))
    return fault::signature;
  facts.kind = p[1] == "p" ? quiz_kind::pow : quiz_kind::arithmetic;
  facts.bits = static_cast<int>(bits);
  facts.issued_ms = issued;
  if (now_ms - issued < min_ms)
    return fault::too_fast;
  if (now_ms - issued > ttl_ms)
    return fault::expired;
  if (!decimal_answer(answer))
    return fault::wrong_answer;
  if (facts.kind == quiz_kind::pow) {
    std::string data{challenge};
    data.append(answer);
    return leading_zero_bits(sha256(data)) >= facts.bits ? fault::none
                                                         : fault::wrong_answer;
  }
  return same_bytes(answer_mac(secret, p[4], answer), p[5])
           ? fault::none
           : fault::wrong_answer;
}

std::string solve_pow(std::string_view challenge, int bits) {
  std::string data{challenge};
  for (uint64_t n = 0;; ++n) {
    auto nonce = std::to_string(n);
    data.resize(challenge.size());
    data += nonce;
    if (leading_zero_bits(sha256(data)) >= bits)
      return nonce;
  }
}

} // namespace seckill::tokens
