// Times a MetaProtocol codec on the host model: decode (request side, fresh metadata per
// frame) and encode with a one-key mutation into the decoded frame (buffer is originMessage()).
// Usage: codec_bench FACTORY FRAME_FILE ITERATIONS MUTATION_KEY
// Prints: decode_ns=<per frame> encode_ns=<per frame> copied=<bytes the buffers copied per frame>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "envoy/registry/registry.h"
#include "metadata_impl.h"
#include "source/common/buffer/buffer_impl.h"
#include "src/meta_protocol_proxy/codec/factory.h"

namespace Mpp = Envoy::Extensions::NetworkFilters::MetaProtocolProxy;

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s FACTORY FRAME_FILE ITERATIONS MUTATION_KEY\n", argv[0]);
    return 2;
  }
  auto* factory = Envoy::Registry::FactoryRegistry<Mpp::NamedCodecConfigFactory>::getFactory(argv[1]);
  if (factory == nullptr) {
    std::fprintf(stderr, "no codec registered as %s\n", argv[1]);
    return 2;
  }
  std::ifstream in(argv[2], std::ios::binary);
  const std::string frame((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const int n = std::stoi(argv[3]);
  auto config = factory->createEmptyConfigProto();
  Mpp::CodecPtr codec = factory->createCodec(*config);
  const Mpp::Mutation mutation{{argv[4], "bench-value"}};

  std::vector<Envoy::Buffer::OwnedImpl> buffers(static_cast<size_t>(n));
  std::vector<std::unique_ptr<CodecgenHarness::MetadataImpl>> metadata;
  metadata.reserve(static_cast<size_t>(n));
  for (auto& buffer : buffers) {
    buffer.add(frame);
    metadata.push_back(std::make_unique<CodecgenHarness::MetadataImpl>());
    metadata.back()->setMessageType(Mpp::MessageType::Request);
  }
  Envoy::Buffer::HostModel::resetBytesCopied();
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < n; i++) {
    if (codec->decode(buffers[static_cast<size_t>(i)], *metadata[static_cast<size_t>(i)]) !=
        Mpp::DecodeStatus::Done) {
      std::fprintf(stderr, "decode did not finish a frame\n");
      return 1;
    }
  }
  const auto t1 = std::chrono::steady_clock::now();
  for (int i = 0; i < n; i++) {
    auto& md = *metadata[static_cast<size_t>(i)];
    codec->encode(md, mutation, md.originMessage());
  }
  const auto t2 = std::chrono::steady_clock::now();
  const double decode_ns = std::chrono::duration<double, std::nano>(t1 - t0).count() / n;
  const double encode_ns = std::chrono::duration<double, std::nano>(t2 - t1).count() / n;
  std::printf("decode_ns=%.1f encode_ns=%.1f copied=%.1f out=%zu\n", decode_ns, encode_ns,
              static_cast<double>(Envoy::Buffer::HostModel::bytesCopied()) / n,
              static_cast<size_t>(metadata[0]->originMessage().length()));
  return 0;
}
