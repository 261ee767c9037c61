// seckill-cli's parsing, formatting and request logic (see cli.hpp).
//
// The JSON output is written by a small writer of its own: compact, one
// object per command, field names the struct members' names, enums as their
// names, int64 as JSON numbers, strings escaped (quotes, backslashes and
// every control character; other bytes, UTF-8 included, pass through). The
// human form strips nothing but shows control characters as \xNN, so a
// hostile id cannot move the terminal's cursor. Nothing here blocks without
// a bound or throws on bad input.
#include "node/cli.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <map>
#include <utility>

#include <caf/actor_system.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>

#include "actors/admin.hpp"
#include "messages/errors.hpp"
#include "messages/type_ids.hpp"

namespace seckill::cli {

// -- JSON ---------------------------------------------------------------------

std::string json_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    switch (ch) {
    case '"':
      out += "\\\"";
      break;
    case '\\':
      out += "\\\\";
      break;
    case '\b':
      out += "\\b";
      break;
    case '\f':
      out += "\\f";
      break;
    case '\n':
      out += "\\n";
      break;
    case '\r':
      out += "\\r";
      break;
    case '\t':
      out += "\\t";
      break;
    default:
      if (static_cast<unsigned char>(ch) < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof(buf), "\\u%04x",
                      static_cast<unsigned>(static_cast<unsigned char>(ch)));
        out += buf;
      } else {
        out += ch;
      }
    }
  }
  return out;
}

namespace {

/// Writes one compact JSON value. Commas follow from one flag: `first_` is
/// true right after an opening bracket, and closing a nested container
/// leaves its parent with at least one element.
class json_writer {
public:
  json_writer& open(char bracket) {
    sep();
    out_ += bracket;
    first_ = true;
    return *this;
  }
  json_writer& close(char bracket) {
    out_ += bracket;
    first_ = false;
    return *this;
  }
  json_writer& key(std::string_view k) {
    sep();
    in_quotes(k);
    out_ += ':';
    after_key_ = true;
    return *this;
  }
  json_writer& str(std::string_view v) {
    sep();
    in_quotes(v);
    return *this;
  }
  json_writer& num(int64_t v) {
    sep();
    out_ += std::to_string(v);
    return *this;
  }
  json_writer& real(double v) {
    sep();
    if (!std::isfinite(v)) {
      out_ += "null"; // JSON has no NaN or infinity
      return *this;
    }
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.6g", v);
    out_ += buf;
    return *this;
  }
  json_writer& boolean(bool v) {
    sep();
    out_ += v ? "true" : "false";
    return *this;
  }
  std::string text() const { return out_ + "\n"; }

private:
  void sep() {
    if (after_key_)
      after_key_ = false;
    else if (!first_)
      out_ += ',';
    first_ = false;
  }
  void in_quotes(std::string_view s) {
    out_ += '"';
    out_ += json_escape(s);
    out_ += '"';
  }

  std::string out_;
  bool first_ = true;
  bool after_key_ = false;
};

void put(json_writer& w, const item_spec& x) {
  w.open('{');
  w.key("item_id").str(x.item_id).key("name").str(x.name);
  w.key("total").num(x.total).key("per_user_limit").num(x.per_user_limit);
  w.key("starts_at_ms").num(x.starts_at_ms);
  w.key("ends_at_ms").num(x.ends_at_ms);
  w.key("mode").str(to_string(x.mode));
  w.key("reserve_ttl_ms").num(x.reserve_ttl_ms);
  w.key("price_cents").num(x.price_cents);
  w.close('}');
}

void put(json_writer& w, const item_record& x) {
  w.open('{').key("spec");
  put(w, x.spec);
  w.key("counters").open('{');
  w.key("available").num(x.counters.available);
  w.key("reserved").num(x.counters.reserved);
  w.key("sold").num(x.counters.sold);
  w.close('}');
  w.key("admin").str(to_string(x.admin));
  w.key("next_order_seq").num(x.next_order_seq);
  w.close('}');
}

void put(json_writer& w, const outcome_event& x) {
  w.open('{').key("at_ms").num(x.at_ms).key("user_id").str(x.user_id);
  w.key("outcome").str(x.outcome).key("quantity").num(x.quantity);
  w.key("order_id").str(x.order_id).close('}');
}

void put(json_writer& w, const item_view& x) {
  w.open('{').key("record");
  put(w, x.record);
  w.key("status").str(to_string(x.status));
  w.key("orders").num(x.orders).key("buyers").num(x.buyers);
  w.key("batch_pending").num(x.batch_pending);
  w.key("batch_inflight").num(x.batch_inflight);
  w.key("commits").num(x.commits);
  w.key("commit_failures").num(x.commit_failures);
  w.key("recent").open('[');
  for (const auto& e : x.recent)
    put(w, e);
  w.close(']').close('}');
}

void put(json_writer& w, const queue_view& x) {
  w.open('{').key("item_id").str(x.item_id);
  w.key("status").str(to_string(x.status));
  w.key("waiting").num(x.waiting).key("inflight").num(x.inflight);
  w.key("oldest_wait_ms").num(x.oldest_wait_ms);
  w.key("admitted").num(x.admitted).key("rejected").num(x.rejected);
  w.close('}');
}

void put(json_writer& w, const item_detail& x) {
  w.open('{').key("item");
  put(w, x.item);
  w.key("queue");
  put(w, x.queue);
  w.close('}');
}

/// Averages are derived fields (not struct members): named unit first,
/// qualifier last, as the struct's own commit_us_max is.
void put(json_writer& w, const store_stats& x) {
  w.open('{').key("transactions").num(x.transactions);
  w.key("failed_transactions").num(x.failed_transactions);
  w.key("rows_written").num(x.rows_written).key("batches").num(x.batches);
  w.key("largest_group").num(x.largest_group);
  w.key("commit_us_total").num(x.commit_us_total);
  w.key("commit_us_max").num(x.commit_us_max);
  double avg_us = x.transactions > 0
                      ? static_cast<double>(x.commit_us_total) / x.transactions
                      : 0.0;
  w.key("commit_ms_avg").real(avg_us / 1000.0);
  w.close('}');
}

void put(json_writer& w, const http_stats& x) {
  w.open('{').key("connections_open").num(x.connections_open);
  w.key("connections_accepted").num(x.connections_accepted);
  w.key("connections_refused").num(x.connections_refused);
  w.key("requests").num(x.requests);
  w.key("requests_inflight").num(x.requests_inflight);
  w.key("transport_errors").num(x.transport_errors);
  w.key("answer_timeouts").num(x.answer_timeouts);
  w.close('}');
}

void put(json_writer& w, const session_summary& x) {
  w.open('{').key("user_id").str(x.user_id).key("requests").num(x.requests);
  w.key("last_active_ms").num(x.last_active_ms).close('}');
}

// -- Human-readable text ------------------------------------------------------

/// `s` with control characters shown as \xNN (never sent to the terminal).
std::string printable(std::string_view s) {
  std::string out;
  for (char ch : s) {
    auto byte = static_cast<unsigned char>(ch);
    if (byte < 0x20 || byte == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", static_cast<unsigned>(byte));
      out += buf;
    } else {
      out += ch;
    }
  }
  return out;
}

/// `printable(s)`, or "-" for an empty string (an unset field).
std::string shown(std::string_view s) {
  return s.empty() ? "-" : printable(s);
}

std::string in_quotes(std::string_view s) {
  return "'" + printable(s) + "'";
}

/// A plain number ("-12", "8.500"): such columns are right-aligned.
bool numeric(const std::string& s) {
  std::size_t i = !s.empty() && s[0] == '-' ? 1 : 0;
  bool digits = false, dot = false;
  for (; i < s.size(); ++i) {
    if (std::isdigit(static_cast<unsigned char>(s[i])) != 0)
      digits = true;
    else if (s[i] == '.' && !dot && digits)
      dot = true;
    else
      return false;
  }
  return digits && s.back() != '.';
}

/// Labels and values, labels padded to one width.
class kv_block {
public:
  kv_block& add(std::string label, std::string value) {
    lines_.emplace_back(std::move(label), std::move(value));
    return *this;
  }
  kv_block& add(std::string label, int64_t value) {
    return add(std::move(label), std::to_string(value));
  }
  std::string render(const std::string& indent = "") const {
    std::size_t width = 0;
    for (const auto& [label, value] : lines_)
      width = std::max(width, label.size());
    std::string out;
    for (const auto& [label, value] : lines_) {
      out += indent + label + std::string(width - label.size() + 2, ' ');
      out += value + "\n";
    }
    return out;
  }

private:
  std::vector<std::pair<std::string, std::string>> lines_;
};

using table_rows = std::vector<std::vector<std::string>>;

/// An aligned table: numeric columns right-aligned, others left-aligned,
/// two spaces between columns, no trailing blanks.
std::string table(const std::vector<std::string>& header,
                  const table_rows& rows) {
  std::vector<std::size_t> width(header.size());
  std::vector<bool> right(header.size(), !rows.empty());
  for (std::size_t c = 0; c < header.size(); ++c) {
    width[c] = header[c].size();
    for (const auto& row : rows) {
      width[c] = std::max(width[c], row[c].size());
      right[c] = right[c] && numeric(row[c]);
    }
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out;
    for (std::size_t c = 0; c < cells.size(); ++c) {
      std::string pad(width[c] - cells[c].size(), ' ');
      bool last = c + 1 == cells.size();
      out += right[c] ? pad + cells[c] : cells[c] + (last ? "" : pad);
      if (!last)
        out += "  ";
    }
    return out + "\n";
  };
  std::string out = line(header);
  for (const auto& row : rows)
    out += line(row);
  return out;
}

/// "2024-05-01T12:00:00.000Z (1714564800000)", "-" for 0.
std::string time_and_ms(int64_t ms) {
  if (ms == 0)
    return "-";
  return format_time_ms(ms) + " (" + std::to_string(ms) + ")";
}

std::string fixed3(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3f", v);
  return buf;
}

} // namespace

std::string format_duration_ms(int64_t ms) {
  int64_t s = ms > 0 ? ms / 1000 : 0;
  int64_t d = s / 86400, h = s / 3600 % 24, m = s / 60 % 60;
  s %= 60;
  char buf[64];
  if (d > 0)
    std::snprintf(buf, sizeof(buf), "%lldd%02lldh%02lldm%02llds",
                  static_cast<long long>(d), static_cast<long long>(h),
                  static_cast<long long>(m), static_cast<long long>(s));
  else if (h > 0)
    std::snprintf(buf, sizeof(buf), "%lldh%02lldm%02llds",
                  static_cast<long long>(h), static_cast<long long>(m),
                  static_cast<long long>(s));
  else if (m > 0)
    std::snprintf(buf, sizeof(buf), "%lldm%02llds", static_cast<long long>(m),
                  static_cast<long long>(s));
  else
    std::snprintf(buf, sizeof(buf), "%llds", static_cast<long long>(s));
  return buf;
}

std::string format_time_ms(int64_t ms) {
  if (ms == 0)
    return "-";
  // Floor division, so times before 1970 still print a valid fraction.
  int64_t secs = ms / 1000 - (ms % 1000 < 0 ? 1 : 0);
  int64_t frac = ms - secs * 1000;
  std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  if (gmtime_r(&t, &tm) == nullptr)
    return std::to_string(ms) + "ms";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                tm.tm_min, tm.tm_sec, static_cast<int>(frac));
  return buf;
}

// -- status -------------------------------------------------------------------

namespace {

std::string status_json(const node_status& x) {
  json_writer w;
  w.open('{').key("node_id").str(x.node_id).key("version").str(x.version);
  w.key("data_dir").str(x.data_dir);
  w.key("http_endpoint").str(x.http_endpoint);
  w.key("cluster_endpoint").str(x.cluster_endpoint);
  w.key("started_ms").num(x.started_ms).key("now_ms").num(x.now_ms);
  w.key("uptime_ms").num(x.now_ms - x.started_ms);
  w.key("items").num(x.items).key("sessions").num(x.sessions);
  w.key("recovered_items").num(x.recovered_items);
  w.key("recovered_orders").num(x.recovered_orders);
  w.key("store");
  put(w, x.store);
  w.key("http");
  put(w, x.http);
  w.close('}');
  return w.text();
}

std::string store_text(const store_stats& x) {
  double avg_ms = x.transactions > 0 ? static_cast<double>(x.commit_us_total) /
                                           x.transactions / 1000.0
                                     : 0.0;
  return kv_block{}
      .add("transactions", x.transactions)
      .add("failed", x.failed_transactions)
      .add("rows written", x.rows_written)
      .add("batches", x.batches)
      .add("avg commit ms", fixed3(avg_ms))
      .add("max commit ms", fixed3(static_cast<double>(x.commit_us_max) / 1000))
      .add("largest group", x.largest_group)
      .render("  ");
}

std::string http_text(const http_stats& x) {
  return kv_block{}
      .add("connections open", x.connections_open)
      .add("connections accepted", x.connections_accepted)
      .add("connections refused", x.connections_refused)
      .add("requests", x.requests)
      .add("requests in flight", x.requests_inflight)
      .add("transport errors", x.transport_errors)
      .add("answer timeouts", x.answer_timeouts)
      .render("  ");
}

} // namespace

std::string format_status(const node_status& x, bool json) {
  if (json)
    return status_json(x);
  std::string out =
      kv_block{}
          .add("node id", printable(x.node_id))
          .add("version", shown(x.version))
          .add("data dir", shown(x.data_dir))
          .add("http", shown(x.http_endpoint))
          .add("cluster", shown(x.cluster_endpoint))
          .add("started", time_and_ms(x.started_ms))
          .add("uptime", format_duration_ms(x.now_ms - x.started_ms))
          .add("items", x.items)
          .add("sessions", x.sessions)
          .add("recovered items", x.recovered_items)
          .add("recovered orders", x.recovered_orders)
          .render();
  return out + "\nstore\n" + store_text(x.store) + "\nhttp\n" +
         http_text(x.http);
}

// -- items and item -----------------------------------------------------------

std::string format_items(const std::vector<item_detail>& xs, bool json) {
  if (json) {
    json_writer w;
    w.open('{').key("items").open('[');
    for (const auto& x : xs)
      put(w, x);
    w.close(']').close('}');
    return w.text();
  }
  table_rows rows;
  for (const auto& x : xs) {
    const auto& r = x.item.record;
    const auto& q = x.queue;
    auto n = [](int64_t v) { return std::to_string(v); };
    rows.push_back({printable(r.spec.item_id), to_string(x.item.status),
                    to_string(r.spec.mode), n(r.spec.total),
                    n(r.counters.available), n(r.counters.reserved),
                    n(r.counters.sold), n(x.item.orders), n(q.waiting),
                    n(q.oldest_wait_ms), n(q.admitted), n(q.rejected)});
  }
  if (rows.empty())
    return "no items\n";
  return table({"id", "status", "mode", "total", "available", "reserved",
                "sold", "orders", "waiting", "oldest_wait_ms", "admitted",
                "rejected"},
               rows);
}

namespace {

std::string item_view_text(const item_view& x) {
  const auto& r = x.record;
  const auto& s = r.spec;
  return kv_block{}
      .add("item", printable(s.item_id))
      .add("name", shown(s.name))
      .add("status", to_string(x.status))
      .add("mode", to_string(s.mode))
      .add("total", s.total)
      .add("available", r.counters.available)
      .add("reserved", r.counters.reserved)
      .add("sold", r.counters.sold)
      .add("per user limit", s.per_user_limit)
      .add("starts at", time_and_ms(s.starts_at_ms))
      .add("ends at", s.ends_at_ms == 0 ? "none" : time_and_ms(s.ends_at_ms))
      .add("reserve ttl ms", s.reserve_ttl_ms)
      .add("price cents", s.price_cents)
      .add("admin state", to_string(r.admin))
      .add("next order seq", r.next_order_seq)
      .add("orders", x.orders)
      .add("buyers", x.buyers)
      .add("batch pending", x.batch_pending)
      .add("batch in flight", x.batch_inflight)
      .add("commits", x.commits)
      .add("commit failures", x.commit_failures)
      .render();
}

std::string recent_text(const std::vector<outcome_event>& recent) {
  if (recent.empty())
    return "recent outcomes: none\n";
  table_rows rows;
  for (const auto& e : recent)
    rows.push_back({format_time_ms(e.at_ms), printable(e.user_id),
                    printable(e.outcome), std::to_string(e.quantity),
                    e.order_id.empty() ? "-" : printable(e.order_id)});
  return "recent outcomes (" + std::to_string(recent.size()) +
         ", newest last)\n" +
         table({"time", "user", "outcome", "qty", "order id"}, rows);
}

} // namespace

std::string format_item(const item_detail& x, bool json) {
  if (json) {
    json_writer w;
    put(w, x);
    return w.text();
  }
  std::string queue = kv_block{}
                          .add("waiting", x.queue.waiting)
                          .add("in flight", x.queue.inflight)
                          .add("oldest wait ms", x.queue.oldest_wait_ms)
                          .add("admitted", x.queue.admitted)
                          .add("rejected", x.queue.rejected)
                          .render("  ");
  return item_view_text(x.item) + "\nqueue\n" + queue + "\n" +
         recent_text(x.item.recent);
}

std::string format_created(const item_view& x, bool json) {
  if (json) {
    json_writer w;
    put(w, x);
    return w.text();
  }
  return "created\n" + item_view_text(x);
}

std::string format_item_status(const item_view& x, bool json) {
  if (json) {
    json_writer w;
    put(w, x);
    return w.text();
  }
  return "item " + printable(x.record.spec.item_id) + ": " +
         to_string(x.status) + " (admin state " + to_string(x.record.admin) +
         ")\n";
}

// -- sessions and user --------------------------------------------------------

std::string format_sessions(const sessions_view& x, bool json) {
  if (json) {
    json_writer w;
    w.open('{').key("count").num(x.count);
    w.key("sessions_max").num(x.sessions_max).key("refused").num(x.refused);
    w.key("top").open('[');
    for (const auto& s : x.top)
      put(w, s);
    w.close(']').close('}');
    return w.text();
  }
  std::string out = kv_block{}
                        .add("sessions", x.count)
                        .add("max", x.sessions_max)
                        .add("refused", x.refused)
                        .render();
  if (x.top.empty())
    return out + "\ntop users by requests: none\n";
  table_rows rows;
  for (const auto& s : x.top)
    rows.push_back({printable(s.user_id), std::to_string(s.requests),
                    format_time_ms(s.last_active_ms)});
  return out + "\ntop users by requests\n" +
         table({"user", "requests", "last active"}, rows);
}

namespace {

std::string user_json(const user_view& x) {
  json_writer w;
  w.open('{').key("user_id").str(x.user_id).key("live").boolean(x.live);
  w.key("summary");
  put(w, x.summary);
  w.key("tokens").real(x.tokens);
  w.key("items").open('[');
  for (const auto& i : x.items) {
    w.open('{').key("item_id").str(i.item_id).key("held").num(i.held);
    w.key("requests_known").num(i.requests_known);
    w.key("queued").num(i.queued).close('}');
  }
  w.close(']').key("unpaid").open('[');
  for (const auto& u : x.unpaid) {
    w.open('{').key("order_id").str(u.order_id).key("item_id").str(u.item_id);
    w.key("quantity").num(u.quantity).key("expires_ms").num(u.expires_ms);
    w.close('}');
  }
  w.close(']').close('}');
  return w.text();
}

} // namespace

std::string format_user(const user_view& x, bool json) {
  if (json)
    return user_json(x);
  if (!x.live)
    return kv_block{}
               .add("user", printable(x.user_id))
               .add("live", "no")
               .render() +
           "(no live session: never seen, or retired when idle)\n";
  std::string out =
      kv_block{}
          .add("user", printable(x.user_id))
          .add("live", "yes")
          .add("requests", x.summary.requests)
          .add("last active", time_and_ms(x.summary.last_active_ms))
          .add("tokens", fixed3(x.tokens))
          .render();
  table_rows items;
  for (const auto& i : x.items)
    items.push_back({printable(i.item_id), std::to_string(i.held),
                     std::to_string(i.requests_known),
                     std::to_string(i.queued)});
  out += items.empty()
             ? "\nitems: none\n"
             : "\nitems\n" +
                   table({"item", "held", "requests known", "queued"}, items);
  table_rows unpaid;
  for (const auto& u : x.unpaid)
    unpaid.push_back({printable(u.order_id), printable(u.item_id),
                      std::to_string(u.quantity),
                      format_time_ms(u.expires_ms)});
  out += unpaid.empty()
             ? "\nunpaid orders: none\n"
             : "\nunpaid orders\n" +
                   table({"order id", "item", "qty", "expires at"}, unpaid);
  return out;
}

// -- Parsing ------------------------------------------------------------------

const char* to_string(command x) {
  switch (x) {
  case command::none:
    return "";
  case command::help:
    return "help";
  case command::status:
    return "status";
  case command::items:
    return "items";
  case command::item:
    return "item";
  case command::sessions:
    return "sessions";
  case command::user:
    return "user";
  case command::create_item:
    return "create-item";
  case command::pause:
    return "pause";
  case command::resume:
    return "resume";
  case command::end:
    return "end";
  }
  return "";
}

std::string usage() {
  return R"(usage: seckill-cli --node HOST:PORT [--json] COMMAND [ARGS]

Talks to a seckill node's admin actor (its cluster port). Flags may come
before or after the command; --flag=value works as well as --flag value.

commands:
  status                 the node: identity, uptime, items, sessions, store
                         and HTTP counters
  items                  every item: status, stock, orders, queue
  item ID                one item's whole state, its queue, recent outcomes
  sessions               live user sessions and the busiest users
  user ID                one user's session: items held, unpaid orders
  create-item --id ID --total N [--name S] [--per-user-limit N]
              [--starts-at-ms MS | --starts-in-s S]
              [--ends-at-ms MS | --ends-in-s S]
              [--mode order|reserve|pay] [--reserve-ttl-ms MS]
              [--price-cents N]
                         creates an item and prints it
  pause ID | resume ID | end ID
                         changes an item's admin state, prints its status
  help                   this text

flags:
  --node HOST:PORT       the node's cluster endpoint (required)
  --json                 one JSON object instead of text

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
    {"--node", true, false},        {"--json", false, false},
    {"--help", false, false},       {"-h", false, false},
    {"--id", true, true},           {"--total", true, true},
    {"--name", true, true},         {"--per-user-limit", true, true},
    {"--starts-at-ms", true, true}, {"--starts-in-s", true, true},
    {"--ends-at-ms", true, true},   {"--ends-in-s", true, true},
    {"--mode", true, true},         {"--reserve-ttl-ms", true, true},
    {"--price-cents", true, true},
};

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
                 command::pause, command::resume, command::end}) {
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
    return flag + ": " + in_quotes(text) +
           " is out of range for a 64-bit integer";
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
    return "--node: port " + in_quotes(port_text) +
           " is not a number from 1 to 65535";
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
  if (__builtin_mul_overflow(secs, int64_t{1000}, &ms) ||
      __builtin_add_overflow(ms, now_ms, &out))
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
    return "--mode: " + in_quotes(i->second) +
           " is not a mode (order, reserve or pay)";
  if (auto err = parse_time(raw, "--starts-at-ms", "--starts-in-s", now_ms,
                            spec.starts_at_ms);
      !err.empty())
    return err;
  return parse_time(raw, "--ends-at-ms", "--ends-in-s", now_ms,
                    spec.ends_at_ms);
}

bool takes_id(command c) {
  return c == command::item || c == command::user || c == command::pause ||
         c == command::resume || c == command::end;
}

/// Checks the positionals and command-specific flags of `cmd`.
std::string parse_command_args(const raw_args& raw, int64_t now_ms,
                               cli_options& out) {
  const auto& pos = raw.positionals;
  std::size_t wanted = takes_id(out.cmd) ? 2 : 1;
  if (pos.size() < wanted)
    return std::string{to_string(out.cmd)} + " needs an ID";
  if (pos.size() > wanted)
    return "unexpected argument " + in_quotes(pos[wanted]) + " after " +
           to_string(out.cmd);
  if (wanted == 2)
    out.id = pos[1];
  for (const auto& [name, value] : raw.flags)
    if (find_flag(name)->create_only && out.cmd != command::create_item)
      return "flag " + name + " applies to create-item only, not to " +
             to_string(out.cmd);
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
  if (raw.flags.count("--help") != 0 || raw.flags.count("-h") != 0 ||
      (!raw.positionals.empty() && raw.positionals[0] == "help")) {
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
  auto node = raw.flags.find("--node");
  if (node == raw.flags.end())
    res.error = "missing --node HOST:PORT";
  else
    res.error = parse_node(node->second, opts);
  return res;
}

// -- Running a command --------------------------------------------------------

namespace {

std::string endpoint(const cli_options& o) {
  return printable(o.host) + ":" + std::to_string(o.port);
}

std::string what_was_asked(const cli_options& o) {
  std::string id = o.cmd == command::create_item ? o.spec.item_id : o.id;
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
    r.err = std::string{"error: "} + to_string(to_errc(err)) + ": node " +
            endpoint(o) + " refused " + what_was_asked(o);
    if (auto hint = retry_after_ms(err); hint > 0)
      r.err += " (retry after " + std::to_string(hint) + " ms)";
    r.err += "\n";
  } else if (err == caf::sec::request_timeout) {
    r.exit_code = exit_unreachable;
    r.err = no_answer_message(o, timeout) + "\n";
  } else {
    r.exit_code = exit_unreachable;
    r.err = "error: node " + endpoint(o) +
            " failed to answer: " + sys.render(err) + "\n";
  }
  return r;
}

template <class T, class Format, class... Ts>
cli_result ask(caf::scoped_actor& self, const admin_actor& dest,
               const cli_options& o, std::chrono::milliseconds timeout,
               Format format, Ts... xs) {
  cli_result r;
  self->request(dest, timeout, xs...)
      .receive([&](T& x) { r.out = format(x, o.json); },
               [&](caf::error& err) {
                 r = failed(self->system(), o, err, timeout);
               });
  return r;
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
  auto dest = sys.middleman().remote_actor<admin_actor>(o.host, o.port);
  if (!dest)
    return {exit_unreachable, "",
            "error: cannot reach node " + endpoint(o) + ": " +
                sys.render(dest.error()) + "\n"};
  caf::scoped_actor self{sys};
  const auto& d = *dest;
  switch (o.cmd) {
  case command::status:
    return ask<node_status>(self, d, o, timeout, format_status, status_atom_v);
  case command::items:
    return ask<std::vector<item_detail>>(self, d, o, timeout, format_items,
                                         list_atom_v);
  case command::item:
    return ask<item_detail>(self, d, o, timeout, format_item, view_atom_v,
                            o.id);
  case command::sessions:
    return ask<sessions_view>(self, d, o, timeout, format_sessions,
                              sessions_atom_v);
  case command::user:
    return ask<user_view>(self, d, o, timeout, format_user, user_atom_v, o.id);
  case command::create_item:
    return ask<item_view>(self, d, o, timeout, format_created, create_atom_v,
                          o.spec);
  case command::pause:
    return ask<item_view>(self, d, o, timeout, format_item_status, pause_atom_v,
                          o.id);
  case command::resume:
    return ask<item_view>(self, d, o, timeout, format_item_status,
                          resume_atom_v, o.id);
  case command::end:
    return ask<item_view>(self, d, o, timeout, format_item_status, end_atom_v,
                          o.id);
  case command::none:
  case command::help:
    break;
  }
  return {exit_usage, usage(), ""};
}

} // namespace seckill::cli
