#pragma once

namespace Envoy {

// The byte orders understood by the Buffer::Instance integer helpers.
enum class ByteOrder { Host, LittleEndian, BigEndian };

} // namespace Envoy
