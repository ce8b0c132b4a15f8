#pragma once
// Host model of Envoy's assertion macros.
//
// Envoy aborts the process on a failed ASSERT (debug builds) or RELEASE_ASSERT / PANIC. A host
// harness must report such a failure instead of dying, so the model throws
// Envoy::HostModel::AssertionFailure. That type deliberately does NOT derive from
// EnvoyException: the framework only catches EnvoyException, so a codec must never rely on an
// assertion being caught. ASSERT is always active here (like an Envoy debug build).
#include <stdexcept>
#include <string>

#include "source/common/common/logger.h"

namespace Envoy {
namespace HostModel {

class AssertionFailure : public std::logic_error {
public:
  using std::logic_error::logic_error;
};

[[noreturn]] void assertionFailed(const char* kind, const char* expression,
                                  const std::string& details, const char* file, int line);

} // namespace HostModel
} // namespace Envoy

#define CODECGEN_ASSERT_PICK_(_1, _2, NAME, ...) NAME
#define CODECGEN_ASSERT1_(X) CODECGEN_ASSERT2_(X, "")
#define CODECGEN_ASSERT2_(X, DETAILS)                                                              \
  do {                                                                                             \
    if (!(X)) {                                                                                    \
      ::Envoy::HostModel::assertionFailed("ASSERT", #X, DETAILS, __FILE__, __LINE__);              \
    }                                                                                              \
  } while (false)

// ASSERT(condition) or ASSERT(condition, details).
#define ASSERT(...)                                                                                \
  CODECGEN_ASSERT_PICK_(__VA_ARGS__, CODECGEN_ASSERT2_, CODECGEN_ASSERT1_, unused)(__VA_ARGS__)
#define SLOW_ASSERT(...) ASSERT(__VA_ARGS__)

#define RELEASE_ASSERT(X, DETAILS)                                                                 \
  do {                                                                                             \
    if (!(X)) {                                                                                    \
      ::Envoy::HostModel::assertionFailed("RELEASE_ASSERT", #X, DETAILS, __FILE__, __LINE__);      \
    }                                                                                              \
  } while (false)

#define ENVOY_BUG(X, DETAILS)                                                                      \
  do {                                                                                             \
    if (!(X)) {                                                                                    \
      ::Envoy::HostModel::assertionFailed("ENVOY_BUG", #X, DETAILS, __FILE__, __LINE__);           \
    }                                                                                              \
  } while (false)

#define IS_ENVOY_BUG(DETAILS)                                                                      \
  ::Envoy::HostModel::assertionFailed("IS_ENVOY_BUG", "", DETAILS, __FILE__, __LINE__)

#define PANIC(MESSAGE) ::Envoy::HostModel::assertionFailed("PANIC", "", MESSAGE, __FILE__, __LINE__)
#define PANIC_DUE_TO_CORRUPT_ENUM PANIC("corrupted enum")
#define PANIC_DUE_TO_PROTO_UNSET PANIC("unset oneof")
