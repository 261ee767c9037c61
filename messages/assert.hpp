// SECKILL_ASSERT: an invariant check that stays on in every build (CAF's own
// CAF_ASSERT is compiled out in Debian's package). A failed assertion means
// the process's state can no longer be trusted: it logs and aborts, so that a
// restart recovers from the last committed snapshot instead of selling on
// from a corrupt one.
#pragma once

namespace seckill::testing {
/// Tests only: when set, a failed assertion calls this and carries on
/// instead of aborting, so the planted-bug simulation can show that its
/// auditor catches, from the outside, what the assertions catch inside.
/// No program sets it.
using assertion_hook = void (*)(const char* what);
void set_assertion_hook(assertion_hook hook);
} // namespace seckill::testing

namespace seckill::detail {
void assertion_failed(const char* expr, const char* what, const char* file,
                      int line);
} // namespace seckill::detail

#define SECKILL_ASSERT(expr, what)                                             \
  do {                                                                         \
    if (!(expr))                                                               \
      ::seckill::detail::assertion_failed(#expr, what, __FILE__, __LINE__);    \
  } while (false)
