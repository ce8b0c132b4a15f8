#include "source/common/common/assert.h"

namespace Envoy {
namespace HostModel {

void assertionFailed(const char* kind, const char* expression, const std::string& details,
                     const char* file, int line) {
  std::string message = std::string(kind) + " failed";
  if (expression[0] != '\0') {
    message += ": " + std::string(expression);
  }
  if (!details.empty()) {
    message += (expression[0] != '\0' ? " (" : ": ") + details +
               (expression[0] != '\0' ? ")" : "");
  }
  message += " at " + std::string(file) + ":" + std::to_string(line);
  throw AssertionFailure(message);
}

} // namespace HostModel
} // namespace Envoy
