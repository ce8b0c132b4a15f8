#pragma once

#include <functional>

#include "absl/types/optional.h"
#include "source/common/common/assert.h"

namespace Envoy {

/**
 * Host model of Envoy's OptRef: an optional reference that is cheap to copy.
 */
template <class T> struct OptRef {
  OptRef(T& t) : ptr_(&t) {}
  OptRef() : ptr_(nullptr) {}
  OptRef(absl::nullopt_t) : ptr_(nullptr) {}

  // Allows OptRef<const X> from OptRef<X>.
  template <class From> OptRef(OptRef<From> rhs) : ptr_(rhs.ptr()) {}

  T* operator->() const { return &ref(); }
  T& operator*() const { return ref(); }
  T* ptr() const { return ptr_; }
  T& ref() const {
    ASSERT(ptr_ != nullptr, "OptRef dereferenced while empty");
    return *ptr_;
  }
  T& value() const { return ref(); }
  T& value_or(T& other) const { return ptr_ != nullptr ? *ptr_ : other; }

  bool has_value() const { return ptr_ != nullptr; }
  explicit operator bool() const { return has_value(); }
  bool operator==(absl::nullopt_t) const { return ptr_ == nullptr; }
  bool operator!=(absl::nullopt_t) const { return ptr_ != nullptr; }

  void emplace(T& ref) { ptr_ = &ref; }
  void reset() { ptr_ = nullptr; }

  absl::optional<std::reference_wrapper<T>> optional_ref() const {
    if (ptr_ == nullptr) {
      return absl::nullopt;
    }
    return std::ref(*ptr_);
  }

private:
  T* ptr_;
};

template <class T> OptRef<T> makeOptRef(T& ref) { return {ref}; }
template <class T> OptRef<T> makeOptRefFromPtr(T* ptr) {
  return ptr == nullptr ? OptRef<T>() : OptRef<T>(*ptr);
}

} // namespace Envoy
