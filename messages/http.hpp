// The vocabulary between the HTTP server (node/http/server.hpp, Beast on
// its own threads) and the REST bridge actors (actors/edge/bridge.hpp): one
// complete request, one response, and the function that answers it. Plain
// values, no Boost, so the actors never see the transport.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace seckill::http {

struct request {
  std::string method;        // "GET", "POST", ... as sent
  std::string target;        // the request target as sent, "/a/b?x=1"
  std::string body;          // de-chunked
  std::string authorization; // header values, "" when absent
  std::string if_none_match;
  std::string content_type;
  std::string client_ip;
  int64_t received_ms = 0; // steady clock, when the request was complete
};

struct response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  /// Extra headers (ETag, Cache-Control, Retry-After, Location,
  /// WWW-Authenticate). The server sets Content-Length, Content-Type,
  /// Connection and Date itself.
  std::vector<std::pair<std::string, std::string>> headers;
};

/// Called at most once per request, from any thread; the server ignores
/// calls after the first and after the answer timeout.
using reply_fn = std::function<void(response)>;

/// Called on an I/O thread for every complete request; must not block.
using handler_fn = std::function<void(request, reply_fn)>;

} // namespace seckill::http
