#pragma once

// tests/test_peer_codecs.py: meta-protocol-proxy's trpc metadata.h declares an HTTP header map
// (for its HTTP-style routing, built by metadata.cc, which the test does not compile: its codec
// never calls it). Only the type is needed here; it holds nothing.

#include <memory>

namespace Envoy {
namespace Http {

class RequestHeaderMap {
public:
  virtual ~RequestHeaderMap() = default;
};
using RequestHeaderMapPtr = std::unique_ptr<RequestHeaderMap>;

} // namespace Http
} // namespace Envoy
