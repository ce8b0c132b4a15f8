#pragma once
// Host model of Envoy::Tracing::TraceContext, the base of MetaProtocol's Metadata. The virtual
// accessors differ between the Envoy pinned by meta-protocol-proxy 1.4.2 (getByKey/setByKey/
// setByReferenceKey/setByReference) and HEAD (get/set/remove); -DCODECGEN_MPP_HEAD selects HEAD.
#include <functional>

#include "envoy/common/pure.h"

#include "absl/strings/string_view.h"
#include "absl/types/optional.h"

namespace Envoy {
namespace Tracing {

class TraceContext {
public:
  virtual ~TraceContext() = default;

  using IterateCallback = std::function<bool(absl::string_view key, absl::string_view val)>;

  virtual absl::string_view protocol() const PURE;
  virtual absl::string_view host() const PURE;
  virtual absl::string_view path() const PURE;
  virtual absl::string_view method() const PURE;
  virtual void forEach(IterateCallback callback) const PURE;

#ifdef CODECGEN_MPP_HEAD
  virtual absl::optional<absl::string_view> get(absl::string_view key) const PURE;
  virtual void set(absl::string_view key, absl::string_view val) PURE;
  virtual void remove(absl::string_view key) PURE;
#else
  virtual absl::optional<absl::string_view> getByKey(absl::string_view key) const PURE;
  virtual void setByKey(absl::string_view key, absl::string_view val) PURE;
  virtual void setByReferenceKey(absl::string_view key, absl::string_view val) PURE;
  virtual void setByReference(absl::string_view key, absl::string_view val) PURE;
#endif
};

} // namespace Tracing
} // namespace Envoy
