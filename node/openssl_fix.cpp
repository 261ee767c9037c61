// A fix for CAF 0.17.6's OpenSSL module, linked into every program that
// talks TLS on the cluster port (seckill-node, seckill-cli).
//
// OpenSSL keeps one error queue per thread, and SSL_get_error() reads it:
// "the current thread's error queue must be empty before the TLS/SSL I/O
// operation is attempted, or SSL_get_error() will not work reliably"
// (SSL_get_error(3)). CAF's session (libcaf_openssl/src/openssl/session.cpp)
// never empties it, and one multiplexer thread serves every connection. So
// one connection that ends badly (a CLI that closes without close_notify,
// which OpenSSL 3 reports as an error; a client without a certificate; a
// plain CAF client on the TLS port) leaves an error behind, and the next
// read that merely has to wait on any other connection is taken as a
// failure: measured, every seckill-cli call dropped the links between all
// members at once (peer_down ... remote_link_unreachable), so anyone who
// could open a TCP connection to the port could cut the cluster apart.
//
// The fix: these four calls, the only I/O calls CAF's session makes, are
// defined here and resolve ahead of libssl's (the dynamic linker binds
// libcaf_openssl's references to the program's definitions); each empties
// the queue, then calls libssl's own. Nothing else changes.
#include <dlfcn.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cstdio>
#include <cstdlib>

namespace {

template <class Fn>
Fn real(const char* name) {
  auto f = reinterpret_cast<Fn>(::dlsym(RTLD_NEXT, name));
  if (f == nullptr) {
    std::fprintf(stderr, "openssl_fix: libssl has no %s\n", name);
    std::abort();
  }
  return f;
}

using io_fn = int (*)(SSL*, void*, int);
using wio_fn = int (*)(SSL*, const void*, int);
using hs_fn = int (*)(SSL*);

} // namespace

extern "C" {

int SSL_read(SSL* ssl, void* buf, int num) {
  static const auto f = real<io_fn>("SSL_read");
  ERR_clear_error();
  return f(ssl, buf, num);
}

int SSL_write(SSL* ssl, const void* buf, int num) {
  static const auto f = real<wio_fn>("SSL_write");
  ERR_clear_error();
  return f(ssl, buf, num);
}

int SSL_accept(SSL* ssl) {
  static const auto f = real<hs_fn>("SSL_accept");
  ERR_clear_error();
  return f(ssl);
}

int SSL_connect(SSL* ssl) {
  static const auto f = real<hs_fn>("SSL_connect");
  ERR_clear_error();
  return f(ssl);
}

} // extern "C"
