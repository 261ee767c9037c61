// seckill-node: one node of seckill as a program. It reads its config
// (cluster.conf, then the command line), recovers its SQLite file, starts
// the actors, publishes the admin actor on the cluster port, serves the
// HTTP API through the REST bridges, and runs until SIGTERM or SIGINT.
//
// Start-up refuses (exit 2) on any bad config value, naming the key, and
// (exit 1) on a data dir or port it cannot use, or a file that fails its
// recovery checks. When ready it prints one line that scripts wait for:
//   node_ready node=n1 http=127.0.0.1:8080 cluster=127.0.0.1:4242 ...
//
// Shutdown on SIGTERM / SIGINT: stop accepting (new requests get 503),
// answer what is in flight (bounded by the answer timeout), make every
// item's last changes durable (a commit barrier per item), stop, exit 0.
// A kill -9 loses nothing acknowledged: an answer is sent only after its
// commit.
#pragma once

#include <string>

namespace seckill {

/// The whole program; returns the exit code.
int run_node(int argc, char** argv);

/// Reads the admin token from `dir`/admin-token, or generates one (random,
/// hex) and writes it there with mode 0600. Returns "" or the error.
std::string load_or_make_token(const std::string& dir, std::string& token,
                               bool& generated);

/// The secret on the first line of `path`, checked by `valid` (`shape`
/// says what it must look like); when the file does not exist and
/// `create`, a new random one (64 hex digits) written there, mode 0600.
std::string load_or_make_secret(const std::string& path, const char* shape,
                                bool (*valid)(const std::string&), bool create,
                                std::string& secret, bool& generated);

} // namespace seckill
