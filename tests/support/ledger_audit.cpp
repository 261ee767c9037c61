// The kill-loop probe's auditor (see support_audit.hpp).
#include "tests/support/ledger_audit.hpp"

#include <algorithm>
#include <chrono>
#include <set>
#include <sstream>
#include <thread>
#include <utility>

namespace seckill::test::probe {

namespace {

std::string code_of(const http_reply& r) {
  return json_field(r.body, "code");
}

std::string answer_text(const http_reply& r) {
  auto code = code_of(r);
  return std::to_string(r.status) + (code.empty() ? "" : " " + code);
}

std::string describe(const purchase_req& q) {
  return "request " + q.request_id + " (item " + q.item_id + ", user "
         + q.user_id + ", quantity " + std::to_string(q.quantity) + ")";
}

std::string describe(const order& o) {
  return "order " + o.order_id + " (user " + o.user_id + ", quantity "
         + std::to_string(o.quantity) + ", state " + to_string(o.state) + ")";
}

} // namespace

const char* to_string(outcome x) {
  switch (x) {
    case outcome::placed: return "placed";
    case outcome::refused: return "refused";
    case outcome::transient: return "transient";
    case outcome::unknown: return "unknown";
  }
  return "?";
}

// README: a 503 timeout or shard_unavailable "does not say the purchase
// failed: it may have been placed". busy, rate_limited and overloaded are
// turned away before the item decides anything: the same request may be
// sent again at once. Everything else is the item's (or the gate's) word.
namespace {

/// No answer, or one that says the change may have been made.
bool answer_lost(const http_reply& r, const std::string& code) {
  return r.status == 0
         || (r.status == 503
             && (code == "timeout" || code == "shard_unavailable"));
}

} // namespace

outcome classify_purchase(const http_reply& r) {
  if (r.status == 200 || r.status == 201)
    return outcome::placed;
  auto code = code_of(r);
  if (answer_lost(r, code))
    return outcome::unknown;
  if ((r.status == 429 && (code == "busy" || code == "rate_limited"))
      || (r.status == 503 && code == "overloaded"))
    return outcome::transient;
  return outcome::refused;
}

outcome classify_action(const http_reply& r) {
  if (r.status == 200)
    return outcome::placed;
  auto code = code_of(r);
  if (answer_lost(r, code))
    return outcome::unknown;
  if (r.status == 429 || (r.status == 503 && code == "overloaded"))
    return outcome::transient;
  return outcome::refused;
}

std::string probe_report::summary() const {
  std::ostringstream os;
  os << "requests=" << requests << " acked_checked=" << acked_checked
     << " lost=" << lost << " unknown=" << unknown
     << " unknown_placed=" << unknown_placed
     << " retried_acked=" << retried_acked << " unresolved=" << unresolved
     << " refusals=" << refusals << " actions_checked=" << actions_checked
     << " file_orders=" << file_orders
     << " wrong_answers=" << wrong_answers.size()
     << " faults=" << faults.size();
  return os.str();
}

sale_ledger::sale_ledger(std::string tag) : tag_(std::move(tag)) {}

purchase_req sale_ledger::make_request(const std::string& item,
                                       const std::string& user,
                                       int64_t quantity) {
  std::lock_guard<std::mutex> guard(mtx_);
  purchase_req q{item, user, tag_ + "-" + std::to_string(next_++), quantity};
  requests_[q.request_id].req = q;
  request_order_.push_back(q.request_id);
  return q;
}

// The order in a 200/201 must be the request's, and the same every time.
void sale_ledger::check_order_reply(request_log& log, const http_reply& r) {
  const auto& q = log.req;
  auto id = json_field(r.body, "order_id");
  std::string why;
  if (id.empty())
    why = "no order_id";
  else if (json_field(r.body, "user_id") != q.user_id)
    why = "user " + json_field(r.body, "user_id");
  else if (json_int(r.body, "quantity") != q.quantity)
    why = "quantity " + json_field(r.body, "quantity");
  else if (json_field(r.body, "request_id") != q.request_id)
    why = "request_id " + json_field(r.body, "request_id");
  else if (json_field(r.body, "item_id") != q.item_id)
    why = "item " + json_field(r.body, "item_id");
  else if (!log.order_id.empty() && log.order_id != id)
    why = "order " + id + " after order " + log.order_id;
  if (!why.empty())
    log.faults.push_back(describe(q) + " was answered " + answer_text(r)
                         + " with " + why + ": " + r.body);
  if (log.order_id.empty())
    log.order_id = id;
}

outcome sale_ledger::purchase_answered(const purchase_req& req,
                                       const http_reply& r, bool retry) {
  auto kind = classify_purchase(r);
  std::lock_guard<std::mutex> guard(mtx_);
  auto& log = requests_[req.request_id];
  switch (kind) {
    case outcome::transient: return kind;
    case outcome::unknown:
      log.unknowns += 1;
      log.pending = true;
      lost_ += 1;
      return kind;
    case outcome::refused:
      log.refusals.push_back(answer_text(r)
                             + (retry ? " (a retry of a lost answer)" : ""));
      break;
    case outcome::placed: {
      bool first = log.order_id.empty();
      check_order_reply(log, r);
      if (retry)
        log.retry_acked = true;
      if (first && json_field(r.body, "state") == "reserved")
        open_[log.order_id] =
          reservation{log.order_id, req.item_id, req.user_id};
      break;
    }
  }
  log.pending = false;
  log.resolved = true;
  return kind;
}

void sale_ledger::purchase_gave_up(const purchase_req& req) {
  std::lock_guard<std::mutex> guard(mtx_);
  auto& log = requests_[req.request_id];
  log.unknowns += 1;
  log.pending = true;
  lost_ += 1;
}

std::vector<purchase_req> sale_ledger::pending_purchases() const {
  std::lock_guard<std::mutex> guard(mtx_);
  std::vector<purchase_req> out;
  for (const auto& id : request_order_)
    if (const auto& log = requests_.at(id); log.pending)
      out.push_back(log.req);
  return out;
}

bool sale_ledger::take_open(std::mt19937_64& rng, reservation& out) {
  std::lock_guard<std::mutex> guard(mtx_);
  if (open_.empty())
    return false;
  auto i = open_.begin();
  std::advance(i, static_cast<std::ptrdiff_t>(rng() % open_.size()));
  out = i->second;
  open_.erase(i);
  return true;
}

bool sale_ledger::take_open(const std::string& order_id, reservation& out) {
  std::lock_guard<std::mutex> guard(mtx_);
  auto i = open_.find(order_id);
  if (i == open_.end())
    return false;
  out = i->second;
  open_.erase(i);
  return true;
}

std::vector<reservation> sale_ledger::take_all_open() {
  std::lock_guard<std::mutex> guard(mtx_);
  std::vector<reservation> out;
  for (auto& [id, o] : open_)
    out.push_back(o);
  open_.clear();
  return out;
}

outcome sale_ledger::action_answered(const pending_action& a,
                                     const http_reply& r) {
  auto kind = classify_action(r);
  std::lock_guard<std::mutex> guard(mtx_);
  const auto& id = a.order.order_id;
  switch (kind) {
    case outcome::transient:
      pending_actions_.erase(id);
      open_[id] = a.order;
      return kind;
    case outcome::unknown:
      lost_ += 1;
      pending_actions_[id] = a;
      return kind;
    case outcome::placed:
    case outcome::refused:
      pending_actions_.erase(id);
      actions_[id].push_back(action_log{a.action, r.status, code_of(r),
                                        json_field(r.body, "state")});
      return kind;
  }
  return kind;
}

std::vector<pending_action> sale_ledger::pending_actions() const {
  std::lock_guard<std::mutex> guard(mtx_);
  std::vector<pending_action> out;
  for (const auto& [id, a] : pending_actions_)
    out.push_back(a);
  return out;
}

int64_t sale_ledger::answers_lost() const {
  std::lock_guard<std::mutex> guard(mtx_);
  return lost_;
}

void sale_ledger::audit_requests(
  const std::map<std::string, const order*>& by_request,
  probe_report& out) const {
  for (const auto& id : request_order_) {
    const auto& log = requests_.at(id);
    const auto& q = log.req;
    auto f = by_request.find(q.item_id + "/" + q.request_id);
    const order* in_file = f == by_request.end() ? nullptr : f->second;
    out.requests += 1;
    out.refusals += static_cast<int64_t>(log.refusals.size());
    for (const auto& why : log.faults)
      out.faults.push_back(why);
    if (log.unknowns > 0) {
      out.unknown += 1;
      out.unknown_placed += in_file != nullptr ? 1 : 0;
      out.retried_acked += log.retry_acked ? 1 : 0;
    }
    if (!log.order_id.empty()) {
      out.acked_checked += 1;
      if (in_file == nullptr || in_file->order_id != log.order_id
          || in_file->user_id != q.user_id || in_file->quantity != q.quantity) {
        out.lost += 1;
        out.faults.push_back(
          describe(q) + " was acknowledged with order " + log.order_id
          + (in_file == nullptr ? ", which is not in the file"
                                : "; the file holds " + describe(*in_file)));
      }
    }
    if (in_file != nullptr)
      for (const auto& refusal : log.refusals) {
        auto why = "WRONG ANSWER: " + describe(q) + " was refused " + refusal
                   + " although the file holds " + describe(*in_file);
        out.wrong_answers.push_back(why);
        out.faults.push_back(why);
      }
    if (!log.resolved || log.pending) {
      out.unresolved += 1;
      out.faults.push_back(describe(q) + ": " + std::to_string(log.unknowns)
                           + " answer(s) lost and never answered for real"
                           + (in_file != nullptr
                                ? "; the file holds " + describe(*in_file)
                                : "; not in the file"));
    }
  }
}

// What a definitive pay or cancel answer says the order's final state is.
void sale_ledger::audit_actions(
  const std::map<std::string, const order*>& by_id, probe_report& out) const {
  for (const auto& [id, answers] : actions_) {
    auto f = by_id.find(id);
    if (f == by_id.end()) {
      out.faults.push_back("order " + id
                           + " was paid or cancelled but is "
                             "not in the file");
      continue;
    }
    std::string state = to_string(f->second->state);
    for (const auto& a : answers) {
      out.actions_checked += 1;
      auto said = a.action + " answered " + std::to_string(a.status) + " "
                  + (a.status == 200 ? a.state : a.code);
      bool agrees = false;
      if (a.status == 200)
        agrees = a.state == state
                 && state == (a.action == "pay" ? "confirmed" : "cancelled");
      else if (a.status == 410 && a.code == "expired")
        agrees = state == "expired";
      else if (a.status == 409 && a.code == "not_payable")
        agrees = state == "cancelled";
      else if (a.status == 409 && a.code == "not_cancellable")
        agrees = state == "confirmed" || state == "expired";
      if (!agrees)
        out.faults.push_back("order " + id + ": " + said
                             + ", but its state in the file is " + state);
    }
  }
  for (const auto& [id, a] : pending_actions_)
    out.faults.push_back("order " + id + ": the answer to " + a.action
                         + " was lost and never answered for real");
}

probe_report sale_ledger::audit(const std::vector<recovered_item>& file,
                                const std::vector<audit_item>& items) const {
  std::lock_guard<std::mutex> guard(mtx_);
  probe_report out;
  std::map<std::string, const order*> by_request; // item/request_id
  std::map<std::string, const order*> by_id;
  std::map<std::string, const recovered_item*> found;
  for (const auto& it : file) {
    const auto& id = it.record.spec.item_id;
    if (found.count(id) != 0)
      out.faults.push_back("item " + id + " is in more than one file");
    found[id] = &it;
    for (const auto& o : it.orders) {
      out.file_orders += 1;
      by_request[id + "/" + o.request_id] = &o;
      by_id[o.order_id] = &o;
      if (requests_.count(o.request_id) == 0)
        out.faults.push_back("the file holds " + describe(o) + " for request "
                             + o.request_id + ", which no client sent");
    }
  }
  audit_requests(by_request, out);
  audit_actions(by_id, out);
  // Units the clients hold: acknowledged orders, in their state in the file.
  std::map<std::string, int64_t> held_by_clients;
  for (const auto& [rid, log] : requests_) {
    auto f = by_request.find(log.req.item_id + "/" + rid);
    if (log.order_id.empty() || f == by_request.end())
      continue;
    if (counts_for_user(f->second->state))
      held_by_clients[log.req.item_id] += f->second->quantity;
  }
  for (const auto& want : items) {
    auto f = found.find(want.item_id);
    if (f == found.end()) {
      out.faults.push_back("item " + want.item_id + " is in no file");
      continue;
    }
    const auto& rec = f->second->record;
    const auto& c = rec.counters;
    auto tag = "item " + want.item_id
               + ": available=" + std::to_string(c.available) + " reserved="
               + std::to_string(c.reserved) + " sold=" + std::to_string(c.sold)
               + " total=" + std::to_string(want.total);
    if (rec.spec.total != want.total
        || c.available + c.reserved + c.sold != want.total || c.available < 0
        || c.reserved < 0 || c.sold < 0)
      out.faults.push_back(tag + ": the counters do not add up");
    int64_t confirmed = 0;
    int64_t reserved = 0;
    std::map<std::string, int64_t> by_user;
    for (const auto& o : f->second->orders) {
      confirmed += o.state == order_state::confirmed ? o.quantity : 0;
      reserved += o.state == order_state::reserved ? o.quantity : 0;
      if (counts_for_user(o.state))
        by_user[o.user_id] += o.quantity;
      if (rec.spec.mode == deduction_mode::order
          && o.state != order_state::confirmed)
        out.faults.push_back(tag + ": order-mode " + describe(o));
    }
    if (confirmed != c.sold || reserved != c.reserved)
      out.faults.push_back(tag + ": the order rows hold confirmed="
                           + std::to_string(confirmed)
                           + " reserved=" + std::to_string(reserved));
    if (held_by_clients[want.item_id] != c.sold + c.reserved)
      out.faults.push_back(tag + ": the clients hold "
                           + std::to_string(held_by_clients[want.item_id])
                           + " units, not sold + reserved");
    for (const auto& [user, units] : by_user)
      if (units > want.per_user_limit)
        out.faults.push_back(tag + ": user " + user + " holds "
                             + std::to_string(units) + " units, over the limit "
                             + std::to_string(want.per_user_limit));
    if (want.driven_to_end && (c.sold != want.total || c.reserved != 0))
      out.faults.push_back(tag
                           + ": the buyers bought to the end, but the "
                             "sale did not end at exactly the total");
  }
  return out;
}

int64_t steady_now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch())
    .count();
}

void pause_ms(int64_t ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

std::vector<std::string> unthrottled_args(int64_t wait_ms_max) {
  return {"--seckill.session-rate-per-s=100000",
          "--seckill.session-burst=100000",
          "--seckill.admission-rate-per-s=1000000",
          "--seckill.admission-burst=100000",
          "--seckill.waiting-room-max=100000",
          "--seckill.wait-ms-max=" + std::to_string(wait_ms_max),
          "--seckill.http-connections-max=1000",
          "--seckill.http-idle-timeout-ms=60000"};
}

} // namespace seckill::test::probe
