// The cluster port's TLS files, checked before the actor system starts:
// CAF's OpenSSL module loads them only when the first connection opens, on
// the middleman's thread, and throws there (the node would die at its first
// peer, not at start). Here each file is loaded with OpenSSL as CAF will
// load it, the key must match the certificate, and the certificate must be
// signed by the CA (a member whose own certificate the CA does not sign
// could never join). The first problem is a sentence naming the key and
// the file. Also the CAF configuration that turns TLS on.
#pragma once

#include <string>

#include <caf/actor_system_config.hpp>

#include "node/config.hpp"

namespace seckill {

/// "" if `t` can be used, else why not ("openssl.key = 'x.pem': ...").
std::string check_tls_files(const tls_files& t);

/// Loads CAF's OpenSSL module into `cfg` with `t` (which must be on()).
void enable_tls(caf::actor_system_config& cfg, const tls_files& t);

} // namespace seckill
