#pragma once
// The harness's concrete Metadata, behaving like meta-protocol-proxy's MetadataImpl
// (codec_impl.cc) where a codec can observe it:
//  * put/putString store into one property map; getString returns "" when a key is absent and
//    throws std::bad_any_cast when the key holds a non-string; getBool/getUint32 likewise.
//  * clone() copies the origin bytes, types, sizes, ids and properties, not the operation name.
//  * streamInfo() is not set on the paths a codec runs on; calling it is reported.
// In addition it records the putString keys exactly as given, in first-insertion order, which
// is what the harness reports (the real one lower-cases them into route-matching header maps).
#include <any>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "source/common/buffer/buffer_impl.h"
#include "src/meta_protocol_proxy/codec/codec.h"

namespace CodecgenHarness {

namespace Mpp = Envoy::Extensions::NetworkFilters::MetaProtocolProxy;

class MetadataImpl : public Mpp::Metadata {
public:
  using StringList = std::vector<std::pair<std::string, std::string>>;

  // Metadata
  Envoy::Buffer::Instance& originMessage() override { return origin_message_; }
  void setMessageType(Mpp::MessageType type) override { message_type_ = type; }
  Mpp::MessageType getMessageType() const override { return message_type_; }
  void setResponseStatus(Mpp::ResponseStatus status) override { response_status_ = status; }
  Mpp::ResponseStatus getResponseStatus() const override { return response_status_; }
  void setRequestId(uint64_t id) override { request_id_ = id; }
  uint64_t getRequestId() const override { return request_id_; }
  void setStreamId(uint64_t id) override { stream_id_ = id; }
  uint64_t getStreamId() const override { return stream_id_; }
  size_t getMessageSize() const override { return header_size_ + body_size_; }
  void setHeaderSize(size_t size) override { header_size_ = size; }
  size_t getHeaderSize() const override { return header_size_; }
  void setBodySize(size_t size) override { body_size_ = size; }
  size_t getBodySize() const override { return body_size_; }
  void setOperationName(std::string name) override { operation_name_ = std::move(name); }
  std::string getOperationName() const override { return operation_name_; }
  Envoy::StreamInfo::StreamInfo& streamInfo() const override;
  Mpp::MetadataSharedPtr clone() const override;

  void put(std::string key, std::any value) override;
#ifdef CODECGEN_MPP_HEAD
  Mpp::AnyOptConstRef getByKey(std::string key) const override;
  void removeString(std::string key) override;
#else
  Mpp::AnyOptConstRef get(std::string key) const override;
#endif
  void putString(std::string key, std::string value) override;
  std::string getString(std::string key) const override;
  bool getBool(std::string key) const override;
  uint32_t getUint32(std::string key) const override;

  // Tracing::TraceContext
  absl::string_view protocol() const override { return "meta-protocol"; }
  absl::string_view host() const override { return operation_name_; }
  absl::string_view path() const override { return ""; }
  absl::string_view method() const override { return ""; }
  void forEach(IterateCallback callback) const override;
#ifdef CODECGEN_MPP_HEAD
  absl::optional<absl::string_view> get(absl::string_view key) const override;
  void set(absl::string_view key, absl::string_view val) override;
  void remove(absl::string_view key) override;
#else
  absl::optional<absl::string_view> getByKey(absl::string_view key) const override;
  void setByKey(absl::string_view key, absl::string_view val) override;
  void setByReferenceKey(absl::string_view key, absl::string_view val) override;
  void setByReference(absl::string_view key, absl::string_view val) override;
#endif

  // Harness view: putString keys and values, keys as given, in first-insertion order.
  const StringList& putStrings() const { return put_strings_; }

private:
  Mpp::AnyOptConstRef find(const std::string& key) const;
  const std::string* findString(const std::string& key) const;
  void forgetString(const std::string& key);

  std::map<std::string, std::any> properties_;
  StringList put_strings_;
  Envoy::Buffer::OwnedImpl origin_message_;
  Mpp::MessageType message_type_{Mpp::MessageType::Request};
  Mpp::ResponseStatus response_status_{Mpp::ResponseStatus::Ok};
  uint64_t request_id_{0};
  uint64_t stream_id_{0};
  size_t header_size_{0};
  size_t body_size_{0};
  std::string operation_name_;
};

} // namespace CodecgenHarness
