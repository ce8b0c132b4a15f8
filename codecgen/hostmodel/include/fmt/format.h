#pragma once
// Host model of the part of {fmt} that Envoy code reaches through its logger headers:
// fmt::format with "{}" replacement fields and a small spec subset ({:d} {:x} {:X} {:o} {:b}
// {:s} {:c}, '#', '0' and a width). Anything else throws fmt::format_error at run time, and so
// does a format string that needs more arguments than given. Types that real {fmt} refuses to
// format without a formatter (scoped enums, non-void pointers, containers, user classes) fail
// to compile here too.
#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

namespace fmt {

class format_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

namespace detail {

struct Arg {
  enum class Kind { None, Signed, Unsigned, Double, String, Bool, Char, Pointer };
  Kind kind{Kind::None};
  long long i{0};
  unsigned long long u{0};
  double d{0};
  std::string_view s{};
  const void* p{nullptr};
};

template <typename T> inline constexpr bool always_false = false;

template <typename T> Arg makeArg(const T& value) {
  using D = std::decay_t<T>;
  Arg a;
  if constexpr (std::is_same_v<D, bool>) {
    a.kind = Arg::Kind::Bool;
    a.u = value ? 1 : 0;
  } else if constexpr (std::is_same_v<D, char>) {
    a.kind = Arg::Kind::Char;
    a.i = value;
  } else if constexpr (std::is_enum_v<D>) {
    static_assert(std::is_convertible_v<D, std::underlying_type_t<D>>,
                  "fmt: a scoped enum is not formattable; static_cast it to an integer");
    return makeArg(static_cast<std::underlying_type_t<D>>(value));
  } else if constexpr (std::is_integral_v<D> && std::is_signed_v<D>) {
    a.kind = Arg::Kind::Signed;
    a.i = value;
  } else if constexpr (std::is_integral_v<D>) {
    a.kind = Arg::Kind::Unsigned;
    a.u = value;
  } else if constexpr (std::is_floating_point_v<D>) {
    a.kind = Arg::Kind::Double;
    a.d = static_cast<double>(value);
  } else if constexpr (std::is_convertible_v<const T&, std::string_view>) {
    a.kind = Arg::Kind::String;
    a.s = std::string_view(value);
  } else if constexpr (std::is_same_v<D, const void*> || std::is_same_v<D, void*> ||
                       std::is_same_v<D, std::nullptr_t>) {
    a.kind = Arg::Kind::Pointer;
    a.p = value;
  } else {
    static_assert(always_false<D>, "fmt: this type has no formatter in the host model "
                                   "(real {fmt} needs a formatter<> specialization too)");
  }
  return a;
}

std::string vformat(std::string_view format, const Arg* args, std::size_t count);

} // namespace detail

template <typename... Args> std::string format(std::string_view format, const Args&... args) {
  const detail::Arg packed[] = {detail::makeArg(args)..., detail::Arg{}};
  return detail::vformat(format, packed, sizeof...(Args));
}

inline const void* ptr(const void* p) { return p; }

} // namespace fmt
