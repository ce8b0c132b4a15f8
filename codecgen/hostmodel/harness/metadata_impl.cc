#include "metadata_impl.h"

#include <algorithm>
#include <memory>

#include "source/common/common/assert.h"

namespace CodecgenHarness {

Envoy::StreamInfo::StreamInfo& MetadataImpl::streamInfo() const {
  PANIC("codec called Metadata::streamInfo(); the framework leaves it unset on codec paths");
}

Mpp::MetadataSharedPtr MetadataImpl::clone() const {
  auto copy = std::make_shared<MetadataImpl>();
  copy->originMessage().add(origin_message_);
  copy->message_type_ = message_type_;
  copy->response_status_ = response_status_;
  copy->header_size_ = header_size_;
  copy->body_size_ = body_size_;
  copy->request_id_ = request_id_;
  copy->stream_id_ = stream_id_;
  copy->properties_ = properties_;
  copy->put_strings_ = put_strings_;
  return copy;
}

void MetadataImpl::put(std::string key, std::any value) {
  properties_[key] = std::move(value);
}

Mpp::AnyOptConstRef MetadataImpl::find(const std::string& key) const {
  auto it = properties_.find(key);
  if (it == properties_.end()) {
    return {};
  }
  return Mpp::AnyOptConstRef(it->second);
}

#ifdef CODECGEN_MPP_HEAD
Mpp::AnyOptConstRef MetadataImpl::getByKey(std::string key) const { return find(key); }

void MetadataImpl::removeString(std::string key) {
  properties_.erase(key);
  forgetString(key);
}
#else
Mpp::AnyOptConstRef MetadataImpl::get(std::string key) const { return find(key); }
#endif

void MetadataImpl::putString(std::string key, std::string value) {
  properties_[key] = value;
  auto it = std::find_if(put_strings_.begin(), put_strings_.end(),
                         [&key](const auto& entry) { return entry.first == key; });
  if (it != put_strings_.end()) {
    it->second = std::move(value);
  } else {
    put_strings_.emplace_back(std::move(key), std::move(value));
  }
}

void MetadataImpl::forgetString(const std::string& key) {
  put_strings_.erase(std::remove_if(put_strings_.begin(), put_strings_.end(),
                                    [&key](const auto& entry) { return entry.first == key; }),
                     put_strings_.end());
}

std::string MetadataImpl::getString(std::string key) const {
  auto value = find(key);
  return value.has_value() ? std::any_cast<std::string>(value.ref()) : std::string();
}

bool MetadataImpl::getBool(std::string key) const {
  auto value = find(key);
  return value.has_value() ? std::any_cast<bool>(value.ref()) : false;
}

uint32_t MetadataImpl::getUint32(std::string key) const {
  auto value = find(key);
  return value.has_value() ? std::any_cast<uint32_t>(value.ref()) : 0;
}

const std::string* MetadataImpl::findString(const std::string& key) const {
  auto value = find(key);
  return value.has_value() ? std::any_cast<std::string>(value.ptr()) : nullptr;
}

void MetadataImpl::forEach(IterateCallback callback) const {
  for (const auto& [key, value] : properties_) {
    const auto* text = std::any_cast<std::string>(&value);
    if (text != nullptr && !callback(key, *text)) {
      break;
    }
  }
}

#ifdef CODECGEN_MPP_HEAD
absl::optional<absl::string_view> MetadataImpl::get(absl::string_view key) const {
  const std::string* value = findString(std::string(key));
  if (value == nullptr || value->empty()) {
    return absl::nullopt;
  }
  return absl::string_view(*value);
}

void MetadataImpl::set(absl::string_view key, absl::string_view val) {
  putString(std::string(key), std::string(val));
}

void MetadataImpl::remove(absl::string_view key) { removeString(std::string(key)); }
#else
absl::optional<absl::string_view> MetadataImpl::getByKey(absl::string_view key) const {
  const std::string* value = findString(std::string(key));
  if (value == nullptr || value->empty()) {
    return absl::nullopt;
  }
  return absl::string_view(*value);
}

void MetadataImpl::setByKey(absl::string_view key, absl::string_view val) {
  putString(std::string(key), std::string(val));
}

void MetadataImpl::setByReferenceKey(absl::string_view key, absl::string_view val) {
  setByKey(key, val);
}

void MetadataImpl::setByReference(absl::string_view key, absl::string_view val) {
  setByKey(key, val);
}
#endif

} // namespace CodecgenHarness
