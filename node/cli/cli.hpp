// seckill-cli's logic, apart from the process around it: parsing the
// command line into `cli_options`, formatting each answer of the admin actor
// (human-readable aligned text, or one JSON value), and running one command
// against a node's admin actor over CAF remoting (`run_command`).
//
// Everything but `run_command` is a pure function of its arguments (no
// clock, no I/O), so the tests drive it directly. Bad input is a result (an
// error string naming the flag and the bad value), never an exception. The
// parser validates syntax only (flags, integers, modes); whether an item
// spec is acceptable is the node's decision (it answers invalid_item).
// Nothing here may wait without a bound: every request carries a timeout,
// and seckill_cli_main.cpp bounds the connect as well.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <caf/fwd.hpp>

#include "messages/types.hpp"

namespace seckill::cli {

/// `s` for a terminal: control characters and DEL shown as \xNN.
std::string printable(std::string_view s);

enum class command {
  none, // no command given: usage, exit 2
  help,
  status,
  items,
  item,
  sessions,
  user,
  create_item,
  pause,
  resume,
  end,
  nodes,
  switches,    // "switch": list the limits and switches, or set one
  buyer_token, // "buyer-token": mint a buyer JWT locally (no --node)
};

/// What the command line asks for.
struct cli_options {
  std::string host;
  uint16_t port = 0;
  bool json = false;
  std::string token;    // --token; resolve_token fills it otherwise
  std::string data_dir; // --data-dir: read DATA_DIR/admin-token
  // --tls-cert, --tls-key, --tls-ca: for a node whose cluster port is TLS
  // ([openssl]); all three or none.
  std::string tls_cert, tls_key, tls_ca;
  bool tls() const { return !tls_cert.empty(); }
  command cmd = command::none;
  std::string id;          // the item or user of item, user, pause, resume, end
  item_spec spec;          // create-item
  std::string switch_name; // switch NAME VALUE; both empty: list them
  std::string switch_value;
  // buyer-token: the user, the token's life, and where the secret is
  // (--secret-file, else DATA_DIR/buyer-jwt-secret).
  std::string user;
  int64_t ttl_s = 3600;
  std::string secret_file;
};

/// Exit codes of seckill-cli.
constexpr int exit_ok = 0;
constexpr int exit_refused = 1;     // the node answered with an error code
constexpr int exit_usage = 2;       // bad command line; nothing was sent
constexpr int exit_unreachable = 3; // no connection, or no answer in time

/// The result of parsing: `error` is empty on success.
struct parse_result {
  cli_options options;
  std::string error; // e.g. "--total: 'abc' is not an integer"
};

/// Parses argv (without the program name). `now_ms` resolves
/// --starts-in-s / --ends-in-s. A command of `help` (or --help, -h) needs no
/// --node; `none` with an empty error means no command was given.
parse_result parse_args(const std::vector<std::string>& args, int64_t now_ms);

/// Fills opts.token when --token was not given: from `env_token` (the
/// SECKILL_ADMIN_TOKEN variable, null if unset), else from the admin-token
/// file of --data-dir. "" on success, else why not (naming the source).
std::string resolve_token(cli_options& opts, const char* env_token);

/// buyer-token: the JWT for opts.user, signed with the secret of
/// opts.secret_file (or DATA_DIR/buyer-jwt-secret), valid for opts.ttl_s
/// from `now_ms`, in `jwt`. "" on success, else why not (naming the file).
std::string mint_buyer_token(const cli_options& opts, int64_t now_ms,
                             std::string& jwt);

/// The usage text (ends with a newline).
std::string usage();

/// The command's name as typed, e.g. "create-item".
const char* to_string(command x);

// -- Formatting ---------------------------------------------------------------

/// 3723000 -> "1h02m03s"; 61000 -> "1m01s"; 999 -> "0s"; days as "2d03h...".
std::string format_duration_ms(int64_t ms);

/// Epoch milliseconds as UTC, "2024-05-01T12:00:00.123Z"; "-" for 0.
std::string format_time_ms(int64_t ms);

/// `s` as the body of a JSON string (without the quotes): quotes,
/// backslashes and control characters escaped, other bytes (UTF-8) kept.
std::string json_escape(std::string_view s);

std::string format_status(const node_status& x, bool json);
std::string format_items(const std::vector<item_detail>& xs, bool json);
std::string format_item(const item_detail& x, bool json);
/// The item create-item made: its spec, counters and status.
std::string format_created(const item_view& x, bool json);
/// An item's status after pause, resume or end.
std::string format_item_status(const item_view& x, bool json);
std::string format_sessions(const sessions_view& x, bool json);
std::string format_user(const user_view& x, bool json);
/// The cluster's members as the node sees them. `now_ms` (the caller's
/// clock) turns each member's since_ms into the FOR column; the JSON form
/// does not use it (it carries since_ms itself). Counts of -1 (the member
/// did not answer) print as "-" and stay -1 in JSON.
std::string format_nodes(const std::vector<member_view>& xs, int64_t now_ms,
                         bool json);

/// The front gate's limits and the degrade switches, and what the gate
/// refused (`switch`).
std::string format_switches(const switches_view& x, bool json);

// -- Running a command --------------------------------------------------------

struct cli_result {
  int exit_code = exit_ok;
  std::string out; // for stdout
  std::string err; // for stderr, e.g. "error: unknown_item: ..."
};

/// "error: node HOST:PORT did not answer within N s".
std::string no_answer_message(const cli_options& opts,
                              std::chrono::milliseconds timeout);

/// Connects to the admin actor at opts.host:opts.port, sends the command
/// with a request timeout of `timeout` and formats the answer. The connect
/// itself is not bounded by CAF 0.17 (remote_actor may block): the caller
/// bounds the whole call (see seckill_cli_main.cpp).
cli_result run_command(caf::actor_system& sys, const cli_options& opts,
                       std::chrono::milliseconds timeout);

} // namespace seckill::cli
