#pragma once

// DubboBody: the body of a Dubbo 2 frame, Hessian 2 serialized (a codecgen extension field).
// The twin of dubbo_body.py beside this file, whose docstring describes the body layouts and
// the mutation rule. The functions below have the fixed signatures of codecgen's extension
// API (codecgen/ext/base.py); the generated codec calls them.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "envoy/buffer/buffer.h"

#include "src/application_protocols/codecgen_protocol/hessian2.h"

namespace Envoy {
namespace Extensions {
namespace NetworkFilters {
namespace MetaProtocolProxy {
namespace CodecgenProtocol {
namespace DubboBody {

// From the 16-byte header: the request and event flag bits, the status byte, the
// serialization id (only 2, Hessian 2, is read).
struct Params {
  int64_t request{0};
  int64_t event{0};
  int64_t status{0};
  int64_t serialization{0};
};

struct Value {
  // Outputs.
  std::string interface; // the service path of a request
  std::string method;    // the method of a request
  int64_t exception{0};  // 1: a response whose result is a business exception

  // State for entries and mutate.
  enum class Attachments { Absent, Map, Null };
  Attachments attachments{Attachments::Absent};
  uint64_t attachments_at{0}; // offset in the field of the map's final 'Z', or of the 'N'
  Hessian2::StringPairs pairs;
  std::vector<std::string> keys; // every string key of the attachments
  uint64_t length{0};            // the field's size as decoded
  std::string inserted;          // entries a mutation adds before the map's end
};

void parse(const Buffer::Instance& buffer, uint64_t offset, uint64_t length, const Params& params,
           Value& value);
void entries(const Value& value, std::vector<std::pair<std::string, std::string>>& out);
bool mutate(Value& value, const std::vector<std::pair<std::string, std::string>>& pairs);
uint64_t size(const Value& value);
void write(const Value& value, Buffer::Instance& field, Buffer::Instance& out);
// The message as one Hessian string (the status and the request id are in the Dubbo header).
std::string errorValue(const std::string& message, int64_t error_type, uint64_t request_id);

// The number of parameters in a JVM descriptor such as "Ljava/lang/String;I[J".
uint64_t parameterCount(const std::string& descriptor);

} // namespace DubboBody
} // namespace CodecgenProtocol
} // namespace MetaProtocolProxy
} // namespace NetworkFilters
} // namespace Extensions
} // namespace Envoy
