#pragma once
// The byte layout results cross the C ABI in (parsed by codecgen/hostmodel/binding.py).
// Integers are little-endian; a "str" is a u32 length followed by that many bytes.
//
// decode result: u32 nframes, then per frame
//     i32 message_type, u64 request_id, u64 stream_id, i32 response_status,
//     u64 header_size, u64 body_size, str operation_name, u32 nstrings, (str key, str value)*,
//     str frame_bytes
//   then u8 has_error [str error], u8 has_violation [str violation], u64 held, u64 pending,
//   u64 copied
// call result: u8 kind (0 ok, 1 codec error, 2 violation, 3 bad input), str message, str output
// mutation (input): u32 count, (str key, str value)*
#include <cstdint>
#include <string>
#include <string_view>

#include "driver.h"

namespace CodecgenHarness {

std::string encodeDecodeOutcome(const DecodeOutcome& outcome);
std::string encodeCallOutcome(const CallOutcome& outcome);
// Returns false if the blob is malformed.
bool decodeMutation(std::string_view blob, Mpp::Mutation& mutation);

} // namespace CodecgenHarness
