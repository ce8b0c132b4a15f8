#pragma once
// The baseline of bench/bench_fuzz.py: a codec whose decode only reads the first byte (and then
// waits), built into the same libFuzzer target as a generated codec, so that the ratio of the
// two execution rates shows what the generated codec itself costs.

#include "envoy/buffer/buffer.h"

#include "source/common/common/logger.h"

#include "src/meta_protocol_proxy/codec/codec.h"

namespace Envoy {
namespace Extensions {
namespace NetworkFilters {
namespace MetaProtocolProxy {
namespace Trivial {

class TrivialCodec : public MetaProtocolProxy::Codec, Logger::Loggable<Logger::Id::misc> {
public:
  MetaProtocolProxy::DecodeStatus decode(Buffer::Instance& buffer,
                                         MetaProtocolProxy::Metadata& metadata) override;
  void encode(const MetaProtocolProxy::Metadata& metadata,
              const MetaProtocolProxy::Mutation& mutation, Buffer::Instance& buffer) override;
  void onError(const MetaProtocolProxy::Metadata& metadata, const MetaProtocolProxy::Error& error,
               Buffer::Instance& buffer) override;
};

} // namespace Trivial
} // namespace MetaProtocolProxy
} // namespace NetworkFilters
} // namespace Extensions
} // namespace Envoy
