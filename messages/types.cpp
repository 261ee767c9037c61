// Names and small predicates of the vocabulary types, the type registration,
// and the always-on assertion handler.
#include "messages/types.hpp"

#include <cstdio>
#include <cstdlib>

#include "messages/assert.hpp"
#include "messages/errors.hpp"
#include "messages/type_ids.hpp"

namespace seckill {

const char* to_string(deduction_mode x) {
  switch (x) {
    case deduction_mode::order: return "order";
    case deduction_mode::reserve: return "reserve";
    case deduction_mode::pay: return "pay";
  }
  return "invalid";
}

const char* to_string(admission_mode x) {
  switch (x) {
    case admission_mode::open: return "open";
    case admission_mode::token: return "token";
    case admission_mode::quiz: return "quiz";
  }
  return "invalid";
}

const char* to_string(admin_state x) {
  switch (x) {
    case admin_state::active: return "active";
    case admin_state::paused: return "paused";
    case admin_state::ended: return "ended";
  }
  return "invalid";
}

const char* to_string(item_status x) {
  switch (x) {
    case item_status::upcoming: return "upcoming";
    case item_status::on_sale: return "on_sale";
    case item_status::paused: return "paused";
    case item_status::sold_out: return "sold_out";
    case item_status::ended: return "ended";
  }
  return "invalid";
}

const char* to_string(order_state x) {
  switch (x) {
    case order_state::reserved: return "reserved";
    case order_state::pending: return "pending";
    case order_state::confirmed: return "confirmed";
    case order_state::cancelled: return "cancelled";
    case order_state::expired: return "expired";
  }
  return "invalid";
}

namespace {

template <class Enum, int N>
bool parse_enum(const std::string& text, Enum& out) {
  for (int i = 0; i < N; ++i) {
    if (text == to_string(static_cast<Enum>(i))) {
      out = static_cast<Enum>(i);
      return true;
    }
  }
  return false;
}

} // namespace

bool parse(const std::string& text, deduction_mode& out) {
  return parse_enum<deduction_mode, 3>(text, out);
}

bool parse(const std::string& text, admission_mode& out) {
  return parse_enum<admission_mode, 3>(text, out);
}

bool parse(const std::string& text, item_status& out) {
  return parse_enum<item_status, 5>(text, out);
}

bool parse(const std::string& text, order_state& out) {
  return parse_enum<order_state, 5>(text, out);
}

bool holds_stock(order_state x) {
  return x == order_state::reserved;
}

bool counts_for_user(order_state x) {
  return x == order_state::reserved || x == order_state::pending
         || x == order_state::confirmed;
}

bool is_final(order_state x) {
  return x == order_state::confirmed || x == order_state::cancelled
         || x == order_state::expired;
}

void register_types(caf::actor_system_config& cfg) {
  cfg.add_message_types<caf::id_block::seckill>();
  cfg.add_error_category(
    errc_category, [](uint8_t code, caf::atom_value, const caf::message&) {
      return std::string{"seckill."} + to_string(static_cast<errc>(code));
    });
}

namespace {
testing::assertion_hook the_hook = nullptr;
} // namespace

void testing::set_assertion_hook(assertion_hook hook) {
  the_hook = hook;
}

namespace detail {

void assertion_failed(const char* expr, const char* what, const char* file,
                      int line) {
  if (the_hook != nullptr) {
    the_hook(what);
    return;
  }
  std::fprintf(stderr, "invariant_violated what=\"%s\" expr=\"%s\" at=%s:%d\n",
               what, expr, file, line);
  std::fflush(stderr);
  std::abort();
}

} // namespace detail

} // namespace seckill
