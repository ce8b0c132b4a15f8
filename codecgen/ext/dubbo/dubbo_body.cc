#include "src/application_protocols/codecgen_protocol/dubbo_body.h"

#include <algorithm>

#include "envoy/common/exception.h"

namespace Envoy {
namespace Extensions {
namespace NetworkFilters {
namespace MetaProtocolProxy {
namespace CodecgenProtocol {
namespace DubboBody {
namespace {

constexpr int64_t kHessian2 = 2;
constexpr int64_t kStatusOk = 20;

[[noreturn]] void fail(const std::string& reason) {
  throw EnvoyException("dubbo body: " + reason);
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

void readAttachments(Hessian2::Reader& reader, uint64_t offset, Value& value) {
  if (reader.peek() == 0x4e) { // N: no attachments
    value.attachments = Value::Attachments::Null;
    value.attachments_at = reader.position() - offset;
    reader.byte();
    return;
  }
  value.attachments = Value::Attachments::Map;
  value.attachments_at = reader.readStringMap(value.pairs, value.keys) - offset;
}

} // namespace

uint64_t parameterCount(const std::string& descriptor) {
  uint64_t count = 0;
  size_t i = 0;
  const size_t n = descriptor.size();
  while (i < n) {
    while (descriptor[i] == '[') {
      i++;
      if (i == n) {
        fail("parameter descriptor ends inside an array type");
      }
    }
    const char code = descriptor[i];
    if (code == 'L') {
      const size_t end = descriptor.find(';', i);
      if (end == std::string::npos) {
        fail("parameter descriptor: class name without ';'");
      }
      i = end;
    } else if (std::string("ZBCSIJFD").find(code) == std::string::npos) {
      fail("parameter descriptor: unexpected character");
    }
    i++;
    count++;
  }
  return count;
}

void parse(const Buffer::Instance& buffer, uint64_t offset, uint64_t length, const Params& params,
           Value& value) {
  if (params.serialization != kHessian2) {
    fail("serialization id " + std::to_string(params.serialization) + " is not Hessian 2");
  }
  value.length = length;
  Hessian2::Reader reader(buffer, offset, offset + length);
  if (params.event != 0) {
    reader.skipValue();
  } else if (params.request != 0) {
    reader.readString(); // dubbo protocol version
    value.interface = reader.readString();
    std::string version;
    reader.readStringOrNull(version); // service version
    value.method = reader.readString();
    const uint64_t count = parameterCount(reader.readString());
    for (uint64_t i = 0; i < count; i++) {
      reader.skipValue();
    }
    readAttachments(reader, offset, value);
  } else if (params.status == kStatusOk) {
    const int64_t flag = reader.readInt();
    if (flag < 0 || flag > 5) {
      fail("unknown result flag " + std::to_string(flag));
    }
    if (flag == 0 || flag == 1 || flag == 3 || flag == 4) {
      reader.skipValue();
    }
    value.exception = (flag == 0 || flag == 3) ? 1 : 0;
    if (flag >= 3) {
      readAttachments(reader, offset, value);
    }
  } else {
    std::string message;
    reader.readStringOrNull(message);
  }
  if (reader.remaining() != 0) {
    fail(std::to_string(reader.remaining()) + " bytes after the body's last value");
  }
}

void entries(const Value& value, std::vector<std::pair<std::string, std::string>>& out) {
  out.insert(out.end(), value.pairs.begin(), value.pairs.end());
}

bool mutate(Value& value, const std::vector<std::pair<std::string, std::string>>& pairs) {
  if (value.attachments == Value::Attachments::Absent || pairs.empty()) {
    return false;
  }
  for (const auto& [key, text] : pairs) {
    std::vector<std::string> spellings;
    const std::string wanted = lower(key);
    for (const std::string& existing : value.keys) {
      if (lower(existing) == wanted &&
          std::find(spellings.begin(), spellings.end(), existing) == spellings.end()) {
        spellings.push_back(existing);
      }
    }
    if (spellings.empty()) {
      spellings.push_back(key);
    }
    const std::string encoded = Hessian2::encodeString(text);
    for (const std::string& spelling : spellings) {
      value.inserted += Hessian2::encodeString(spelling);
      value.inserted += encoded;
    }
  }
  return true;
}

uint64_t size(const Value& value) {
  // A null attachments 'N' becomes 'H' + entries + 'Z'.
  const uint64_t extra = value.attachments == Value::Attachments::Null ? 1 : 0;
  return value.length + value.inserted.size() + extra;
}

void write(const Value& value, Buffer::Instance& field, Buffer::Instance& out) {
  out.move(field, value.attachments_at); // everything before the attachments' end, moved
  if (value.attachments == Value::Attachments::Null) {
    field.drain(1);
    out.add("H");
    out.add(value.inserted);
    out.add("Z");
  } else {
    out.add(value.inserted);
  }
  out.move(field);
}

std::string errorValue(const std::string& message, int64_t /*error_type*/, uint64_t /*request_id*/) {
  return Hessian2::encodeString(message);
}

} // namespace DubboBody
} // namespace CodecgenProtocol
} // namespace MetaProtocolProxy
} // namespace NetworkFilters
} // namespace Extensions
} // namespace Envoy
