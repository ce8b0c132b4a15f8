#pragma once
// Replays meta-protocol-proxy's runtime contract (decode loop, encode on the request and
// response paths, onError local replies, heartbeat replies) over one registered codec and
// reports what the codec did, or which rule of the contract it broke.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "metadata_impl.h"
#include "src/meta_protocol_proxy/codec/factory.h"

namespace CodecgenHarness {

enum class Direction { Request = 0, Response = 1 };
enum class EncodePath { Request = 0, Response = 1 };

struct FrameInfo {
  int message_type{0};
  uint64_t request_id{0};
  uint64_t stream_id{0};
  int response_status{0};
  uint64_t header_size{0};
  uint64_t body_size{0};
  std::string operation_name;
  MetadataImpl::StringList strings;
  std::string bytes;
};

struct DecodeOutcome {
  std::vector<FrameInfo> frames;
  std::optional<std::string> error;     // EnvoyException::what() thrown by decode
  std::optional<std::string> violation; // a broken rule of the framework contract
  uint64_t held{0};                     // bytes left in the connection buffer
  uint64_t pending{0};                  // bytes consumed since the last Done (codec state)
  uint64_t copied{0};                   // bytes the model copied inside decode calls
};

struct CallOutcome {
  enum class Kind { Ok = 0, CodecError = 1, Violation = 2, BadInput = 3 };
  Kind kind{Kind::Ok};
  std::string message;
  std::string output;
};

class Session {
public:
  // Finds the factory registered under factory_name; nullptr with error set if there is none.
  static std::unique_ptr<Session> open(const std::string& factory_name, std::string& error);

  DecodeOutcome decodeStream(std::string_view data, const std::vector<uint64_t>& chunks,
                             Direction direction);
  CallOutcome encode(std::string_view frame, Direction direction, const Mpp::Mutation& mutation,
                     EncodePath path);
  CallOutcome onError(std::optional<std::string_view> frame, Direction direction, int error_type,
                      const std::string& message);
  CallOutcome heartbeat(std::string_view frame, Direction direction);

private:
  explicit Session(Mpp::NamedCodecConfigFactory& factory);
  Mpp::CodecPtr newCodec();

  Mpp::NamedCodecConfigFactory& factory_;
  Envoy::ProtobufTypes::MessagePtr config_;
};

// Names of every registered codec factory, and registration errors, for diagnostics.
std::vector<std::string> registeredCodecs();

} // namespace CodecgenHarness
