#pragma once

// BoltHeader: the header map of a SOFA Bolt command (codecgen extension field). The twin of
// bolt_header.py beside this file, whose docstring describes the layout and the mutation rule.
// The functions have the fixed signatures of codecgen's extension API (codecgen/ext/base.py).

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
namespace BoltHeader {

using StringPairs = std::vector<std::pair<std::string, std::string>>;

struct Params {};

struct Value {
  // Outputs: the `service` key (else `sofa_head_target_service`), `sofa_head_method_name`.
  std::string service;
  std::string method;

  // The pairs with a key and a value, in wire order; the header's size as decoded; set by
  // mutate: the pairs it appends, encoded.
  StringPairs pairs;
  uint64_t length{0};
  std::string appended;
};

void parse(const Buffer::Instance& buffer, uint64_t offset, uint64_t length, const Params& params,
           Value& value);
void entries(const Value& value, StringPairs& out);
bool mutate(Value& value, const StringPairs& pairs);
uint64_t size(const Value& value);
void write(const Value& value, Buffer::Instance& field, Buffer::Instance& out);

} // namespace BoltHeader
} // namespace CodecgenProtocol
} // namespace MetaProtocolProxy
} // namespace NetworkFilters
} // namespace Extensions
} // namespace Envoy
