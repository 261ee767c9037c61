// A view type's fields listed once. `fields(x)` (beside each type in
// messages/types.hpp) returns its members as (name, reference) pairs in
// inspect order; the type's CAF `inspect` is `inspect_fields` over that list,
// and the CLI's JSON (node/cli/format.cpp) walks the same list, so a member
// added to a view reaches the wire and the CLI from one line. CAF 0.17's
// inspectors carry no member names, hence the names here.
#pragma once

#include <tuple>

#include <caf/meta/type_name.hpp>

namespace seckill {

/// One member of a view: its name as the CLI's JSON spells it and a
/// reference to it.
template <class T>
struct named_field {
  const char* name;
  T& ref;
};

template <class T>
named_field<T> field(const char* name, T& ref) {
  return {name, ref};
}

/// A CAF 0.17 inspect of `x` over `fields(x)`, in that order.
template <class Inspector, class View>
typename Inspector::result_type inspect_fields(Inspector& f,
                                               const char* type_name, View& x) {
  return std::apply(
    [&](auto... fs) { return f(caf::meta::type_name(type_name), fs.ref...); },
    fields(x));
}

} // namespace seckill
