// Every type of the seckill type-ID block crosses a node boundary intact.
//
// CAF 0.17 (docs/ARCHITECTURE.md, "Unregistered types fail silently"): a type
// missing on one side fails silently (the sender prints "cannot serialize" and
// sends an empty message). So two actor systems in this process, each set up as
// a node sets itself up (register_types plus the middleman), connect over
// loopback: A publishes an echo actor on 127.0.0.1 (port 0: the OS picks one),
// B reaches it with remote_actor, and B sends one value of every type in the
// block, with no field left at its default, and checks field by field that the
// echo equals what it sent. The list of types is read from the block itself: a
// type added to the block without a sample here does not compile. Errors cross
// too, keeping their code and retry hint. A node that skips register_types (as
// sender or as receiver) proves the test can fail: its request is refused.
//
// Every request has a timeout, so nothing hangs; there are no sleeps (a
// blocking request is its own synchronization).
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "messages/errors.hpp"
#include "messages/type_ids.hpp"

using namespace seckill;

namespace {

constexpr auto request_timeout = std::chrono::seconds(5);

using fail_atom = caf::atom_constant<caf::atom("fail")>;

// -- Field-by-field equality (not via inspect, which is under test) -----------

auto fields(const item_spec& x) {
  return std::tie(x.item_id, x.name, x.total, x.per_user_limit, x.starts_at_ms,
                  x.ends_at_ms, x.mode, x.reserve_ttl_ms, x.price_cents);
}
auto fields(const stock_counters& x) {
  return std::tie(x.available, x.reserved, x.sold);
}
auto fields(const order& x) {
  return std::tie(x.order_id, x.item_id, x.user_id, x.request_id, x.quantity,
                  x.state, x.created_ms, x.expires_ms, x.updated_ms,
                  x.replayed);
}
auto fields(const purchase& x) {
  return std::tie(x.item_id, x.user_id, x.request_id, x.quantity);
}
auto fields(const status_update& x) {
  return std::tie(x.item_id, x.status, x.available, x.per_user_limit,
                  x.starts_at_ms, x.ordered_requests, x.changed_ms);
}
auto fields(const queue_view& x) {
  return std::tie(x.item_id, x.status, x.waiting, x.inflight, x.oldest_wait_ms,
                  x.admitted, x.rejected, x.sold_out_notice_ms,
                  x.sold_out_waiters);
}
auto fields(const store_stats& x) {
  return std::tie(x.transactions, x.failed_transactions, x.rows_written,
                  x.batches, x.largest_group, x.commit_us_total,
                  x.commit_us_max);
}
auto fields(const outcome_event& x) {
  return std::tie(x.at_ms, x.user_id, x.outcome, x.quantity, x.order_id);
}
auto fields(const http_stats& x) {
  return std::tie(x.connections_open, x.connections_accepted,
                  x.connections_refused, x.requests, x.requests_inflight,
                  x.transport_errors, x.answer_timeouts);
}
auto fields(const session_summary& x) {
  return std::tie(x.user_id, x.requests, x.last_active_ms);
}
auto fields(const user_item_view& x) {
  return std::tie(x.item_id, x.held, x.requests_known, x.queued);
}
auto fields(const unpaid_view& x) {
  return std::tie(x.order_id, x.item_id, x.quantity, x.expires_ms);
}

// Declared first so the templates below see every overload (ADL would not
// look into this unnamed namespace).
bool same(const std::string& a, const std::string& b);
bool same(const item_record& a, const item_record& b);
bool same(const stock_view& a, const stock_view& b);
bool same(const item_view& a, const item_view& b);
bool same(const item_batch& a, const item_batch& b);
bool same(const item_detail& a, const item_detail& b);
bool same(const node_status& a, const node_status& b);
bool same(const sessions_view& a, const sessions_view& b);
bool same(const user_view& a, const user_view& b);

template <class T>
auto same(const T& a, const T& b) -> decltype(fields(a), bool()) {
  return fields(a) == fields(b);
}
bool same(const std::string& a, const std::string& b) {
  return a == b;
}
bool same(const item_ref& a, const item_ref& b) {
  return a.item_id == b.item_id && a.item == b.item;
}
bool same(const peer_hello& a, const peer_hello& b) {
  return a.node_id == b.node_id && a.members == b.members
         && a.cluster == b.cluster && a.directory == b.directory
         && a.sessions == b.sessions && a.admin == b.admin;
}
bool same(const peer_ref& a, const peer_ref& b) {
  return a.node_id == b.node_id && a.up == b.up && a.directory == b.directory
         && a.sessions == b.sessions && a.admin == b.admin;
}
bool same(const routes& a, const routes& b);
bool same(const member_view& a, const member_view& b) {
  return a.node_id == b.node_id && a.endpoint == b.endpoint
         && a.state == b.state && a.since_ms == b.since_ms && a.items == b.items
         && a.sessions == b.sessions && a.connections == b.connections
         && a.requests == b.requests;
}
bool same(const switches_view& a, const switches_view& b) {
  return a.node_rate_per_s == b.node_rate_per_s
         && a.ip_rate_per_s == b.ip_rate_per_s
         && a.rate_burst_ms == b.rate_burst_ms
         && a.shed_inflight_max == b.shed_inflight_max
         && a.shed_latency_ms == b.shed_latency_ms
         && a.shed_lag_ms == b.shed_lag_ms && a.edge_reads_ms == b.edge_reads_ms
         && a.essential_only == b.essential_only && a.lag_us == b.lag_us
         && a.inflight == b.inflight && a.inflight_limit == b.inflight_limit
         && a.shed_inflight == b.shed_inflight && a.shed_lag == b.shed_lag
         && a.node_rate == b.node_rate && a.ip_rate == b.ip_rate;
}
template <class T>
bool same(const std::vector<T>& a, const std::vector<T>& b) {
  if (a.size() != b.size())
    return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (!same(a[i], b[i]))
      return false;
  return true;
}
bool same(const routes& a, const routes& b) {
  return a.self == b.self && a.version == b.version
         && same(a.members, b.members);
}
bool same(const item_record& a, const item_record& b) {
  return same(a.spec, b.spec) && same(a.counters, b.counters)
         && a.admin == b.admin && a.next_order_seq == b.next_order_seq;
}
bool same(const stock_view& a, const stock_view& b) {
  return a.item_id == b.item_id && a.total == b.total
         && same(a.counters, b.counters) && a.status == b.status
         && a.server_time_ms == b.server_time_ms;
}
bool same(const item_view& a, const item_view& b) {
  return same(a.record, b.record) && a.status == b.status
         && a.orders == b.orders && a.buyers == b.buyers
         && a.batch_pending == b.batch_pending
         && a.batch_inflight == b.batch_inflight && a.commits == b.commits
         && a.commit_failures == b.commit_failures && same(a.recent, b.recent);
}
bool same(const item_detail& a, const item_detail& b) {
  return same(a.item, b.item) && same(a.queue, b.queue);
}
bool same(const node_status& a, const node_status& b) {
  return std::tie(a.node_id, a.version, a.data_dir, a.http_endpoint,
                  a.cluster_endpoint, a.started_ms, a.now_ms, a.items,
                  a.sessions, a.recovered_items, a.recovered_orders)
           == std::tie(b.node_id, b.version, b.data_dir, b.http_endpoint,
                       b.cluster_endpoint, b.started_ms, b.now_ms, b.items,
                       b.sessions, b.recovered_items, b.recovered_orders)
         && same(a.store, b.store) && same(a.http, b.http);
}
bool same(const sessions_view& a, const sessions_view& b) {
  return a.count == b.count && a.sessions_max == b.sessions_max
         && a.refused == b.refused && same(a.top, b.top)
         && a.unpaid_parked == b.unpaid_parked
         && a.unpaid_parked_dropped == b.unpaid_parked_dropped;
}
bool same(const user_view& a, const user_view& b) {
  return a.user_id == b.user_id && a.live == b.live
         && same(a.summary, b.summary) && a.tokens == b.tokens
         && same(a.items, b.items) && same(a.unpaid, b.unpaid);
}
bool same(const item_batch& a, const item_batch& b) {
  return same(a.item, b.item) && same(a.placed, b.placed)
         && same(a.changed, b.changed);
}

// -- Samples: every field away from its default -------------------------------

template <class T>
struct tag {};

item_spec sample(tag<item_spec>) {
  return {"sku-1",
          "Phone",
          100,
          2,
          1'700'000'000'000,
          1'700'000'360'000,
          deduction_mode::pay,
          60'000,
          99'900,
          admission_mode::token};
}
stock_counters sample(tag<stock_counters>) {
  return {60, 15, 25};
}
item_record sample(tag<item_record>) {
  return {sample(tag<item_spec>{}), sample(tag<stock_counters>{}),
          admin_state::paused, 41};
}
order sample(tag<order>) {
  return {"sku-1.7",
          "sku-1",
          "u42",
          "r-9",
          3,
          order_state::expired,
          1'700'000'000'001,
          1'700'000'060'001,
          1'700'000'060'002,
          true};
}
purchase sample(tag<purchase>) {
  return {"sku-1", "u42", "r-9", 3, 0, true};
}
stock_view sample(tag<stock_view>) {
  return {"sku-1", 100, sample(tag<stock_counters>{}), item_status::sold_out,
          1'700'000'000'123};
}
status_update sample(tag<status_update>) {
  return {"sku-1",
          item_status::ended,
          7,
          2,
          1'700'000'000'000,
          admission_mode::quiz,
          {0x8000000000000001ULL, 42},
          1'700'000'000'500};
}
outcome_event sample(tag<outcome_event>) {
  return {1'700'000'000'777, "u42", "sold_out", 2, "sku-1.7"};
}
item_view sample(tag<item_view>) {
  auto second = sample(tag<outcome_event>{});
  second.outcome = "ok";
  return {sample(tag<item_record>{}),
          item_status::paused,
          11,
          9,
          3,
          2,
          5,
          1,
          {sample(tag<outcome_event>{}), second}};
}
item_batch sample(tag<item_batch>) {
  auto second = sample(tag<order>{});
  second.order_id = "sku-1.8";
  second.state = order_state::reserved;
  return {sample(tag<item_record>{}), {sample(tag<order>{})}, {second}};
}
queue_view sample(tag<queue_view>) {
  return {"sku-1", item_status::on_sale, 120, 40, 350, 9000, 77, 3, 65};
}
store_stats sample(tag<store_stats>) {
  return {500, 2, 4000, 700, 16, 123'456, 9'876};
}
std::vector<order> sample(tag<std::vector<order>>) {
  auto batch = sample(tag<item_batch>{});
  batch.placed.insert(batch.placed.end(), batch.changed.begin(),
                      batch.changed.end());
  return batch.placed;
}
std::vector<item_view> sample(tag<std::vector<item_view>>) {
  auto second = sample(tag<item_view>{});
  second.record.spec.item_id = "sku-2";
  second.status = item_status::upcoming;
  return {sample(tag<item_view>{}), second};
}
std::vector<std::string> sample(tag<std::vector<std::string>>) {
  return {"sku-1", "", "u\xe4\xb8\xad"};
}
item_detail sample(tag<item_detail>) {
  return {sample(tag<item_view>{}), sample(tag<queue_view>{})};
}
std::vector<item_detail> sample(tag<std::vector<item_detail>>) {
  auto second = sample(tag<item_detail>{});
  second.queue.item_id = "sku-2";
  return {sample(tag<item_detail>{}), second};
}
http_stats sample(tag<http_stats>) {
  return {3, 40, 2, 900, 7, 5, 1};
}
node_status sample(tag<node_status>) {
  return {"n1",
          "0.1.0",
          "/var/seckill",
          "127.0.0.1:8080",
          "127.0.0.1:4242",
          1'700'000'000'000,
          1'700'000'100'000,
          4,
          120,
          3,
          4000,
          sample(tag<store_stats>{}),
          sample(tag<http_stats>{})};
}
session_summary sample(tag<session_summary>) {
  return {"u42", 17, 1'700'000'000'500};
}
sessions_view sample(tag<sessions_view>) {
  return {120, 100'000, 4, {sample(tag<session_summary>{}), {"u7", 3, 9}},
          6,   2};
}
user_item_view sample(tag<user_item_view>) {
  return {"sku-1", 2, 5, 1};
}
unpaid_view sample(tag<unpaid_view>) {
  return {"sku-1.7", "sku-1", 2, 1'700'000'060'001};
}
std::vector<unpaid_view> sample(tag<std::vector<unpaid_view>>) {
  auto second = sample(tag<unpaid_view>{});
  second.order_id = "sku-1.8";
  return {sample(tag<unpaid_view>{}), second};
}
user_view sample(tag<user_view>) {
  return {"u42",
          true,
          sample(tag<session_summary>{}),
          3.5,
          {sample(tag<user_item_view>{})},
          {sample(tag<unpaid_view>{})}};
}

// Cluster types. Their actor handles are left empty here: a live handle
// crossing between nodes is what the three-node tests exercise.
item_ref sample(tag<item_ref>) {
  return {"sku-1", {}};
}
std::vector<item_ref> sample(tag<std::vector<item_ref>>) {
  return {sample(tag<item_ref>{}), {"sku-2", {}}};
}
peer_hello sample(tag<peer_hello>) {
  return {"n2", {"n1@127.0.0.1:4242", "n2@127.0.0.1:4243"}, {}, {}, {}, {}};
}
peer_ref sample(tag<peer_ref>) {
  return {"n3", true, {}, {}, {}};
}
routes sample(tag<routes>) {
  return {1, {sample(tag<peer_ref>{}), {"n4", false, {}, {}, {}}}, 7};
}
member_view sample(tag<member_view>) {
  return {"n2", "127.0.0.1:4243", "up", 1'700'000'000'000, 3, 40, 12, 9000};
}
switches_view sample(tag<switches_view>) {
  return {1, 2, 3, 4, 13, 5, 6, true, 7, 8, 14, 9, 10, 11, 12};
}
std::vector<member_view> sample(tag<std::vector<member_view>>) {
  return {sample(tag<member_view>{}), {"n3", "h:1", "down", 5, -1, -1, -1, -1}};
}

// -- Two nodes in one process -------------------------------------------------

caf::behavior echo(caf::event_based_actor*) {
  return {
    [](const item_spec& x) { return x; },
    [](const stock_counters& x) { return x; },
    [](const item_record& x) { return x; },
    [](const order& x) { return x; },
    [](const purchase& x) { return x; },
    [](const stock_view& x) { return x; },
    [](const status_update& x) { return x; },
    [](const item_view& x) { return x; },
    [](const item_batch& x) { return x; },
    [](const queue_view& x) { return x; },
    [](const store_stats& x) { return x; },
    [](const std::vector<order>& x) { return x; },
    [](const std::vector<item_view>& x) { return x; },
    [](const std::vector<std::string>& x) { return x; },
    [](const outcome_event& x) { return x; },
    [](const item_detail& x) { return x; },
    [](const std::vector<item_detail>& x) { return x; },
    [](const http_stats& x) { return x; },
    [](const node_status& x) { return x; },
    [](const session_summary& x) { return x; },
    [](const sessions_view& x) { return x; },
    [](const user_item_view& x) { return x; },
    [](const unpaid_view& x) { return x; },
    [](const user_view& x) { return x; },
    [](const std::vector<unpaid_view>& x) { return x; },
    [](const item_ref& x) { return x; },
    [](const std::vector<item_ref>& x) { return x; },
    [](const peer_hello& x) { return x; },
    [](const peer_ref& x) { return x; },
    [](const routes& x) { return x; },
    [](const member_view& x) { return x; },
    [](const std::vector<member_view>& x) { return x; },
    [](const switches_view& x) { return x; },
    [](fail_atom, uint8_t code, int64_t retry_ms) -> caf::result<int64_t> {
      auto x = static_cast<errc>(code);
      return retry_ms == 0 ? make_error(x) : make_error(x, retry_ms);
    },
  };
}

/// One actor system set up as a node sets itself up (or without the seckill
/// types, to show what a missing registration does).
struct node {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  explicit node(bool with_types) {
    if (with_types)
      register_types(cfg);
    cfg.load<caf::io::middleman>();
    cfg.set("scheduler.max-threads", 2);
    sys = std::make_unique<caf::actor_system>(cfg);
  }
};

/// Tells its actor to stop when it goes, so that its system's destructor
/// (which waits for all actors) returns even if a REQUIRE threw mid-setup.
struct stopped_on_exit {
  caf::actor actor;
  ~stopped_on_exit() {
    if (actor)
      caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
  }
};

/// A publishes the echo actor; B holds a proxy of it. Members go in reverse:
/// the proxy, then the echo actor is stopped, then B, then A.
struct two_nodes {
  node a;
  node b;
  stopped_on_exit echo_on_a;
  caf::actor proxy_on_b;

  explicit two_nodes(bool a_has_types = true, bool b_has_types = true)
    : a{a_has_types}, b{b_has_types} {
    echo_on_a.actor = a.sys->spawn(echo);
    auto port = a.sys->middleman().publish(echo_on_a.actor, 0, "127.0.0.1");
    REQUIRE(port);
    auto remote = b.sys->middleman().remote_actor("127.0.0.1", *port);
    REQUIRE(remote);
    proxy_on_b = std::move(*remote);
  }

  /// Sends `x` from B to A's echo; the value that came back, or the error.
  template <class T>
  caf::expected<T> round_trip(const T& x) {
    caf::scoped_actor self{*b.sys};
    caf::expected<T> result{caf::sec::bad_function_call};
    self->request(proxy_on_b, request_timeout, x)
      .receive([&](T& y) { result = std::move(y); },
               [&](caf::error& err) { result = std::move(err); });
    return result;
  }

  /// Asks A's echo to answer with `code` (and a retry hint if not 0).
  caf::error echo_error(errc code, int64_t retry_ms) {
    caf::scoped_actor self{*b.sys};
    caf::error result;
    self
      ->request(proxy_on_b, request_timeout, fail_atom::value,
                static_cast<uint8_t>(code), retry_ms)
      .receive([&](int64_t) { FAIL("the echo actor answered a failure"); },
               [&](caf::error& err) { result = std::move(err); });
    return result;
  }
};

template <class T>
void check_crosses(two_nodes& nodes) {
  auto sent = sample(tag<T>{});
  auto echoed = nodes.round_trip(sent);
  INFO("type " << caf::type_name<T>::value << ", sent "
               << caf::deep_to_string(sent));
  if (!echoed)
    FAIL_CHECK("error: " << nodes.b.sys->render(echoed.error()));
  else
    CHECK(same(*echoed, sent));
}

template <caf::type_id_t... Is>
void check_block(two_nodes& nodes,
                 std::integer_sequence<caf::type_id_t, Is...>) {
  constexpr auto first = caf::id_block::seckill::begin;
  (check_crosses<typename caf::type_by_id<first + Is>::type>(nodes), ...);
}

} // namespace

TEST_CASE("every type of the seckill block crosses a node boundary", "[wire]") {
  constexpr auto count =
    caf::id_block::seckill::end - caf::id_block::seckill::begin;
  static_assert(count == 33, "a new type: add its sample and echo handler");
  two_nodes nodes;
  check_block(nodes, std::make_integer_sequence<caf::type_id_t, count>{});
}

TEST_CASE("seckill errors cross a node boundary with code and retry hint",
          "[wire]") {
  two_nodes nodes;
  auto sold_out = nodes.echo_error(errc::sold_out, 0);
  CHECK(sold_out.category() == errc_category);
  CHECK(to_errc(sold_out) == errc::sold_out);
  CHECK(retry_after_ms(sold_out) == 0);
  auto busy = nodes.echo_error(errc::busy, 250);
  CHECK(busy.category() == errc_category);
  CHECK(to_errc(busy) == errc::busy);
  CHECK(retry_after_ms(busy) == 250);
  CHECK(nodes.b.sys->render(busy).find("busy") != std::string::npos);
}

TEST_CASE("a node without the registration can neither send nor receive",
          "[wire]") {
  // The planted faults that prove the test above can fail: one side skips
  // register_types, so the item_spec never arrives as one and the request is
  // refused (unexpected_message) rather than echoed. CAF prints "cannot
  // serialize" / "unexpected message" on stderr here; that is expected.
  SECTION("the sender lacks the types") {
    two_nodes nodes{true, false};
    auto echoed = nodes.round_trip(sample(tag<item_spec>{}));
    REQUIRE(!echoed);
    CHECK(echoed.error() == caf::sec::unexpected_message);
  }
  SECTION("the receiver lacks the types") {
    two_nodes nodes{false, true};
    auto echoed = nodes.round_trip(sample(tag<item_spec>{}));
    REQUIRE(!echoed);
    CHECK(echoed.error() == caf::sec::unexpected_message);
  }
}
