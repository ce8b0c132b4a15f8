#pragma once

namespace Envoy {
namespace StreamInfo {

/**
 * Opaque in the host model: codecs must not use the stream info (the framework sets it on a
 * few paths only).
 */
class StreamInfo {
public:
  virtual ~StreamInfo() = default;
};

} // namespace StreamInfo
} // namespace Envoy
