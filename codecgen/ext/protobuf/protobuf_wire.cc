#include "src/application_protocols/codecgen_protocol/protobuf_wire.h"

#include <unordered_map>

#include "envoy/common/exception.h"

namespace Envoy {
namespace Extensions {
namespace NetworkFilters {
namespace MetaProtocolProxy {
namespace CodecgenProtocol {
namespace ProtobufWire {
namespace {

constexpr uint32_t kVarint = 0;
constexpr uint32_t kI64 = 1;
constexpr uint32_t kLen = 2;
constexpr uint32_t kI32 = 5;

[[noreturn]] void fail(const std::string& reason) { throw EnvoyException("protobuf: " + reason); }

uint32_t wireType(Kind kind) {
  switch (kind) {
  case Kind::Fixed32:
  case Kind::Sfixed32:
    return kI32;
  case Kind::Fixed64:
  case Kind::Sfixed64:
    return kI64;
  case Kind::Bytes:
  case Kind::Message:
    return kLen;
  default:
    return kVarint;
  }
}

int64_t signed32(uint64_t raw) { return static_cast<int32_t>(static_cast<uint32_t>(raw)); }

// An int output from a field's raw wire value, as wire.py's int_value.
int64_t intValue(Kind kind, uint64_t raw) {
  switch (kind) {
  case Kind::Int32:
  case Kind::Sfixed32:
    return signed32(raw);
  case Kind::Uint32:
  case Kind::Fixed32:
    return static_cast<int64_t>(raw & 0xffffffff);
  case Kind::Sint32: {
    const uint32_t value = static_cast<uint32_t>(raw);
    return static_cast<int32_t>((value >> 1) ^ (~(value & 1) + 1));
  }
  case Kind::Sint64:
    return static_cast<int64_t>((raw >> 1) ^ (~(raw & 1) + 1));
  case Kind::Bool:
    return raw != 0 ? 1 : 0;
  default:
    return static_cast<int64_t>(raw);
  }
}

// The raw unsigned wire value that writes `value` into a field of `kind` (wire.py's wire_int).
uint64_t wireInt(Kind kind, int64_t value) {
  const uint64_t bits = static_cast<uint64_t>(value);
  switch (kind) {
  case Kind::Sint32: {
    const uint32_t low = static_cast<uint32_t>(bits);
    return static_cast<uint32_t>((low << 1) ^ (0u - (low >> 31)));
  }
  case Kind::Sint64:
    return (bits << 1) ^ (0 - (bits >> 63));
  case Kind::Bool:
    return value != 0 ? 1 : 0;
  case Kind::Uint32:
  case Kind::Fixed32:
  case Kind::Sfixed32:
    return bits & 0xffffffff;
  case Kind::Int32:
    return static_cast<uint64_t>(signed32(bits));
  default:
    return bits;
  }
}

void putVarint(std::string& out, uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

void putLittle(std::string& out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; i++) {
    out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
  }
}

std::string lower(const std::string& text) {
  std::string out = text;
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return out;
}

// Each key once, with its last value, ordered by where that last value is. Linear: a header
// may hold millions of entries (brpc's meta is bounded only by the frame).
StringPairs latest(const StringPairs& pairs) {
  std::unordered_map<std::string, size_t> last;
  last.reserve(pairs.size());
  for (size_t i = 0; i < pairs.size(); i++) {
    last[pairs[i].first] = i;
  }
  StringPairs out;
  out.reserve(last.size());
  for (size_t i = 0; i < pairs.size(); i++) {
    if (last[pairs[i].first] == i) {
      out.push_back(pairs[i]);
    }
  }
  return out;
}

// One field as read off the wire: an integer, or the [begin, begin + size) bytes of LEN.
struct Field {
  uint32_t number{0};
  uint32_t wire{0};
  uint64_t value{0};
  uint64_t begin{0};
  uint64_t size{0};
};

// Walks the fields of the message data[begin, end).
class Fields {
public:
  Fields(const std::string& data, uint64_t begin, uint64_t end)
      : data_(data), pos_(begin), end_(end) {}

  bool next(Field& field) {
    if (pos_ >= end_) {
      return false;
    }
    const uint64_t key = varint("a field key");
    const uint64_t number = key >> 3;
    field.wire = static_cast<uint32_t>(key & 7);
    if (number == 0 || number > 0x1fffffff) {
      fail("field number " + std::to_string(number) + " is out of range");
    }
    field.number = static_cast<uint32_t>(number);
    const std::string name = "field " + std::to_string(number);
    if (field.wire == kVarint) {
      field.value = varint(name.c_str());
      return true;
    }
    uint64_t size = 0;
    if (field.wire == kLen) {
      size = varint(("the length of " + name).c_str());
    } else if (field.wire == kI32 || field.wire == kI64) {
      size = field.wire == kI32 ? 4 : 8;
    } else {
      fail(name + " has wire type " + std::to_string(field.wire) +
           (field.wire == 3 || field.wire == 4 ? " (a group)" : " (invalid)"));
    }
    if (size > end_ - pos_) {
      fail(name + " runs past the end of the message");
    }
    field.begin = pos_;
    field.size = size;
    field.value = 0;
    if (field.wire != kLen) {
      for (uint64_t i = 0; i < size; i++) {
        field.value |= static_cast<uint64_t>(static_cast<uint8_t>(data_[pos_ + i])) << (8 * i);
      }
    }
    pos_ += size;
    return true;
  }

private:
  uint64_t varint(const char* what) {
    uint64_t value = 0;
    for (int i = 0; i < 10; i++) {
      if (pos_ >= end_) {
        fail(std::string(what) + " runs past the end of the message");
      }
      const uint64_t byte = static_cast<uint8_t>(data_[pos_++]);
      value |= i == 9 ? (byte & 0x01) << 63 : (byte & 0x7f) << (7 * i); // bits past 64 dropped
      if ((byte & 0x80) == 0) {
        return value;
      }
    }
    fail(std::string(what) + " is a varint longer than 10 bytes");
  }

  const std::string& data_;
  uint64_t pos_;
  const uint64_t end_;
};

void read(const std::string& data, uint64_t begin, uint64_t end, const Schema& schema,
          uint32_t first, uint32_t count, uint32_t map_field, State& state) {
  Fields fields(data, begin, end);
  Field field;
  while (fields.next(field)) {
    if (field.number == map_field && field.wire == kLen) {
      std::string key;
      std::string text;
      Fields inner(data, field.begin, field.begin + field.size);
      Field part;
      while (inner.next(part)) {
        if (part.wire == kLen && part.number == 1) {
          key = data.substr(part.begin, part.size);
        } else if (part.wire == kLen && part.number == 2) {
          text = data.substr(part.begin, part.size);
        }
      }
      state.pairs.emplace_back(std::move(key), std::move(text));
      continue;
    }
    const Node* node = nullptr;
    for (uint32_t i = first; i < first + count; i++) {
      if (schema.nodes[i].number == field.number) {
        node = &schema.nodes[i];
        break;
      }
    }
    if (node == nullptr || wireType(node->kind) != field.wire) {
      continue; // unknown, or a declared field with another wire type: unknown too
    }
    if (node->kind == Kind::Message) {
      read(data, field.begin, field.begin + field.size, schema, node->first, node->count, 0, state);
    } else if (node->kind == Kind::Bytes) {
      state.texts[node->slot] = data.substr(field.begin, field.size);
    } else {
      state.ints[node->slot] = intValue(node->kind, field.value);
    }
  }
}

} // namespace

void parse(const Buffer::Instance& buffer, uint64_t offset, uint64_t length, const Schema& schema,
           uint64_t max_size, State& state) {
  if (length > max_size) {
    fail("the header is " + std::to_string(length) + " bytes, over the limit of " +
         std::to_string(max_size));
  }
  std::string data(length, '\0');
  buffer.copyOut(offset, length, data.data());
  state.ints.assign(schema.int_slots, 0);
  state.texts.assign(schema.text_slots, std::string());
  state.pairs.clear();
  state.map_field = schema.map_field;
  state.length = length;
  state.added.clear();
  read(data, 0, length, schema, 0, schema.top_count, schema.map_field, state);
}

void entries(const State& state, StringPairs& out) {
  const StringPairs unique = latest(state.pairs);
  out.insert(out.end(), unique.begin(), unique.end());
}

bool mutate(State& state, const StringPairs& pairs, uint64_t max_size) {
  if (state.map_field == 0) {
    return false;
  }
  const StringPairs current = latest(state.pairs);
  std::string added;
  const auto append = [&added, &state](const std::string& key, const std::string& text) {
    std::string entry;
    putBytes(entry, 1, key);
    putBytes(entry, 2, text);
    putBytes(added, state.map_field, entry);
  };
  for (const auto& [key, text] : pairs) {
    const std::string wanted = lower(key);
    bool spelled = false;
    for (const auto& [existing, value] : current) {
      if (lower(existing) == wanted) {
        spelled = true;
        if (value != text) {
          append(existing, text);
        }
      }
    }
    if (!spelled) {
      append(key, text);
    }
  }
  if (added.empty() || state.length + added.size() > max_size) {
    return false;
  }
  state.added = std::move(added);
  return true;
}

uint64_t size(const State& state) { return state.length + state.added.size(); }

void write(const State& state, Buffer::Instance& field, Buffer::Instance& out) {
  out.move(field, state.length); // the message as it was, unknown fields included
  out.add(state.added);
}

void putInt(std::string& out, uint32_t number, Kind kind, int64_t value) {
  const uint32_t wire = wireType(kind);
  putVarint(out, static_cast<uint64_t>(number) << 3 | wire);
  const uint64_t raw = wireInt(kind, value);
  if (wire == kVarint) {
    putVarint(out, raw);
  } else {
    putLittle(out, raw, wire == kI32 ? 4 : 8);
  }
}

void putBytes(std::string& out, uint32_t number, const std::string& value) {
  putVarint(out, static_cast<uint64_t>(number) << 3 | kLen);
  putVarint(out, value.size());
  out += value;
}

} // namespace ProtobufWire
} // namespace CodecgenProtocol
} // namespace MetaProtocolProxy
} // namespace NetworkFilters
} // namespace Extensions
} // namespace Envoy
