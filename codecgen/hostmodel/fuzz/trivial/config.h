#pragma once

#include "src/application_protocols/trivial/trivial_codec.pb.h"
#include "src/application_protocols/trivial/trivial_codec.pb.validate.h"
#include "src/meta_protocol_proxy/codec/factory.h"

namespace Envoy {
namespace Extensions {
namespace NetworkFilters {
namespace MetaProtocolProxy {
namespace Trivial {

class TrivialCodecConfig
    : public MetaProtocolProxy::CodecFactoryBase<aeraki::meta_protocol::codec::TrivialCodec> {
public:
  TrivialCodecConfig() : CodecFactoryBase("aeraki.meta_protocol.codec.trivial") {}

  MetaProtocolProxy::CodecPtr createCodec(const Protobuf::Message& config) override;
};

} // namespace Trivial
} // namespace MetaProtocolProxy
} // namespace NetworkFilters
} // namespace Extensions
} // namespace Envoy
