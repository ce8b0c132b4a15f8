#include "driver.h"

#include <cxxabi.h>

#include <cstdlib>
#include <typeinfo>

#include "decode_loop.h"
#include "envoy/common/exception.h"
#include "envoy/registry/registry.h"

namespace CodecgenHarness {

namespace {

using Registry = Envoy::Registry::FactoryRegistry<Mpp::NamedCodecConfigFactory>;

std::string typeName(const std::type_info& type) {
  int status = 0;
  char* demangled = abi::__cxa_demangle(type.name(), nullptr, nullptr, &status);
  std::string name = status == 0 && demangled != nullptr ? demangled : type.name();
  std::free(demangled);
  return name;
}

// What a codec call ended with, classified the way the framework would treat it.
struct Failure {
  bool envoy_exception{false}; // the framework catches these
  std::string message;
};

// Runs body; converts whatever it throws into a Failure. `what` names the codec call.
template <class Body> std::optional<Failure> guarded(const char* what, Body&& body) {
  try {
    body();
    return std::nullopt;
  } catch (const ContractViolation& e) {
    return Failure{false, e.what()};
  } catch (const Envoy::EnvoyException& e) {
    return Failure{true, e.what()};
  } catch (const Envoy::HostModel::AssertionFailure& e) {
    return Failure{false, std::string(what) + " hit " + e.what()};
  } catch (const std::exception& e) {
    return Failure{false, std::string(what) + " threw " + typeName(typeid(e)) + " (" + e.what() +
                              "); only EnvoyException is caught by the framework"};
  } catch (...) {
    return Failure{false, std::string(what) + " threw a non-std::exception object"};
  }
}

FrameInfo describe(MetadataImpl& metadata) {
  FrameInfo frame;
  frame.message_type = static_cast<int>(metadata.getMessageType());
  frame.request_id = metadata.getRequestId();
  frame.stream_id = metadata.getStreamId();
  frame.response_status = static_cast<int>(metadata.getResponseStatus());
  frame.header_size = metadata.getHeaderSize();
  frame.body_size = metadata.getBodySize();
  frame.operation_name = metadata.getOperationName();
  frame.strings = metadata.putStrings();
  frame.bytes = metadata.originMessage().toString();
  return frame;
}

CallOutcome failed(const Failure& failure) {
  CallOutcome outcome;
  outcome.kind =
      failure.envoy_exception ? CallOutcome::Kind::CodecError : CallOutcome::Kind::Violation;
  outcome.message = failure.message;
  return outcome;
}

CallOutcome badInput(const std::string& message) {
  CallOutcome outcome;
  outcome.kind = CallOutcome::Kind::BadInput;
  outcome.message = message;
  return outcome;
}

// Decodes frame (one read) with codec; on success returns its metadata.
std::unique_ptr<MetadataImpl> decodeOne(Mpp::Codec& codec, std::string_view frame,
                                        Direction direction, CallOutcome& problem) {
  DecodeLoop loop(codec, direction);
  if (auto failure = guarded("decode", [&] { loop.feed(frame); })) {
    problem = failure->envoy_exception
                  ? badInput("the input frame did not decode: " + failure->message)
                  : failed(*failure);
    return nullptr;
  }
  if (loop.frames().size() != 1 || loop.held() != 0 || loop.pending() != 0) {
    problem = badInput("the input must be exactly one complete frame; decode produced " +
                       std::to_string(loop.frames().size()) + " frame(s), " +
                       std::to_string(loop.held() + loop.pending()) + " byte(s) left over");
    return nullptr;
  }
  return std::move(loop.frames().front());
}

// The framework calls onError and heartbeat encode on the downstream codec, which keeps
// decoding afterwards: check that it still decodes the same frame the same way.
std::optional<Failure> checkDecodeStateKept(Mpp::Codec& codec, std::string_view frame,
                                            Direction direction, const char* call) {
  DecodeLoop loop(codec, direction);
  if (auto failure = guarded("decode", [&] { loop.feed(frame); })) {
    return Failure{false, std::string(call) + " disturbed the decode state: " + failure->message};
  }
  if (loop.frames().size() != 1 || loop.frames().front()->originMessage().toString() != frame) {
    return Failure{false, std::string(call) +
                              " disturbed the decode state: the same frame no longer decodes "
                              "to one identical frame"};
  }
  return std::nullopt;
}

} // namespace

Session::Session(Mpp::NamedCodecConfigFactory& factory)
    : factory_(factory), config_(factory.createEmptyConfigProto()) {}

std::unique_ptr<Session> Session::open(const std::string& factory_name, std::string& error) {
  const auto& errors = Envoy::Registry::HostModel::registrationErrors();
  if (!errors.empty()) {
    error = errors.front();
    return nullptr;
  }
  Mpp::NamedCodecConfigFactory* factory = Registry::getFactory(factory_name);
  if (factory == nullptr) {
    error = "no codec factory registered as '" + factory_name + "'";
    return nullptr;
  }
  if (factory->category() != "aeraki.meta_protocol.codec") {
    error = "factory '" + factory_name + "' has category '" + factory->category() + "'";
    return nullptr;
  }
  return std::unique_ptr<Session>(new Session(*factory));
}

Mpp::CodecPtr Session::newCodec() {
  Mpp::CodecPtr codec = factory_.createCodec(*config_);
  if (codec == nullptr) {
    throw ContractViolation("createCodec returned nullptr");
  }
  return codec;
}

DecodeOutcome Session::decodeStream(std::string_view data, const std::vector<uint64_t>& chunks,
                                    Direction direction) {
  DecodeOutcome outcome;
  Mpp::CodecPtr codec;
  std::unique_ptr<DecodeLoop> loop;
  auto failure = guarded("decode", [&] {
    codec = newCodec();
    loop = std::make_unique<DecodeLoop>(*codec, direction);
    uint64_t offset = 0;
    for (uint64_t size : chunks) {
      loop->feed(data.substr(offset, size));
      offset += size;
    }
    if (offset < data.size()) {
      loop->feed(data.substr(offset));
    }
  });
  if (failure) {
    (failure->envoy_exception ? outcome.error : outcome.violation) = failure->message;
  }
  if (loop != nullptr) {
    for (auto& metadata : loop->frames()) {
      outcome.frames.push_back(describe(*metadata));
    }
    outcome.held = loop->held();
    outcome.pending = loop->pending();
    outcome.copied = loop->copied();
  }
  return outcome;
}

CallOutcome Session::encode(std::string_view frame, Direction direction,
                            const Mpp::Mutation& mutation, EncodePath path) {
  CallOutcome outcome;
  Mpp::CodecPtr decoder;
  if (auto failure = guarded("createCodec", [&] { decoder = newCodec(); })) {
    return failed(*failure);
  }
  std::unique_ptr<MetadataImpl> metadata = decodeOne(*decoder, frame, direction, outcome);
  if (metadata == nullptr) {
    return outcome;
  }
  if (path == EncodePath::Request) {
    // UpstreamRequest: move the frame out of the metadata, then encode with a new codec.
    Envoy::Buffer::OwnedImpl buffer;
    auto failure = guarded("encode", [&] {
      buffer.move(metadata->originMessage());
      Mpp::CodecPtr encoder = newCodec();
      encoder->encode(*metadata, mutation, buffer);
    });
    if (failure) {
      return failed(*failure);
    }
    outcome.output = buffer.toString();
    return outcome;
  }
  // Response path: the buffer IS originMessage(), encoded by the codec that decoded it.
  auto failure = guarded("encode", [&] {
    metadata->putString(Mpp::ReservedHeaders::RealServerAddress, "127.0.0.1:1");
    decoder->encode(*metadata, mutation, metadata->originMessage());
  });
  if (failure) {
    return failed(*failure);
  }
  outcome.output = metadata->originMessage().toString();
  return outcome;
}

CallOutcome Session::onError(std::optional<std::string_view> frame, Direction direction,
                             int error_type, const std::string& message) {
  CallOutcome outcome;
  Mpp::CodecPtr codec;
  if (auto failure = guarded("createCodec", [&] { codec = newCodec(); })) {
    return failed(*failure);
  }
  std::unique_ptr<MetadataImpl> metadata;
  if (frame.has_value()) {
    metadata = decodeOne(*codec, *frame, direction, outcome);
    if (metadata == nullptr) {
      return outcome;
    }
  } else {
    metadata = std::make_unique<MetadataImpl>(); // ActiveMessage::onError without metadata
  }
  Envoy::Buffer::OwnedImpl buffer;
  const Mpp::Error error{static_cast<Mpp::ErrorType>(error_type), message};
  if (auto failure = guarded("onError", [&] { codec->onError(*metadata, error, buffer); })) {
    return failed(*failure);
  }
  if (frame.has_value()) {
    if (auto failure = checkDecodeStateKept(*codec, *frame, direction, "onError")) {
      return failed(*failure);
    }
  }
  outcome.output = buffer.toString();
  return outcome;
}

CallOutcome Session::heartbeat(std::string_view frame, Direction direction) {
  CallOutcome outcome;
  Mpp::CodecPtr codec;
  if (auto failure = guarded("createCodec", [&] { codec = newCodec(); })) {
    return failed(*failure);
  }
  std::unique_ptr<MetadataImpl> metadata = decodeOne(*codec, frame, direction, outcome);
  if (metadata == nullptr) {
    return outcome;
  }
  // ConnectionManager::onHeartbeat: type Heartbeat, empty mutation, empty buffer.
  metadata->setMessageType(Mpp::MessageType::Heartbeat);
  Envoy::Buffer::OwnedImpl buffer;
  const Mpp::Mutation empty;
  if (auto failure = guarded("encode", [&] { codec->encode(*metadata, empty, buffer); })) {
    return failed(*failure);
  }
  if (auto failure = checkDecodeStateKept(*codec, frame, direction, "heartbeat encode")) {
    return failed(*failure);
  }
  outcome.output = buffer.toString();
  return outcome;
}

std::vector<std::string> registeredCodecs() {
  std::vector<std::string> names;
  for (const auto& entry : Registry::factories()) {
    names.push_back(entry.first);
  }
  for (const auto& error : Envoy::Registry::HostModel::registrationErrors()) {
    names.push_back("error: " + error);
  }
  return names;
}

} // namespace CodecgenHarness
