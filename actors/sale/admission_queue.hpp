// The admission-queue actor: one per item on every node, at the edge. It
// meters how many purchases per second go on towards the item (a token
// bucket), keeps the rest in a bounded FIFO waiting room, and answers at once
// what it can answer without a hop: a full room, or a room so long that the
// newcomer's turn would come after `wait_ms_max`, is `busy` at once with a
// retry-after hint, and a waiter whose turn has not come by then is too; when
// the item says sold_out, ended, paused or upcoming, every waiter and every
// newcomer is answered with that, without asking the item (layered filtering).
//
// On a cluster every node has a queue for every item (the edge): a queue
// for an item owned elsewhere holds a handle to the remote item, subscribes
// to its status like a local one, meters its share of the item's admission
// rate among the live nodes (set by the directory), and while the owner is
// down answers shard_unavailable at once, without a hop.
//
// A retry of a request this queue has seen acknowledged is let through even
// when the item is sold out or ended, so that it gets its order back from
// the item (idempotency beats the edge's shortcut). So is a request the
// item's refusing status says may have an order (its filter of ordered
// request ids, request_filter.hpp): the order may have been placed through
// another node's queue.
// The ticket line (README.md, "The waiting room"): a newcomer the room cannot
// take within wait_ms_max is not sent away. Its purchase joins a FIFO line
// behind the room and it is answered 429 queued with its ticket (the number
// of its place, its position, an ETA from the admission rate, and
// likely_sold_out when the units asked for ahead of it already cover what
// is left). The queue sends the line's purchases on in ticket order, as the
// rate allows, after the room's; while the line is not empty every
// newcomer joins its end, so no newcomer overtakes a ticket holder. A
// retry that presents its ticket (checked and signed at the front door,
// `purchase::ticket`) collects its purchase's answer once decided, or is
// told its place again. A decided answer nobody collects expires after
// ticket_ttl_ms. At most tickets_max tickets (in line, on their way, or
// decided) per queue; beyond, busy as before; 0 turns tickets off.
// Order of arrival is order of service: a newcomer never overtakes a waiter.
// At most `inflight_max` purchases are on their way downstream at once.
// It must never: hold a request without a bound in time, or grow a queue past
// its limit.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <unordered_set>
#include <vector>

#include <caf/replies_to.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "actors/base/clock.hpp"
#include "actors/base/hop.hpp"
#include "actors/sale/session_manager.hpp"
#include "actors/sale/token_bucket.hpp"
#include "messages/errors.hpp"
#include "messages/limits.hpp"
#include "messages/type_ids.hpp"

namespace seckill {

using queue_actor = caf::typed_actor<
  caf::replies_to<purchase_atom, purchase>::with<order>,
  caf::reacts_to<status_atom, status_update>, // pushed by the item
  // The owner node went down (false) or came (back) up with the item's
  // handle; the queue subscribes to that handle.
  caf::reacts_to<owner_atom, bool, caf::actor>,
  // Its share of the item's admission rate and burst changed.
  caf::reacts_to<rate_atom, double, double>, caf::reacts_to<tick_atom>,
  caf::replies_to<view_atom>::with<queue_view>>;

struct queue_config {
  double rate_per_s = 20'000; // admissions per second towards the item
  double burst = 2'000;
  std::size_t waiting_max = 10'000;
  int64_t wait_ms_max = 10;
  std::size_t inflight_max = 1024;
  std::size_t tickets_max = limits::tickets_per_queue_default; // 0: off
  int64_t ticket_ttl_ms = limits::ticket_ttl_ms_default;
};

/// The answer a queue gives at once for a status, `ok` to let requests on.
errc status_refusal(item_status s);

/// Whether a newcomer who finds `waiting` buyers in the room must be turned
/// away at once: the room is full, or at `rate_per_s` its turn would come
/// after `wait_ms_max` (it would only wait to be told busy, holding its
/// connection; Plan B answers it now, in microseconds).
bool room_refuses(std::size_t waiting, std::size_t waiting_max,
                  double rate_per_s, int64_t wait_ms_max);

/// Milliseconds a newcomer should wait before retrying, from the room's
/// length and the admission rate: at least limits::busy_retry_ms_min (a
/// crowd told "10 ms" would come back as a storm), at most wait_ms_max
/// when that is longer.
int64_t retry_hint_ms(std::size_t waiting, double rate_per_s,
                      int64_t wait_ms_max);

struct waiting_purchase {
  purchase p;
  int64_t arrived_ms = 0;
  caf::typed_response_promise<order> rp;
};

/// A purchase in the ticket line, and a decided one's answer.
struct ticketed_purchase {
  int64_t ticket = 0;
  purchase p;
};

struct ticket_answer {
  int64_t decided_ms = 0;
  order placed; // when err is empty
  caf::error err;
};

struct queue_state {
  std::string item_id;
  queue_config cfg;
  clock_fn now_ms;
  caf::actor item;
  session_manager_actor sessions;
  cluster_env cluster;
  uint32_t owner_node = 0;
  bool owner_up = true;
  status_update status; // as last pushed by the item
  bool status_known = false;
  token_bucket bucket;
  std::deque<waiting_purchase> waiting;
  /// Request ids acknowledged through this queue (at most
  /// limits::orders_per_item_max, as many as the item keeps orders).
  std::unordered_set<std::string> acked_requests;
  std::size_t inflight = 0;
  int64_t timer_due_ms = 0;
  int64_t admitted = 0;
  int64_t rejected = 0;
  int64_t sold_out_notice_ms = -1; // see queue_view
  int64_t sold_out_waiters = 0;
  /// The ticket line: waiting (contiguous numbers, oldest first), on its
  /// way downstream, and decided until collected or expired.
  std::deque<ticketed_purchase> line;
  int64_t line_units = 0; // the quantities the line asks for
  std::unordered_set<int64_t> line_inflight;
  std::map<int64_t, ticket_answer> decided;
  int64_t next_ticket = 1;
  int64_t tickets_issued = 0;
  int64_t tickets_served = 0;
  int64_t tickets_expired = 0;
  static inline const char* name = "seckill.queue";
};

using queue_pointer = queue_actor::stateful_pointer<queue_state>;

/// `known_requests`: request ids of the item's orders so far (after a
/// restart, every order in the file may have been acknowledged).
/// `cluster`: where the item lives (its owner may be another node).
queue_actor::behavior_type
queue_impl(queue_pointer self, std::string item_id, queue_config cfg,
           clock_fn now_ms, caf::actor item, session_manager_actor sessions,
           std::vector<std::string> known_requests, cluster_env cluster = {});

} // namespace seckill
