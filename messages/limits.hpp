// Every named limit of seckill in one place: maxima of queues, maps, batches
// and timers, with units last in their names. The node's config may lower a
// default but never exceed a hard maximum here; the static_asserts state how
// the limits relate so that a change to one cannot silently break another.
#pragma once

#include <cstdint>

namespace seckill::limits {

// -- Identifiers and input ----------------------------------------------------
constexpr std::size_t id_length_max = 64;        // item, user, request ids
constexpr std::size_t node_id_length_max = 32;   // a cluster member's id
constexpr int64_t quantity_max = 1000;           // units in one purchase
constexpr int64_t item_total_max = 100'000'000;  // units one item can offer
constexpr std::size_t item_name_bytes_max = 256; // an item's display name

// -- Item actor -----------------------------------------------------------------
constexpr int64_t per_user_limit_max = quantity_max;
/// Orders one item keeps in memory (every order ever placed for it). Reaching
/// it answers `capacity_exceeded`; it is far above any sane sale's orders.
constexpr std::size_t orders_per_item_max = 2'000'000;
/// Orders an item's tables are sized for at creation (by its stock, at
/// most this): beyond it they grow, and growing rehashes all at once.
constexpr std::size_t orders_reserved_max = 1 << 20;
/// Mutations an item gathers while its previous batch commits. When full, new
/// purchases are answered `busy` until the commit returns.
constexpr std::size_t batch_orders_max = 4096;
/// Duplicate requests (same request_id) that may wait on one pending batch.
constexpr std::size_t batch_waiters_max = 2 * batch_orders_max;
/// Status listeners (admission queues, one per node) of one item.
constexpr std::size_t item_subscribers_max = 256;
constexpr int64_t reserve_ttl_ms_min = 1'000;
constexpr int64_t reserve_ttl_ms_max = 24 * 3600 * 1000;

// -- Items per node -----------------------------------------------------------------
constexpr std::size_t items_per_node_max = 10'000;
/// Bytes an item's tables take per order slot they are sized for (three
/// hash tables' buckets; measured: 32 MB for an item of 10^8 units, sized
/// for orders_reserved_max slots, whatever it sells).
constexpr int64_t item_table_bytes_per_slot = 32;
/// The node's budget for its items' tables (seckill.items-memory-mib): an
/// item whose tables would not fit is refused `capacity_exceeded` at
/// creation, instead of the kernel killing the node later (1,000 items of
/// 10^8 units would want 32 GB).
constexpr int64_t items_memory_mib_default = 4'096;
constexpr int64_t items_memory_mib_max = 1 << 20;

// -- Cluster --------------------------------------------------------------------
/// Members of one cluster (cluster.nodes).
constexpr std::size_t cluster_nodes_max = 32;
/// Calls one relay keeps in flight to other nodes; beyond it a call is
/// answered busy. CAF searches pending replies linearly, so the node runs
/// several relays rather than one big one.
constexpr std::size_t relay_pending_max = 16'384;
/// Milliseconds between reconnection attempts to a down peer: doubling from
/// the first to the last.
constexpr int64_t reconnect_first_ms = 100;
constexpr int64_t reconnect_last_ms = 2'000;

// -- Store ----------------------------------------------------------------------
/// Item batches grouped into one SQLite transaction.
constexpr std::size_t store_group_batches_max = 1024;
/// Item batches waiting for a transaction. Each item has at most one batch
/// in flight, so this is only reached by more items than a node may hold;
/// beyond it a commit is answered `store_unavailable`.
constexpr std::size_t store_pending_batches_max = 4 * items_per_node_max;
/// The WAL: checkpointed once it holds this many pages (SQLite's default
/// page is 4 KiB), and truncated back to at most this many bytes after a
/// checkpoint, so that it cannot grow to fill a small volume.
constexpr int64_t store_wal_checkpoint_pages = 256;
constexpr int64_t store_wal_bytes_max = 1 << 20;
/// Bytes held in reserve beside the file: released when the disk is full so
/// that a checkpoint (which moves the WAL's pages into the file, growing
/// it by at most the WAL) can always complete.
constexpr int64_t store_reserve_bytes = 4 << 20;
/// A store whose commits fail (a full disk) tries to make its reserve again
/// at most this often.
constexpr int64_t store_reserve_retry_ms = 1'000;
/// The Retry-After of `store_unavailable`: a commit failed, the buyer's
/// purchase took nothing, and trying again soon is safe.
constexpr int64_t store_retry_after_ms = 1'000;
/// Repeated failures of one kind are logged at most once per this period,
/// with the count of those left out (a full disk fails every commit).
constexpr int64_t log_repeat_ms = 1'000;

// -- User sessions --------------------------------------------------------------
constexpr std::size_t sessions_per_node_max = 1'000'000;
/// Purchases of one user queued behind the one in flight (all items).
constexpr std::size_t session_queued_max = 8;
constexpr std::size_t session_items_max = 256; // items one session remembers
/// Request ids one session remembers per item (to let retries through). A
/// user holds at most per_user_limit_max units, so at most that many orders
/// count; when the memory is full the session leaves the limit to the item.
constexpr std::size_t session_requests_max = per_user_limit_max;
constexpr int64_t unpaid_per_user_max = 100;
/// Unpaid orders a session manager keeps for users without a live session
/// (retired while holding them, or announced by an item after a restart or
/// a move), so the next session starts with the user's true unpaid count.
/// Each entry lives until its deadline. Beyond this the newest are not kept
/// (counted, logged): for those users the cap falls back to what the new
/// session learns by itself.
constexpr std::size_t unpaid_parked_max = 200'000;
/// Order ids of recently settled orders a session remembers, so a late
/// announcement of an order already paid or cancelled is not counted again.
constexpr std::size_t session_settled_max = 64;

// -- Admission queue --------------------------------------------------------------
constexpr std::size_t waiting_room_max = 100'000;
/// Purchases a queue has sent on and not yet heard back about. It bounds the
/// item's batch from one queue, so it sets durable throughput (about
/// inflight / commit latency); CAF keeps pending replies in a list searched
/// linearly, so it cannot grow without cost (docs/ARCHITECTURE.md,
/// "Pending replies are a linear list": 10k in flight is
/// 25x slower than 100).
constexpr std::size_t queue_inflight_max = 2048;
constexpr int64_t wait_ms_max = 60'000;
/// The shortest retry hint a busy answer gives: a crowd told to come back
/// within milliseconds would come back as one storm.
constexpr int64_t busy_retry_ms_min = 100;
/// The ticket line behind a full waiting room (admission_queue.hpp): at most
/// this many tickets per queue, waiting or decided and not yet collected
/// (seckill.tickets-max; 0 turns tickets off: a full room answers busy).
constexpr std::size_t tickets_per_queue_default = 10'000;
constexpr std::size_t tickets_per_queue_max = 1'000'000;
/// A decided ticket's answer is kept this long for its holder to collect
/// (seckill.ticket-ttl-ms), then it expires.
constexpr int64_t ticket_ttl_ms_default = 60'000;
constexpr int64_t ticket_ttl_ms_max = 3'600'000;
constexpr std::size_t ticket_bytes_max = 256;
/// The hint of a busy answer from a full table that frees as answers come
/// back: the relay's pending calls and a session's queued purchases.
constexpr int64_t busy_full_table_retry_ms = busy_retry_ms_min;
/// The hint when the node's session table is full: sessions retire only
/// after being idle, so the room frees more slowly.
constexpr int64_t busy_sessions_full_retry_ms = 1'000;
/// A queue whose status subscription to its item failed tries again after
/// this pause (purchases go on to the item meanwhile).
constexpr int64_t queue_resubscribe_ms = 1'000;
static_assert(busy_full_table_retry_ms >= busy_retry_ms_min
                && busy_sessions_full_retry_ms >= busy_retry_ms_min,
              "no busy answer hints below the floor");

// -- Buyers: JWTs, sale tokens, challenges (messages/buyer_tokens.hpp) ----------
/// The longest buyer JWT read at all (a login service's token is a few
/// hundred bytes; a longer one is malformed before it is decoded).
constexpr std::size_t jwt_bytes_max = 4096;
constexpr std::size_t sale_token_bytes_max = 256;
constexpr std::size_t challenge_bytes_max = 512;
constexpr std::size_t answer_bytes_max = 20; // a decimal uint64
/// Secrets (buyer JWT, sale tokens): at least this long (HS256's key).
constexpr std::size_t secret_bytes_min = 32;
constexpr std::size_t secret_bytes_max = 1024;
/// The longest life seckill-cli buyer-token gives a JWT (a week).
constexpr int64_t buyer_token_ttl_s_max = 7 * 24 * 3600;
/// Clock skew allowed on a JWT's exp and nbf (seckill.buyer-jwt-leeway-ms).
constexpr int64_t jwt_leeway_ms_default = 30'000;
constexpr int64_t jwt_leeway_ms_max = 600'000;
/// A sale token's life (seckill.sale-token-ttl-ms).
constexpr int64_t sale_token_ttl_ms_default = 60'000;
constexpr int64_t sale_token_ttl_ms_min = 1'000;
constexpr int64_t sale_token_ttl_ms_max = 24 * 3600 * 1000;
/// The quiz: no answer sooner than seckill.quiz-min-ms after issue (faster
/// than a person reads), none later than quiz_ttl_ms.
constexpr int64_t quiz_min_ms_default = 1'000;
constexpr int64_t quiz_min_ms_max = 60'000;
constexpr int64_t quiz_ttl_ms = 120'000;
/// Proof of work: leading zero bits asked (seckill.pow-bits); 20 bits take
/// a browser about a second, 28 a minute.
constexpr int64_t pow_bits_default = 16;
constexpr int64_t pow_bits_max = 28;
/// Challenges redeemed on one node, remembered until they expire (one use
/// each). When full, a redeem is answered busy until the oldest expire.
constexpr std::size_t used_challenges_max = 1'000'000;
static_assert(quiz_min_ms_max < quiz_ttl_ms,
              "a challenge can always be answered before it expires");

// -- HTTP front door ------------------------------------------------------------
constexpr std::size_t http_connections_max = 100'000;
constexpr std::size_t http_header_bytes_max = 65'536; // line and headers
constexpr std::size_t http_body_bytes_max = 1 << 20;
/// A JSON request body (an item, a purchase, an order action): one flat
/// object, read by messages/json_strict.hpp before any other parser. An
/// item with the longest name and ids is under 2 KiB.
constexpr std::size_t json_body_bytes_max = 16 * 1024;
constexpr std::size_t json_keys_max = 32; // the largest message has 10 fields
/// Requests read from one connection and not yet answered; beyond it the
/// server stops reading that connection (backpressure).
constexpr std::size_t http_pipeline_max = 256;
/// The front gate's per-address token buckets: a fixed table indexed by a
/// hash of the address (addresses sharing a slot share its budget).
constexpr std::size_t gate_ip_slots = 1 << 16;
/// The front gate re-estimates the node's answer rate once per window; the
/// estimate is a moving average giving a new window this weight.
constexpr int64_t gate_rate_window_us = 20'000;
constexpr double gate_rate_new_weight = 0.3;
/// How often the lag probes (actor scheduler, HTTP event loop) measure:
/// the gate sees a stall at most this late.
constexpr int64_t lag_probe_interval_ms = 5;
/// The Retry-After of a non-essential request refused under essential-only.
constexpr int64_t essential_only_retry_ms = 5'000;
/// The front gate's adaptive in-flight bound never goes below this: a
/// flash sale starts from idle, and its first burst must not be shed
/// because the quiet minute before measured a low answer rate.
constexpr std::size_t gate_inflight_floor = 256;
/// Shedding for lag stops at the first measure under this share of
/// shed-lag-ms (hysteresis: a lag hovering at the bound must not make the
/// gate flap between shedding and not at every probe tick).
constexpr double gate_lag_release_ratio = 0.5;
/// Recent outcomes an item keeps for `seckill-cli item ID`.
constexpr std::size_t item_recent_outcomes_max = 32;
/// Requests of /metrics or of the item list waiting for the one render
/// under way (actors/edge/bridge.hpp shared_answer); beyond, 503 busy.
constexpr std::size_t shared_answer_waiters_max = 256;
constexpr int64_t shared_answer_retry_ms = 100;
/// Users listed by `seckill-cli sessions`.
constexpr std::size_t sessions_top_max = 20;

static_assert(batch_orders_max <= orders_per_item_max);
static_assert(orders_reserved_max <= orders_per_item_max);
static_assert(store_group_batches_max <= store_pending_batches_max);
static_assert(store_reserve_bytes >= 2 * store_wal_bytes_max,
              "the reserve covers a checkpoint of a WAL at its bound");
static_assert(batch_waiters_max >= batch_orders_max);
static_assert(queue_inflight_max <= batch_orders_max,
              "one queue alone can never overflow its item's batch");
static_assert(per_user_limit_max <= quantity_max);
static_assert(reserve_ttl_ms_min < reserve_ttl_ms_max);

} // namespace seckill::limits
