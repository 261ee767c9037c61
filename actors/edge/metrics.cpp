// The Prometheus text of /metrics (see metrics.hpp).
#include "actors/edge/metrics.hpp"

#include <array>
#include <atomic>
#include <cstdio>
#include <sstream>

namespace seckill {

namespace {

std::string escape_label(const std::string& v) {
  std::string out;
  for (char ch : v) {
    if (ch == '\\' || ch == '"')
      out += '\\';
    if (ch == '\n') {
      out += "\\n";
      continue;
    }
    out += ch;
  }
  return out;
}

class writer {
public:
  void family(const char* name, const char* type, const char* help) {
    out_ << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' '
         << type << '\n';
  }
  template <class T>
  void sample(const std::string& name, const std::string& labels, T value) {
    out_ << name;
    if (!labels.empty())
      out_ << '{' << labels << '}';
    out_ << ' ' << value << '\n';
  }
  std::string text() const { return out_.str(); }

private:
  std::ostringstream out_ = precise();

  static std::ostringstream precise() {
    std::ostringstream out;
    out.precision(15); // no 1e+06 uptime, no rounded commit sums
    return out;
  }
};

std::string label(const char* key, const std::string& value) {
  return std::string{key} + "=\"" + escape_label(value) + "\"";
}

void write_requests(writer& w, const bridge_counters& c) {
  w.family("seckill_http_requests_total", "counter",
           "HTTP requests answered by the bridges, by route and outcome.");
  for (std::size_t r = 0; r < route_count; ++r)
    for (std::size_t o = 0; o < bridge_counters::outcomes; ++o)
      if (auto n = c.requests[r][o].load(std::memory_order_relaxed); n > 0)
        w.sample("seckill_http_requests_total",
                 label("route", to_string(static_cast<route_kind>(r))) + ","
                   + label("outcome", to_string(static_cast<errc>(o))),
                 n);
  w.family("seckill_purchases_total", "counter",
           "Purchase attempts by outcome (ok: an order was returned).");
  for (std::size_t o = 0; o < bridge_counters::outcomes; ++o)
    if (auto n = c.purchases[o].load(std::memory_order_relaxed);
        n > 0 || o == 0)
      w.sample("seckill_purchases_total",
               label("outcome", to_string(static_cast<errc>(o))), n);
  w.family("seckill_orders_answered_total", "counter",
           "Orders returned: created (201) or a retry's (200).");
  w.sample("seckill_orders_answered_total", label("kind", "created"),
           c.orders_created.load());
  w.sample("seckill_orders_answered_total", label("kind", "replayed"),
           c.orders_replayed.load());
  w.family("seckill_shared_renders_total", "counter",
           "Renders of answers shared by the requests that wait for them.");
  w.sample("seckill_shared_renders_total", label("answer", "metrics"),
           c.metrics_renders.load());
  w.sample("seckill_shared_renders_total", label("answer", "items_list"),
           c.items_list_renders.load());
}

void write_node(writer& w, const node_status& s) {
  w.family("seckill_uptime_seconds", "gauge",
           "Seconds since the node started.");
  w.sample("seckill_uptime_seconds", "", (s.now_ms - s.started_ms) / 1000.0);
  w.family("seckill_sessions", "gauge", "Live user sessions on this node.");
  w.sample("seckill_sessions", "", s.sessions);
  w.family("seckill_items", "gauge", "Items on this node.");
  w.sample("seckill_items", "", s.items);
  const auto& h = s.http;
  w.family("seckill_http_connections", "gauge", "Open HTTP connections.");
  w.sample("seckill_http_connections", "", h.connections_open);
  w.family("seckill_http_connections_refused_total", "counter",
           "Connections answered 503: over the limit or draining.");
  w.sample("seckill_http_connections_refused_total", "", h.connections_refused);
  w.family("seckill_http_transport_errors_total", "counter",
           "Requests answered 400/408/413/414/431 by the HTTP layer.");
  w.sample("seckill_http_transport_errors_total", "", h.transport_errors);
  w.family("seckill_http_answer_timeouts_total", "counter",
           "Requests answered 503 timeout because no answer came in time.");
  w.sample("seckill_http_answer_timeouts_total", "", h.answer_timeouts);
}

void write_store(writer& w, const store_stats& s) {
  w.family("seckill_commit_seconds", "summary",
           "SQLite transactions (group commits) and their latency.");
  w.sample("seckill_commit_seconds_sum", "", s.commit_us_total / 1e6);
  w.sample("seckill_commit_seconds_count", "", s.transactions);
  w.family("seckill_commit_seconds_max", "gauge",
           "The slowest transaction so far.");
  w.sample("seckill_commit_seconds_max", "", s.commit_us_max / 1e6);
  w.family("seckill_commit_rows", "summary",
           "Rows (orders and snapshots) per transaction: the batch size.");
  w.sample("seckill_commit_rows_sum", "", s.rows_written);
  w.sample("seckill_commit_rows_count", "", s.transactions);
  w.family("seckill_commit_failures_total", "counter",
           "Transactions that failed (their changes were undone).");
  w.sample("seckill_commit_failures_total", "", s.failed_transactions);
}

void write_items(writer& w, const std::vector<item_detail>& items) {
  struct gauge {
    const char* name;
    const char* help;
    int64_t (*get)(const item_detail&);
  };
  static const gauge gauges[] = {
    {"seckill_item_available", "Units on offer.",
     [](const item_detail& d) { return d.item.record.counters.available; }},
    {"seckill_item_reserved", "Units held by unpaid reservations.",
     [](const item_detail& d) { return d.item.record.counters.reserved; }},
    {"seckill_item_sold", "Units sold.",
     [](const item_detail& d) { return d.item.record.counters.sold; }},
    {"seckill_queue_waiting", "Buyers in the item's waiting room.",
     [](const item_detail& d) { return d.queue.waiting; }},
    {"seckill_queue_oldest_wait_ms", "How long the oldest waiter has waited.",
     [](const item_detail& d) { return d.queue.oldest_wait_ms; }},
    {"seckill_queue_inflight", "Purchases on their way to the item.",
     [](const item_detail& d) { return d.queue.inflight; }},
    {"seckill_queue_admitted_total", "Purchases the queue let through.",
     [](const item_detail& d) { return d.queue.admitted; }},
    {"seckill_queue_rejected_total", "Purchases the queue answered itself.",
     [](const item_detail& d) { return d.queue.rejected; }},
    {"seckill_queue_tickets_issued_total",
     "Waiting-room tickets issued (429 queued).",
     [](const item_detail& d) { return d.queue.tickets_issued; }},
    {"seckill_queue_tickets_served_total",
     "Tickets whose holder collected the purchase's answer.",
     [](const item_detail& d) { return d.queue.tickets_served; }},
    {"seckill_queue_tickets_expired_total",
     "Decided tickets nobody came back for.",
     [](const item_detail& d) { return d.queue.tickets_expired; }},
    {"seckill_queue_tickets_waiting", "Purchases in the ticket line.",
     [](const item_detail& d) { return d.queue.tickets_waiting; }},
    {"seckill_queue_ticket_head", "The ticket number at the line's head.",
     [](const item_detail& d) { return d.queue.ticket_head; }},
  };
  for (const auto& g : gauges) {
    bool counter = std::string{g.name}.find("_total") != std::string::npos;
    w.family(g.name, counter ? "counter" : "gauge", g.help);
    for (const auto& d : items)
      w.sample(g.name, label("item", d.item.record.spec.item_id), g.get(d));
  }
  w.family("seckill_queue_sold_out_notice_seconds", "gauge",
           "From the item's last unit to this node's queue answering its "
           "waiters sold_out; only items that sold out while it listened.");
  for (const auto& d : items)
    if (d.queue.sold_out_notice_ms >= 0)
      w.sample("seckill_queue_sold_out_notice_seconds",
               label("item", d.item.record.spec.item_id),
               d.queue.sold_out_notice_ms / 1e3);
  w.family("seckill_item_status", "gauge", "1 for the item's status.");
  for (const auto& d : items)
    w.sample("seckill_item_status",
             label("item", d.item.record.spec.item_id) + ","
               + label("status", to_string(d.item.status)),
             1);
}

void write_remote(writer& w, const relay_counters& c) {
  w.family("seckill_remote_calls_total", "counter",
           "Requests this node sent to other nodes, by kind.");
  for (std::size_t k = 0; k < relay_kinds; ++k)
    w.sample("seckill_remote_calls_total",
             label("kind", to_string(static_cast<relay_kind>(k))),
             c.calls[k].load(std::memory_order_relaxed));
  w.family("seckill_remote_failed_total", "counter",
           "Requests to other nodes answered shard_unavailable here, by "
           "reason: in flight when the node went down, not sent because it "
           "was down, or no answer within the hop timeout.");
  w.sample("seckill_remote_failed_total", label("reason", "node_down"),
           c.failed_down.load(std::memory_order_relaxed));
  w.sample("seckill_remote_failed_total", label("reason", "known_down"),
           c.refused_down.load(std::memory_order_relaxed));
  w.sample("seckill_remote_failed_total", label("reason", "timeout"),
           c.failed_timeout.load(std::memory_order_relaxed));
  w.family("seckill_remote_pending", "gauge",
           "Requests to other nodes in flight now.");
  w.sample("seckill_remote_pending", "",
           c.pending.load(std::memory_order_relaxed));
}

void write_members(writer& w, const std::vector<member_view>& members) {
  w.family("seckill_cluster_member_up", "gauge",
           "1 if this node sees the member up (itself included), else 0.");
  for (const auto& m : members)
    w.sample("seckill_cluster_member_up", label("member", m.node_id),
             m.state == "self" || m.state == "up" ? 1 : 0);
}

void write_gate(writer& w, const gate_counters& c, const switches_view& v) {
  w.family("seckill_gate_refused_total", "counter",
           "Requests the front gate refused before any actor saw them.");
  for (std::size_t i = 1; i < gate_verdict_count; ++i) // 0 is pass
    w.sample("seckill_gate_refused_total",
             label("reason", to_string(static_cast<gate_verdict>(i))),
             c.verdicts[i].load(std::memory_order_relaxed));
  w.family("seckill_requests_inflight", "gauge",
           "Requests at the bridges and not yet answered.");
  w.sample("seckill_requests_inflight", "", v.inflight);
  w.family("seckill_requests_inflight_limit", "gauge",
           "The in-flight bound in force (adaptive: answer rate times "
           "shed-latency-ms).");
  w.sample("seckill_requests_inflight_limit", "", v.inflight_limit);
  w.family("seckill_scheduler_lag_seconds", "gauge",
           "How late the actor scheduler runs a message now.");
  w.sample("seckill_scheduler_lag_seconds", "", v.lag_us / 1e6);
  w.family("seckill_switch", "gauge",
           "The front gate's limits and the degrade switches as set now.");
  auto sw = [&w](const char* name, int64_t x) {
    w.sample("seckill_switch", label("name", name), x);
  };
  sw("node-rate-per-s", v.node_rate_per_s);
  sw("ip-rate-per-s", v.ip_rate_per_s);
  sw("rate-burst-ms", v.rate_burst_ms);
  sw("shed-inflight-max", v.shed_inflight_max);
  sw("shed-latency-ms", v.shed_latency_ms);
  sw("shed-lag-ms", v.shed_lag_ms);
  sw("edge-reads-ms", v.edge_reads_ms);
  sw("essential-only", v.essential_only ? 1 : 0);
  w.family("seckill_purchase_server_seconds", "histogram",
           "Server time of a purchase, from the request complete to its "
           "answer, by class (admitted: 2xx, shed: 503, refused: others).");
  for (std::size_t k = 0; k < answer_class_count; ++k) {
    const auto& h = c.purchase_us[k];
    auto cls = label("class", to_string(static_cast<answer_class>(k)));
    int64_t cumulative = 0;
    for (std::size_t i = 0; i < latency_histogram::buckets; ++i) {
      cumulative += h.counts[i].load(std::memory_order_relaxed);
      auto up = latency_histogram::upper_us(i);
      std::string le = up < 0 ? "+Inf" : std::to_string(up / 1e6);
      w.sample("seckill_purchase_server_seconds_bucket",
               cls + "," + label("le", le), cumulative);
    }
    w.sample("seckill_purchase_server_seconds_sum", cls,
             h.sum_us.load(std::memory_order_relaxed) / 1e6);
    w.sample("seckill_purchase_server_seconds_count", cls, cumulative);
  }
}

void write_buyers(writer& w, buyer_gate& b) {
  auto& c = b.counters();
  auto by_fault =
    [&w](
      const char* name, const char* help,
      const std::array<std::atomic<int64_t>, buyer_counters::faults>& counts) {
      w.family(name, "counter", help);
      for (std::size_t f = 1; f < counts.size(); ++f) // 0: none, not a refusal
        w.sample(
          name,
          label("reason", tokens::to_string(static_cast<tokens::fault>(f))),
          counts[f].load(std::memory_order_relaxed));
    };
  by_fault("seckill_buyer_jwt_refused_total",
           "Buyer requests answered 401 at the front door, by reason.",
           c.jwt_refused);
  by_fault("seckill_sale_token_refused_total",
           "Purchases whose sale token did not hold (403), by reason.",
           c.sale_token_refused);
  struct one {
    const char* name;
    const char* help;
    const std::atomic<int64_t>& value;
  };
  for (const auto& x :
       {one{"seckill_sale_tokens_issued_total", "Sale tokens issued.",
            c.sale_tokens_issued},
        one{"seckill_challenges_issued_total", "Quiz challenges issued.",
            c.challenges_issued},
        one{"seckill_challenges_redeemed_total",
            "Challenges answered right, each buying one sale token.",
            c.challenges_redeemed},
        one{"seckill_challenges_replayed_total",
            "Challenges presented again after they were redeemed (403).",
            c.challenges_replayed}}) {
    w.family(x.name, "counter", x.help);
    w.sample(x.name, "", x.value.load(std::memory_order_relaxed));
  }
  w.family("seckill_challenges_remembered", "gauge",
           "Redeemed challenges this node remembers until they expire.");
  w.sample("seckill_challenges_remembered", "",
           static_cast<int64_t>(b.used_challenges()));
}

} // namespace

std::string format_metrics(const bridge_counters& counters,
                           const node_status& status,
                           const std::vector<item_detail>& items,
                           const relay_counters* remote,
                           const std::vector<member_view>& members,
                           const gate_counters* gate,
                           const switches_view& switches, buyer_gate* buyers) {
  writer w;
  write_requests(w, counters);
  write_node(w, status);
  write_store(w, status.store);
  write_items(w, items);
  if (remote != nullptr)
    write_remote(w, *remote);
  if (!members.empty())
    write_members(w, members);
  if (gate != nullptr)
    write_gate(w, *gate, switches);
  if (buyers != nullptr)
    write_buyers(w, *buyers);
  return w.text();
}

} // namespace seckill
