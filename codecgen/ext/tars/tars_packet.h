#pragma once

// TarsPacket: Tars' RequestPacket / ResponsePacket in the Tars coding (codecgen extension
// field). The twin of tars_packet.py beside this file, whose docstring describes the coding,
// the reading rules and the mutation. The functions have the fixed signatures of codecgen's
// extension API (codecgen/ext/base.py); the generated codec calls them.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "envoy/buffer/buffer.h"

namespace Envoy {
namespace Extensions {
namespace NetworkFilters {
namespace MetaProtocolProxy {
namespace CodecgenProtocol {
namespace TarsPacket {

using StringPairs = std::vector<std::pair<std::string, std::string>>;

struct Params {};

struct Value {
  // Outputs.
  int64_t request_id{0};
  int64_t version{0};
  int64_t packet_type{0};
  int64_t message_type{0};
  int64_t ret{0};
  std::string servant;
  std::string func;
  std::string result_desc;

  // The context map in wire order and where its field is in the packet ([at, end); equal when
  // an optional context is absent: it is inserted there). Set by mutate: the map re-encoded.
  StringPairs context;
  uint64_t length{0};
  uint64_t context_at{0};
  uint64_t context_end{0};
  std::string context_field;
};

void parse(const Buffer::Instance& buffer, uint64_t offset, uint64_t length, const Params& params,
           Value& value);
void entries(const Value& value, StringPairs& out);
bool mutate(Value& value, const StringPairs& pairs);
uint64_t size(const Value& value);
void write(const Value& value, Buffer::Instance& field, Buffer::Instance& out);
std::string errorValue(const std::string& message, int64_t error_type, uint64_t request_id);

} // namespace TarsPacket
} // namespace CodecgenProtocol
} // namespace MetaProtocolProxy
} // namespace NetworkFilters
} // namespace Extensions
} // namespace Envoy
