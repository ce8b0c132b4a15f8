#include "wire.h"

#include <optional>
#include <utility>

namespace CodecgenHarness {

namespace {

class Writer {
public:
  void u8(uint8_t value) { out_.push_back(static_cast<char>(value)); }
  void u32(uint32_t value) { little(value, 4); }
  void u64(uint64_t value) { little(value, 8); }
  void str(std::string_view text) {
    u32(static_cast<uint32_t>(text.size()));
    out_.append(text.data(), text.size());
  }
  void optional(const std::optional<std::string>& text) {
    u8(text.has_value() ? 1 : 0);
    if (text.has_value()) {
      str(*text);
    }
  }
  std::string take() { return std::move(out_); }

private:
  void little(uint64_t value, int size) {
    for (int i = 0; i < size; ++i) {
      out_.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
    }
  }
  std::string out_;
};

class Reader {
public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool u32(uint32_t& value) {
    if (in_.size() < 4) {
      return false;
    }
    value = 0;
    for (int i = 0; i < 4; ++i) {
      value |= static_cast<uint32_t>(static_cast<uint8_t>(in_[i])) << (8 * i);
    }
    in_.remove_prefix(4);
    return true;
  }
  bool str(std::string& text) {
    uint32_t size = 0;
    if (!u32(size) || in_.size() < size) {
      return false;
    }
    text.assign(in_.data(), size);
    in_.remove_prefix(size);
    return true;
  }
  bool done() const { return in_.empty(); }

private:
  std::string_view in_;
};

} // namespace

std::string encodeDecodeOutcome(const DecodeOutcome& outcome) {
  Writer w;
  w.u32(static_cast<uint32_t>(outcome.frames.size()));
  for (const FrameInfo& frame : outcome.frames) {
    w.u32(static_cast<uint32_t>(frame.message_type));
    w.u64(frame.request_id);
    w.u64(frame.stream_id);
    w.u32(static_cast<uint32_t>(frame.response_status));
    w.u64(frame.header_size);
    w.u64(frame.body_size);
    w.str(frame.operation_name);
    w.u32(static_cast<uint32_t>(frame.strings.size()));
    for (const auto& [key, value] : frame.strings) {
      w.str(key);
      w.str(value);
    }
    w.str(frame.bytes);
  }
  w.optional(outcome.error);
  w.optional(outcome.violation);
  w.u64(outcome.held);
  w.u64(outcome.pending);
  w.u64(outcome.copied);
  return w.take();
}

std::string encodeCallOutcome(const CallOutcome& outcome) {
  Writer w;
  w.u8(static_cast<uint8_t>(outcome.kind));
  w.str(outcome.message);
  w.str(outcome.output);
  return w.take();
}

bool decodeMutation(std::string_view blob, Mpp::Mutation& mutation) {
  Reader r(blob);
  uint32_t count = 0;
  if (!r.u32(count)) {
    return false;
  }
  for (uint32_t i = 0; i < count; ++i) {
    std::string key;
    std::string value;
    if (!r.str(key) || !r.str(value)) {
      return false;
    }
    mutation[key] = value;
  }
  return r.done();
}

} // namespace CodecgenHarness
