#include "src/application_protocols/trivial/config.h"

#include "envoy/registry/registry.h"

#include "src/application_protocols/trivial/trivial_codec.h"

namespace Envoy {
namespace Extensions {
namespace NetworkFilters {
namespace MetaProtocolProxy {
namespace Trivial {

MetaProtocolProxy::CodecPtr TrivialCodecConfig::createCodec(const Protobuf::Message&) {
  return std::make_unique<TrivialCodec>();
}

REGISTER_FACTORY(TrivialCodecConfig, MetaProtocolProxy::NamedCodecConfigFactory);

} // namespace Trivial
} // namespace MetaProtocolProxy
} // namespace NetworkFilters
} // namespace Extensions
} // namespace Envoy
