#include "decode_loop.h"

#include <algorithm>
#include <cctype>
#include <string>

namespace CodecgenHarness {

void DecodeLoop::feed(std::string_view chunk) {
  if (chunk.empty()) {
    return; // no read event
  }
  buffer_.add(chunk);
  decodeAll(codec_, direction_, buffer_, consumed_since_done_, frames_, &copied_);
}

void decodeAll(Mpp::Codec& codec, Direction direction, Envoy::Buffer::Instance& buffer,
               uint64_t& consumed_since_done, std::vector<std::unique_ptr<MetadataImpl>>& frames,
               uint64_t* copied) {
  while (true) {
    auto metadata = std::make_unique<MetadataImpl>();
    metadata->setMessageType(direction == Direction::Request ? Mpp::MessageType::Request
                                                             : Mpp::MessageType::Response);
    const uint64_t before = buffer.length();
    const uint64_t copied_before = Envoy::Buffer::HostModel::bytesCopied();
    const Mpp::DecodeStatus status = codec.decode(buffer, *metadata);
    if (copied != nullptr) {
      *copied += Envoy::Buffer::HostModel::bytesCopied() - copied_before;
    }
    const uint64_t after = buffer.length();
    if (after > before) {
      throw ContractViolation("decode added " + std::to_string(after - before) +
                              " bytes to the connection buffer");
    }
    consumed_since_done += before - after;
    if (status == Mpp::DecodeStatus::WaitForData) {
      if (metadata->originMessage().length() != 0) {
        throw ContractViolation(
            "decode returned WaitForData but moved " +
            std::to_string(metadata->originMessage().length()) +
            " bytes into originMessage() of a metadata the framework discards");
      }
      return;
    }
    if (status != Mpp::DecodeStatus::Done) {
      throw ContractViolation("decode returned an invalid DecodeStatus " +
                              std::to_string(static_cast<int>(status)));
    }
    if (consumed_since_done == 0) {
      throw ContractViolation(
          "decode returned Done without consuming any bytes (the framework would loop forever)");
    }
    if (metadata->originMessage().length() != consumed_since_done) {
      throw ContractViolation("bytes not conserved: decode consumed " +
                              std::to_string(consumed_since_done) +
                              " bytes for this frame but originMessage() holds " +
                              std::to_string(metadata->originMessage().length()));
    }
    checkFrame(*metadata, direction);
    frames.push_back(std::move(metadata));
    consumed_since_done = 0;
    if (buffer.length() == 0) {
      return;
    }
  }
}

void checkFrame(const MetadataImpl& metadata, Direction direction) {
  const int type = static_cast<int>(metadata.getMessageType());
  if (type < static_cast<int>(Mpp::MessageType::Request) ||
      type > static_cast<int>(Mpp::MessageType::Error)) {
    throw ContractViolation("decode set an invalid MessageType " + std::to_string(type));
  }
  if (direction == Direction::Response &&
      (metadata.getMessageType() == Mpp::MessageType::Request ||
       metadata.getMessageType() == Mpp::MessageType::Oneway)) {
    throw ContractViolation("a response-direction decode produced MessageType " +
                            std::to_string(type) +
                            " (the framework asserts Response or Error on the upstream side)");
  }
  const int status = static_cast<int>(metadata.getResponseStatus());
  if (status != 0 && status != 1) {
    throw ContractViolation("decode set an invalid ResponseStatus " + std::to_string(status));
  }
  for (const std::string* reserved :
       {&Mpp::ReservedHeaders::RealServerAddress, &Mpp::ReservedHeaders::ApplicationProtocol,
        &Mpp::ReservedHeaders::RequestUUID, &Mpp::ReservedHeaders::ClientTraceId,
        &Mpp::ReservedHeaders::EnvoyForceTrace}) {
    for (const auto& entry : metadata.putStrings()) {
      // The real MetadataImpl lower-cases keys into its header maps, so compare that way.
      std::string key = entry.first;
      std::transform(key.begin(), key.end(), key.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (key == *reserved) {
        throw ContractViolation("decode wrote the framework-reserved key '" + entry.first + "'");
      }
    }
  }
}

} // namespace CodecgenHarness
