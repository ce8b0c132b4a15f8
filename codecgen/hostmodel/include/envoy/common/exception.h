#pragma once

#include <stdexcept>
#include <string>

namespace Envoy {

/**
 * Base class for all Envoy exceptions (host model).
 */
class EnvoyException : public std::runtime_error {
public:
  EnvoyException(const std::string& message) : std::runtime_error(message) {}
};

namespace ExceptionUtil {
// Newer Envoy versions throw through this helper instead of a bare `throw`.
[[noreturn]] inline void throwEnvoyException(const std::string& message) {
  throw EnvoyException(message);
}
} // namespace ExceptionUtil

} // namespace Envoy
