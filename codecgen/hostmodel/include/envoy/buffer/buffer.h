#pragma once
// Host model of envoy/buffer/buffer.h: the Buffer::Instance interface with the members codecs
// use. Signatures, default arguments and template helpers follow Envoy; reservations, drain
// trackers, memory accounts and watermarks are left out (codecs must not use them).
#include <sys/types.h>

#include <climits>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "envoy/common/exception.h"
#include "envoy/common/pure.h"

#include "source/common/common/assert.h"
#include "source/common/common/byte_order.h"

#include "absl/strings/string_view.h"
#include "absl/types/optional.h"

namespace Envoy {
namespace Buffer {

/**
 * A raw memory data slice including location and length.
 */
struct RawSlice {
  void* mem_ = nullptr;
  size_t len_ = 0;

  bool operator==(const RawSlice& rhs) const { return mem_ == rhs.mem_ && len_ == rhs.len_; }
  bool operator!=(const RawSlice& rhs) const { return !(*this == rhs); }
};

// Envoy uses absl::InlinedVector<RawSlice, 16>; a vector offers the same interface to callers.
using RawSliceVector = std::vector<RawSlice>;

/**
 * A basic buffer abstraction.
 */
class Instance {
public:
  virtual ~Instance() = default;

  virtual void add(const void* data, uint64_t size) PURE;
  virtual void add(absl::string_view data) PURE;
  // Copies the bytes of data.
  virtual void add(const Instance& data) PURE;
  virtual void prepend(absl::string_view data) PURE;
  // Moves the bytes of data in front of this buffer; data is drained.
  virtual void prepend(Instance& data) PURE;
  virtual void copyOut(size_t start, uint64_t size, void* data) const PURE;
  virtual uint64_t copyOutToSlices(uint64_t size, Buffer::RawSlice* slices,
                                   uint64_t num_slice) const PURE;
  virtual void drain(uint64_t size) PURE;
  virtual RawSliceVector
  getRawSlices(absl::optional<uint64_t> max_slices = absl::nullopt) const PURE;
  virtual RawSlice frontSlice() const PURE;
  virtual uint64_t length() const PURE;
  // Makes the first size bytes contiguous and returns a pointer to them.
  virtual void* linearize(uint32_t size) PURE;
  // Moves all bytes of rhs to the end of this buffer; rhs is drained.
  virtual void move(Instance& rhs) PURE;
  // Moves the first length bytes of rhs to the end of this buffer; they are drained from rhs.
  virtual void move(Instance& rhs, uint64_t length) PURE;
  // Index of the first match within [start, start + length) (length 0: to the end), or -1.
  virtual ssize_t search(const void* data, uint64_t size, size_t start, size_t length) const PURE;
  ssize_t search(const void* data, uint64_t size, size_t start) const {
    return search(data, size, start, 0);
  }
  virtual bool startsWith(absl::string_view data) const PURE;
  virtual std::string toString() const PURE;

  /**
   * Reads an integer of Size bytes (Size <= sizeof(T)) at start without consuming it.
   * Throws EnvoyException("buffer underflow") when fewer than start + Size bytes are buffered.
   * A signed T read from fewer than sizeof(T) bytes is sign-extended.
   */
  template <typename T, ByteOrder Endianness = ByteOrder::Host, size_t Size = sizeof(T)>
  T peekInt(uint64_t start = 0) const {
    static_assert(std::is_integral<T>::value, "peekInt reads integers");
    static_assert(Size <= sizeof(T), "requested size is bigger than integer being read");
    if (length() < start + Size) {
      ExceptionUtil::throwEnvoyException("buffer underflow");
    }
    uint8_t bytes[Size > 0 ? Size : 1] = {};
    copyOut(start, Size, bytes);
    constexpr bool big = Endianness == ByteOrder::BigEndian ||
                         (Endianness == ByteOrder::Host && hostIsBigEndian());
    uint64_t raw = 0;
    for (size_t i = 0; i < Size; ++i) {
      const size_t significance = big ? Size - 1 - i : i;
      raw |= static_cast<uint64_t>(bytes[i]) << (significance * CHAR_BIT);
    }
    if constexpr (std::is_signed<T>::value && Size > 0 && Size < sizeof(T)) {
      const uint64_t sign_bit = uint64_t{1} << (Size * CHAR_BIT - 1);
      if ((raw & sign_bit) != 0) {
        raw |= ~uint64_t{0} << (Size * CHAR_BIT);
      }
    }
    using U = typename std::make_unsigned<T>::type;
    return static_cast<T>(static_cast<U>(raw));
  }

  template <typename T, size_t Size = sizeof(T)> T peekLEInt(uint64_t start = 0) const {
    return peekInt<T, ByteOrder::LittleEndian, Size>(start);
  }

  template <typename T, size_t Size = sizeof(T)> T peekBEInt(uint64_t start = 0) const {
    return peekInt<T, ByteOrder::BigEndian, Size>(start);
  }

  template <typename T, ByteOrder Endianness = ByteOrder::Host, size_t Size = sizeof(T)>
  T drainInt() {
    const auto result = peekInt<T, Endianness, Size>();
    drain(Size);
    return result;
  }

  template <typename T, size_t Size = sizeof(T)> T drainLEInt() {
    return drainInt<T, ByteOrder::LittleEndian, Size>();
  }

  template <typename T, size_t Size = sizeof(T)> T drainBEInt() {
    return drainInt<T, ByteOrder::BigEndian, Size>();
  }

  void writeByte(uint8_t value) { add(std::addressof(value), 1); }

  template <typename T> void writeByte(T value) { writeByte(static_cast<uint8_t>(value)); }

  /**
   * Appends the Size low-order bytes of value in the given byte order. Note that the byte
   * order is the FIRST template parameter.
   */
  template <ByteOrder Endianness = ByteOrder::Host, typename T, size_t Size = sizeof(T)>
  void writeInt(T value) {
    static_assert(std::is_integral<T>::value, "writeInt writes integers");
    static_assert(Size <= sizeof(T), "requested size is bigger than integer being written");
    using U = typename std::make_unsigned<T>::type;
    const uint64_t raw = static_cast<U>(value);
    constexpr bool big = Endianness == ByteOrder::BigEndian ||
                         (Endianness == ByteOrder::Host && hostIsBigEndian());
    uint8_t bytes[Size > 0 ? Size : 1] = {};
    for (size_t i = 0; i < Size; ++i) {
      const size_t significance = big ? Size - 1 - i : i;
      bytes[i] = static_cast<uint8_t>(raw >> (significance * CHAR_BIT));
    }
    add(bytes, Size);
  }

  template <typename T, size_t Size = sizeof(T)> void writeLEInt(T value) {
    writeInt<ByteOrder::LittleEndian, T, Size>(value);
  }

  template <typename T, size_t Size = sizeof(T)> void writeBEInt(T value) {
    writeInt<ByteOrder::BigEndian, T, Size>(value);
  }

private:
  static constexpr bool hostIsBigEndian() { return __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__; }
};

using InstancePtr = std::unique_ptr<Instance>;

} // namespace Buffer
} // namespace Envoy
