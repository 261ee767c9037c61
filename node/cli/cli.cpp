// seckill-cli's parsing and request logic (see cli.hpp): the command line
// into cli_options, and one command against a node's admin actor. Nothing
// here blocks without a bound or throws on bad input.
#include "node/cli/cli.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <utility>

#include <caf/actor_system.hpp>
#include <caf/io/middleman.hpp>
#include <caf/openssl/remote_actor.hpp>
#include <caf/scoped_actor.hpp>

#include "actors/edge/admin.hpp"
#include "actors/edge/front_gate.hpp"
#include "actors/sale/item_book.hpp"
#include "messages/buyer_tokens.hpp"
#include "messages/errors.hpp"
#include "messages/limits.hpp"
#include "messages/type_ids.hpp"
#include "node/config.hpp"
#include "node/startup.hpp"

namespace seckill::cli {

// -- Parsing ------------------------------------------------------------------

namespace {

std::string in_quotes(std::string_view s) {
  return "'" + printable(s) + "'";
}

} // namespace

const char* to_string(command x) {
  switch (x) {
    case command::none: return "";
    case command::help: return "help";
    case command::status: return "status";
    case command::items: return "items";
    case command::item: return "item";
    case command::sessions: return "sessions";
    case command::user: return "user";
    case command::create_item: return "create-item";
    case command::pause: return "pause";
    case command::resume: return "resume";
    case command::end: return "end";
    case command::nodes: return "nodes";
    case command::switches: return "switch";
    case command::buyer_token: return "buyer-token";
  }
  return "";
}

std::string usage() {
  return R"(usage: seckill-cli --node HOST:PORT [--token TOKEN | --data-dir DIR] [--json]
                   COMMAND [ARGS]

Talks to a seckill node's admin actor (its cluster port). Flags may come
before or after the command; --flag=value works as well as --flag value.

commands:
  status                 the node: identity, uptime, items, sessions, store
                         and HTTP counters
  items                  every item: status, stock, orders, queue
  item ID                one item's whole state, its queue, recent outcomes
  sessions               live user sessions and the busiest users
  user ID                one user's session: items held, unpaid orders
  nodes                  every member of the cluster (cluster.nodes, in
                         order): endpoint, state (self, up, connecting,
                         down) and for how long, items, sessions, open
                         HTTP connections, HTTP requests served; a count
                         the member did not report (down, or too slow)
                         shows as '-' (as -1 with --json)
  create-item --id ID --total N [--name S] [--per-user-limit N]
              [--starts-at-ms MS | --starts-in-s S]
              [--ends-at-ms MS | --ends-in-s S]
              [--mode order|reserve|pay] [--reserve-ttl-ms MS]
              [--price-cents N] [--admission open|token|quiz]
                         creates an item and prints it (admission token
                         unless told: a purchase needs a sale token)
  pause ID | resume ID | end ID
                         changes an item's admin state, prints its status
  switch                 the node's limits and degrade switches, the
                         scheduler's lag, requests in flight, and what
                         the front gate refused
  switch NAME VALUE      sets one at once, on this node only:
                         node-rate-per-s N, ip-rate-per-s N (0: off)
                         rate-burst-ms N
                         shed-inflight-max N, shed-latency-ms N,
                         shed-lag-ms N (0: off)
                         edge-reads-ms N (stock reads from this node's
                         copy at most N ms old; 0: off)
                         essential-only on|off (item list and per-item
                         metrics off)
  buyer-token --user U [--ttl-s N] [--secret-file F | --data-dir DIR]
                         prints a buyer JWT for U (HS256, valid N s,
                         default 3600) signed with the node's secret
                         (F, or DIR/buyer-jwt-secret): for tests and
                         demos, in place of the site's login service;
                         needs no --node
  help                   this text

flags:
  --node HOST:PORT       the node's cluster endpoint (required)
  --token TOKEN          the node's admin token; without it the CLI takes
                         $SECKILL_ADMIN_TOKEN, else the file admin-token of
                         --data-dir (every command needs one of the three)
  --data-dir DIR         the node's data directory, to read its admin-token
  --tls-cert FILE --tls-key FILE --tls-ca FILE
                         for a node whose cluster port is TLS ([openssl]
                         in its config): a certificate the cluster's CA
                         signed, its key, and the CA (PEM files)
  --json                 JSON instead of text: one object, or for nodes
                         an array of one object per member

exit codes: 0 ok, 1 the node refused (e.g. unknown_item), 2 bad usage,
3 node unreachable or no answer within 2 s.
)";
}

namespace {

struct flag_info {
  std::string_view name;
  bool takes_value;
  bool create_only; // only create-item accepts it
};

constexpr flag_info known_flags[] = {
  {"--node", true, false},
  {"--json", false, false},
  {"--token", true, false},
  {"--data-dir", true, false},
  {"--tls-cert", true, false},
  {"--tls-key", true, false},
  {"--tls-ca", true, false},
  {"--help", false, false},
  {"-h", false, false},
  {"--id", true, true},
  {"--total", true, true},
  {"--name", true, true},
  {"--per-user-limit", true, true},
  {"--starts-at-ms", true, true},
  {"--starts-in-s", true, true},
  {"--ends-at-ms", true, true},
  {"--ends-in-s", true, true},
  {"--mode", true, true},
  {"--reserve-ttl-ms", true, true},
  {"--price-cents", true, true},
  {"--admission", true, true},
  {"--user", true, false},
  {"--ttl-s", true, false},
  {"--secret-file", true, false},
};

bool buyer_token_flag(std::string_view name) {
  return name == "--user" || name == "--ttl-s" || name == "--secret-file";
}

const flag_info* find_flag(std::string_view name) {
  for (const auto& f : known_flags)
    if (f.name == name)
      return &f;
  return nullptr;
}

/// The command line split into flags (with their values) and positionals.
struct raw_args {
  std::map<std::string, std::string> flags;
  std::vector<std::string> positionals;
};

/// Reads one flag at args[i] (advancing i past its value); "" or an error.
std::string take_flag(const std::vector<std::string>& args, std::size_t& i,
                      raw_args& out) {
  const std::string& arg = args[i];
  auto eq = arg.find('=');
  std::string name = arg.substr(0, eq);
  const flag_info* f = find_flag(name);
  if (f == nullptr)
    return "unknown flag " + in_quotes(name);
  if (out.flags.count(name) != 0)
    return "flag " + name + " given twice";
  if (!f->takes_value) {
    if (eq != std::string::npos)
      return "flag " + name + " takes no value (got " + in_quotes(arg) + ")";
    out.flags[name] = "";
    return {};
  }
  if (eq != std::string::npos) {
    out.flags[name] = arg.substr(eq + 1);
    return {};
  }
  if (i + 1 >= args.size() || args[i + 1].rfind("--", 0) == 0)
    return "flag " + name + " needs a value";
  out.flags[name] = args[++i];
  return {};
}

std::string split_args(const std::vector<std::string>& args, raw_args& out) {
  bool only_positionals = false; // after "--"
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (only_positionals || arg.empty() || arg[0] != '-' || arg == "-") {
      out.positionals.push_back(arg);
    } else if (arg == "--") {
      only_positionals = true;
    } else if (auto err = take_flag(args, i, out); !err.empty()) {
      return err;
    }
  }
  return {};
}

bool parse_command(const std::string& name, command& out) {
  for (auto c : {command::help, command::status, command::items, command::item,
                 command::sessions, command::user, command::create_item,
                 command::pause, command::resume, command::end, command::nodes,
                 command::switches, command::buyer_token}) {
    if (name == to_string(c)) {
      out = c;
      return true;
    }
  }
  return false;
}

std::string parse_int(const std::string& flag, const std::string& text,
                      int64_t& out) {
  const char* first = text.data();
  const char* last = first + text.size();
  auto [ptr, ec] = std::from_chars(first, last, out);
  if (ec == std::errc::result_out_of_range)
    return flag + ": " + in_quotes(text)
           + " is out of range for a 64-bit integer";
  if (text.empty() || ec != std::errc{} || ptr != last)
    return flag + ": " + in_quotes(text) + " is not an integer";
  return {};
}

std::string parse_node(const std::string& text, cli_options& out) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0)
    return "--node: " + in_quotes(text) + " is not HOST:PORT";
  std::string host = text.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2); // [::1]:4242
  std::string port_text = text.substr(colon + 1);
  int64_t port = 0;
  if (!parse_int("--node", port_text, port).empty() || port < 1 || port > 65535)
    return "--node: port " + in_quotes(port_text)
           + " is not a number from 1 to 65535";
  out.host = std::move(host);
  out.port = static_cast<uint16_t>(port);
  return {};
}

/// An absolute time from --X-at-ms or a relative one from --X-in-s.
std::string parse_time(const raw_args& raw, const std::string& at_flag,
                       const std::string& in_flag, int64_t now_ms,
                       int64_t& out) {
  auto at = raw.flags.find(at_flag);
  auto in = raw.flags.find(in_flag);
  if (at != raw.flags.end() && in != raw.flags.end())
    return "use either " + at_flag + " or " + in_flag + ", not both";
  if (at != raw.flags.end())
    return parse_int(at_flag, at->second, out);
  if (in == raw.flags.end())
    return {};
  int64_t secs = 0;
  if (auto err = parse_int(in_flag, in->second, secs); !err.empty())
    return err;
  int64_t ms = 0;
  if (__builtin_mul_overflow(secs, int64_t{1000}, &ms)
      || __builtin_add_overflow(ms, now_ms, &out))
    return in_flag + ": " + in_quotes(in->second) + " is out of range";
  return {};
}

std::string parse_spec(const raw_args& raw, int64_t now_ms, item_spec& spec) {
  for (const char* required : {"--id", "--total"})
    if (raw.flags.count(required) == 0)
      return std::string{"create-item needs "} + required;
  spec.item_id = raw.flags.at("--id");
  if (auto i = raw.flags.find("--name"); i != raw.flags.end())
    spec.name = i->second;
  std::pair<const char*, int64_t*> ints[] = {
    {"--total", &spec.total},
    {"--per-user-limit", &spec.per_user_limit},
    {"--reserve-ttl-ms", &spec.reserve_ttl_ms},
    {"--price-cents", &spec.price_cents},
  };
  for (auto [flag, dest] : ints) {
    auto i = raw.flags.find(flag);
    if (i == raw.flags.end())
      continue;
    if (auto err = parse_int(flag, i->second, *dest); !err.empty())
      return err;
  }
  if (auto i = raw.flags.find("--mode");
      i != raw.flags.end() && !parse(i->second, spec.mode))
    return "--mode: " + in_quotes(i->second)
           + " is not a mode (order, reserve or pay)";
  spec.admission = admission_mode::token; // as the HTTP API creates items
  if (auto i = raw.flags.find("--admission");
      i != raw.flags.end() && !parse(i->second, spec.admission))
    return "--admission: " + in_quotes(i->second)
           + " is not an admission (open, token or quiz)";
  if (auto err = parse_time(raw, "--starts-at-ms", "--starts-in-s", now_ms,
                            spec.starts_at_ms);
      !err.empty())
    return err;
  return parse_time(raw, "--ends-at-ms", "--ends-in-s", now_ms,
                    spec.ends_at_ms);
}

std::string parse_buyer_token(const raw_args& raw, cli_options& out) {
  if (raw.positionals.size() > 1)
    return "unexpected argument " + in_quotes(raw.positionals[1])
           + " after buyer-token";
  auto user = raw.flags.find("--user");
  if (user == raw.flags.end())
    return "buyer-token needs --user U";
  if (!valid_id(user->second))
    return "--user: " + in_quotes(user->second) + " is not a user id (1 to "
           + std::to_string(limits::id_length_max)
           + " letters, digits, '-', '_', '.')";
  out.user = user->second;
  if (auto t = raw.flags.find("--ttl-s"); t != raw.flags.end()) {
    if (auto err = parse_int("--ttl-s", t->second, out.ttl_s); !err.empty())
      return err;
    if (out.ttl_s < 1 || out.ttl_s > limits::buyer_token_ttl_s_max)
      return "--ttl-s: " + in_quotes(t->second) + " is not from 1 to "
             + std::to_string(limits::buyer_token_ttl_s_max);
  }
  if (auto f = raw.flags.find("--secret-file"); f != raw.flags.end())
    out.secret_file = f->second;
  if (auto d = raw.flags.find("--data-dir"); d != raw.flags.end())
    out.data_dir = d->second;
  if (out.secret_file.empty() == out.data_dir.empty())
    return "buyer-token needs --secret-file F or --data-dir DIR (one of "
           "them)";
  return {};
}

bool takes_id(command c) {
  return c == command::item || c == command::user || c == command::pause
         || c == command::resume || c == command::end;
}

/// Checks the positionals and command-specific flags of `cmd`.
std::string parse_command_args(const raw_args& raw, int64_t now_ms,
                               cli_options& out) {
  const auto& pos = raw.positionals;
  for (const auto& [name, value] : raw.flags) {
    if (find_flag(name)->create_only && out.cmd != command::create_item)
      return "flag " + name + " applies to create-item only, not to "
             + to_string(out.cmd);
    if (buyer_token_flag(name) && out.cmd != command::buyer_token)
      return "flag " + name + " applies to buyer-token only, not to "
             + to_string(out.cmd);
  }
  if (out.cmd == command::buyer_token)
    return parse_buyer_token(raw, out);
  if (out.cmd == command::switches) {
    if (pos.size() == 1)
      return {};
    if (pos.size() != 3)
      return "switch takes no argument (to list) or NAME VALUE (to set)";
    std::string why;
    if (check_switch(pos[1], pos[2], why) != errc::ok)
      return why;
    out.switch_name = pos[1];
    out.switch_value = pos[2];
    return {};
  }
  std::size_t wanted = takes_id(out.cmd) ? 2 : 1;
  if (pos.size() < wanted)
    return std::string{to_string(out.cmd)} + " needs an ID";
  if (pos.size() > wanted)
    return "unexpected argument " + in_quotes(pos[wanted]) + " after "
           + to_string(out.cmd);
  if (wanted == 2)
    out.id = pos[1];
  if (out.cmd == command::create_item)
    return parse_spec(raw, now_ms, out.spec);
  return {};
}

} // namespace

parse_result parse_args(const std::vector<std::string>& args, int64_t now_ms) {
  parse_result res;
  raw_args raw;
  if (res.error = split_args(args, raw); !res.error.empty())
    return res;
  auto& opts = res.options;
  opts.json = raw.flags.count("--json") != 0;
  if (raw.flags.count("--help") != 0 || raw.flags.count("-h") != 0
      || (!raw.positionals.empty() && raw.positionals[0] == "help")) {
    opts.cmd = command::help;
    return res;
  }
  if (raw.positionals.empty()) {
    res.error = "no command given";
    return res;
  }
  if (!parse_command(raw.positionals[0], opts.cmd)) {
    res.error = "unknown command " + in_quotes(raw.positionals[0]);
    return res;
  }
  if (res.error = parse_command_args(raw, now_ms, opts); !res.error.empty())
    return res;
  if (opts.cmd == command::buyer_token)
    return res; // local: no node, no admin token
  if (auto t = raw.flags.find("--token"); t != raw.flags.end())
    opts.token = t->second;
  if (auto d = raw.flags.find("--data-dir"); d != raw.flags.end())
    opts.data_dir = d->second;
  int tls_given = 0;
  for (auto [flag, dest] : {std::pair{"--tls-cert", &opts.tls_cert},
                            std::pair{"--tls-key", &opts.tls_key},
                            std::pair{"--tls-ca", &opts.tls_ca}}) {
    if (auto f = raw.flags.find(flag); f != raw.flags.end()) {
      if (f->second.empty()) {
        res.error = std::string{flag} + " needs a file";
        return res;
      }
      *dest = f->second;
      ++tls_given;
    }
  }
  if (tls_given != 0 && tls_given != 3) {
    res.error = "--tls-cert, --tls-key and --tls-ca go together (TLS with "
                "a certificate), got "
                + std::to_string(tls_given) + " of them";
    return res;
  }
  auto node = raw.flags.find("--node");
  if (node == raw.flags.end())
    res.error = "missing --node HOST:PORT";
  else
    res.error = parse_node(node->second, opts);
  return res;
}

std::string resolve_token(cli_options& opts, const char* env_token) {
  if (!opts.token.empty())
    return {};
  if (env_token != nullptr && *env_token != '\0') {
    opts.token = env_token;
    return {};
  }
  if (opts.data_dir.empty())
    return "no admin token: give --token TOKEN, set SECKILL_ADMIN_TOKEN, or "
           "give --data-dir DIR of the node (its DIR/admin-token is read)";
  auto path = opts.data_dir + "/admin-token";
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr)
    return "--data-dir: cannot read " + in_quotes(path) + ": "
           + std::strerror(errno);
  char buf[256];
  auto n = std::fread(buf, 1, sizeof(buf), f);
  std::fclose(f);
  std::string token(buf, n);
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r'))
    token.pop_back();
  if (token.empty() || n == sizeof(buf))
    return "--data-dir: " + in_quotes(path) + " does not hold an admin token";
  opts.token = std::move(token);
  return {};
}

std::string mint_buyer_token(const cli_options& opts, int64_t now_ms,
                             std::string& jwt) {
  auto path = !opts.secret_file.empty() ? opts.secret_file
                                        : opts.data_dir + "/buyer-jwt-secret";
  std::string secret;
  bool generated = false;
  if (auto err = load_or_make_secret(path, "32 to 1024 printable characters",
                                     valid_secret, false, secret, generated);
      !err.empty())
    return err;
  tokens::jwt_claims c;
  c.sub = opts.user;
  c.exp_s = now_ms / 1000 + opts.ttl_s;
  jwt = tokens::mint_jwt(secret, c);
  return {};
}

// -- Running a command --------------------------------------------------------

namespace {

std::string endpoint(const cli_options& o) {
  return printable(o.host) + ":" + std::to_string(o.port);
}

std::string what_was_asked(const cli_options& o) {
  std::string id = o.cmd == command::create_item ? o.spec.item_id
                   : o.cmd == command::switches  ? o.switch_name
                                                 : o.id;
  std::string out = to_string(o.cmd);
  if (!id.empty())
    out += " " + in_quotes(id);
  return out;
}

/// An error answer: our codes are the node's decision (exit 1); any CAF
/// error means the node could not be talked to (exit 3).
cli_result failed(caf::actor_system& sys, const cli_options& o,
                  const caf::error& err, std::chrono::milliseconds timeout) {
  cli_result r;
  if (err.category() == errc_category) {
    r.exit_code = exit_refused;
    r.err = std::string{"error: "} + to_string(to_errc(err)) + ": node "
            + endpoint(o) + " refused " + what_was_asked(o);
    if (auto hint = retry_after_ms(err); hint > 0)
      r.err += " (retry after " + std::to_string(hint) + " ms)";
    r.err += "\n";
  } else if (err == caf::sec::request_timeout) {
    r.exit_code = exit_unreachable;
    r.err = no_answer_message(o, timeout) + "\n";
  } else {
    r.exit_code = exit_unreachable;
    r.err = "error: node " + endpoint(o)
            + " failed to answer: " + sys.render(err) + "\n";
  }
  return r;
}

template <class T, class Format, class... Ts>
cli_result ask(caf::scoped_actor& self, const admin_actor& dest,
               const cli_options& o, std::chrono::milliseconds timeout,
               Format format, Ts... xs) {
  cli_result r;
  self->request(dest, timeout, xs...)
    .receive(
      [&](T& x) { r.out = format(x, o.json); },
      [&](caf::error& err) { r = failed(self->system(), o, err, timeout); });
  return r;
}

/// Epoch milliseconds on this machine's clock.
int64_t system_now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch())
    .count();
}

/// format_nodes at the moment the answer arrived. since_ms is the node's
/// clock and now is ours: a skew between the two machines shifts FOR (a
/// member "in the future" shows 0s), which is good enough for a glance.
std::string format_nodes_now(const std::vector<member_view>& xs, bool json) {
  return format_nodes(xs, system_now_ms(), json);
}

} // namespace

std::string no_answer_message(const cli_options& opts,
                              std::chrono::milliseconds timeout) {
  auto ms = timeout.count();
  std::string amount = ms % 1000 == 0 ? std::to_string(ms / 1000) + " s"
                                      : std::to_string(ms) + " ms";
  return "error: node " + endpoint(opts) + " did not answer within " + amount;
}

cli_result run_command(caf::actor_system& sys, const cli_options& o,
                       std::chrono::milliseconds timeout) {
  auto dest = o.tls()
                ? caf::openssl::remote_actor<admin_actor>(sys, o.host, o.port)
                : sys.middleman().remote_actor<admin_actor>(o.host, o.port);
  if (!dest) {
    std::string hint;
    if (dest.error() == caf::sec::disconnect_during_handshake)
      hint = o.tls() ? " (the node refused this certificate, or its port "
                       "is not TLS)"
                     : " (a node whose cluster port is TLS needs --tls-cert, "
                       "--tls-key and --tls-ca)";
    return {exit_unreachable, "",
            "error: cannot reach node " + endpoint(o) + ": "
              + sys.render(dest.error()) + hint + "\n"};
  }
  caf::scoped_actor self{sys};
  const auto& d = *dest;
  switch (o.cmd) {
    case command::status:
      return ask<node_status>(self, d, o, timeout, format_status, status_atom_v,
                              o.token);
    case command::items:
      return ask<std::vector<item_detail>>(self, d, o, timeout, format_items,
                                           list_atom_v, o.token);
    case command::item:
      return ask<item_detail>(self, d, o, timeout, format_item, view_atom_v,
                              o.token, o.id);
    case command::sessions:
      return ask<sessions_view>(self, d, o, timeout, format_sessions,
                                sessions_atom_v, o.token);
    case command::user:
      return ask<user_view>(self, d, o, timeout, format_user, user_atom_v,
                            o.token, o.id);
    case command::create_item:
      return ask<item_view>(self, d, o, timeout, format_created, create_atom_v,
                            o.token, o.spec);
    case command::pause:
      return ask<item_view>(self, d, o, timeout, format_item_status,
                            pause_atom_v, o.token, o.id);
    case command::resume:
      return ask<item_view>(self, d, o, timeout, format_item_status,
                            resume_atom_v, o.token, o.id);
    case command::end:
      return ask<item_view>(self, d, o, timeout, format_item_status, end_atom_v,
                            o.token, o.id);
    case command::nodes:
      return ask<std::vector<member_view>>(
        self, d, o, timeout, format_nodes_now, nodes_atom_v, o.token);
    case command::switches:
      if (o.switch_name.empty())
        return ask<switches_view>(self, d, o, timeout, format_switches,
                                  switch_atom_v, o.token);
      return ask<switches_view>(self, d, o, timeout, format_switches,
                                switch_atom_v, o.token, o.switch_name,
                                o.switch_value);
    case command::none:
    case command::help:
    case command::buyer_token: break; // local, handled by main
  }
  return {exit_usage, usage(), ""};
}

} // namespace seckill::cli
