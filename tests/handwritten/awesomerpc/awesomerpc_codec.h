#pragma once

#include "envoy/buffer/buffer.h"

#include "source/common/buffer/buffer_impl.h"
#include "source/common/common/logger.h"

#include "src/application_protocols/awesomerpc/protocol.h"
#include "src/meta_protocol_proxy/codec/codec.h"

namespace Envoy {
namespace Extensions {
namespace NetworkFilters {
namespace MetaProtocolProxy {
namespace Awesomerpc {

// States of the frame decoder. The state survives between decode() calls because the
// framework hands every call a fresh Metadata.
enum class AwesomerpcDecodeStatus {
  DecodeHeader,
  DecodePayload,
  DecodeDone,
  WaitForData,
};

/**
 * Codec for the awesomerpc protocol (see protocol.h for the wire format).
 */
class AwesomerpcCodec : public MetaProtocolProxy::Codec,
                        public Logger::Loggable<Logger::Id::misc> {
public:
  AwesomerpcCodec() = default;
  ~AwesomerpcCodec() override = default;

  MetaProtocolProxy::DecodeStatus decode(Buffer::Instance& buffer,
                                         MetaProtocolProxy::Metadata& metadata) override;
  void encode(const MetaProtocolProxy::Metadata& metadata,
              const MetaProtocolProxy::Mutation& mutation, Buffer::Instance& buffer) override;
  void onError(const MetaProtocolProxy::Metadata& metadata, const MetaProtocolProxy::Error& error,
               Buffer::Instance& buffer) override;

private:
  AwesomerpcDecodeStatus handleState(Buffer::Instance& buffer);
  AwesomerpcDecodeStatus decodeHeader(Buffer::Instance& buffer);
  AwesomerpcDecodeStatus decodePayload(Buffer::Instance& buffer);
  void toMetadata(MetaProtocolProxy::Metadata& metadata);

  AwesomerpcDecodeStatus decode_status_{AwesomerpcDecodeStatus::DecodeHeader};
  AwesomerpcHeader header_;
  // The complete frame, collected before it is handed to the metadata.
  Buffer::OwnedImpl frame_;
};

} // namespace Awesomerpc
} // namespace MetaProtocolProxy
} // namespace NetworkFilters
} // namespace Extensions
} // namespace Envoy
