#include "src/application_protocols/awesomerpc/config.h"

#include "envoy/registry/registry.h"

#include "src/application_protocols/awesomerpc/awesomerpc_codec.h"

namespace Envoy {
namespace Extensions {
namespace NetworkFilters {
namespace MetaProtocolProxy {
namespace Awesomerpc {

MetaProtocolProxy::CodecPtr AwesomerpcCodecConfig::createCodec(const Protobuf::Message&) {
  // The config message is empty.
  return std::make_unique<AwesomerpcCodec>();
}

REGISTER_FACTORY(AwesomerpcCodecConfig, MetaProtocolProxy::NamedCodecConfigFactory);

} // namespace Awesomerpc
} // namespace MetaProtocolProxy
} // namespace NetworkFilters
} // namespace Extensions
} // namespace Envoy
