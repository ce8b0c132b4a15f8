#pragma once

#include <cstdint>

#include "envoy/buffer/buffer.h"

namespace Envoy {
namespace Extensions {
namespace NetworkFilters {
namespace MetaProtocolProxy {
namespace Awesomerpc {

// Response codes written by the proxy in local replies.
enum class AwesomerpcCode : int16_t {
  Ok = 0,
  NoRoute = 1,
  Error = 1,
};

/**
 * The fixed 13-byte awesomerpc header, all fields big-endian:
 *   version u8 | pack_flow u32 (request id) | pack_len u32 (whole frame, header included) |
 *   req_cmd i16 | rsp_code i16
 */
struct AwesomerpcHeader {
  static constexpr uint32_t HEADER_SIZE = 13;
  // Frames larger than this are refused rather than buffered.
  static constexpr uint32_t MAX_PACK_LEN = 16 * 1024 * 1024;
  static constexpr uint8_t VERSION = 1;

  uint8_t version{VERSION};
  uint32_t pack_flow{0};
  uint32_t pack_len{HEADER_SIZE};
  int16_t req_cmd{0};
  int16_t rsp_code{0};

  // Reads the header from the front of buffer without consuming it. The caller makes sure that
  // HEADER_SIZE bytes are buffered. Throws EnvoyException if pack_len is out of range.
  void peek(const Buffer::Instance& buffer);
  // Appends the 13 header bytes to buffer.
  void write(Buffer::Instance& buffer) const;

  uint32_t bodySize() const { return pack_len - HEADER_SIZE; }
};

} // namespace Awesomerpc
} // namespace MetaProtocolProxy
} // namespace NetworkFilters
} // namespace Extensions
} // namespace Envoy
