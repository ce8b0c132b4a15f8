#pragma once

// ThriftHeader (Apache THeader) and KitexHeader (Kitex TTHeader): the variable header of
// Thrift's header transports (codecgen extension fields). The twin of thrift_header.py beside
// this file, whose docstring describes both layouts and the mutation rule. The functions in
// the two namespaces below have the fixed signatures of codecgen's extension API
// (codecgen/ext/base.py); the generated codec calls them.

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
namespace TransportHeader {

using StringPairs = std::vector<std::pair<std::string, std::string>>;

enum class Flavor { Apache, Kitex };

// What entries, mutate and write need of one decoded header.
struct State {
  // String key/values, and Kitex's int key/values, in wire order.
  StringPairs pairs;
  std::vector<std::pair<uint64_t, std::string>> ints;
  // The header's size as decoded; where an appended key/value block goes; whether the bytes
  // from there on are all zero (padding, dropped and padded again after a mutation).
  uint64_t length{0};
  uint64_t insert_at{0};
  bool tail_is_padding{true};
  // Set by mutate: the key/value block it appends and the header's new, padded size.
  std::string block;
  uint64_t mutated_size{0};
};

void parse(const Buffer::Instance& buffer, uint64_t offset, uint64_t length, Flavor flavor,
           State& state);
void entries(const State& state, StringPairs& out);
bool mutate(Flavor flavor, State& state, const StringPairs& pairs);
void write(const State& state, Buffer::Instance& field, Buffer::Instance& out);

} // namespace TransportHeader

namespace ThriftHeader {

struct Params {};

struct Value {
  TransportHeader::State state;
};

void parse(const Buffer::Instance& buffer, uint64_t offset, uint64_t length, const Params& params,
           Value& value);
void entries(const Value& value, std::vector<std::pair<std::string, std::string>>& out);
bool mutate(Value& value, const std::vector<std::pair<std::string, std::string>>& pairs);
uint64_t size(const Value& value);
void write(const Value& value, Buffer::Instance& field, Buffer::Instance& out);

} // namespace ThriftHeader

namespace KitexHeader {

struct Params {};

struct Value {
  // Outputs: Kitex's int key/values 3, 6, 9 and 20 (the last of each wins).
  std::string from_service;
  std::string to_service;
  std::string to_method;
  std::string from_method;

  TransportHeader::State state;
};

void parse(const Buffer::Instance& buffer, uint64_t offset, uint64_t length, const Params& params,
           Value& value);
void entries(const Value& value, std::vector<std::pair<std::string, std::string>>& out);
bool mutate(Value& value, const std::vector<std::pair<std::string, std::string>>& pairs);
uint64_t size(const Value& value);
void write(const Value& value, Buffer::Instance& field, Buffer::Instance& out);

} // namespace KitexHeader
} // namespace CodecgenProtocol
} // namespace MetaProtocolProxy
} // namespace NetworkFilters
} // namespace Extensions
} // namespace Envoy
