#pragma once

// A small Hessian 2.0 library, as dubbo-hessian-lite writes and reads it (C++ side).
//
// The twin of hessian2.py beside this file: both must agree on every input (which values are
// errors, which bytes a string has), which `codecgen verify` checks through the extensions
// built on them. Shipped by codecgen into src/application_protocols/<name>/; the namespace
// token CodecgenProtocol and the directory token codecgen_protocol are replaced on copy.
//
// Reading never copies the buffer: a Reader peeks at [offset, end) of a Buffer::Instance
// through a small window filled with copyOut, and only string values it returns are copied.
// Every read is bounds-checked and every loop is bounded by the bytes left (each value takes
// at least one byte); nesting is limited to kMaxDepth. Errors throw EnvoyException.

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
namespace Hessian2 {

// Containers nested deeper than this are refused.
constexpr uint32_t kMaxDepth = 64;

// True when `code` starts a string (compact, medium, final 'S' or chunk 'R').
bool isStringStart(uint8_t code);

// String (key, value) pairs of a map, in wire order.
using StringPairs = std::vector<std::pair<std::string, std::string>>;

// Reads the Hessian values of one stream (one Dubbo body) from [offset, end) of `buffer`.
class Reader {
public:
  Reader(const Buffer::Instance& buffer, uint64_t offset, uint64_t end);

  uint64_t position() const { return position_; }
  uint64_t remaining() const { return end_ - position_; }
  uint8_t peek();
  uint8_t byte();
  void skip(uint64_t size);

  // An int production (also the long forms, as hessian-lite's readInt accepts them).
  int64_t readInt();
  // A string's bytes as on the wire, chunks joined; anything else throws.
  std::string readString();
  // A string, or false for 'N' (null).
  bool readStringOrNull(std::string& out);
  // One value of any type, class definitions before it included.
  void skipValue(uint32_t depth = 0);
  // An untyped (H) or typed (M) map. Entries whose key and value are strings go to `pairs`,
  // every string key to `keys`; returns the position of the map's final 'Z'.
  uint64_t readStringMap(StringPairs& pairs, std::vector<std::string>& keys);

private:
  void fill(uint64_t size);
  uint64_t readUnsigned(uint32_t size);
  int64_t readSigned(uint32_t size);
  int64_t readCount(const char* what);
  void consumeUnits(uint64_t units, std::string* out);
  void stringAfter(uint8_t code, std::string* out);
  void skipBinary(uint8_t code);
  void skipType();
  void classDefinition();
  void skipObject(int64_t index, uint32_t depth);
  void skipUntilEnd(uint32_t depth, bool pairs);

  const Buffer::Instance& buffer_;
  uint64_t position_;
  const uint64_t end_;
  std::vector<int64_t> class_fields_; // field count of each class definition, in stream order
  uint8_t window_[256];
  uint64_t window_start_{0};
  uint64_t window_length_{0};
};

// A Hessian string holding UTF-8 `utf8`, written as hessian-lite does: 4-byte sequences become
// surrogate pairs, a byte that starts no valid sequence becomes U+FFFD, chunks of 0x8000 units.
std::string encodeString(const std::string& utf8);

// An untyped map `H (key value)* Z` of strings.
std::string encodeStringMap(const StringPairs& pairs);

} // namespace Hessian2
} // namespace CodecgenProtocol
} // namespace MetaProtocolProxy
} // namespace NetworkFilters
} // namespace Extensions
} // namespace Envoy
