#pragma once
// Host model of Envoy's static factory registry. REGISTER_FACTORY(FACTORY, BASE) creates a
// static FACTORY at load time and records it under FACTORY().name() in
// Registry::FactoryRegistry<BASE>, where the harness looks codecs up by name. A second
// registration under the same name is recorded in Registry::HostModel::registrationErrors()
// (Envoy would PANIC at start-up) instead of aborting the load.
#include <map>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace Envoy {
namespace Registry {

namespace HostModel {
inline std::vector<std::string>& registrationErrors() {
  static auto* errors = new std::vector<std::string>();
  return *errors;
}
} // namespace HostModel

template <class Base> class FactoryRegistry {
public:
  static std::map<std::string, Base*>& factories() {
    static auto* map = new std::map<std::string, Base*>();
    return *map;
  }

  static void registerFactory(Base& factory, absl::string_view name) {
    const std::string key(name);
    if (!factories().emplace(key, &factory).second) {
      HostModel::registrationErrors().push_back("Double registration for name: '" + key + "'");
    }
  }

  static Base* getFactory(absl::string_view name) {
    auto it = factories().find(std::string(name));
    return it == factories().end() ? nullptr : it->second;
  }
};

template <class T, class Base> class RegisterFactory {
public:
  RegisterFactory() { FactoryRegistry<Base>::registerFactory(instance_, instance_.name()); }

private:
  T instance_{};
};

} // namespace Registry
} // namespace Envoy

#define REGISTER_FACTORY(FACTORY, BASE)                                                            \
  [[maybe_unused]] void forceRegister##FACTORY() {}                                                \
  static Envoy::Registry::RegisterFactory<FACTORY, BASE> FACTORY##_registered
