#pragma once
// Host model of Envoy's Buffer::OwnedImpl.
//
// The buffer is a deque of slices. A slice is a view [begin, end) into reference-counted
// storage, so move() hands over whole slices and splits a slice at a frame boundary by sharing
// its storage: moving bytes never copies them (Envoy itself copies the partial front slice;
// the model is stricter so that a "zero-copy" claim can be checked). Every byte the model does
// copy is counted in Buffer::HostModel::bytesCopied(); tests reset the counter around an
// operation to prove it copied nothing.
//
// Misuse that Envoy turns into an ASSERT / RELEASE_ASSERT (copyOut or linearize past the end,
// moving or draining more than is buffered, moving a buffer into itself) throws
// Envoy::HostModel::AssertionFailure.
#include <cstdint>
#include <deque>
#include <memory>
#include <string>

#include "envoy/buffer/buffer.h"

namespace Envoy {
namespace Buffer {

namespace HostModel {
// Bytes copied by the model since the last reset (add, prepend of a string, copyOut,
// linearize, toString, add(const Instance&)). move() and prepend(Instance&) copy nothing.
uint64_t bytesCopied();
void resetBytesCopied();
} // namespace HostModel

class OwnedImpl : public Instance {
public:
  OwnedImpl();
  OwnedImpl(absl::string_view data);
  OwnedImpl(const Instance& data);
  OwnedImpl(const void* data, uint64_t size);
  // Like Envoy: not copyable (use add(const Instance&)), but movable.
  OwnedImpl(const OwnedImpl&) = delete;
  OwnedImpl& operator=(const OwnedImpl&) = delete;
  OwnedImpl(OwnedImpl&&) = default;
  OwnedImpl& operator=(OwnedImpl&&) = default;
  ~OwnedImpl() override;

  // Buffer::Instance
  void add(const void* data, uint64_t size) override;
  void add(absl::string_view data) override;
  void add(const Instance& data) override;
  void prepend(absl::string_view data) override;
  void prepend(Instance& data) override;
  void copyOut(size_t start, uint64_t size, void* data) const override;
  uint64_t copyOutToSlices(uint64_t size, Buffer::RawSlice* slices,
                           uint64_t num_slice) const override;
  void drain(uint64_t size) override;
  RawSliceVector getRawSlices(absl::optional<uint64_t> max_slices = absl::nullopt) const override;
  RawSlice frontSlice() const override;
  uint64_t length() const override;
  void* linearize(uint32_t size) override;
  void move(Instance& rhs) override;
  void move(Instance& rhs, uint64_t length) override;
  ssize_t search(const void* data, uint64_t size, size_t start, size_t length) const override;
  bool startsWith(absl::string_view data) const override;
  std::string toString() const override;

  // Model introspection, for tests: the number of slices currently held.
  size_t sliceCountForTest() const { return slices_.size(); }

private:
  struct Storage;
  struct Slice {
    std::shared_ptr<Storage> storage;
    uint64_t begin;
    uint64_t end;
    uint8_t* data() const;
    uint64_t size() const { return end - begin; }
  };

  static Slice newSlice(const void* data, uint64_t size, uint64_t capacity);

  std::deque<Slice> slices_;
  uint64_t length_{0};
};

} // namespace Buffer
} // namespace Envoy
