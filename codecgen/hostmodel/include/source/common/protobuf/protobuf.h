#pragma once
// Host model of the protobuf surface a codec factory touches: Protobuf::Message (an alias of
// google::protobuf, as in Envoy) and ProtobufTypes::MessagePtr. Config messages are produced by
// codecgen's pb stub generator (see codecgen/hostmodel/pb_stub.py).
#include <memory>
#include <string>

namespace google {
namespace protobuf {

class Message {
public:
  virtual ~Message() = default;
  // Fully qualified proto name, e.g. "aeraki.meta_protocol.codec.AwesomerpcCodec".
  virtual std::string GetTypeName() const = 0;
  virtual std::string DebugString() const { return GetTypeName() + " {}"; }
  virtual void Clear() {}
  virtual bool IsInitialized() const { return true; }
};

} // namespace protobuf
} // namespace google

namespace Envoy {

namespace Protobuf = google::protobuf;

namespace ProtobufTypes {
using MessagePtr = std::unique_ptr<Protobuf::Message>;
} // namespace ProtobufTypes

} // namespace Envoy
