#include "src/application_protocols/codecgen_protocol/bolt_header.h"

#include <algorithm>
#include <set>

#include "envoy/common/exception.h"

namespace Envoy {
namespace Extensions {
namespace NetworkFilters {
namespace MetaProtocolProxy {
namespace CodecgenProtocol {
namespace BoltHeader {
namespace {

constexpr uint64_t kMaxHeader = 0xffff;

[[noreturn]] void fail(const std::string& reason) { throw EnvoyException("bolt header: " + reason); }

std::string lower(const std::string& text) {
  std::string out = text;
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return out;
}

std::string encodeString(const std::string& text) {
  const uint64_t size = text.size();
  std::string out(4, '\0');
  for (int i = 0; i < 4; i++) {
    out[i] = static_cast<char>((size >> (8 * (3 - i))) & 0xff);
  }
  return out + text;
}

// Each key once, with its last value, ordered by where that value is: from the end, the first
// time a key is seen.
StringPairs latest(const StringPairs& pairs) {
  std::set<std::string> seen;
  StringPairs out;
  for (auto it = pairs.rbegin(); it != pairs.rend(); ++it) {
    if (seen.insert(it->first).second) {
      out.push_back(*it);
    }
  }
  return StringPairs(out.rbegin(), out.rend());
}

const std::string* find(const StringPairs& pairs, const std::string& key) {
  auto it = std::find_if(pairs.begin(), pairs.end(),
                         [&key](const auto& p) { return p.first == key; });
  return it == pairs.end() ? nullptr : &it->second;
}

} // namespace

void parse(const Buffer::Instance& buffer, uint64_t offset, uint64_t length, const Params&,
           Value& value) {
  std::string data(length, '\0');
  buffer.copyOut(offset, length, data.data());
  value.length = length;
  uint64_t pos = 0;
  while (pos < length) {
    std::string strings[2];
    bool present[2] = {false, false};
    for (int i = 0; i < 2; i++) {
      const char* what = i == 0 ? "key" : "value";
      if (length - pos < 4) {
        fail(std::string("the ") + what + " length runs past the end of the header");
      }
      uint32_t raw = 0;
      for (int b = 0; b < 4; b++) {
        raw = raw << 8 | static_cast<uint8_t>(data[pos + b]);
      }
      pos += 4;
      const int32_t size = static_cast<int32_t>(raw);
      if (size < 0) {
        continue; // a null string
      }
      if (static_cast<uint64_t>(size) > length - pos) {
        fail(std::string("a ") + what + " of " + std::to_string(size) +
             " bytes runs past the end of the header");
      }
      strings[i] = data.substr(pos, size);
      present[i] = true;
      pos += size;
    }
    if (present[0] && present[1]) {
      value.pairs.emplace_back(std::move(strings[0]), std::move(strings[1]));
    }
  }
  const StringPairs current = latest(value.pairs);
  const std::string* service = find(current, "service");
  if (service == nullptr || service->empty()) {
    service = find(current, "sofa_head_target_service");
  }
  value.service = service != nullptr ? *service : "";
  const std::string* method = find(current, "sofa_head_method_name");
  value.method = method != nullptr ? *method : "";
}

void entries(const Value& value, StringPairs& out) {
  const StringPairs unique = latest(value.pairs);
  out.insert(out.end(), unique.begin(), unique.end());
}

bool mutate(Value& value, const StringPairs& pairs) {
  const StringPairs current = latest(value.pairs);
  std::string appended;
  for (const auto& [key, text] : pairs) {
    const std::string wanted = lower(key);
    bool spelled = false;
    for (const auto& [existing, old] : current) {
      if (lower(existing) == wanted) {
        spelled = true;
        if (old != text) {
          appended += encodeString(existing) + encodeString(text);
        }
      }
    }
    if (!spelled) {
      appended += encodeString(key) + encodeString(text);
    }
  }
  if (appended.empty() || value.length + appended.size() > kMaxHeader) {
    return false;
  }
  value.appended = std::move(appended);
  return true;
}

uint64_t size(const Value& value) { return value.length + value.appended.size(); }

void write(const Value& value, Buffer::Instance& field, Buffer::Instance& out) {
  out.move(field, value.length);
  out.add(value.appended);
}

} // namespace BoltHeader
} // namespace CodecgenProtocol
} // namespace MetaProtocolProxy
} // namespace NetworkFilters
} // namespace Extensions
} // namespace Envoy
