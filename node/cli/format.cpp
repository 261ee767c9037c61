// seckill-cli's output (see cli.hpp): each admin answer as aligned text or
// one JSON value.
//
// The JSON output is written by a small writer of its own: compact, one
// object per command (an array of objects for nodes, one per member), each
// view's members as its `fields` list names them (messages/fields.hpp: the
// list its inspect follows too), a few derived values after them, enums as
// their names, int64 as JSON numbers, strings escaped (quotes, backslashes and
// every control character; other bytes, UTF-8 included, pass through). The
// human form strips nothing but shows control characters as \xNN, so a hostile
// id cannot move the terminal's cursor.
#include "node/cli/cli.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <tuple>
#include <type_traits>
#include <utility>

#include "messages/errors.hpp"

namespace seckill::cli {

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

// -- JSON ---------------------------------------------------------------------

std::string json_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    switch (ch) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
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

void put(json_writer& w, const store_stats& x);

/// One member's value: strings, numbers, booleans and enums (by name) as
/// JSON scalars, vectors as arrays, views as objects of their fields.
template <class T>
void put_value(json_writer& w, const T& v);

/// A view's members, in the order its `fields` lists them
/// (messages/fields.hpp): the one list the wire format also follows.
template <class View>
void put_fields(json_writer& w, const View& x) {
  // fields() hands out references it is given; here they are only read.
  std::apply([&](auto... fs) { ((w.key(fs.name), put_value(w, fs.ref)), ...); },
             fields(const_cast<View&>(x)));
}

template <class View>
void put(json_writer& w, const View& x) {
  w.open('{');
  put_fields(w, x);
  w.close('}');
}

template <class T>
struct is_vector : std::false_type {};
template <class T>
struct is_vector<std::vector<T>> : std::true_type {};

template <class T>
void put_value(json_writer& w, const T& v) {
  if constexpr (std::is_same_v<T, std::string>) {
    w.str(v);
  } else if constexpr (std::is_same_v<T, bool>) {
    w.boolean(v);
  } else if constexpr (std::is_enum_v<T>) {
    w.str(to_string(v));
  } else if constexpr (std::is_integral_v<T>) {
    w.num(static_cast<int64_t>(v));
  } else if constexpr (std::is_floating_point_v<T>) {
    w.real(v);
  } else if constexpr (is_vector<T>::value) {
    w.open('[');
    for (const auto& e : v)
      put_value(w, e);
    w.close(']');
  } else {
    put(w, v);
  }
}

/// Averages are derived fields (not struct members): named unit first,
/// qualifier last, as the struct's own commit_us_max is.
void put(json_writer& w, const store_stats& x) {
  w.open('{');
  put_fields(w, x);
  double avg_us = x.transactions > 0
                    ? static_cast<double>(x.commit_us_total) / x.transactions
                    : 0.0;
  w.key("commit_ms_avg").real(avg_us / 1000.0);
  w.close('}');
}

// -- Human-readable text ------------------------------------------------------

/// `s` with control characters shown as \xNN (never sent to the terminal).

/// `printable(s)`, or "-" for an empty string (an unset field).
std::string shown(std::string_view s) {
  return s.empty() ? "-" : printable(s);
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
/// two spaces between columns, no trailing blanks. A "-" (no value) does
/// not make a column of numbers textual, but a column needs one number to
/// be numeric.
std::string table(const std::vector<std::string>& header,
                  const table_rows& rows) {
  std::vector<std::size_t> width(header.size());
  std::vector<bool> right(header.size());
  for (std::size_t c = 0; c < header.size(); ++c) {
    width[c] = header[c].size();
    bool numbers = true, some_number = false;
    for (const auto& row : rows) {
      width[c] = std::max(width[c], row[c].size());
      some_number = some_number || numeric(row[c]);
      numbers = numbers && (numeric(row[c]) || row[c] == "-");
    }
    right[c] = numbers && some_number;
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
  w.open('{');
  put_fields(w, x);
  w.key("uptime_ms").num(x.now_ms - x.started_ms);
  w.close('}');
  return w.text();
}

std::string store_text(const store_stats& x) {
  double avg_ms = x.transactions > 0 ? static_cast<double>(x.commit_us_total)
                                         / x.transactions / 1000.0
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
  return out + "\nstore\n" + store_text(x.store) + "\nhttp\n"
         + http_text(x.http);
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
    .add("admission", to_string(s.admission))
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
  return "recent outcomes (" + std::to_string(recent.size())
         + ", newest last)\n"
         + table({"time", "user", "outcome", "qty", "order id"}, rows);
}

} // namespace

std::string format_item(const item_detail& x, bool json) {
  if (json) {
    json_writer w;
    put(w, x);
    return w.text();
  }
  std::string queue =
    kv_block{}
      .add("waiting", x.queue.waiting)
      .add("in flight", x.queue.inflight)
      .add("oldest wait ms", x.queue.oldest_wait_ms)
      .add("admitted", x.queue.admitted)
      .add("rejected", x.queue.rejected)
      .add("sold-out notice ms",
           x.queue.sold_out_notice_ms < 0
             ? std::string{"-"}
             : std::to_string(x.queue.sold_out_notice_ms) + " ("
                 + std::to_string(x.queue.sold_out_waiters)
                 + " waiters answered)")
      .add("tickets", std::to_string(x.queue.tickets_issued) + " issued, "
                        + std::to_string(x.queue.tickets_served) + " served, "
                        + std::to_string(x.queue.tickets_expired) + " expired, "
                        + std::to_string(x.queue.tickets_waiting) + " in line")
      .add("ticket head", x.queue.ticket_head)
      .render("  ");
  return item_view_text(x.item) + "\nqueue\n" + queue + "\n"
         + recent_text(x.item.recent);
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
  return "item " + printable(x.record.spec.item_id) + ": " + to_string(x.status)
         + " (admin state " + to_string(x.record.admin) + ")\n";
}

// -- sessions and user --------------------------------------------------------

std::string format_sessions(const sessions_view& x, bool json) {
  if (json) {
    json_writer w;
    put(w, x);
    return w.text();
  }
  std::string out = kv_block{}
                      .add("sessions", x.count)
                      .add("max", x.sessions_max)
                      .add("refused", x.refused)
                      .add("unpaid parked", x.unpaid_parked)
                      .add("unpaid not parked", x.unpaid_parked_dropped)
                      .render();
  if (x.top.empty())
    return out + "\ntop users by requests: none\n";
  table_rows rows;
  for (const auto& s : x.top)
    rows.push_back({printable(s.user_id), std::to_string(s.requests),
                    format_time_ms(s.last_active_ms)});
  return out + "\ntop users by requests\n"
         + table({"user", "requests", "last active"}, rows);
}

namespace {

std::string user_json(const user_view& x) {
  json_writer w;
  put(w, x);
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
             .render()
           + "(no live session: never seen, or retired when idle)\n";
  std::string out = kv_block{}
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
           : "\nitems\n"
               + table({"item", "held", "requests known", "queued"}, items);
  table_rows unpaid;
  for (const auto& u : x.unpaid)
    unpaid.push_back({printable(u.order_id), printable(u.item_id),
                      std::to_string(u.quantity),
                      format_time_ms(u.expires_ms)});
  out += unpaid.empty()
           ? "\nunpaid orders: none\n"
           : "\nunpaid orders\n"
               + table({"order id", "item", "qty", "expires at"}, unpaid);
  return out;
}

// -- nodes --------------------------------------------------------------------

namespace {

/// A count, or "-" for -1 (the member did not report it).
std::string count_text(int64_t v) {
  return v < 0 ? "-" : std::to_string(v);
}

/// "3 members: 2 up, 1 down": self counts as up; states in a fixed order,
/// then any state this CLI does not know, in order of first appearance.
std::string members_summary(const std::vector<member_view>& xs) {
  std::vector<std::pair<std::string, int64_t>> tally{
    {"up", 0}, {"connecting", 0}, {"down", 0}};
  for (const auto& x : xs) {
    std::string state = x.state == "self" ? "up" : printable(x.state);
    auto i = std::find_if(tally.begin(), tally.end(),
                          [&](const auto& t) { return t.first == state; });
    if (i == tally.end())
      tally.emplace_back(state, 1);
    else
      ++i->second;
  }
  std::string out =
    std::to_string(xs.size()) + (xs.size() == 1 ? " member:" : " members:");
  const char* sep = " ";
  for (const auto& [state, n] : tally) {
    if (n == 0)
      continue;
    out += sep + std::to_string(n) + " " + state;
    sep = ", ";
  }
  return out + "\n";
}

std::string nodes_json(const std::vector<member_view>& xs) {
  json_writer w;
  put_value(w, xs);
  return w.text();
}

} // namespace

std::string format_nodes(const std::vector<member_view>& xs, int64_t now_ms,
                         bool json) {
  if (json)
    return nodes_json(xs);
  if (xs.empty())
    return "no members\n";
  table_rows rows;
  for (const auto& x : xs) {
    // Self has no "since"; 0 elsewhere would mean "unknown", not 1970.
    bool no_since = x.state == "self" || x.since_ms <= 0;
    rows.push_back({printable(x.node_id), shown(x.endpoint), printable(x.state),
                    no_since ? "-" : format_duration_ms(now_ms - x.since_ms),
                    count_text(x.items), count_text(x.sessions),
                    count_text(x.connections), count_text(x.requests)});
  }
  return table({"NODE", "ENDPOINT", "STATE", "FOR", "ITEMS", "SESSIONS",
                "CONNS", "REQUESTS"},
               rows)
         + members_summary(xs);
}

// -- switch -------------------------------------------------------------------

namespace {

std::string off_if_zero(int64_t x, const char* unit = "") {
  return x == 0 ? std::string{"0 (off)"} : std::to_string(x) + unit;
}

} // namespace

std::string format_switches(const switches_view& x, bool json) {
  if (json) { // by hand: the JSON groups the refusal counters in "refused"
    json_writer w;
    w.open('{').key("node_rate_per_s").num(x.node_rate_per_s);
    w.key("ip_rate_per_s").num(x.ip_rate_per_s);
    w.key("rate_burst_ms").num(x.rate_burst_ms);
    w.key("shed_inflight_max").num(x.shed_inflight_max);
    w.key("shed_latency_ms").num(x.shed_latency_ms);
    w.key("shed_lag_ms").num(x.shed_lag_ms);
    w.key("edge_reads_ms").num(x.edge_reads_ms);
    w.key("essential_only").boolean(x.essential_only);
    w.key("lag_us").num(x.lag_us).key("inflight").num(x.inflight);
    w.key("inflight_limit").num(x.inflight_limit);
    w.key("refused").open('{').key("shed_inflight").num(x.shed_inflight);
    w.key("shed_lag").num(x.shed_lag).key("node_rate").num(x.node_rate);
    w.key("ip_rate").num(x.ip_rate).close('}');
    w.close('}');
    return w.text();
  }
  table_rows rows{
    {"node-rate-per-s", off_if_zero(x.node_rate_per_s, "/s"),
     "API requests/s this node takes, then 429"},
    {"ip-rate-per-s", off_if_zero(x.ip_rate_per_s, "/s"),
     "per client address, then 429"},
    {"rate-burst-ms", std::to_string(x.rate_burst_ms) + " ms",
     "a bucket holds this much of its rate"},
    {"shed-inflight-max", std::to_string(x.shed_inflight_max),
     "requests at the bridges at most, then 503"},
    {"shed-latency-ms", off_if_zero(x.shed_latency_ms, " ms"),
     "fewer: as many as are answered in this time"},
    {"shed-lag-ms", off_if_zero(x.shed_lag_ms, " ms"),
     "scheduler lag, then 503"},
    {"edge-reads-ms", off_if_zero(x.edge_reads_ms, " ms"),
     "stock reads from this node's copy, at most this old"},
    {"essential-only", x.essential_only ? "on" : "off",
     "item list and per-item metrics off"},
  };
  char lag[32];
  std::snprintf(lag, sizeof lag, "%.1f ms", x.lag_us / 1000.0);
  return table({"SWITCH", "VALUE", "MEANING"}, rows) + "\n"
         + kv_block{}
             .add("scheduler lag", std::string{lag})
             .add("requests in flight", x.inflight)
             .add("in-flight bound now", x.inflight_limit)
             .add("shed (in flight)", x.shed_inflight)
             .add("shed (lag)", x.shed_lag)
             .add("429 (node rate)", x.node_rate)
             .add("429 (client rate)", x.ip_rate)
             .render();
}

} // namespace seckill::cli
