#pragma once
// Host model: absl::string_view is an alias of std::string_view (Abseil does the same when
// ABSL_USES_STD_STRING_VIEW is set, which is the case for the C++17 builds Envoy uses).
#include <string_view>

namespace absl {
using std::string_view;
} // namespace absl
