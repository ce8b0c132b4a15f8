#pragma once
// Host model of meta-protocol-proxy's codec interface (src/meta_protocol_proxy/codec/codec.h).
// Names, enum values and signatures follow tag 1.4.2; -DCODECGEN_MPP_HEAD switches to HEAD
// (Metadata::get renamed getByKey, removeString added).
#include <any>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "envoy/buffer/buffer.h"
#include "envoy/common/optref.h"
#include "envoy/common/pure.h"
#include "envoy/stream_info/stream_info.h"
#include "envoy/tracing/trace_context.h"

namespace Envoy {
namespace Extensions {
namespace NetworkFilters {
namespace MetaProtocolProxy {

enum class MessageType {
  Request = 0,
  Response = 1,
  Oneway = 2,
  Stream_Init = 3,
  Stream_Data = 4,
  Stream_Close_One_Way = 5,
  Stream_Close_Two_Way = 6,
  Heartbeat = 7,
  Error = 8,
};

// Declared by the framework but unused.
enum class StreamType { Stream };

enum class ResponseStatus {
  Ok = 0,
  Error = 1,
};

using AnyOptConstRef = OptRef<const std::any>;

// Keys the framework owns; codecs must not store their own data under them.
struct ReservedHeaders {
  inline static const std::string RealServerAddress = "x-meta-protocol-real-server-address";
  inline static const std::string ApplicationProtocol = "x-meta-protocol-application-protocol";
  inline static const std::string RequestUUID = "x-request-id";
  inline static const std::string ClientTraceId = "x-client-trace-id";
  inline static const std::string EnvoyForceTrace = "x-envoy-force-trace";
};

/**
 * What a codec learns from a frame. The framework creates a fresh one for every decode call.
 */
class Metadata : public Envoy::Tracing::TraceContext {
public:
  virtual ~Metadata() = default;

  // The raw bytes of the decoded frame; decode must move the frame here.
  virtual Buffer::Instance& originMessage() PURE;
  virtual void setMessageType(MessageType messageType) PURE;
  virtual MessageType getMessageType() const PURE;
  virtual void setResponseStatus(ResponseStatus responseStatus) PURE;
  virtual ResponseStatus getResponseStatus() const PURE;
  virtual void setRequestId(uint64_t requestId) PURE;
  virtual uint64_t getRequestId() const PURE;
  virtual void setStreamId(uint64_t streamId) PURE;
  virtual uint64_t getStreamId() const PURE;
  virtual size_t getMessageSize() const PURE;
  virtual void setHeaderSize(size_t headerSize) PURE;
  virtual size_t getHeaderSize() const PURE;
  virtual void setBodySize(size_t bodySize) PURE;
  virtual size_t getBodySize() const PURE;
  virtual void setOperationName(std::string) PURE;
  virtual std::string getOperationName() const PURE;
  virtual StreamInfo::StreamInfo& streamInfo() const PURE;
  virtual std::shared_ptr<Metadata> clone() const PURE;

  // Typed value, not used for routing.
  virtual void put(std::string key, std::any value) PURE;
#ifdef CODECGEN_MPP_HEAD
  virtual AnyOptConstRef getByKey(std::string key) const PURE;
#else
  virtual AnyOptConstRef get(std::string key) const PURE;
#endif
  // String value, routable (also copied into the route-matching header maps).
  virtual void putString(std::string key, std::string value) PURE;
#ifdef CODECGEN_MPP_HEAD
  virtual void removeString(std::string key) PURE;
#endif
  virtual std::string getString(std::string key) const PURE;
  virtual bool getBool(std::string key) const PURE;
  virtual uint32_t getUint32(std::string key) const PURE;
};
using MetadataSharedPtr = std::shared_ptr<Metadata>;

using Mutation = std::map<std::string, std::string>;
using MutationSharedPtr = std::shared_ptr<Mutation>;

enum class DecodeStatus {
  WaitForData = 0,
  Done = 1,
};

enum class ErrorType {
  RouteNotFound = 0,
  ClusterNotFound = 1,
  NoHealthyUpstream = 2,
  BadResponse = 3,
  Unspecified = 4,
  OverLimit = 5,
};

struct Error {
  ErrorType type;
  std::string message;
};

/**
 * Decodes and encodes the frames of one application protocol.
 */
class Codec {
public:
  virtual ~Codec() = default;

  // Returns Done after moving exactly one complete frame from buffer into
  // metadata.originMessage(), WaitForData otherwise. Throws EnvoyException on invalid data.
  virtual DecodeStatus decode(Buffer::Instance& buffer, Metadata& metadata) PURE;

  // Rewrites the frame held in buffer (request path: a separate buffer; response path:
  // metadata.originMessage() itself; heartbeat: an empty buffer to fill with a reply).
  virtual void encode(const Metadata& metadata, const Mutation& mutation,
                      Buffer::Instance& buffer) PURE;

  // Writes a complete local-reply frame for error into the empty buffer.
  virtual void onError(const Metadata& metadata, const Error& error, Buffer::Instance& buffer) PURE;
};

using CodecPtr = std::unique_ptr<Codec>;

} // namespace MetaProtocolProxy
} // namespace NetworkFilters
} // namespace Extensions
} // namespace Envoy
