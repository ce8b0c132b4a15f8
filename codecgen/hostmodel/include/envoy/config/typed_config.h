#pragma once

#include <set>
#include <string>

#include "envoy/common/pure.h"

#include "source/common/protobuf/protobuf.h"

namespace Envoy {
namespace Config {

/**
 * A factory that can be found in a registry by name() within its category().
 */
class UntypedFactory {
public:
  virtual ~UntypedFactory() = default;
  virtual std::string name() const PURE;
  virtual std::string category() const PURE;
  // The proto type names this factory accepts as typed config.
  virtual std::set<std::string> configTypes() { return {}; }
};

/**
 * A factory with a typed config message.
 */
class TypedFactory : public UntypedFactory {
public:
  ~TypedFactory() override = default;
  virtual ProtobufTypes::MessagePtr createEmptyConfigProto() PURE;

  std::set<std::string> configTypes() override {
    auto types = UntypedFactory::configTypes();
    const auto proto = createEmptyConfigProto();
    if (proto != nullptr) {
      types.insert(proto->GetTypeName());
    }
    return types;
  }
};

} // namespace Config
} // namespace Envoy
