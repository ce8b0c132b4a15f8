#pragma once

// ProtobufWire: a wire-level reader and writer of one protobuf message, driven by a table of
// the fields a spec uses (codecgen's protobuf extension field type). The twin of wire.py beside
// this file, whose docstring gives the reading rules and the mutation rule. The tables and the
// extension functions with the fixed signatures of codecgen's extension API
// (codecgen/ext/base.py) are generated from the user's .proto into <kind>.h, which calls these.

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
namespace ProtobufWire {

enum class Kind : uint8_t {
  Int32,
  Int64,
  Uint32,
  Uint64,
  Sint32,
  Sint64,
  Bool,
  Fixed32,
  Sfixed32,
  Fixed64,
  Sfixed64,
  Bytes,
  Message,
};

// One declared field: a leaf read into ints[slot] (integer kinds) or texts[slot] (Bytes), or a
// nested message whose declared fields are nodes[first, first + count) of the same table.
struct Node {
  uint32_t number;
  Kind kind;
  uint32_t slot;
  uint32_t first;
  uint32_t count;
};

struct Schema {
  const Node* nodes;
  uint32_t top_count; // the message's own fields are nodes[0, top_count)
  uint32_t map_field; // the header map's field number (map<string, string|bytes>), 0: none
  uint32_t int_slots;
  uint32_t text_slots;
};

using StringPairs = std::vector<std::pair<std::string, std::string>>;

struct State {
  std::vector<int64_t> ints;
  std::vector<std::string> texts;
  StringPairs pairs; // the header map's entries in wire order
  uint32_t map_field{0};
  uint64_t length{0};
  std::string added; // the map entries mutate appends
};

// Throws EnvoyException on a message protobuf's parsers refuse (see wire.py).
void parse(const Buffer::Instance& buffer, uint64_t offset, uint64_t length, const Schema& schema,
           uint64_t max_size, State& state);
void entries(const State& state, StringPairs& out);
bool mutate(State& state, const StringPairs& pairs, uint64_t max_size);
uint64_t size(const State& state);
void write(const State& state, Buffer::Instance& field, Buffer::Instance& out);

// Writers for error replies: an integer field of `kind` holding `value`, a bytes field.
void putInt(std::string& out, uint32_t number, Kind kind, int64_t value);
void putBytes(std::string& out, uint32_t number, const std::string& value);

} // namespace ProtobufWire
} // namespace CodecgenProtocol
} // namespace MetaProtocolProxy
} // namespace NetworkFilters
} // namespace Extensions
} // namespace Envoy
