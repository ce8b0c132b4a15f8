#include "src/application_protocols/awesomerpc/awesomerpc_codec.h"

#include <string>

#include "envoy/common/exception.h"

#include "source/common/common/assert.h"

namespace Envoy {
namespace Extensions {
namespace NetworkFilters {
namespace MetaProtocolProxy {
namespace Awesomerpc {

MetaProtocolProxy::DecodeStatus AwesomerpcCodec::decode(Buffer::Instance& buffer,
                                                        MetaProtocolProxy::Metadata& metadata) {
  ENVOY_LOG(debug, "awesomerpc decode: {} bytes buffered", buffer.length());
  ASSERT(metadata.getMessageType() == MetaProtocolProxy::MessageType::Request ||
         metadata.getMessageType() == MetaProtocolProxy::MessageType::Response);

  while (decode_status_ != AwesomerpcDecodeStatus::DecodeDone) {
    const AwesomerpcDecodeStatus next = handleState(buffer);
    if (next == AwesomerpcDecodeStatus::WaitForData) {
      return MetaProtocolProxy::DecodeStatus::WaitForData;
    }
    decode_status_ = next;
  }

  toMetadata(metadata);
  decode_status_ = AwesomerpcDecodeStatus::DecodeHeader;
  return MetaProtocolProxy::DecodeStatus::Done;
}

void AwesomerpcCodec::encode(const MetaProtocolProxy::Metadata&,
                             const MetaProtocolProxy::Mutation& mutation, Buffer::Instance&) {
  // awesomerpc has no header map to carry the mutation, so the frame is forwarded unchanged.
  ENVOY_LOG(debug, "awesomerpc encode: pass-through, {} mutation entries ignored",
            mutation.size());
}

void AwesomerpcCodec::onError(const MetaProtocolProxy::Metadata& metadata,
                              const MetaProtocolProxy::Error& error, Buffer::Instance& buffer) {
  ENVOY_LOG(debug, "awesomerpc local reply for request {}: {}", metadata.getRequestId(),
            error.message);
  AwesomerpcHeader reply;
  // The request id must be echoed, otherwise the client cannot match the reply.
  reply.pack_flow = static_cast<uint32_t>(metadata.getRequestId());
  reply.pack_len = AwesomerpcHeader::HEADER_SIZE;
  reply.rsp_code = static_cast<int16_t>(error.type == MetaProtocolProxy::ErrorType::RouteNotFound
                                            ? AwesomerpcCode::NoRoute
                                            : AwesomerpcCode::Error);
  reply.write(buffer);
}

AwesomerpcDecodeStatus AwesomerpcCodec::handleState(Buffer::Instance& buffer) {
  switch (decode_status_) {
  case AwesomerpcDecodeStatus::DecodeHeader:
    return decodeHeader(buffer);
  case AwesomerpcDecodeStatus::DecodePayload:
    return decodePayload(buffer);
  default:
    PANIC("awesomerpc: unexpected decode state");
  }
}

AwesomerpcDecodeStatus AwesomerpcCodec::decodeHeader(Buffer::Instance& buffer) {
  if (buffer.length() < AwesomerpcHeader::HEADER_SIZE) {
    return AwesomerpcDecodeStatus::WaitForData;
  }
  header_.peek(buffer);
  ENVOY_LOG(debug, "awesomerpc header: pack_flow {} pack_len {} req_cmd {}", header_.pack_flow,
            header_.pack_len, header_.req_cmd);
  return AwesomerpcDecodeStatus::DecodePayload;
}

AwesomerpcDecodeStatus AwesomerpcCodec::decodePayload(Buffer::Instance& buffer) {
  if (buffer.length() < header_.pack_len) {
    return AwesomerpcDecodeStatus::WaitForData;
  }
  // Take exactly one frame; bytes of the next frame stay in buffer.
  frame_.move(buffer, header_.pack_len);
  return AwesomerpcDecodeStatus::DecodeDone;
}

void AwesomerpcCodec::toMetadata(MetaProtocolProxy::Metadata& metadata) {
  metadata.setRequestId(header_.pack_flow);
  metadata.setHeaderSize(AwesomerpcHeader::HEADER_SIZE);
  metadata.setBodySize(header_.bodySize());
  metadata.putString("cmd", std::to_string(header_.req_cmd));
  metadata.originMessage().move(frame_);
}

} // namespace Awesomerpc
} // namespace MetaProtocolProxy
} // namespace NetworkFilters
} // namespace Extensions
} // namespace Envoy
