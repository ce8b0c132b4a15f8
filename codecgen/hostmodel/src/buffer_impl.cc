#include "source/common/buffer/buffer_impl.h"

#include <algorithm>
#include <atomic>
#include <cstring>

namespace Envoy {
namespace Buffer {

namespace HostModel {
namespace {
std::atomic<uint64_t> copied{0};
} // namespace

uint64_t bytesCopied() { return copied.load(); }
void resetBytesCopied() { copied.store(0); }

static void copyBytes(void* dst, const void* src, uint64_t size) {
  if (size == 0) {
    return;
  }
  std::memcpy(dst, src, size);
  copied.fetch_add(size);
}
} // namespace HostModel

namespace {
// Envoy's default slice size.
constexpr uint64_t DefaultSliceSize = 16384;

OwnedImpl& sameImpl(Instance& rhs, const char* operation) {
  auto* other = dynamic_cast<OwnedImpl*>(&rhs);
  RELEASE_ASSERT(other != nullptr, std::string(operation) + ": OwnedImpl only works with OwnedImpl");
  return *other;
}
} // namespace

// Bytes are appended in place only while a storage block is owned by one slice and that slice
// ends at the block's fill mark; a block shared after a split is never written again.
struct OwnedImpl::Storage {
  explicit Storage(uint64_t cap) : bytes(new uint8_t[cap]), capacity(cap) {}
  std::unique_ptr<uint8_t[]> bytes;
  uint64_t capacity;
  uint64_t used{0};
};

uint8_t* OwnedImpl::Slice::data() const { return storage->bytes.get() + begin; }

OwnedImpl::Slice OwnedImpl::newSlice(const void* data, uint64_t size, uint64_t capacity) {
  auto storage = std::make_shared<Storage>(std::max(capacity, size));
  HostModel::copyBytes(storage->bytes.get(), data, size);
  storage->used = size;
  return Slice{std::move(storage), 0, size};
}

OwnedImpl::OwnedImpl() = default;
OwnedImpl::OwnedImpl(absl::string_view data) { add(data); }
OwnedImpl::OwnedImpl(const Instance& data) { add(data); }
OwnedImpl::OwnedImpl(const void* data, uint64_t size) { add(data, size); }
OwnedImpl::~OwnedImpl() = default;

void OwnedImpl::add(const void* data, uint64_t size) {
  const auto* src = static_cast<const uint8_t*>(data);
  if (size == 0) {
    return;
  }
  if (!slices_.empty()) {
    Slice& back = slices_.back();
    Storage& storage = *back.storage;
    if (back.storage.use_count() == 1 && back.end == storage.used && storage.used < storage.capacity) {
      const uint64_t n = std::min(size, storage.capacity - storage.used);
      HostModel::copyBytes(storage.bytes.get() + storage.used, src, n);
      storage.used += n;
      back.end += n;
      length_ += n;
      src += n;
      size -= n;
    }
  }
  if (size > 0) {
    slices_.push_back(newSlice(src, size, DefaultSliceSize));
    length_ += size;
  }
}

void OwnedImpl::add(absl::string_view data) { add(data.data(), data.size()); }

void OwnedImpl::add(const Instance& data) {
  ASSERT(&data != this, "add(const Instance&) of a buffer to itself");
  for (const RawSlice& slice : data.getRawSlices()) {
    add(slice.mem_, slice.len_);
  }
}

void OwnedImpl::prepend(absl::string_view data) {
  if (data.empty()) {
    return;
  }
  slices_.push_front(newSlice(data.data(), data.size(), data.size()));
  length_ += data.size();
}

void OwnedImpl::prepend(Instance& data) {
  ASSERT(&data != this, "prepend() of a buffer to itself");
  OwnedImpl& other = sameImpl(data, "prepend");
  while (!other.slices_.empty()) {
    slices_.push_front(std::move(other.slices_.back()));
    other.slices_.pop_back();
  }
  length_ += other.length_;
  other.length_ = 0;
}

void OwnedImpl::copyOut(size_t start, uint64_t size, void* data) const {
  RELEASE_ASSERT(start <= length_ && size <= length_ - start,
                 fmt::format("copyOut({}, {}) past the end of a {} byte buffer", start, size,
                             length_));
  auto* dest = static_cast<uint8_t*>(data);
  uint64_t skip = start;
  for (const Slice& slice : slices_) {
    if (size == 0) {
      break;
    }
    if (slice.size() <= skip) {
      skip -= slice.size();
      continue;
    }
    const uint64_t n = std::min(size, slice.size() - skip);
    HostModel::copyBytes(dest, slice.data() + skip, n);
    dest += n;
    size -= n;
    skip = 0;
  }
}

uint64_t OwnedImpl::copyOutToSlices(uint64_t size, Buffer::RawSlice* slices,
                                    uint64_t num_slice) const {
  const uint64_t total = std::min(size, length_);
  uint64_t done = 0;
  for (uint64_t i = 0; i < num_slice && done < total; ++i) {
    const uint64_t n = std::min<uint64_t>(slices[i].len_, total - done);
    copyOut(done, n, slices[i].mem_);
    done += n;
  }
  return done;
}

void OwnedImpl::drain(uint64_t size) {
  RELEASE_ASSERT(size <= length_,
                 fmt::format("drain({}) of a {} byte buffer", size, length_));
  length_ -= size;
  while (size > 0) {
    Slice& front = slices_.front();
    if (front.size() <= size) {
      size -= front.size();
      slices_.pop_front();
    } else {
      front.begin += size;
      size = 0;
    }
  }
}

RawSliceVector OwnedImpl::getRawSlices(absl::optional<uint64_t> max_slices) const {
  RawSliceVector out;
  for (const Slice& slice : slices_) {
    if (max_slices.has_value() && out.size() >= *max_slices) {
      break;
    }
    if (slice.size() > 0) {
      out.push_back(RawSlice{slice.data(), slice.size()});
    }
  }
  return out;
}

RawSlice OwnedImpl::frontSlice() const {
  for (const Slice& slice : slices_) {
    if (slice.size() > 0) {
      return RawSlice{slice.data(), slice.size()};
    }
  }
  return RawSlice{};
}

uint64_t OwnedImpl::length() const { return length_; }

void* OwnedImpl::linearize(uint32_t size) {
  RELEASE_ASSERT(size <= length_, "Linearize size exceeds buffer size");
  if (slices_.empty()) {
    return nullptr;
  }
  if (slices_.front().size() < size) {
    // Coalesce the front slices covering size bytes into one new slice (like Envoy).
    uint64_t covered = 0;
    size_t count = 0;
    while (covered < size) {
      covered += slices_[count].size();
      ++count;
    }
    auto storage = std::make_shared<Storage>(covered);
    for (size_t i = 0; i < count; ++i) {
      HostModel::copyBytes(storage->bytes.get() + storage->used, slices_.front().data(),
                           slices_.front().size());
      storage->used += slices_.front().size();
      slices_.pop_front();
    }
    slices_.push_front(Slice{std::move(storage), 0, covered});
  }
  return slices_.front().data();
}

void OwnedImpl::move(Instance& rhs) {
  ASSERT(&rhs != this, "move() of a buffer into itself");
  OwnedImpl& other = sameImpl(rhs, "move");
  for (Slice& slice : other.slices_) {
    slices_.push_back(std::move(slice));
  }
  other.slices_.clear();
  length_ += other.length_;
  other.length_ = 0;
}

void OwnedImpl::move(Instance& rhs, uint64_t length) {
  ASSERT(&rhs != this, "move() of a buffer into itself");
  OwnedImpl& other = sameImpl(rhs, "move");
  RELEASE_ASSERT(length <= other.length_,
                 fmt::format("move({}) from a {} byte buffer", length, other.length_));
  other.length_ -= length;
  length_ += length;
  while (length > 0) {
    Slice& front = other.slices_.front();
    if (front.size() <= length) {
      length -= front.size();
      slices_.push_back(std::move(front));
      other.slices_.pop_front();
    } else {
      // Split: both halves keep sharing the storage, no byte is copied.
      slices_.push_back(Slice{front.storage, front.begin, front.begin + length});
      front.begin += length;
      length = 0;
    }
  }
}

ssize_t OwnedImpl::search(const void* data, uint64_t size, size_t start, size_t length) const {
  if (size == 0) {
    return start <= length_ ? static_cast<ssize_t>(start) : -1;
  }
  if (start >= length_) {
    return -1;
  }
  // A match must lie entirely inside [start, window_end).
  const uint64_t window_end = length == 0 ? length_ : std::min<uint64_t>(length_, start + length);
  const auto* needle = static_cast<const uint8_t*>(data);
  uint64_t offset = 0; // buffer index of the first byte of slices_[index]
  for (size_t index = 0; index < slices_.size(); offset += slices_[index].size(), ++index) {
    const Slice& slice = slices_[index];
    const uint64_t from = std::max<uint64_t>(start, offset);
    const uint64_t to = std::min<uint64_t>(offset + slice.size(), window_end);
    for (uint64_t pos = from; pos < to && pos + size <= window_end; ++pos) {
      if (slice.data()[pos - offset] != needle[0]) {
        continue;
      }
      // Compare the rest of the needle, walking into the following slices as needed.
      uint64_t i = 1;
      size_t match_index = index;
      uint64_t within = pos - offset + 1;
      while (i < size) {
        if (within == slices_[match_index].size()) {
          ++match_index;
          within = 0;
          continue;
        }
        if (slices_[match_index].data()[within] != needle[i]) {
          break;
        }
        ++within;
        ++i;
      }
      if (i == size) {
        return static_cast<ssize_t>(pos);
      }
    }
  }
  return -1;
}

bool OwnedImpl::startsWith(absl::string_view data) const {
  if (data.size() > length_) {
    return false;
  }
  const auto* prefix = reinterpret_cast<const uint8_t*>(data.data());
  uint64_t matched = 0;
  for (const Slice& slice : slices_) {
    if (matched == data.size()) {
      break;
    }
    const uint64_t n = std::min<uint64_t>(slice.size(), data.size() - matched);
    if (std::memcmp(slice.data(), prefix + matched, n) != 0) {
      return false;
    }
    matched += n;
  }
  return true;
}

std::string OwnedImpl::toString() const {
  std::string out(length_, '\0');
  if (length_ > 0) {
    copyOut(0, length_, out.data());
  }
  return out;
}

} // namespace Buffer
} // namespace Envoy
