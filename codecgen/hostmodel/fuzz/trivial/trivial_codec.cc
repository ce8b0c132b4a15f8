#include "src/application_protocols/trivial/trivial_codec.h"

namespace Envoy {
namespace Extensions {
namespace NetworkFilters {
namespace MetaProtocolProxy {
namespace Trivial {

MetaProtocolProxy::DecodeStatus TrivialCodec::decode(Buffer::Instance& buffer,
                                                     MetaProtocolProxy::Metadata&) {
  volatile uint8_t first = buffer.peekBEInt<uint8_t>(0);
  (void)first;
  return MetaProtocolProxy::DecodeStatus::WaitForData;
}

void TrivialCodec::encode(const MetaProtocolProxy::Metadata&, const MetaProtocolProxy::Mutation&,
                          Buffer::Instance&) {}

void TrivialCodec::onError(const MetaProtocolProxy::Metadata&, const MetaProtocolProxy::Error&,
                           Buffer::Instance&) {
  throw EnvoyException("trivial: no error reply");
}

} // namespace Trivial
} // namespace MetaProtocolProxy
} // namespace NetworkFilters
} // namespace Extensions
} // namespace Envoy
