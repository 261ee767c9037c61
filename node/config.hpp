// The node's configuration: the [seckill], [cluster], [openssl],
// [scheduler] and [middleman] sections of cluster.conf, then
// `--SECTION.KEY=VALUE` arguments over them. CAF 0.17's own config parser
// silently drops a value of the wrong type (from the file and from the command
// line alike, measured) and keeps unknown keys, so seckill reads its sections
// itself: every key is known, every value typed and range-checked, and the
// first problem is an error naming the key, the value and what was expected.
// The node refuses to start on it. CAF's own [scheduler] and [middleman] are
// read the same way (only the keys seckill knows), then set on CAF's
// config, because CAF's parser would let a wrong value through silently.
#pragma once

#include <string>
#include <vector>

#include "actors/cluster/membership.hpp"
#include "actors/edge/buyer_gate.hpp"
#include "node/http/server.hpp"
#include "node/runtime.hpp"

namespace seckill {

/// The cluster port's TLS (CAF's OpenSSL module): this member's certificate
/// chain and key, and the CA that signs every member's certificate. All
/// three or none; with them every connection, both ways, must present a
/// certificate that the CA signed (a member, or the operator's CLI).
struct tls_files {
  std::string certificate; // PEM, the chain from this member's certificate
  std::string key;         // PEM, unencrypted
  std::string cafile;      // PEM, the cluster's CA
  bool on() const { return !certificate.empty(); }
};

/// Whether `host` is a loopback address (127.0.0.0/8, ::1, localhost).
bool is_loopback_host(const std::string& host);

struct node_config {
  std::string node_id = "n1";
  std::string data_dir = "./data";
  std::string log_level = "info";
  std::string admin_token; // "": generated and kept in data_dir/admin-token
  /// Buyer JWTs and sale tokens (actors/edge/buyer_gate.hpp). A secret not
  /// set here is read from its file, or generated into
  /// data_dir/buyer-jwt-secret and data_dir/sale-secret.
  buyer_config buyers;
  std::string buyer_jwt_secret_file;
  std::string sale_secret_file;
  http::server_config http;
  std::size_t bridge_actors = 4;
  std::string cluster_host = "127.0.0.1";
  uint16_t cluster_port = 4242; // 0: the kernel picks
  /// cluster.nodes as written ("ID@HOST:PORT"); empty: a node alone. With
  /// members, this node's entry (by node_id) sets cluster_host and _port.
  std::vector<std::string> cluster_nodes;
  std::vector<member_spec> cluster_members; // the same, parsed
  runtime_config runtime;                   // db_path is set from data_dir
  /// The front gate's limits and the degrade switches as configured, by
  /// switch name ("node-rate-per-s" = "100000"), each checked with
  /// check_switch; the node sets them at start, seckill-cli changes them.
  std::vector<std::pair<std::string, std::string>> switches;
  /// CAF's own settings, read as strictly as ours and handed to CAF; 0
  /// keeps CAF's default (threads: one per core; heartbeats: off).
  int64_t scheduler_max_threads = 0;
  int64_t heartbeat_interval_ms = 0;
  int64_t connection_timeout_ms = 0;
  tls_files tls; // [openssl]
  /// cluster.plain-loopback: a cluster without TLS, allowed only with every
  /// member on loopback, and only when asked for.
  bool plain_loopback = false;
};

/// An admin token as seckill.admin-token and DATA_DIR/admin-token take
/// it: 16 to 128 printable ASCII characters, no spaces.
bool valid_admin_token(const std::string& token);

/// A buyer JWT or sale secret as the config and its files take it:
/// limits::secret_bytes_min to _max printable ASCII characters, no spaces.
bool valid_secret(const std::string& secret);

/// Every key ("seckill.data-dir", "cluster.port", ...) with its default,
/// as "NAME (default VALUE)", for --help and the docs.
std::vector<std::string> config_keys();

/// Applies the [seckill] and [cluster] sections of `ini_text` (`origin`
/// names it in errors). Returns "" or the error.
std::string apply_config_text(const std::string& ini_text,
                              const std::string& origin, node_config& out);

/// Applies one `--seckill.KEY=VALUE` or `--cluster.KEY=VALUE` argument
/// (without the leading "--").
std::string apply_config_arg(const std::string& arg, node_config& out);

/// Reads `file` (none if empty; a missing file named explicitly is an
/// error), then every `--seckill.` and `--cluster.` argument of `args`.
/// Other arguments are appended to `rest`, untouched.
std::string load_config(const std::string& file,
                        const std::vector<std::string>& args, node_config& out,
                        std::vector<std::string>& rest);

} // namespace seckill
