// The extern "C" surface loaded by codecgen/hostmodel/binding.py through ctypes. Every call
// returns 0 on success; results are serialized (see wire.h) into a buffer owned by the handle
// that stays valid until the next call on the same handle.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "driver.h"
#include "source/common/buffer/buffer_impl.h"
#include "source/common/common/logger.h"
#include "wire.h"

using namespace CodecgenHarness;

namespace {

struct Handle {
  std::unique_ptr<Session> session;
  std::string result;
};

thread_local std::string last_error;
thread_local std::string scratch;

std::string_view view(const uint8_t* data, uint64_t size) {
  return size == 0 ? std::string_view() : std::string_view(reinterpret_cast<const char*>(data), size);
}

int publish(Handle* handle, std::string blob, const uint8_t** out, uint64_t* out_len) {
  handle->result = std::move(blob);
  *out = reinterpret_cast<const uint8_t*>(handle->result.data());
  *out_len = handle->result.size();
  return 0;
}

Direction direction(int value) { return value == 1 ? Direction::Response : Direction::Request; }

} // namespace

extern "C" {

void* codecgen_open(const char* factory_name) {
  std::string error;
  auto session = Session::open(factory_name, error);
  if (session == nullptr) {
    last_error = error;
    return nullptr;
  }
  return new Handle{std::move(session), {}};
}

void codecgen_close(void* handle) { delete static_cast<Handle*>(handle); }

const char* codecgen_last_error() { return last_error.c_str(); }

// Registered codec names, one per line.
const char* codecgen_factories() {
  scratch.clear();
  for (const std::string& name : registeredCodecs()) {
    scratch += name + "\n";
  }
  return scratch.c_str();
}

int codecgen_decode_stream(void* handle, const uint8_t* data, uint64_t size,
                           const uint64_t* chunks, uint64_t chunk_count, int dir,
                           const uint8_t** out, uint64_t* out_len) {
  auto* h = static_cast<Handle*>(handle);
  const std::vector<uint64_t> sizes(chunks, chunks + chunk_count);
  return publish(h, encodeDecodeOutcome(h->session->decodeStream(view(data, size), sizes,
                                                                 direction(dir))),
                 out, out_len);
}

int codecgen_encode(void* handle, const uint8_t* frame, uint64_t size, int dir,
                    const uint8_t* mutation, uint64_t mutation_len, int path, const uint8_t** out,
                    uint64_t* out_len) {
  auto* h = static_cast<Handle*>(handle);
  Mpp::Mutation parsed;
  if (!decodeMutation(view(mutation, mutation_len), parsed)) {
    last_error = "malformed mutation blob";
    return 1;
  }
  const EncodePath encode_path = path == 1 ? EncodePath::Response : EncodePath::Request;
  return publish(h, encodeCallOutcome(h->session->encode(view(frame, size), direction(dir),
                                                         parsed, encode_path)),
                 out, out_len);
}

int codecgen_on_error(void* handle, const uint8_t* frame, uint64_t size, int has_frame, int dir,
                      int error_type, const uint8_t* message, uint64_t message_len,
                      const uint8_t** out, uint64_t* out_len) {
  auto* h = static_cast<Handle*>(handle);
  std::optional<std::string_view> input;
  if (has_frame != 0) {
    input = view(frame, size);
  }
  return publish(h,
                 encodeCallOutcome(h->session->onError(input, direction(dir), error_type,
                                                       std::string(view(message, message_len)))),
                 out, out_len);
}

int codecgen_heartbeat(void* handle, const uint8_t* frame, uint64_t size, int dir,
                       const uint8_t** out, uint64_t* out_len) {
  auto* h = static_cast<Handle*>(handle);
  return publish(h, encodeCallOutcome(h->session->heartbeat(view(frame, size), direction(dir))),
                 out, out_len);
}

// 0 off, 1 format and discard (default), 2 print to stderr.
void codecgen_set_log_mode(int mode) {
  Envoy::Logger::Sink::setMode(static_cast<Envoy::Logger::Sink::Mode>(mode));
}

uint64_t codecgen_bytes_copied() { return Envoy::Buffer::HostModel::bytesCopied(); }

void codecgen_reset_bytes_copied() { Envoy::Buffer::HostModel::resetBytesCopied(); }

// Does nothing; used to measure the cost of a call through ctypes.
int codecgen_noop(void*) { return 0; }

} // extern "C"
