#pragma once
// The framework's downstream/upstream decode loop (ConnectionManager::onData /
// decoder->onData): every call gets a fresh Metadata preset to the direction's message type,
// and after Done the loop continues while bytes remain. Each Done is checked against the
// contract; a broken rule throws ContractViolation.
#include <memory>
#include <stdexcept>
#include <string_view>
#include <vector>

#include "driver.h"

namespace CodecgenHarness {

class ContractViolation : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

// The loop itself, over a caller's buffer: decodes while bytes remain, appending each Done
// frame to `frames` after checking it; `consumed_since_done` carries bytes consumed for a frame
// not yet Done across reads. With `copied`, adds the bytes the model's buffers copied while the
// codec's decode ran. The one implementation of the contract's decode checks (DecodeLoop and the
// libFuzzer target's reusable loop both call it).
void decodeAll(Mpp::Codec& codec, Direction direction, Envoy::Buffer::Instance& buffer,
               uint64_t& consumed_since_done, std::vector<std::unique_ptr<MetadataImpl>>& frames,
               uint64_t* copied = nullptr);

// The checks on one Done frame (message type, response status, reserved keys).
void checkFrame(const MetadataImpl& metadata, Direction direction);

class DecodeLoop {
public:
  DecodeLoop(Mpp::Codec& codec, Direction direction) : codec_(codec), direction_(direction) {}

  // Appends one read's worth of bytes and decodes as the framework would.
  void feed(std::string_view chunk);

  std::vector<std::unique_ptr<MetadataImpl>>& frames() { return frames_; }
  uint64_t held() const { return buffer_.length(); }
  uint64_t pending() const { return consumed_since_done_; }
  // Bytes the model's buffers copied while the codec's decode ran (e.g. peeks, linearize).
  uint64_t copied() const { return copied_; }

private:
  Mpp::Codec& codec_;
  Direction direction_;
  Envoy::Buffer::OwnedImpl buffer_;
  uint64_t consumed_since_done_{0};
  uint64_t copied_{0};
  std::vector<std::unique_ptr<MetadataImpl>> frames_;
};

} // namespace CodecgenHarness
