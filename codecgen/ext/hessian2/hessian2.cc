#include "src/application_protocols/codecgen_protocol/hessian2.h"

#include <algorithm>

#include "envoy/common/exception.h"

namespace Envoy {
namespace Extensions {
namespace NetworkFilters {
namespace MetaProtocolProxy {
namespace CodecgenProtocol {
namespace Hessian2 {
namespace {

constexpr uint8_t kNull = 0x4e;
constexpr uint8_t kEnd = 0x5a;
constexpr uint64_t kChunkUnits = 0x8000;

[[noreturn]] void fail(const std::string& reason) {
  throw EnvoyException("hessian2: " + reason);
}

bool isBinaryStart(uint8_t code) {
  return (code >= 0x20 && code <= 0x2f) || (code >= 0x34 && code <= 0x37) || code == 0x41 ||
         code == 0x42;
}

bool isContinuation(uint8_t byte) { return byte >= 0x80 && byte <= 0xbf; }

std::string utf8Unit(uint32_t unit) {
  std::string out(3, '\0');
  out[0] = static_cast<char>(0xe0 | (unit >> 12));
  out[1] = static_cast<char>(0x80 | ((unit >> 6) & 0x3f));
  out[2] = static_cast<char>(0x80 | (unit & 0x3f));
  return out;
}

// UTF-8 bytes -> one string per UTF-16 unit, as hessian-lite writes them.
std::vector<std::string> unitsOf(const std::string& data) {
  std::vector<std::string> units;
  const size_t n = data.size();
  auto at = [&data](size_t i) { return static_cast<uint8_t>(data[i]); };
  size_t i = 0;
  while (i < n) {
    const uint8_t lead = at(i);
    if (lead < 0x80) {
      units.push_back(data.substr(i, 1));
      i += 1;
      continue;
    }
    if (lead >= 0xc2 && lead <= 0xdf && i + 1 < n && isContinuation(at(i + 1))) {
      units.push_back(data.substr(i, 2));
      i += 2;
      continue;
    }
    if (lead >= 0xe0 && lead <= 0xef && i + 2 < n && isContinuation(at(i + 1)) &&
        isContinuation(at(i + 2))) {
      units.push_back(data.substr(i, 3));
      i += 3;
      continue;
    }
    if (lead >= 0xf0 && lead <= 0xf4 && i + 3 < n && isContinuation(at(i + 1)) &&
        isContinuation(at(i + 2)) && isContinuation(at(i + 3))) {
      uint32_t cp = (static_cast<uint32_t>(lead & 0x07) << 18) |
                    (static_cast<uint32_t>(at(i + 1) & 0x3f) << 12) |
                    (static_cast<uint32_t>(at(i + 2) & 0x3f) << 6) |
                    static_cast<uint32_t>(at(i + 3) & 0x3f);
      if (cp >= 0x10000 && cp <= 0x10ffff) {
        cp -= 0x10000;
        units.push_back(utf8Unit(0xd800 + (cp >> 10)));
        units.push_back(utf8Unit(0xdc00 + (cp & 0x3ff)));
        i += 4;
        continue;
      }
    }
    units.push_back("\xef\xbf\xbd"); // U+FFFD for a byte that starts no valid sequence
    i += 1;
  }
  return units;
}

bool isHighSurrogate(const std::string& unit) {
  return unit.size() == 3 && static_cast<uint8_t>(unit[0]) == 0xed &&
         static_cast<uint8_t>(unit[1]) >= 0xa0 && static_cast<uint8_t>(unit[1]) <= 0xaf;
}

} // namespace

bool isStringStart(uint8_t code) {
  return code <= 0x1f || (code >= 0x30 && code <= 0x33) || code == 0x52 || code == 0x53;
}

Reader::Reader(const Buffer::Instance& buffer, uint64_t offset, uint64_t end)
    : buffer_(buffer), position_(offset), end_(end) {
  if (end > buffer.length() || offset > end) {
    fail("value outside the buffer");
  }
}

void Reader::fill(uint64_t size) {
  if (size > end_ - position_) {
    fail("value needs " + std::to_string(size) + " bytes at offset " + std::to_string(position_) +
         ", " + std::to_string(end_ - position_) + " left");
  }
}

uint8_t Reader::peek() {
  if (position_ >= end_) {
    fail("value truncated at offset " + std::to_string(position_));
  }
  if (position_ < window_start_ || position_ >= window_start_ + window_length_) {
    window_start_ = position_;
    window_length_ = std::min<uint64_t>(sizeof(window_), end_ - position_);
    buffer_.copyOut(window_start_, window_length_, window_);
  }
  return window_[position_ - window_start_];
}

uint8_t Reader::byte() {
  const uint8_t code = peek();
  position_++;
  return code;
}

void Reader::skip(uint64_t size) {
  fill(size);
  position_ += size;
}

uint64_t Reader::readUnsigned(uint32_t size) {
  fill(size);
  uint64_t value = 0;
  for (uint32_t i = 0; i < size; i++) {
    value = (value << 8) | byte();
  }
  return value;
}

int64_t Reader::readSigned(uint32_t size) {
  const uint64_t value = readUnsigned(size);
  if (size == 8) {
    return static_cast<int64_t>(value);
  }
  const uint64_t sign = uint64_t{1} << (size * 8 - 1);
  return static_cast<int64_t>(value ^ sign) - static_cast<int64_t>(sign);
}

int64_t Reader::readInt() {
  const uint8_t code = byte();
  if (code >= 0x80 && code <= 0xbf) {
    return int64_t{code} - 0x90;
  }
  if (code >= 0xc0 && code <= 0xcf) {
    return (int64_t{code} - 0xc8) * 256 + static_cast<int64_t>(readUnsigned(1));
  }
  if (code >= 0xd0 && code <= 0xd7) {
    return (int64_t{code} - 0xd4) * 65536 + static_cast<int64_t>(readUnsigned(2));
  }
  if (code == 0x49 || code == 0x59) { // 'I', long as int32
    return readSigned(4);
  }
  if (code >= 0xd8 && code <= 0xef) {
    return int64_t{code} - 0xe0;
  }
  if (code >= 0xf0) {
    return (int64_t{code} - 0xf8) * 256 + static_cast<int64_t>(readUnsigned(1));
  }
  if (code >= 0x38 && code <= 0x3f) {
    return (int64_t{code} - 0x3c) * 65536 + static_cast<int64_t>(readUnsigned(2));
  }
  if (code == 0x4c) { // 'L'
    return readSigned(8);
  }
  fail("expected an integer at offset " + std::to_string(position_ - 1));
}

int64_t Reader::readCount(const char* what) {
  const int64_t count = readInt();
  if (count < 0 || static_cast<uint64_t>(count) > remaining()) {
    fail(std::string(what) + " " + std::to_string(count) + " exceeds the bytes left");
  }
  return count;
}

void Reader::consumeUnits(uint64_t units, std::string* out) {
  const uint64_t start = position_;
  uint64_t seen = 0;
  while (seen < units) {
    const uint8_t lead = byte();
    if (lead < 0x80) {
      seen += 1;
    } else if ((lead & 0xe0) == 0xc0) {
      skip(1);
      seen += 1;
    } else if ((lead & 0xf0) == 0xe0) {
      skip(2);
      seen += 1;
    } else if ((lead & 0xf8) == 0xf0) {
      skip(3);
      seen += 2;
    } else {
      fail("invalid UTF-8 lead byte at offset " + std::to_string(position_ - 1));
    }
  }
  if (seen != units) {
    fail("a 4-byte character crosses the string length");
  }
  if (out != nullptr && position_ > start) {
    const size_t size = out->size();
    out->resize(size + static_cast<size_t>(position_ - start));
    buffer_.copyOut(start, position_ - start, &(*out)[size]);
  }
}

void Reader::stringAfter(uint8_t code, std::string* out) {
  while (true) {
    uint64_t units = 0;
    bool final_chunk = true;
    if (code <= 0x1f) {
      units = code;
    } else if (code >= 0x30 && code <= 0x33) {
      units = (uint64_t{code} - 0x30) * 256 + readUnsigned(1);
    } else if (code == 0x52 || code == 0x53) {
      units = readUnsigned(2);
      final_chunk = code == 0x53;
    } else {
      fail("expected a string at offset " + std::to_string(position_ - 1));
    }
    consumeUnits(units, out);
    if (final_chunk) {
      return;
    }
    code = byte();
  }
}

std::string Reader::readString() {
  std::string out;
  stringAfter(byte(), &out);
  return out;
}

bool Reader::readStringOrNull(std::string& out) {
  if (peek() == kNull) {
    position_++;
    return false;
  }
  out = readString();
  return true;
}

void Reader::skipBinary(uint8_t code) {
  while (true) {
    if (code >= 0x20 && code <= 0x2f) {
      skip(code - 0x20);
      return;
    }
    if (code >= 0x34 && code <= 0x37) {
      skip((uint64_t{code} - 0x34) * 256 + readUnsigned(1));
      return;
    }
    if (code == 0x41 || code == 0x42) {
      skip(readUnsigned(2));
      if (code == 0x42) {
        return;
      }
      code = byte();
      continue;
    }
    fail("expected a binary chunk at offset " + std::to_string(position_ - 1));
  }
}

void Reader::skipType() {
  if (isStringStart(peek())) {
    stringAfter(byte(), nullptr);
  } else {
    readInt();
  }
}

void Reader::classDefinition() {
  stringAfter(byte(), nullptr);
  const int64_t count = readCount("field count");
  for (int64_t i = 0; i < count; i++) {
    stringAfter(byte(), nullptr);
  }
  class_fields_.push_back(count);
}

void Reader::skipObject(int64_t index, uint32_t depth) {
  if (index < 0 || static_cast<uint64_t>(index) >= class_fields_.size()) {
    fail("object of undefined class #" + std::to_string(index));
  }
  const int64_t fields = class_fields_[static_cast<size_t>(index)];
  for (int64_t i = 0; i < fields; i++) {
    skipValue(depth + 1);
  }
}

void Reader::skipUntilEnd(uint32_t depth, bool pairs) {
  while (peek() != kEnd) {
    skipValue(depth + 1);
    if (pairs) {
      skipValue(depth + 1);
    }
  }
  position_++;
}

void Reader::skipValue(uint32_t depth) {
  if (depth > kMaxDepth) {
    fail("values nested deeper than " + std::to_string(kMaxDepth));
  }
  uint8_t code = byte();
  while (code == 0x43) { // 'C': definitions prefix the value that follows
    classDefinition();
    code = byte();
  }
  if (isStringStart(code)) {
    stringAfter(code, nullptr);
  } else if (isBinaryStart(code)) {
    skipBinary(code);
  } else if (code == 0x40 || code == 0x45 || code == 0x47 || code == 0x50) {
    fail("reserved code at offset " + std::to_string(position_ - 1));
  } else if (code == kEnd) {
    fail("'Z' outside a list or map at offset " + std::to_string(position_ - 1));
  } else if (code == 0x46 || code == 0x54 || code == kNull || code == 0x5b || code == 0x5c ||
             (code >= 0x80 && code <= 0xbf) || (code >= 0xd8 && code <= 0xef)) {
    // F, T, N, 0.0, 1.0, compact int and long: no more bytes
  } else if (code == 0x5d || (code >= 0xc0 && code <= 0xcf) || code >= 0xf0) {
    skip(1);
  } else if (code == 0x5e || (code >= 0xd0 && code <= 0xd7) || (code >= 0x38 && code <= 0x3f)) {
    skip(2);
  } else if (code == 0x49 || code == 0x4b || code == 0x59 || code == 0x5f) {
    skip(4);
  } else if (code == 0x44 || code == 0x4a || code == 0x4c) {
    skip(8);
  } else if (code == 0x48) { // H untyped map
    skipUntilEnd(depth, true);
  } else if (code == 0x4d) { // M typed map
    skipType();
    skipUntilEnd(depth, true);
  } else if (code == 0x4f) { // O object
    skipObject(readInt(), depth);
  } else if (code >= 0x60 && code <= 0x6f) {
    skipObject(code - 0x60, depth);
  } else if (code == 0x51) { // reference
    readInt();
  } else if (code == 0x55) { // variable-length typed list
    skipType();
    skipUntilEnd(depth, false);
  } else if (code == 0x57) { // variable-length untyped list
    skipUntilEnd(depth, false);
  } else if (code == 0x56) { // fixed-length typed list
    skipType();
    const int64_t count = readCount("list length");
    for (int64_t i = 0; i < count; i++) {
      skipValue(depth + 1);
    }
  } else if (code == 0x58) { // fixed-length untyped list
    const int64_t count = readCount("list length");
    for (int64_t i = 0; i < count; i++) {
      skipValue(depth + 1);
    }
  } else if (code >= 0x70 && code <= 0x77) {
    skipType();
    for (int i = 0; i < code - 0x70; i++) {
      skipValue(depth + 1);
    }
  } else { // 0x78-0x7f
    for (int i = 0; i < code - 0x78; i++) {
      skipValue(depth + 1);
    }
  }
}

uint64_t Reader::readStringMap(StringPairs& pairs, std::vector<std::string>& keys) {
  const uint8_t code = byte();
  if (code == 0x4d) {
    skipType();
  } else if (code != 0x48) {
    fail("expected a map at offset " + std::to_string(position_ - 1));
  }
  while (peek() != kEnd) {
    std::string key;
    std::string value;
    const bool key_is_string = isStringStart(peek());
    if (key_is_string) {
      key = readString();
    } else {
      skipValue(1);
    }
    const bool value_is_string = isStringStart(peek());
    if (value_is_string) {
      value = readString();
    } else {
      skipValue(1);
    }
    if (key_is_string) {
      keys.push_back(key);
      if (value_is_string) {
        pairs.emplace_back(std::move(key), std::move(value));
      }
    }
  }
  const uint64_t at = position_;
  position_++;
  return at;
}

std::string encodeString(const std::string& utf8) {
  const std::vector<std::string> units = unitsOf(utf8);
  std::string out;
  size_t first = 0;
  while (units.size() - first > kChunkUnits) {
    const size_t size = isHighSurrogate(units[first + kChunkUnits - 1]) ? kChunkUnits - 1 : kChunkUnits;
    out.push_back('R');
    out.push_back(static_cast<char>(size >> 8));
    out.push_back(static_cast<char>(size & 0xff));
    for (size_t i = first; i < first + size; i++) {
      out += units[i];
    }
    first += size;
  }
  const size_t n = units.size() - first;
  if (n <= 0x1f) {
    out.push_back(static_cast<char>(n));
  } else if (n <= 0x3ff) {
    out.push_back(static_cast<char>(0x30 + (n >> 8)));
    out.push_back(static_cast<char>(n & 0xff));
  } else {
    out.push_back('S');
    out.push_back(static_cast<char>(n >> 8));
    out.push_back(static_cast<char>(n & 0xff));
  }
  for (size_t i = first; i < units.size(); i++) {
    out += units[i];
  }
  return out;
}

std::string encodeStringMap(const StringPairs& pairs) {
  std::string out = "H";
  for (const auto& [key, value] : pairs) {
    out += encodeString(key);
    out += encodeString(value);
  }
  out.push_back('Z');
  return out;
}

} // namespace Hessian2
} // namespace CodecgenProtocol
} // namespace MetaProtocolProxy
} // namespace NetworkFilters
} // namespace Extensions
} // namespace Envoy
