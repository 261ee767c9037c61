// The vocabulary of seckill's actors: plain value types with CAF `inspect`
// functions (0.17 form; a view's members are listed once, in its `fields`), so
// they can be sent between actors and nodes and printed with
// `caf::deep_to_string`. The HTTP/CLI DTOs are the protobuf messages of
// seckill.proto; messages/dto.hpp converts between the two.
//
// Time is integer milliseconds since the Unix epoch (`_ms`), quantities are
// int64_t units. Counters keep `available + reserved + sold == total`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/meta/type_name.hpp>

#include "messages/fields.hpp"

namespace seckill {

/// When an order takes stock (docs/ARCHITECTURE.md, "When an order takes
/// stock").
enum class deduction_mode : uint8_t {
  order = 0,   // taken at placement; the order is final (seckill default)
  reserve = 1, // held for reserve_ttl_ms; pay confirms, cancel/expiry returns
  pay = 2,     // nothing taken at placement; pay takes it or fails sold_out
};

/// Who may send an item's purchase (actors/edge/buyer_gate.hpp): anyone
/// with a buyer JWT (open), or only with a sale token, issued once the sale
/// is on (token), after a quiz or a proof of work (quiz).
enum class admission_mode : uint8_t { open = 0, token = 1, quiz = 2 };

/// What an operator decided; the shown status also depends on time and stock.
enum class admin_state : uint8_t { active = 0, paused = 1, ended = 2 };

enum class item_status : uint8_t {
  upcoming = 0,
  on_sale = 1,
  paused = 2,
  sold_out = 3,
  ended = 4,
};

/// The order life cycle (see persistence/store.hpp for the diagram).
enum class order_state : uint8_t {
  reserved = 0,  // reserve mode: stock held until expires_ms
  pending = 1,   // pay mode: placed, no stock held, payable until expires_ms
  confirmed = 2, // final: stock sold
  cancelled = 3, // final: stock (if any) returned
  expired = 4,   // final: deadline passed unpaid, stock (if any) returned
};

const char* to_string(deduction_mode x);
const char* to_string(admission_mode x);
bool parse(const std::string& text, admission_mode& out);
const char* to_string(admin_state x);
const char* to_string(item_status x);
const char* to_string(order_state x);
bool parse(const std::string& text, deduction_mode& out);
bool parse(const std::string& text, item_status& out);
bool parse(const std::string& text, order_state& out);

/// Whether an order in this state holds stock (reserved) or counts against
/// the user's limit (everything not given back).
bool holds_stock(order_state x);
bool counts_for_user(order_state x);
bool is_final(order_state x);

/// What an operator sets when creating an item; never changes afterwards.
struct item_spec {
  std::string item_id;
  std::string name;
  int64_t total = 0;
  int64_t per_user_limit = 1;
  int64_t starts_at_ms = 0;
  int64_t ends_at_ms = 0; // 0: no end
  deduction_mode mode = deduction_mode::order;
  int64_t reserve_ttl_ms = 15 * 60 * 1000;
  int64_t price_cents = 0;
  /// open here, so that an item built in code (tests, simulations) takes
  /// any purchase; the HTTP API and the CLI create `token` items unless
  /// told otherwise (parse_item_json).
  admission_mode admission = admission_mode::open;
};

inline auto fields(item_spec& x) {
  return std::make_tuple(
    field("item_id", x.item_id), field("name", x.name), field("total", x.total),
    field("per_user_limit", x.per_user_limit),
    field("starts_at_ms", x.starts_at_ms), field("ends_at_ms", x.ends_at_ms),
    field("mode", x.mode), field("reserve_ttl_ms", x.reserve_ttl_ms),
    field("price_cents", x.price_cents), field("admission", x.admission));
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, item_spec& x) {
  return inspect_fields(f, "item_spec", x);
}

struct stock_counters {
  int64_t available = 0;
  int64_t reserved = 0;
  int64_t sold = 0;
};

inline bool operator==(const stock_counters& a, const stock_counters& b) {
  return a.available == b.available && a.reserved == b.reserved
         && a.sold == b.sold;
}

inline auto fields(stock_counters& x) {
  return std::make_tuple(field("available", x.available),
                         field("reserved", x.reserved), field("sold", x.sold));
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, stock_counters& x) {
  return inspect_fields(f, "stock_counters", x);
}

/// An item's durable snapshot: what the store writes with every batch.
struct item_record {
  item_spec spec;
  stock_counters counters;
  admin_state admin = admin_state::active;
  int64_t next_order_seq = 1;
};

inline auto fields(item_record& x) {
  return std::make_tuple(field("spec", x.spec), field("counters", x.counters),
                         field("admin", x.admin),
                         field("next_order_seq", x.next_order_seq));
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, item_record& x) {
  return inspect_fields(f, "item_record", x);
}

struct order {
  std::string order_id; // "<item_id>.<seq>": the item is found from the id
  std::string item_id;
  std::string user_id;
  std::string request_id;
  int64_t quantity = 0;
  order_state state = order_state::confirmed;
  int64_t created_ms = 0;
  int64_t expires_ms = 0; // 0 unless reserved or pending
  int64_t updated_ms = 0;
  /// How this copy was answered, not part of the order: true when a
  /// purchase was answered with an order placed by an earlier request with
  /// the same request_id (HTTP 200 rather than 201). Never stored, and left
  /// out of ==.
  bool replayed = false;
};

inline bool operator==(const order& a, const order& b) {
  return a.order_id == b.order_id && a.item_id == b.item_id
         && a.user_id == b.user_id && a.request_id == b.request_id
         && a.quantity == b.quantity && a.state == b.state
         && a.created_ms == b.created_ms && a.expires_ms == b.expires_ms
         && a.updated_ms == b.updated_ms;
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, order& x) {
  return f(caf::meta::type_name("order"), x.order_id, x.item_id, x.user_id,
           x.request_id, x.quantity, x.state, x.created_ms, x.expires_ms,
           x.updated_ms, x.replayed);
}

/// A buyer's purchase attempt. `request_id` is the idempotency key.
struct purchase {
  std::string item_id;
  std::string user_id;
  std::string request_id;
  int64_t quantity = 1;
  /// Set by the user session (an `errc` value, 0: none): the session would
  /// refuse this purchase (a limit it believes reached) but cannot know
  /// whether it is a retry of an order placed before (the session was
  /// retired, the node restarted, the user's session moved). The item, which
  /// knows every request id, answers a retry with its order and refuses
  /// anything else with this code.
  uint8_t soft_refusal = 0;
  /// Set by the front door only: the purchase carried a sale token for this
  /// user and item that held (checked on the HTTP thread). A token or quiz
  /// item refuses a purchase without it (token_required).
  bool sale_token_ok = false;
  /// Set by the front door only: the number of the waiting-room ticket
  /// this retry presented, signed for this user, item and node (0: none).
  int64_t ticket = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, purchase& x) {
  return f(caf::meta::type_name("purchase"), x.item_id, x.user_id, x.request_id,
           x.quantity, x.soft_refusal, x.sale_token_ok, x.ticket);
}

/// What a purchase body carries beside the purchase, and what the front
/// door knows of its sender (messages/dto.hpp parse_purchase_json). Never
/// sent between actors: the token is checked before any actor sees it.
struct purchase_extras {
  std::string buyer;      // in: the buyer JWT's subject ("": none)
  std::string sale_token; // out: "" when the body has none
  std::string ticket;     // out: "" when the body has none
};

/// The tiny dynamic payload of `GET .../stock`.
struct stock_view {
  std::string item_id;
  int64_t total = 0;
  stock_counters counters;
  item_status status = item_status::upcoming;
  int64_t server_time_ms = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, stock_view& x) {
  return f(caf::meta::type_name("stock_view"), x.item_id, x.total, x.counters,
           x.status, x.server_time_ms);
}

/// What an item pushes to its admission queues when its status changes.
struct status_update {
  std::string item_id;
  item_status status = item_status::upcoming;
  int64_t available = 0;
  int64_t per_user_limit = 1;
  int64_t starts_at_ms = 0;
  admission_mode admission = admission_mode::open;
  /// With a refusing status: a Bloom filter of the request ids of the
  /// item's orders (actors/sale/request_filter.hpp); empty otherwise.
  std::vector<uint64_t> ordered_requests;
  /// When the item decided this status (its clock, epoch ms): a queue
  /// measures from it how late it learned of a sell-out.
  int64_t changed_ms = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, status_update& x) {
  return f(caf::meta::type_name("status_update"), x.item_id, x.status,
           x.available, x.per_user_limit, x.starts_at_ms, x.admission,
           x.ordered_requests, x.changed_ms);
}

/// One of an item's recent decisions, for the CLI (`seckill-cli item ID`).
struct outcome_event {
  int64_t at_ms = 0;
  std::string user_id;
  std::string outcome; // "ok" or an errc name
  int64_t quantity = 0;
  std::string order_id; // "" unless an order was placed or changed
};

inline auto fields(outcome_event& x) {
  return std::make_tuple(field("at_ms", x.at_ms), field("user_id", x.user_id),
                         field("outcome", x.outcome),
                         field("quantity", x.quantity),
                         field("order_id", x.order_id));
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, outcome_event& x) {
  return inspect_fields(f, "outcome_event", x);
}

/// An item actor's whole state, for the CLI and the tests.
struct item_view {
  item_record record;
  item_status status = item_status::upcoming;
  int64_t orders = 0;        // orders held in memory
  int64_t buyers = 0;        // distinct users holding units
  int64_t batch_pending = 0; // mutations waiting for the next commit
  int64_t batch_inflight = 0;
  int64_t commits = 0;
  int64_t commit_failures = 0;
  std::vector<outcome_event> recent; // newest last, bounded
};

inline auto fields(item_view& x) {
  return std::make_tuple(
    field("record", x.record), field("status", x.status),
    field("orders", x.orders), field("buyers", x.buyers),
    field("batch_pending", x.batch_pending),
    field("batch_inflight", x.batch_inflight), field("commits", x.commits),
    field("commit_failures", x.commit_failures), field("recent", x.recent));
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, item_view& x) {
  return inspect_fields(f, "item_view", x);
}

/// One item's share of a store transaction: its snapshot after the changes,
/// the orders placed since the last batch (new rows: a plain INSERT, so an
/// order id already in the file is a conflict, never an overwrite) and the
/// orders already in the file that changed (an UPDATE that must find them).
struct item_batch {
  item_record item;
  std::vector<order> placed;
  std::vector<order> changed;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, item_batch& x) {
  return f(caf::meta::type_name("item_batch"), x.item, x.placed, x.changed);
}

/// An admission queue's counters, for the CLI and metrics.
struct queue_view {
  std::string item_id;
  item_status status = item_status::upcoming;
  int64_t waiting = 0;
  int64_t inflight = 0;
  int64_t oldest_wait_ms = 0;
  int64_t admitted = 0;
  int64_t rejected = 0;
  /// Milliseconds from the item's decision of its last unit to this queue
  /// answering its waiters sold_out (-1: not sold out), and how many it
  /// answered then.
  int64_t sold_out_notice_ms = -1;
  int64_t sold_out_waiters = 0;
  /// The ticket line behind the room: tickets issued, collected (served),
  /// expired uncollected, in line now, and the number at its head (the
  /// next to go on; 0: none in line).
  int64_t tickets_issued = 0;
  int64_t tickets_served = 0;
  int64_t tickets_expired = 0;
  int64_t tickets_waiting = 0;
  int64_t ticket_head = 0;
};

inline auto fields(queue_view& x) {
  return std::make_tuple(
    field("item_id", x.item_id), field("status", x.status),
    field("waiting", x.waiting), field("inflight", x.inflight),
    field("oldest_wait_ms", x.oldest_wait_ms), field("admitted", x.admitted),
    field("rejected", x.rejected),
    field("sold_out_notice_ms", x.sold_out_notice_ms),
    field("sold_out_waiters", x.sold_out_waiters),
    field("tickets_issued", x.tickets_issued),
    field("tickets_served", x.tickets_served),
    field("tickets_expired", x.tickets_expired),
    field("tickets_waiting", x.tickets_waiting),
    field("ticket_head", x.ticket_head));
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, queue_view& x) {
  return inspect_fields(f, "queue_view", x);
}

/// The store's counters.
struct store_stats {
  int64_t transactions = 0;
  int64_t failed_transactions = 0;
  int64_t rows_written = 0;
  int64_t batches = 0;
  int64_t largest_group = 0; // item batches in one transaction
  int64_t commit_us_total = 0;
  int64_t commit_us_max = 0;
};

inline auto fields(store_stats& x) {
  return std::make_tuple(field("transactions", x.transactions),
                         field("failed_transactions", x.failed_transactions),
                         field("rows_written", x.rows_written),
                         field("batches", x.batches),
                         field("largest_group", x.largest_group),
                         field("commit_us_total", x.commit_us_total),
                         field("commit_us_max", x.commit_us_max));
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, store_stats& x) {
  return inspect_fields(f, "store_stats", x);
}

// -- Introspection (the admin actor, the CLI and /metrics) ---------------------

/// An item as the admin actor sees it: the item actor's state and its
/// admission queue's on this node.
struct item_detail {
  item_view item;
  queue_view queue;
};

inline auto fields(item_detail& x) {
  return std::make_tuple(field("item", x.item), field("queue", x.queue));
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, item_detail& x) {
  return inspect_fields(f, "item_detail", x);
}

/// The HTTP front door's counters (node/http/server.hpp fills them).
struct http_stats {
  int64_t connections_open = 0;
  int64_t connections_accepted = 0;
  int64_t connections_refused = 0; // over connections_max or draining
  int64_t requests = 0;            // complete requests handed to the handler
  int64_t requests_inflight = 0;   // handed over, answer not yet written
  int64_t transport_errors = 0;    // answered 400/408/413/414/431 there
  int64_t answer_timeouts = 0;
};

inline auto fields(http_stats& x) {
  return std::make_tuple(field("connections_open", x.connections_open),
                         field("connections_accepted", x.connections_accepted),
                         field("connections_refused", x.connections_refused),
                         field("requests", x.requests),
                         field("requests_inflight", x.requests_inflight),
                         field("transport_errors", x.transport_errors),
                         field("answer_timeouts", x.answer_timeouts));
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, http_stats& x) {
  return inspect_fields(f, "http_stats", x);
}

/// `seckill-cli status`.
struct node_status {
  std::string node_id;
  std::string version;
  std::string data_dir;
  std::string http_endpoint;    // "127.0.0.1:8080"
  std::string cluster_endpoint; // "127.0.0.1:4242"
  int64_t started_ms = 0;
  int64_t now_ms = 0;
  int64_t items = 0;
  int64_t sessions = 0;
  int64_t recovered_items = 0;
  int64_t recovered_orders = 0;
  store_stats store;
  http_stats http;
};

inline auto fields(node_status& x) {
  return std::make_tuple(
    field("node_id", x.node_id), field("version", x.version),
    field("data_dir", x.data_dir), field("http_endpoint", x.http_endpoint),
    field("cluster_endpoint", x.cluster_endpoint),
    field("started_ms", x.started_ms), field("now_ms", x.now_ms),
    field("items", x.items), field("sessions", x.sessions),
    field("recovered_items", x.recovered_items),
    field("recovered_orders", x.recovered_orders), field("store", x.store),
    field("http", x.http));
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, node_status& x) {
  return inspect_fields(f, "node_status", x);
}

/// One live session in `seckill-cli sessions`.
struct session_summary {
  std::string user_id;
  int64_t requests = 0; // purchases routed to it since it started
  int64_t last_active_ms = 0;
};

inline auto fields(session_summary& x) {
  return std::make_tuple(field("user_id", x.user_id),
                         field("requests", x.requests),
                         field("last_active_ms", x.last_active_ms));
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, session_summary& x) {
  return inspect_fields(f, "session_summary", x);
}

/// `seckill-cli sessions`: the count and the busiest users.
struct sessions_view {
  int64_t count = 0;
  int64_t sessions_max = 0;
  int64_t refused = 0; // new users answered busy because the table was full
  std::vector<session_summary> top; // by requests, descending, bounded
  int64_t unpaid_parked = 0; // unpaid orders kept for users without a session
  int64_t unpaid_parked_dropped = 0; // not kept: the parking was full
};

inline auto fields(sessions_view& x) {
  return std::make_tuple(
    field("count", x.count), field("sessions_max", x.sessions_max),
    field("refused", x.refused), field("top", x.top),
    field("unpaid_parked", x.unpaid_parked),
    field("unpaid_parked_dropped", x.unpaid_parked_dropped));
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, sessions_view& x) {
  return inspect_fields(f, "sessions_view", x);
}

/// What a session knows of one item for its user.
struct user_item_view {
  std::string item_id;
  int64_t held = 0;           // units known to be held
  int64_t requests_known = 0; // request ids remembered
  int64_t queued = 0;         // purchases in flight or waiting behind it
};

inline auto fields(user_item_view& x) {
  return std::make_tuple(field("item_id", x.item_id), field("held", x.held),
                         field("requests_known", x.requests_known),
                         field("queued", x.queued));
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, user_item_view& x) {
  return inspect_fields(f, "user_item_view", x);
}

/// An unpaid order as the session counts it against `unpaid-max`.
struct unpaid_view {
  std::string order_id;
  std::string item_id;
  int64_t quantity = 0;
  int64_t expires_ms = 0;
};

inline auto fields(unpaid_view& x) {
  return std::make_tuple(
    field("order_id", x.order_id), field("item_id", x.item_id),
    field("quantity", x.quantity), field("expires_ms", x.expires_ms));
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, unpaid_view& x) {
  return inspect_fields(f, "unpaid_view", x);
}

/// `seckill-cli user ID`: a user's session, if it is live.
struct user_view {
  std::string user_id;
  bool live = false; // false: no session (never seen, or retired when idle)
  session_summary summary;
  double tokens = 0; // the rate bucket's tokens now
  std::vector<user_item_view> items;
  std::vector<unpaid_view> unpaid;
};

inline auto fields(user_view& x) {
  return std::make_tuple(field("user_id", x.user_id), field("live", x.live),
                         field("summary", x.summary), field("tokens", x.tokens),
                         field("items", x.items), field("unpaid", x.unpaid));
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, user_view& x) {
  return inspect_fields(f, "user_view", x);
}

// -- The cluster ------------------------------------------------------------------

/// An item its owner announces to the other nodes, which open an edge
/// admission queue for it.
struct item_ref {
  std::string item_id;
  caf::actor item;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, item_ref& x) {
  return f(caf::meta::type_name("item_ref"), x.item_id, x.item);
}

/// What two nodes tell each other when they connect. `members` is the
/// sender's cluster.nodes list: two nodes with different lists would place
/// items differently, so they refuse each other.
struct peer_hello {
  std::string node_id;
  std::vector<std::string> members;
  caf::actor cluster;
  caf::actor directory;
  caf::actor sessions;
  caf::actor admin;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, peer_hello& x) {
  return f(caf::meta::type_name("peer_hello"), x.node_id, x.members, x.cluster,
           x.directory, x.sessions, x.admin);
}

/// One member as a node's routing sees it.
struct peer_ref {
  std::string node_id;
  bool up = false;
  caf::actor directory;
  caf::actor sessions;
  caf::actor admin;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, peer_ref& x) {
  return f(caf::meta::type_name("peer_ref"), x.node_id, x.up, x.directory,
           x.sessions, x.admin);
}

/// The cluster as one node sees it, in cluster.nodes order, pushed by the
/// membership actor to the node's directory, session manager and relays
/// whenever a member comes up or goes down. A single node is one member.
struct routes {
  uint32_t self = 0;
  std::vector<peer_ref> members;
  uint64_t version = 0; // grows with every change
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, routes& x) {
  return f(caf::meta::type_name("routes"), x.self, x.members, x.version);
}

/// One member in `seckill-cli nodes`. Counts are -1 when the member did not
/// answer (down, or too slow).
struct member_view {
  std::string node_id;
  std::string endpoint; // its cluster port, "host:port"
  std::string state;    // "self", "up", "connecting", "down"
  int64_t since_ms = 0; // when it entered that state
  int64_t items = -1;   // items it owns
  int64_t sessions = -1;
  int64_t connections = -1; // open HTTP connections
  int64_t requests = -1;    // HTTP requests served since it started
};

inline auto fields(member_view& x) {
  return std::make_tuple(
    field("node_id", x.node_id), field("endpoint", x.endpoint),
    field("state", x.state), field("since_ms", x.since_ms),
    field("items", x.items), field("sessions", x.sessions),
    field("connections", x.connections), field("requests", x.requests));
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, member_view& x) {
  return inspect_fields(f, "member_view", x);
}

/// `seckill-cli switch`: the node's limits and degrade switches as set now
/// (actors/edge/front_gate.hpp), with what the front gate has done since start.
struct switches_view {
  int64_t node_rate_per_s = 0;
  int64_t ip_rate_per_s = 0;
  int64_t rate_burst_ms = 0;
  int64_t shed_inflight_max = 0;
  int64_t shed_latency_ms = 0;
  int64_t shed_lag_ms = 0;
  int64_t edge_reads_ms = 0;
  bool essential_only = false;
  int64_t lag_us = 0;         // the scheduler's lag now
  int64_t inflight = 0;       // requests at the bridges now
  int64_t inflight_limit = 0; // the in-flight bound in force now
  // Requests the gate refused, by why.
  int64_t shed_inflight = 0;
  int64_t shed_lag = 0;
  int64_t node_rate = 0;
  int64_t ip_rate = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, switches_view& x) {
  return f(caf::meta::type_name("switches_view"), x.node_rate_per_s,
           x.ip_rate_per_s, x.rate_burst_ms, x.shed_inflight_max,
           x.shed_latency_ms, x.shed_lag_ms, x.edge_reads_ms, x.essential_only,
           x.lag_us, x.inflight, x.inflight_limit, x.shed_inflight, x.shed_lag,
           x.node_rate, x.ip_rate);
}

} // namespace seckill
