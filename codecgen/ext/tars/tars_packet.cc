#include "src/application_protocols/codecgen_protocol/tars_packet.h"

#include <algorithm>
#include <iterator>
#include <set>

#include "envoy/common/exception.h"

namespace Envoy {
namespace Extensions {
namespace NetworkFilters {
namespace MetaProtocolProxy {
namespace CodecgenProtocol {
namespace TarsPacket {
namespace {

enum Type : uint8_t {
  kInt8 = 0,
  kInt16 = 1,
  kInt32 = 2,
  kInt64 = 3,
  kFloat = 4,
  kDouble = 5,
  kString1 = 6,
  kString4 = 7,
  kMap = 8,
  kList = 9,
  kStructBegin = 10,
  kStructEnd = 11,
  kZero = 12,
  kSimpleList = 13,
};

constexpr int kMaxDepth = 64;
constexpr uint64_t kContextTag = 9;
const char* const kResultCode = "STATUS_RESULT_CODE";

[[noreturn]] void fail(const std::string& reason) { throw EnvoyException("tars packet: " + reason); }

// Bytes of a fixed-size type; -1 for the others.
int fixedSize(uint8_t type) {
  switch (type) {
  case kInt8:
    return 1;
  case kInt16:
    return 2;
  case kInt32:
  case kFloat:
    return 4;
  case kInt64:
  case kDouble:
    return 8;
  case kStructEnd:
  case kZero:
    return 0;
  default:
    return -1;
  }
}

struct Head {
  uint64_t tag;
  uint8_t type;
};

// Reads the packet in place through a small window filled with copyOut; only the strings it
// returns are copied (sBuffer and skipped values never are).
class Reader {
public:
  Reader(const Buffer::Instance& buffer, uint64_t offset, uint64_t length)
      : buffer_(buffer), offset_(offset), length_(length) {}

  uint64_t position() const { return pos_; }
  void seek(uint64_t pos) { pos_ = pos; }
  bool atEnd() const { return pos_ == length_; }
  uint64_t left() const { return length_ - pos_; }

  void need(uint64_t n, const std::string& what) const {
    if (n > length_ - pos_) {
      fail(what + " runs past the end of the packet");
    }
  }

  uint8_t byte(const std::string& what) {
    need(1, what);
    if (pos_ < window_start_ || pos_ >= window_start_ + window_length_) {
      window_start_ = pos_;
      window_length_ = std::min<uint64_t>(sizeof(window_), length_ - pos_);
      buffer_.copyOut(offset_ + window_start_, window_length_, window_);
    }
    return window_[pos_++ - window_start_];
  }

  void skip(uint64_t n, const std::string& what) {
    need(n, what);
    pos_ += n;
  }

  std::string take(uint64_t n, const std::string& what) {
    need(n, what);
    std::string out(n, '\0');
    buffer_.copyOut(offset_ + pos_, n, out.data());
    pos_ += n;
    return out;
  }

  Head head() {
    const uint8_t first = byte("a field head");
    Head h{static_cast<uint64_t>(first >> 4), static_cast<uint8_t>(first & 0x0f)};
    if (h.tag == 15) {
      h.tag = byte("a field head");
    }
    return h;
  }

  int64_t integer(uint8_t type, uint8_t widest, const std::string& what) {
    if (type == kZero) {
      return 0;
    }
    if (type > widest || type > kInt64) {
      fail(what + ": type " + std::to_string(type) + " is not an integer of its width");
    }
    const int size = fixedSize(type);
    need(size, what);
    uint64_t raw = 0;
    for (int i = 0; i < size; i++) {
      raw = raw << 8 | byte(what);
    }
    const int bits = 8 * size;
    if (bits < 64 && (raw >> (bits - 1)) != 0) {
      raw |= ~uint64_t{0} << bits; // sign-extend
    }
    return static_cast<int64_t>(raw);
  }

  uint64_t size(const std::string& what) {
    const Head h = head();
    if (h.tag != 0) {
      fail(what + ": the size has tag " + std::to_string(h.tag) + ", not 0");
    }
    const int64_t n = integer(h.type, kInt32, what);
    if (n < 0 || static_cast<uint64_t>(n) > left()) {
      fail(what + ": size " + std::to_string(n) + " does not fit the packet");
    }
    return static_cast<uint64_t>(n);
  }

  uint64_t stringLength(uint8_t type, const std::string& what) {
    if (type == kString1) {
      return byte(what);
    }
    if (type == kString4) {
      uint64_t n = 0;
      for (int i = 0; i < 4; i++) {
        n = n << 8 | byte(what);
      }
      return n;
    }
    fail(what + ": type " + std::to_string(type) + " is not a string");
  }

  std::string string(uint8_t type, const std::string& what) {
    return take(stringLength(type, what), what);
  }

  void skipValue(uint8_t type, int depth) {
    if (depth > kMaxDepth) {
      fail("values nested deeper than " + std::to_string(kMaxDepth));
    }
    const int fixed = fixedSize(type);
    if (fixed >= 0) {
      skip(fixed, "a value");
    } else if (type == kString1 || type == kString4) {
      skip(stringLength(type, "a string"), "a string");
    } else if (type == kMap || type == kList) {
      const uint64_t n = size("a map or list") * (type == kMap ? 2 : 1);
      for (uint64_t i = 0; i < n; i++) {
        skipValue(head().type, depth + 1);
      }
    } else if (type == kStructBegin) {
      while (true) {
        const uint8_t inner = head().type;
        if (inner == kStructEnd) {
          return;
        }
        skipValue(inner, depth + 1);
      }
    } else if (type == kSimpleList) {
      skipSimpleList("a simple list");
    } else {
      fail("type " + std::to_string(type) + " is not a Tars type");
    }
  }

  void skipSimpleList(const std::string& what) {
    const uint8_t inner = head().type;
    if (inner != kInt8) {
      fail(what + ": a simple list of type " + std::to_string(inner) + ", not bytes");
    }
    const uint64_t n = size(what);
    skip(n, what);
  }

  StringPairs stringMap(const std::string& what) {
    StringPairs out;
    const uint64_t n = size(what);
    for (uint64_t i = 0; i < n; i++) {
      std::string strings[2];
      for (uint64_t want = 0; want < 2; want++) {
        const Head h = head();
        if (h.tag != want) {
          fail(what + ": an entry field with tag " + std::to_string(h.tag) + ", not " +
               std::to_string(want));
        }
        strings[want] = string(h.type, what);
      }
      out.emplace_back(std::move(strings[0]), std::move(strings[1]));
    }
    return out;
  }

private:
  const Buffer::Instance& buffer_;
  const uint64_t offset_;
  const uint64_t length_;
  uint64_t pos_{0};
  uint8_t window_[256];
  uint64_t window_start_{0};
  uint64_t window_length_{0};
};

struct Field {
  uint64_t tag;
  uint8_t type;
  uint64_t start; // the head
  uint64_t value; // after the head
};

enum class Kind { Byte, Short, Int, String, Bytes, Map };

struct Layout {
  uint64_t tag;
  const char* name;
  Kind kind;
  bool required;
};

const Layout kRequest[] = {
    {1, "version", Kind::Short, true},     {2, "packet_type", Kind::Byte, true},
    {3, "message_type", Kind::Int, true},  {4, "request_id", Kind::Int, true},
    {5, "servant", Kind::String, true},    {6, "func", Kind::String, true},
    {7, "buffer", Kind::Bytes, true},      {8, "timeout", Kind::Int, true},
    {9, "context", Kind::Map, true},       {10, "status", Kind::Map, true},
};

const Layout kResponse[] = {
    {1, "version", Kind::Short, true},    {2, "packet_type", Kind::Byte, true},
    {3, "request_id", Kind::Int, true},   {4, "message_type", Kind::Int, true},
    {5, "ret", Kind::Int, true},          {6, "buffer", Kind::Bytes, true},
    {7, "status", Kind::Map, true},       {8, "result_desc", Kind::String, false},
    {9, "context", Kind::Map, false},
};

uint8_t widest(Kind kind) {
  return kind == Kind::Byte ? kInt8 : kind == Kind::Short ? kInt16 : kInt32;
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

// The last value of `key` in `pairs`, or nullptr.
const std::string* lastValue(const StringPairs& pairs, const std::string& key) {
  const std::string* found = nullptr;
  for (const auto& [k, v] : pairs) {
    if (k == key) {
      found = &v;
    }
  }
  return found;
}

// STATUS_RESULT_CODE as an int32 (an optional '-', digits); anything else is -1.
int64_t decimal(const std::string& text) {
  const bool negative = !text.empty() && text[0] == '-';
  const std::string body = negative ? text.substr(1) : text;
  if (body.empty() || body.size() > 10 ||
      !std::all_of(body.begin(), body.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return -1;
  }
  const int64_t value = (negative ? -1 : 1) * std::stoll(body);
  return value >= INT32_MIN && value <= INT32_MAX ? value : -1;
}

std::string encodeHead(uint64_t tag, uint8_t type) {
  if (tag < 15) {
    return std::string(1, static_cast<char>(tag << 4 | type));
  }
  std::string out(1, static_cast<char>(0xf0 | type));
  out.push_back(static_cast<char>(tag));
  return out;
}

std::string encodeInt(uint64_t tag, int64_t value) {
  if (value == 0) {
    return encodeHead(tag, kZero);
  }
  int width = 8;
  uint8_t type = kInt64;
  if (value >= INT8_MIN && value <= INT8_MAX) {
    width = 1, type = kInt8;
  } else if (value >= INT16_MIN && value <= INT16_MAX) {
    width = 2, type = kInt16;
  } else if (value >= INT32_MIN && value <= INT32_MAX) {
    width = 4, type = kInt32;
  }
  std::string out = encodeHead(tag, type);
  const uint64_t raw = static_cast<uint64_t>(value);
  for (int i = width - 1; i >= 0; i--) {
    out.push_back(static_cast<char>((raw >> (8 * i)) & 0xff));
  }
  return out;
}

std::string encodeString(uint64_t tag, const std::string& text) {
  if (text.size() <= 255) {
    return encodeHead(tag, kString1) + std::string(1, static_cast<char>(text.size())) + text;
  }
  std::string out = encodeHead(tag, kString4);
  for (int i = 3; i >= 0; i--) {
    out.push_back(static_cast<char>((text.size() >> (8 * i)) & 0xff));
  }
  return out + text;
}

std::string encodeMap(uint64_t tag, const StringPairs& pairs) {
  std::string out = encodeHead(tag, kMap) + encodeInt(0, static_cast<int64_t>(pairs.size()));
  for (const auto& [key, text] : pairs) {
    out += encodeString(0, key) + encodeString(1, text);
  }
  return out;
}

} // namespace

void parse(const Buffer::Instance& buffer, uint64_t offset, uint64_t length, const Params&,
           Value& value) {
  Reader reader(buffer, offset, length);
  std::vector<Field> fields;
  while (!reader.atEnd()) {
    const uint64_t start = reader.position();
    const Head h = reader.head();
    if (h.type == kStructEnd) {
      fail("a STRUCT_END outside a struct");
    }
    fields.push_back(Field{h.tag, h.type, start, reader.position()});
    reader.skipValue(h.type, 0);
  }
  // Field 5, where a reader looks for it, tells the layouts apart: a string (sServantName) in a
  // RequestPacket, iRet in a ResponsePacket.
  auto fifth = std::find_if(fields.begin(), fields.end(), [](const Field& f) { return f.tag >= 5; });
  const bool request_layout = fifth != fields.end() && fifth->tag == 5 &&
                              (fifth->type == kString1 || fifth->type == kString4);
  const Layout* layout = request_layout ? kRequest : kResponse;
  const size_t count = request_layout ? std::size(kRequest) : std::size(kResponse);
  value.length = length;
  StringPairs status;
  size_t index = 0;
  for (size_t i = 0; i < count; i++) {
    const Layout& want = layout[i];
    while (index < fields.size() && fields[index].tag < want.tag) {
      index++;
    }
    if (index == fields.size() || fields[index].tag != want.tag) {
      if (want.required) {
        fail(std::string("the required field ") + std::to_string(want.tag) + " (" + want.name +
             ") is missing");
      }
      if (want.tag == kContextTag) {
        value.context_at = value.context_end = index < fields.size() ? fields[index].start : length;
      }
      continue;
    }
    const Field& field = fields[index];
    const std::string what =
        std::string("field ") + std::to_string(want.tag) + " (" + want.name + ")";
    reader.seek(field.value);
    const std::string name = want.name;
    switch (want.kind) {
    case Kind::String: {
      std::string text = reader.string(field.type, what);
      if (name == "servant") {
        value.servant = std::move(text);
      } else if (name == "func") {
        value.func = std::move(text);
      } else {
        value.result_desc = std::move(text);
      }
      break;
    }
    case Kind::Bytes:
      if (field.type != kSimpleList) {
        fail(what + ": type " + std::to_string(field.type) + " is not a simple list");
      }
      reader.skipSimpleList(what);
      break;
    case Kind::Map: {
      if (field.type != kMap) {
        fail(what + ": type " + std::to_string(field.type) + " is not a map");
      }
      StringPairs pairs = reader.stringMap(what);
      if (want.tag == kContextTag) {
        value.context = std::move(pairs);
        value.context_at = field.start;
        value.context_end = reader.position();
      } else {
        status = std::move(pairs);
      }
      break;
    }
    default: {
      const int64_t n = reader.integer(field.type, widest(want.kind), what);
      if (name == "version") {
        value.version = n;
      } else if (name == "packet_type") {
        value.packet_type = n;
      } else if (name == "message_type") {
        value.message_type = n;
      } else if (name == "request_id") {
        value.request_id = n;
      } else if (name == "ret") {
        value.ret = n;
      }
      break;
    }
    }
    index++;
  }
  if (request_layout) {
    const std::string* code = lastValue(status, kResultCode);
    value.ret = code != nullptr ? decimal(*code) : 0;
  }
}

void entries(const Value& value, StringPairs& out) {
  // Each key once with its last value, in the order of those last values: from the end, the
  // first time a key is seen (n log n: a context may hold a million pairs).
  std::set<std::string> seen;
  StringPairs unique;
  for (auto it = value.context.rbegin(); it != value.context.rend(); ++it) {
    if (seen.insert(it->first).second) {
      unique.push_back(*it);
    }
  }
  out.insert(out.end(), unique.rbegin(), unique.rend());
}

bool mutate(Value& value, const StringPairs& pairs) {
  StringPairs context = value.context;
  bool changed = false;
  for (const auto& [key, text] : pairs) {
    const std::string wanted = lower(key);
    bool spelled = false;
    for (auto& [existing, old] : context) {
      if (lower(existing) == wanted) {
        spelled = true;
        if (old != text) {
          old = text;
          changed = true;
        }
      }
    }
    if (!spelled) {
      context.emplace_back(key, text);
      changed = true;
    }
  }
  if (!changed) {
    return false;
  }
  value.context_field = encodeMap(kContextTag, context);
  value.context = std::move(context);
  return true;
}

uint64_t size(const Value& value) {
  return value.length - (value.context_end - value.context_at) + value.context_field.size();
}

void write(const Value& value, Buffer::Instance& field, Buffer::Instance& out) {
  out.move(field, value.context_at); // the fields before the context, sBuffer included
  out.add(value.context_field);
  field.drain(value.context_end - value.context_at);
  out.move(field, value.length - value.context_end);
}

std::string errorValue(const std::string& message, int64_t error_type, uint64_t request_id) {
  // Aeraki ErrorType -> iRet: RouteNotFound (0) and ClusterNotFound (1): SERVANT_NOT_FOUND;
  // OverLimit (5): TARSSERVEROVERLOAD; otherwise TARSSERVERUNKNOWNERR.
  const int64_t ret = error_type == 0 || error_type == 1 ? -4 : error_type == 5 ? -9 : -99;
  const int64_t id = static_cast<int32_t>(static_cast<uint32_t>(request_id & 0xffffffff));
  return encodeInt(1, 1) + encodeInt(2, 0) + encodeInt(3, id) + encodeInt(4, 0) + encodeInt(5, ret) +
         encodeHead(6, kSimpleList) + encodeHead(0, kInt8) + encodeInt(0, 0) + encodeMap(7, {}) +
         encodeString(8, message);
}

} // namespace TarsPacket
} // namespace CodecgenProtocol
} // namespace MetaProtocolProxy
} // namespace NetworkFilters
} // namespace Extensions
} // namespace Envoy
