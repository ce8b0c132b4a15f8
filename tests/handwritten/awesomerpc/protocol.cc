#include "src/application_protocols/awesomerpc/protocol.h"

#include "envoy/common/exception.h"

namespace Envoy {
namespace Extensions {
namespace NetworkFilters {
namespace MetaProtocolProxy {
namespace Awesomerpc {

void AwesomerpcHeader::peek(const Buffer::Instance& buffer) {
  version = buffer.peekBEInt<uint8_t>(0);
  pack_flow = buffer.peekBEInt<uint32_t>(1);
  pack_len = buffer.peekBEInt<uint32_t>(5);
  req_cmd = buffer.peekBEInt<int16_t>(9);
  rsp_code = buffer.peekBEInt<int16_t>(11);

  if (pack_len < HEADER_SIZE) {
    throw EnvoyException(fmt::format("awesomerpc: pack_len {} is shorter than the {} byte header",
                                     pack_len, HEADER_SIZE));
  }
  if (pack_len > MAX_PACK_LEN) {
    throw EnvoyException(
        fmt::format("awesomerpc: pack_len {} exceeds the {} byte limit", pack_len, MAX_PACK_LEN));
  }
}

void AwesomerpcHeader::write(Buffer::Instance& buffer) const {
  buffer.writeBEInt<uint8_t>(version);
  buffer.writeBEInt<uint32_t>(pack_flow);
  buffer.writeBEInt<uint32_t>(pack_len);
  buffer.writeBEInt<int16_t>(req_cmd);
  buffer.writeBEInt<int16_t>(rsp_code);
}

} // namespace Awesomerpc
} // namespace MetaProtocolProxy
} // namespace NetworkFilters
} // namespace Extensions
} // namespace Envoy
