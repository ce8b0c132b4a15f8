// extern "C" access to the model's Buffer::OwnedImpl, so that the buffer semantics can be
// tested from Python (tests/test_hostmodel.py) without compiling a test program per check.
// Calls return 0 on success, 1 if an EnvoyException was thrown, 2 for a model assertion,
// 3 for anything else; codecgen_buf_error() holds the message.
#include <cstdint>
#include <string>
#include <utility>

#include "envoy/common/exception.h"
#include "source/common/buffer/buffer_impl.h"

namespace {

using Envoy::ByteOrder;
using Envoy::Buffer::OwnedImpl;

thread_local std::string probe_error;
thread_local std::string probe_text;

template <class Body> int guarded(Body&& body) {
  try {
    body();
    return 0;
  } catch (const Envoy::EnvoyException& e) {
    probe_error = e.what();
    return 1;
  } catch (const Envoy::HostModel::AssertionFailure& e) {
    probe_error = e.what();
    return 2;
  } catch (const std::exception& e) {
    probe_error = e.what();
    return 3;
  }
}

OwnedImpl& buf(void* handle) { return *static_cast<OwnedImpl*>(handle); }

// Integer access by run-time (type, size, byte order): each combination instantiates the real
// template helpers of Buffer::Instance.
template <class T, ByteOrder O, size_t Size> struct IntOps {
  static uint64_t peek(OwnedImpl& b, uint64_t start) {
    return static_cast<uint64_t>(b.peekInt<T, O, Size>(start));
  }
  static uint64_t drain(OwnedImpl& b, uint64_t) {
    return static_cast<uint64_t>(b.drainInt<T, O, Size>());
  }
  static uint64_t write(OwnedImpl& b, uint64_t value) {
    b.writeInt<O, T, Size>(static_cast<T>(value));
    return 0;
  }
};

using Op = uint64_t (*)(OwnedImpl&, uint64_t);
enum class Kind { Peek, Drain, Write };

template <class T, ByteOrder O, size_t... I> Op pickSize(Kind kind, size_t size, std::index_sequence<I...>) {
  static constexpr Op peeks[] = {&IntOps<T, O, I + 1>::peek...};
  static constexpr Op drains[] = {&IntOps<T, O, I + 1>::drain...};
  static constexpr Op writes[] = {&IntOps<T, O, I + 1>::write...};
  if (size < 1 || size > sizeof(T)) {
    return nullptr;
  }
  return kind == Kind::Peek ? peeks[size - 1] : kind == Kind::Drain ? drains[size - 1] : writes[size - 1];
}

template <class T> Op pickOrder(Kind kind, size_t size, int order) {
  constexpr auto sizes = std::make_index_sequence<sizeof(T)>{};
  switch (order) {
  case 0:
    return pickSize<T, ByteOrder::Host>(kind, size, sizes);
  case 1:
    return pickSize<T, ByteOrder::LittleEndian>(kind, size, sizes);
  case 2:
    return pickSize<T, ByteOrder::BigEndian>(kind, size, sizes);
  default:
    return nullptr;
  }
}

Op pick(Kind kind, int is_signed, int type_size, int size, int order) {
  const size_t s = static_cast<size_t>(size);
  switch (type_size * 2 + (is_signed != 0 ? 1 : 0)) {
  case 2: return pickOrder<uint8_t>(kind, s, order);
  case 3: return pickOrder<int8_t>(kind, s, order);
  case 4: return pickOrder<uint16_t>(kind, s, order);
  case 5: return pickOrder<int16_t>(kind, s, order);
  case 8: return pickOrder<uint32_t>(kind, s, order);
  case 9: return pickOrder<int32_t>(kind, s, order);
  case 16: return pickOrder<uint64_t>(kind, s, order);
  case 17: return pickOrder<int64_t>(kind, s, order);
  default: return nullptr;
  }
}

int runInt(Kind kind, void* handle, int is_signed, int type_size, int size, int order,
           uint64_t argument, uint64_t* result) {
  Op op = pick(kind, is_signed, type_size, size, order);
  if (op == nullptr) {
    probe_error = "unsupported integer shape";
    return 3;
  }
  return guarded([&] { *result = op(buf(handle), argument); });
}

} // namespace

extern "C" {

const char* codecgen_buf_error() { return probe_error.c_str(); }

void* codecgen_buf_new(const uint8_t* data, uint64_t size) {
  return size == 0 ? new OwnedImpl() : new OwnedImpl(data, size);
}

void codecgen_buf_free(void* handle) { delete static_cast<OwnedImpl*>(handle); }

uint64_t codecgen_buf_length(void* handle) { return buf(handle).length(); }

uint64_t codecgen_buf_slices(void* handle) { return buf(handle).sliceCountForTest(); }

const uint8_t* codecgen_buf_bytes(void* handle, uint64_t* size) {
  probe_text = buf(handle).toString();
  *size = probe_text.size();
  return reinterpret_cast<const uint8_t*>(probe_text.data());
}

int codecgen_buf_add(void* handle, const uint8_t* data, uint64_t size) {
  return guarded([&] { buf(handle).add(data, size); });
}

int codecgen_buf_add_buffer(void* handle, void* other) {
  return guarded([&] { buf(handle).add(static_cast<const Envoy::Buffer::Instance&>(buf(other))); });
}

int codecgen_buf_prepend(void* handle, const uint8_t* data, uint64_t size) {
  return guarded([&] {
    buf(handle).prepend(absl::string_view(reinterpret_cast<const char*>(data), size));
  });
}

int codecgen_buf_prepend_buffer(void* handle, void* other) {
  return guarded([&] { buf(handle).prepend(buf(other)); });
}

// length < 0 moves everything (the one-argument overload).
int codecgen_buf_move(void* handle, void* other, int64_t length) {
  return guarded([&] {
    if (length < 0) {
      buf(handle).move(buf(other));
    } else {
      buf(handle).move(buf(other), static_cast<uint64_t>(length));
    }
  });
}

int codecgen_buf_drain(void* handle, uint64_t size) {
  return guarded([&] { buf(handle).drain(size); });
}

int codecgen_buf_copy_out(void* handle, uint64_t start, uint64_t size, uint8_t* out) {
  return guarded([&] { buf(handle).copyOut(start, size, out); });
}

// Returns the linearized bytes, and in *front_len the size of the front slice afterwards.
int codecgen_buf_linearize(void* handle, uint32_t size, const uint8_t** out, uint64_t* front_len) {
  return guarded([&] {
    *out = static_cast<const uint8_t*>(buf(handle).linearize(size));
    *front_len = buf(handle).frontSlice().len_;
  });
}

// limit < 0 calls the three-argument overload.
int codecgen_buf_search(void* handle, const uint8_t* needle, uint64_t size, uint64_t start,
                        int64_t limit, int64_t* result) {
  return guarded([&] {
    const Envoy::Buffer::Instance& b = buf(handle);
    *result = limit < 0 ? b.search(needle, size, start)
                        : b.search(needle, size, start, static_cast<size_t>(limit));
  });
}

int codecgen_buf_starts_with(void* handle, const uint8_t* data, uint64_t size) {
  return buf(handle).startsWith(absl::string_view(reinterpret_cast<const char*>(data), size)) ? 1
                                                                                              : 0;
}

// order: 0 host, 1 little endian, 2 big endian. Values travel as their 64-bit two's complement.
int codecgen_buf_peek(void* handle, int is_signed, int type_size, int size, int order,
                      uint64_t start, uint64_t* value) {
  return runInt(Kind::Peek, handle, is_signed, type_size, size, order, start, value);
}

int codecgen_buf_drain_int(void* handle, int is_signed, int type_size, int size, int order,
                           uint64_t* value) {
  return runInt(Kind::Drain, handle, is_signed, type_size, size, order, 0, value);
}

int codecgen_buf_write_int(void* handle, int is_signed, int type_size, int size, int order,
                           uint64_t value) {
  uint64_t ignored = 0;
  return runInt(Kind::Write, handle, is_signed, type_size, size, order, value, &ignored);
}

} // extern "C"
