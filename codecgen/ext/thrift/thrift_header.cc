#include "src/application_protocols/codecgen_protocol/thrift_header.h"

#include <algorithm>

#include "envoy/common/exception.h"

namespace Envoy {
namespace Extensions {
namespace NetworkFilters {
namespace MetaProtocolProxy {
namespace CodecgenProtocol {
namespace TransportHeader {
namespace {

constexpr uint64_t kBinary = 0;
constexpr uint64_t kKeyValue = 0x01;
constexpr uint64_t kIntKeyValue = 0x10;
constexpr uint64_t kAclToken = 0x11;
constexpr uint64_t kMaxApacheHeader = 16383 * 4;
constexpr uint64_t kMaxKitexHeader = 65536;
constexpr uint64_t kU16Max = 0xffff;

[[noreturn]] void fail(const std::string& reason) {
  throw EnvoyException("thrift header: " + reason);
}

uint64_t maxHeader(Flavor flavor) {
  return flavor == Flavor::Kitex ? kMaxKitexHeader : kMaxApacheHeader;
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

std::string varint(uint64_t value) {
  std::string out;
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
  return out;
}

std::string u16(uint64_t value) {
  std::string out(2, '\0');
  out[0] = static_cast<char>(value >> 8);
  out[1] = static_cast<char>(value & 0xff);
  return out;
}

// Reads one header copied out of the frame: uvarints (Apache) or fixed widths (Kitex).
class Reader {
public:
  Reader(std::string data, Flavor flavor)
      : data_(std::move(data)), kitex_(flavor == Flavor::Kitex) {}

  uint64_t position() const { return pos_; }
  bool atEnd() const { return pos_ == data_.size(); }

  uint64_t u8(const char* what) { return kitex_ ? byte(what) : varint(what); }

  uint64_t u16(const char* what) {
    if (!kitex_) {
      return varint(what);
    }
    const uint64_t high = byte(what);
    return high << 8 | byte(what);
  }

  std::string string(const char* what) {
    const uint64_t size = u16(what);
    if (size > data_.size() - pos_) {
      fail(std::string(what) + " runs past the end of the header");
    }
    std::string out = data_.substr(pos_, size);
    pos_ += size;
    return out;
  }

  bool zeroFrom(uint64_t at) const {
    return std::all_of(data_.begin() + at, data_.end(), [](char c) { return c == '\0'; });
  }

private:
  uint64_t byte(const char* what) {
    if (atEnd()) {
      fail(std::string(what) + " runs past the end of the header");
    }
    return static_cast<uint8_t>(data_[pos_++]);
  }

  uint64_t varint(const char* what) {
    uint64_t value = 0;
    for (int i = 0; i < 5; i++) {
      const uint64_t next = byte(what);
      value |= (next & 0x7f) << (7 * i);
      if ((next & 0x80) == 0) {
        if (value > 0xffffffff) {
          fail(std::string(what) + ": varint over 32 bits");
        }
        return value;
      }
    }
    fail(std::string(what) + ": varint longer than 5 bytes");
  }

  const std::string data_;
  const bool kitex_;
  uint64_t pos_{0};
};

// Each key once, with its last value, ordered by where that last value is (see entries).
StringPairs latest(const StringPairs& pairs) {
  StringPairs out;
  for (const auto& pair : pairs) {
    auto it = std::find_if(out.begin(), out.end(),
                           [&pair](const auto& p) { return p.first == pair.first; });
    if (it != out.end()) {
      out.erase(it);
    }
    out.push_back(pair);
  }
  return out;
}

std::string encodeBlock(Flavor flavor, const StringPairs& pairs) {
  if (flavor == Flavor::Kitex) {
    std::string out(1, static_cast<char>(kKeyValue));
    out += u16(pairs.size());
    for (const auto& [key, text] : pairs) {
      out += u16(key.size()) + key + u16(text.size()) + text;
    }
    return out;
  }
  std::string out = varint(kKeyValue) + varint(pairs.size());
  for (const auto& [key, text] : pairs) {
    out += varint(key.size()) + key + varint(text.size()) + text;
  }
  return out;
}

} // namespace

void parse(const Buffer::Instance& buffer, uint64_t offset, uint64_t length, Flavor flavor,
           State& state) {
  if (length < 2) {
    fail("the header is " + std::to_string(length) +
         " bytes; it holds at least the protocol id and the transform count");
  }
  if (length > maxHeader(flavor)) {
    fail("the header is " + std::to_string(length) + " bytes, over the limit of " +
         std::to_string(maxHeader(flavor)));
  }
  std::string data(length, '\0');
  buffer.copyOut(offset, length, data.data());
  Reader reader(std::move(data), flavor);
  state.length = length;
  const uint64_t protocol = reader.u8("protocol id");
  if (protocol != kBinary) {
    fail("protocol id " + std::to_string(protocol) + ": only the binary protocol (0) is supported");
  }
  const uint64_t transforms = reader.u8("transform count");
  if (transforms != 0) {
    fail(std::to_string(transforms) +
         " payload transform(s): a transformed payload cannot be routed");
  }
  state.insert_at = reader.position();
  while (!reader.atEnd()) {
    const uint64_t at = reader.position();
    const uint64_t info = reader.u8("info id");
    if (info == kKeyValue) {
      const uint64_t count = reader.u16("key/value count");
      for (uint64_t i = 0; i < count; i++) {
        std::string key = reader.string("key");
        std::string text = reader.string("value");
        state.pairs.emplace_back(std::move(key), std::move(text));
      }
    } else if (flavor == Flavor::Apache) {
      state.insert_at = at; // padding or an unknown block: Apache's readers stop here
      break;
    } else if (info == 0) {
      continue; // one byte of padding
    } else if (info == kIntKeyValue) {
      const uint64_t count = reader.u16("int key/value count");
      for (uint64_t i = 0; i < count; i++) {
        const uint64_t key = reader.u16("int key");
        state.ints.emplace_back(key, reader.string("int key value"));
      }
    } else if (info == kAclToken) {
      reader.string("ACL token");
    } else {
      const char digits[] = "0123456789abcdef";
      fail(std::string("info id 0x") + digits[info >> 4] + digits[info & 0xf] +
           " is not a TTHeader info block");
    }
    state.insert_at = reader.position();
  }
  state.tail_is_padding = reader.zeroFrom(state.insert_at);
}

void entries(const State& state, StringPairs& out) {
  const StringPairs unique = latest(state.pairs);
  out.insert(out.end(), unique.begin(), unique.end());
}

bool mutate(Flavor flavor, State& state, const StringPairs& pairs) {
  const StringPairs current = latest(state.pairs);
  StringPairs block;
  for (const auto& [key, text] : pairs) {
    const std::string wanted = lower(key);
    bool spelled = false;
    for (const auto& [existing, value] : current) {
      if (lower(existing) == wanted) {
        spelled = true;
        if (value != text) {
          block.emplace_back(existing, text);
        }
      }
    }
    if (!spelled) {
      block.emplace_back(key, text);
    }
  }
  if (block.empty()) {
    return false;
  }
  if (flavor == Flavor::Kitex) {
    const bool fits =
        block.size() <= kU16Max && std::all_of(block.begin(), block.end(), [](const auto& p) {
          return p.first.size() <= kU16Max && p.second.size() <= kU16Max;
        });
    if (!fits) {
      return false;
    }
  }
  std::string encoded = encodeBlock(flavor, block);
  const uint64_t kept = state.tail_is_padding ? 0 : state.length - state.insert_at;
  const uint64_t unpadded = state.insert_at + encoded.size() + kept;
  const uint64_t padded = unpadded + (4 - unpadded % 4) % 4;
  if (padded > maxHeader(flavor)) {
    return false;
  }
  state.block = std::move(encoded);
  state.mutated_size = padded;
  return true;
}

void write(const State& state, Buffer::Instance& field, Buffer::Instance& out) {
  out.move(field, state.insert_at); // protocol id, transforms and the earlier info blocks
  out.add(state.block);
  const uint64_t rest = state.length - state.insert_at;
  uint64_t written = state.insert_at + state.block.size();
  if (state.tail_is_padding) {
    field.drain(rest);
  } else {
    out.move(field, rest); // the block Apache's readers stop at, and what follows it
    written += rest;
  }
  out.add(std::string(state.mutated_size - written, '\0'));
}

} // namespace TransportHeader

namespace ThriftHeader {

void parse(const Buffer::Instance& buffer, uint64_t offset, uint64_t length, const Params&,
           Value& value) {
  TransportHeader::parse(buffer, offset, length, TransportHeader::Flavor::Apache, value.state);
}

void entries(const Value& value, std::vector<std::pair<std::string, std::string>>& out) {
  TransportHeader::entries(value.state, out);
}

bool mutate(Value& value, const std::vector<std::pair<std::string, std::string>>& pairs) {
  return TransportHeader::mutate(TransportHeader::Flavor::Apache, value.state, pairs);
}

uint64_t size(const Value& value) { return value.state.mutated_size; }

void write(const Value& value, Buffer::Instance& field, Buffer::Instance& out) {
  TransportHeader::write(value.state, field, out);
}

} // namespace ThriftHeader

namespace KitexHeader {

void parse(const Buffer::Instance& buffer, uint64_t offset, uint64_t length, const Params&,
           Value& value) {
  TransportHeader::parse(buffer, offset, length, TransportHeader::Flavor::Kitex, value.state);
  for (const auto& [key, text] : value.state.ints) {
    switch (key) {
    case 3:
      value.from_service = text;
      break;
    case 6:
      value.to_service = text;
      break;
    case 9:
      value.to_method = text;
      break;
    case 20:
      value.from_method = text;
      break;
    default:
      break;
    }
  }
}

void entries(const Value& value, std::vector<std::pair<std::string, std::string>>& out) {
  TransportHeader::entries(value.state, out);
}

bool mutate(Value& value, const std::vector<std::pair<std::string, std::string>>& pairs) {
  return TransportHeader::mutate(TransportHeader::Flavor::Kitex, value.state, pairs);
}

uint64_t size(const Value& value) { return value.state.mutated_size; }

void write(const Value& value, Buffer::Instance& field, Buffer::Instance& out) {
  TransportHeader::write(value.state, field, out);
}

} // namespace KitexHeader
} // namespace CodecgenProtocol
} // namespace MetaProtocolProxy
} // namespace NetworkFilters
} // namespace Extensions
} // namespace Envoy
