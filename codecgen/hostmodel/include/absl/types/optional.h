#pragma once
// Host model: absl::optional aliases std::optional (ABSL_USES_STD_OPTIONAL).
#include <optional>

namespace absl {
using std::make_optional;
using std::nullopt;
using std::nullopt_t;
using std::optional;
} // namespace absl
