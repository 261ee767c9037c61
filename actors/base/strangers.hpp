// Messages from strangers. The admin actor is published on the cluster port,
// and the membership hands the handles of the directory, the session manager
// and the items to peers; anything that reaches the port can send them
// anything. CAF's defaults make three kinds of message fatal or noisy: an
// error message nobody requested (the actor quits with it), an exit message
// (the actor quits with its reason) and a message no handler takes (printed
// to stderr, one line each). None of these actors is linked, so an exit
// message is honoured only from an actor of this process (the node stops
// its actors with send_exit from a local actor); an anonymous one or one
// from another node is a stranger's (its `source` field is whatever the
// sender wrote, so only the mailbox's sender can be trusted).
// `survive_strangers` replaces the three: the actor drops them, answers a
// request with `unexpected_message`, counts them and logs at most once per
// limits::log_repeat_ms (process-wide: a flood writes one line a second,
// whichever actors it hits).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

#include <caf/message_view.hpp>
#include <caf/scheduled_actor.hpp>
#include <caf/system_messages.hpp>
#include <spdlog/spdlog.h>

#include "messages/limits.hpp"

namespace seckill {

/// Every stranger's message dropped so far, all actors (for tests, metrics).
inline std::atomic<int64_t> strangers_dropped{0};

/// True at most once per limits::log_repeat_ms; `skipped` is the count
/// dropped since the last line.
inline bool stranger_log_due(int64_t& skipped) {
  static std::atomic<int64_t> last_ms{0};
  static std::atomic<int64_t> logged_count{0};
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
               .count();
  auto last = last_ms.load(std::memory_order_relaxed);
  if (last != 0 && now - last < limits::log_repeat_ms)
    return false;
  if (!last_ms.compare_exchange_strong(last, now, std::memory_order_relaxed))
    return false; // another thread logs this period
  auto total = strangers_dropped.load(std::memory_order_relaxed);
  skipped = total - logged_count.exchange(total, std::memory_order_relaxed) - 1;
  return true;
}

/// Counts one dropped message; `describe` renders it only when a line is
/// due, so a flood costs a counter, not a rendering per message.
template <class Describe>
void note_stranger(const char* actor, const char* kind, Describe describe) {
  strangers_dropped.fetch_add(1, std::memory_order_relaxed);
  int64_t skipped = 0;
  if (stranger_log_due(skipped))
    spdlog::warn("stranger_message_dropped actor={} kind={} what=\"{}\" "
                 "skipped={}",
                 actor, kind, describe().substr(0, 120),
                 skipped < 0 ? 0 : skipped);
}

/// Makes `self` drop unrequested errors, exit messages and unexpected
/// messages instead of quitting or printing. Call it first in the actor's
/// behavior function.
inline void survive_strangers(caf::scheduled_actor* self, const char* actor) {
  self->set_error_handler([actor](caf::scheduled_actor* s, caf::error& err) {
    note_stranger(actor, "error", [&] { return s->system().render(err); });
  });
  self->set_exit_handler([actor](caf::scheduled_actor* s, caf::exit_msg& em) {
    const auto& sender = s->current_sender();
    if (sender != nullptr && sender->node() == s->node()) {
      if (em.reason) // what CAF's default does
        s->quit(std::move(em.reason));
      return;
    }
    note_stranger(actor, "exit", [&] { return s->system().render(em.reason); });
  });
  self->set_default_handler(
    [actor](caf::scheduled_actor* s,
            caf::message_view& x) -> caf::result<caf::message> {
      note_stranger(actor, "unexpected",
                    [&] { return x.content().stringify(); });
      return caf::drop(s, x);
    });
}

} // namespace seckill
