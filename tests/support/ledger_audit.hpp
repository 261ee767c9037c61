// The kill-loop probe's auditor: a ledger of everything the clients of a
// seckill sale were told over HTTP (every purchase by its request id, every
// pay and cancel, and which answers were lost), and the check of that ledger
// against the SQLite files once every node has stopped.
//
// It knows only what a client can know (the answers) and what the files
// hold, never a node's memory. The rules it checks:
// - every 200/201 is in the file, with its order id, user and quantity;
// - a refusal is honest: no refused request id has an order in the file
//   (a retry of a lost answer refused `user_limit_exceeded` while its order
//   is there is a wrong answer, the defect this probe was written for);
// - every lost answer was retried until it got a real one;
// - counters add up, equal the order rows and the units clients hold; no
//   user is over the limit; a sale driven to its end sold exactly the total;
// - what a pay or cancel was answered is the order's state in the file.
// It must never: decide from timing, or call a refusal wrong without the
// file's order that proves it.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "persistence/store.hpp"
#include "tests/support/node_harness.hpp"

namespace seckill::test::probe {

/// What an answer says about the request it answers.
enum class outcome {
  placed,    // 200/201: an order (purchases), a definitive answer (actions)
  refused,   // a definitive refusal: the request did nothing
  transient, // busy, rate limited, shed: try again soon, same request
  unknown,   // no answer, or one that says it may have happened (503
             // timeout / shard_unavailable): retry it later, same request
};

const char* to_string(outcome x);
outcome classify_purchase(const http_reply& r);
outcome classify_action(const http_reply& r);

struct purchase_req {
  std::string item_id;
  std::string user_id;
  std::string request_id;
  int64_t quantity = 1;
};

/// A reservation a client holds and may pay or cancel.
struct reservation {
  std::string order_id;
  std::string item_id;
  std::string user_id;
};

/// A pay or cancel whose answer was lost: it is sent again, as it was.
struct pending_action {
  reservation order;
  std::string action; // pay | cancel
};

/// What the auditor is told about each item of the sale.
struct audit_item {
  std::string item_id;
  int64_t total = 0;
  int64_t per_user_limit = 1;
  bool driven_to_end = false; // buyers bought until everything was sold
};

struct probe_report {
  std::vector<std::string> faults;        // everything wrong, one line each
  std::vector<std::string> wrong_answers; // refusals the file contradicts
  int64_t requests = 0;
  int64_t acked_checked = 0;  // 200/201 answers checked against the file
  int64_t lost = 0;           // of those, missing or different in the file
  int64_t unknown = 0;        // requests that had an answer lost
  int64_t unknown_placed = 0; // of those, with an order in the file
  int64_t retried_acked = 0;  // of those, a retry got the order (200/201)
  int64_t unresolved = 0;     // requests never answered for real
  int64_t refusals = 0;
  int64_t actions_checked = 0;
  int64_t file_orders = 0;
  std::string summary() const;
};

/// Thread-safe: the clients of one sale share one ledger.
class sale_ledger {
public:
  /// Request ids are `<tag>-<n>`: the tag keeps runs apart.
  explicit sale_ledger(std::string tag);

  /// A fresh request, registered.
  purchase_req make_request(const std::string& item, const std::string& user,
                            int64_t quantity);

  /// Records one answer to `req` (a first attempt or a retry). A placed
  /// reserve-mode order becomes an open reservation; an unknown answer
  /// makes the request pending until a later answer is not unknown.
  /// Transient answers are only counted.
  outcome purchase_answered(const purchase_req& req, const http_reply& r,
                            bool retry);
  /// The answer never came in a bounded number of transient answers: as
  /// lost as a status 0.
  void purchase_gave_up(const purchase_req& req);
  /// Requests whose latest answer was unknown, oldest first.
  std::vector<purchase_req> pending_purchases() const;

  /// Takes an open reservation (at random, or by id) out of the open set
  /// to act on it; false if there is none.
  bool take_open(std::mt19937_64& rng, reservation& out);
  bool take_open(const std::string& order_id, reservation& out);
  std::vector<reservation> take_all_open();
  /// Records the answer to a pay or cancel. A definitive answer closes
  /// the reservation; an unknown one makes the action pending; a transient
  /// one (after the caller's own retries) puts the reservation back.
  outcome action_answered(const pending_action& a, const http_reply& r);
  std::vector<pending_action> pending_actions() const;

  /// The check against the files' items (all nodes' recoveries together).
  probe_report audit(const std::vector<recovered_item>& file,
                     const std::vector<audit_item>& items) const;

  int64_t answers_lost() const;

private:
  struct request_log {
    purchase_req req;
    std::string order_id; // from the first 200/201
    std::vector<std::string> refusals;
    std::vector<std::string> faults; // answers that contradict each other
    int unknowns = 0;
    bool pending = false; // the latest answer was unknown
    bool resolved = false;
    bool retry_acked = false; // a retry after a lost answer got the order
  };
  struct action_log {
    std::string action;
    int status = 0;
    std::string code;
    std::string state;
  };

  void check_order_reply(request_log& log, const http_reply& r);
  void audit_requests(const std::map<std::string, const order*>& by_request,
                      probe_report& out) const;
  void audit_actions(const std::map<std::string, const order*>& by_id,
                     probe_report& out) const;

  mutable std::mutex mtx_;
  std::string tag_;
  int64_t next_ = 0;
  int64_t lost_ = 0;
  std::map<std::string, request_log> requests_; // by request id
  std::vector<std::string> request_order_;      // ids, as made
  std::map<std::string, reservation> open_;     // by order id
  std::map<std::string, pending_action> pending_actions_;
  std::map<std::string, std::vector<action_log>> actions_; // by order id
};

// -- what every probe needs ------------------------------------------------

/// The steady clock, in milliseconds.
int64_t steady_now_ms();
void pause_ms(int64_t ms);

/// Node flags that lift the per-user rate, the admission rate and the
/// waiting room, so a probe's crowd is never throttled (a rate-limited client
/// only retries): the probes test faults, not limits. `wait_ms_max` bounds a
/// purchase's wait in the room.
std::vector<std::string> unthrottled_args(int64_t wait_ms_max = 5'000);

} // namespace seckill::test::probe
