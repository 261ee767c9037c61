// The cluster port's TLS files (see tls.hpp), checked with OpenSSL itself.
#include "node/tls.hpp"

#include <memory>

#include <caf/openssl/manager.hpp>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

namespace seckill {

namespace {

std::string ssl_errors() {
  std::string out;
  while (auto e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    if (!out.empty())
      out += "; ";
    out += buf;
  }
  return out.empty() ? "no detail from OpenSSL" : out;
}

// An encrypted key is refused, not prompted for on a terminal.
int no_passphrase(char*, int, int, void*) {
  return 0;
}

std::string named(const char* key, const std::string& path,
                  const std::string& why) {
  return std::string{key} + " = '" + path + "': " + why;
}

} // namespace

std::string check_tls_files(const tls_files& t) {
  ERR_clear_error();
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx{
    SSL_CTX_new(TLS_method()), SSL_CTX_free};
  if (!ctx)
    return "cannot create an OpenSSL context: " + ssl_errors();
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), t.certificate.c_str()) != 1)
    return named("openssl.certificate", t.certificate,
                 "not a readable PEM certificate chain (" + ssl_errors() + ")");
  // The key apart from the context first, so that "not a key" and "the
  // key of another certificate" are told apart.
  std::unique_ptr<BIO, decltype(&BIO_free)> in{BIO_new_file(t.key.c_str(), "r"),
                                               BIO_free};
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> pkey{
    in ? PEM_read_bio_PrivateKey(in.get(), nullptr, no_passphrase, nullptr)
       : nullptr,
    EVP_PKEY_free};
  if (!pkey)
    return named("openssl.key", t.key,
                 "not a readable, unencrypted PEM private key (" + ssl_errors()
                   + ")");
  if (SSL_CTX_use_PrivateKey(ctx.get(), pkey.get()) != 1
      || SSL_CTX_check_private_key(ctx.get()) != 1)
    return named("openssl.key", t.key,
                 "does not belong to openssl.certificate '" + t.certificate
                   + "'");
  if (SSL_CTX_load_verify_locations(ctx.get(), t.cafile.c_str(), nullptr) != 1)
    return named("openssl.cafile", t.cafile,
                 "not a readable PEM CA certificate (" + ssl_errors() + ")");
  // The member's own certificate must verify against the CA: the others
  // check it so.
  X509* cert = SSL_CTX_get0_certificate(ctx.get());
  std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)> vctx{
    X509_STORE_CTX_new(), X509_STORE_CTX_free};
  STACK_OF(X509)* chain = nullptr;
  SSL_CTX_get0_chain_certs(ctx.get(), &chain);
  if (!vctx
      || X509_STORE_CTX_init(vctx.get(), SSL_CTX_get_cert_store(ctx.get()),
                             cert, chain)
           != 1)
    return "cannot set up certificate verification: " + ssl_errors();
  if (X509_verify_cert(vctx.get()) != 1)
    return named(
      "openssl.certificate", t.certificate,
      std::string{"is not signed by openssl.cafile '"} + t.cafile + "' ("
        + X509_verify_cert_error_string(X509_STORE_CTX_get_error(vctx.get()))
        + ")");
  return {};
}

void enable_tls(caf::actor_system_config& cfg, const tls_files& t) {
  cfg.openssl_certificate = t.certificate;
  cfg.openssl_key = t.key;
  cfg.openssl_cafile = t.cafile;
  cfg.load<caf::openssl::manager>();
}

} // namespace seckill
