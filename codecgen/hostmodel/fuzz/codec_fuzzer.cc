// libFuzzer entry point around one MetaProtocol codec (generated or hand-edited), linked with
// the host model and the harness (decode_loop.cc, driver.cc, metadata_impl.cc). Every input
// replays meta-protocol-proxy's runtime contract, the same one `codecgen verify` checks, and
// aborts (so libFuzzer records a crash) when the codec breaks a rule:
//
//  * the bytes arrive in reads chosen by the input; each read runs the framework's decode loop
//    with the rules of the harness's DecodeLoop (fresh metadata per call, Done must consume,
//    bytes conserved, originMessage() empty on WaitForData, response-side message types,
//    reserved keys) -- FastLoop below, an allocation-lean copy kept in step with it;
//  * the outcome must not depend on how the bytes were split into reads (a codec that returns
//    Done or throws before a frame is whole, or waits on bytes it will later refuse, differs
//    between one read and many);
//  * one extra call per input, chosen by the input: encode with a mutation on the request or
//    the response path, onError with a decoded frame's metadata or an empty one, or the
//    heartbeat encode (harness Session); the bytes it produces must decode as exactly one frame;
//  * anything thrown that is not an EnvoyException (the only exception the framework catches),
//    and any failed model assertion (Envoy would abort), is a violation.
//
// Input layout (mirrored by codecgen/fuzz/inputs.py, which writes seeds and replays findings):
//   byte 0  control  bit 0    direction: 0 downstream (requests), 1 upstream (responses)
//                    bits 1-2 reads: 0-2 one read; 3 several reads, compared with one read:
//                             param bit 7 clear: two reads split at (param & 127) * size / 128;
//                             set: the first (param & 15) + 1 bytes byte by byte, then the rest
//                             in one read
//                    bits 3-5 one extra call: 0-4 none; 5 encode with a mutation (param bit 3:
//                             on the response path, else the request path); 6 onError (bit 6:
//                             with an empty metadata, else a decoded frame's); 7 heartbeat encode
//                    bit 6    the extra call takes the last decoded frame (else the first)
//                    bit 7    the mutation changes the frame's own first key (else a fixed one)
//   byte 1  param    as above; error type = param % 6; the fixed mutation and the error
//                    message are picked from param's bits 4-5 and 1-2
//   byte 2- the bytes of one direction of a connection
//
// Environment: CODECGEN_FUZZ_IGNORE="text|text..." makes a violation whose message contains one
// of the texts end the input quietly (a campaign looks past a known bug);
// CODECGEN_FUZZ_CROSSCHECK=1 decodes every input with DecodeLoop too and compares;
// CODECGEN_FUZZ_LOG=check|print formats ENVOY_LOG messages (off by default).
//
// Cost: the rate libFuzzer reaches decides how deep it gets, so an input runs one decode in the
// common case, a second (one read, for the comparison) when its reads were split, and at most
// one extra call (a Session call decodes its frame again); text for a report is built only when
// a rule is broken. See FUZZING.md for the measurements behind these choices.
//
// Built by codecgen/fuzz/build.py with clang++ -fsanitize=fuzzer,address,undefined (--fast:
// fuzzer,undefined) and -DCODECGEN_FUZZ_FACTORY="aeraki.meta_protocol.codec.<name>".
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "codec_fuzzer_fixtures.h" // generated from codecgen/verify/fixtures.py by fuzz/build.py
#include "decode_loop.h"
#include "driver.h"
#include "envoy/common/exception.h"
#include "envoy/registry/registry.h"
#include "source/common/common/assert.h"
#include "source/common/common/logger.h"

#ifndef CODECGEN_FUZZ_FACTORY
#error "define CODECGEN_FUZZ_FACTORY as the codec's registered factory name"
#endif

namespace {

using namespace CodecgenHarness;
using Registry = Envoy::Registry::FactoryRegistry<Mpp::NamedCodecConfigFactory>;

Mpp::NamedCodecConfigFactory* factory = nullptr;
Envoy::ProtobufTypes::MessagePtr config;
std::unique_ptr<Session> session;

std::vector<std::string> ignored; // CODECGEN_FUZZ_IGNORE

// Thrown instead of aborting for a violation CODECGEN_FUZZ_IGNORE names; ends the input.
struct Ignored {};

[[noreturn]] void violation(const std::string& what) {
  for (const std::string& text : ignored) {
    if (what.find(text) != std::string::npos) {
      throw Ignored{};
    }
  }
  std::fprintf(stderr, "\ncodecgen-fuzz: CONTRACT VIOLATION: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

std::string hexPrefix(std::string_view data, size_t limit = 48) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < data.size() && i < limit; i++) {
    const auto byte = static_cast<uint8_t>(data[i]);
    out.push_back(kDigits[byte >> 4]);
    out.push_back(kDigits[byte & 15]);
  }
  if (data.size() > limit) {
    out += "... (" + std::to_string(data.size()) + " bytes)";
  }
  return out;
}

// The framework's decode loop (ConnectionManager::onData) for the decode runs every input makes:
// the harness's decodeAll (decode_loop.cc, the one implementation of the contract's checks) over
// a connection buffer kept across inputs. It allocates less per input, which is most of what an input costs under ASan: the connection
// buffer is reused, and each read arrives as one slice of exactly its size instead of a 16 KiB
// slice (so ASan also catches a codec reading a raw slice past the bytes received). Bytes the
// codec itself produced (encode, onError) are decoded with DecodeLoop itself.
class FastLoop {
public:
  void start(Mpp::Codec& codec, Direction direction) {
    codec_ = &codec;
    direction_ = direction;
    frames_.clear();
    consumed_since_done_ = 0;
    buffer_.drain(buffer_.length());
  }

  void feed(std::string_view chunk) {
    if (chunk.empty()) {
      return;
    }
    buffer_.add(chunk.data(), chunk.size());
    run();
  }

  // Frees what the input left (frames, buffered bytes), so that every input frees all it
  // allocated: libFuzzer re-runs an input under LeakSanitizer whenever it did not, which would
  // cost more than the input itself.
  void finish() {
    frames_.clear();
    buffer_.drain(buffer_.length());
    consumed_since_done_ = 0;
  }

  std::vector<std::unique_ptr<MetadataImpl>>& frames() { return frames_; }
  uint64_t held() const { return buffer_.length(); }
  uint64_t pending() const { return consumed_since_done_; }

private:
  void run() { decodeAll(*codec_, direction_, buffer_, consumed_since_done_, frames_); }

  Mpp::Codec* codec_{nullptr};
  Direction direction_{Direction::Request};
  Envoy::Buffer::OwnedImpl buffer_;
  uint64_t consumed_since_done_{0};
  std::vector<std::unique_ptr<MetadataImpl>> frames_;
};

// Runs `body` (codec calls); returns false with `message` set if it threw an EnvoyException
// (the framework catches those and closes the connection). Anything else the framework would
// not survive aborts.
template <class Body> bool guarded(const char* what, Body&& body, std::string& message) {
  try {
    body();
    return true;
  } catch (const ContractViolation& e) {
    violation(std::string(what) + ": " + e.what());
  } catch (const Envoy::EnvoyException& e) {
    message = e.what();
    return false;
  } catch (const Envoy::HostModel::AssertionFailure& e) {
    violation(std::string(what) + " hit " + e.what());
  } catch (const Ignored&) {
    throw;
  } catch (const std::exception& e) {
    violation(std::string(what) + " threw a non-EnvoyException (" + e.what() +
              "); the framework only catches EnvoyException");
  } catch (...) {
    violation(std::string(what) + " threw a non-std::exception object");
  }
}

std::unique_ptr<Mpp::Codec> newCodec() {
  std::unique_ptr<Mpp::Codec> codec = factory->createCodec(*config);
  if (codec == nullptr) {
    violation("createCodec returned nullptr");
  }
  return codec;
}

// What one decode run ended with. Frames stay owned by the loop.
struct Run {
  std::unique_ptr<Mpp::Codec> codec;
  FastLoop* loop{nullptr};
  bool error{false};
  std::string message;
};

// The loops of the two runs an input can make (its reads, and one read to compare with).
FastLoop loops[2];

// Feeds `data` in the given reads (the rest in one last read) into a new codec's decode loop.
void decodeRun(Run& run, FastLoop& loop, std::string_view data, const std::vector<size_t>& reads,
               Direction direction) {
  run.loop = &loop;
  run.error = !guarded(
      "decode",
      [&] {
        run.codec = newCodec();
        loop.start(*run.codec, direction);
        size_t offset = 0;
        for (size_t size : reads) {
          loop.feed(data.substr(offset, size));
          offset += size;
        }
        if (offset < data.size()) {
          loop.feed(data.substr(offset));
        }
      },
      run.message);
}

std::string describe(MetadataImpl& m) {
  std::string out = "type " + std::to_string(static_cast<int>(m.getMessageType())) + " id " +
                    std::to_string(m.getRequestId()) + " status " +
                    std::to_string(static_cast<int>(m.getResponseStatus())) + " header " +
                    std::to_string(m.getHeaderSize()) + " body " +
                    std::to_string(m.getBodySize()) + " op '" + m.getOperationName() + "' keys";
  for (const auto& [key, value] : m.putStrings()) {
    out += " " + key + "=" + value;
  }
  return out + " bytes " + hexPrefix(m.originMessage().toString(), 24);
}

bool sameFrame(MetadataImpl& a, MetadataImpl& b) {
  return a.getMessageType() == b.getMessageType() && a.getRequestId() == b.getRequestId() &&
         a.getStreamId() == b.getStreamId() && a.getResponseStatus() == b.getResponseStatus() &&
         a.getHeaderSize() == b.getHeaderSize() && a.getBodySize() == b.getBodySize() &&
         a.getOperationName() == b.getOperationName() && a.putStrings() == b.putStrings() &&
         a.originMessage().length() == b.originMessage().length() &&
         a.originMessage().toString() == b.originMessage().toString();
}

// The outcome of a stream may not depend on how its bytes were split into reads.
void compareRuns(Run& one, Run& many, std::string_view data) {
  auto& a = one.loop->frames();
  auto& b = many.loop->frames();
  if (a.size() != b.size() || one.error != many.error) {
    violation("the outcome depends on how the bytes are split into reads: one read gives " +
              std::to_string(a.size()) + " frame(s)" +
              (one.error ? ", then an error (" + one.message + ")" : "") + "; several reads give " +
              std::to_string(b.size()) + " frame(s)" +
              (many.error ? ", then an error (" + many.message + ")" : "") + " (stream " +
              hexPrefix(data) + ")");
  }
  for (size_t i = 0; i < a.size(); i++) {
    if (!sameFrame(*a[i], *b[i])) {
      violation("frame " + std::to_string(i) + " depends on how the bytes are split into reads: " +
                describe(*a[i]) + " vs " + describe(*b[i]) + " (stream " + hexPrefix(data) + ")");
    }
  }
  const uint64_t held_one = one.loop->held() + one.loop->pending();
  const uint64_t held_many = many.loop->held() + many.loop->pending();
  if (!one.error && held_one != held_many) {
    violation("bytes held depend on how the bytes are split into reads: " +
              std::to_string(held_one) + " vs " + std::to_string(held_many) + " (stream " +
              hexPrefix(data) + ")");
  }
}

// Names the extra call in a report (built only when a rule is broken).
struct Call {
  const char* name;
  int frame; // -1: an empty metadata
  std::string_view bytes;

  std::string text() const {
    if (frame < 0) {
      return std::string(name) + " with an empty metadata";
    }
    return std::string(name) + " of frame " + std::to_string(frame) + " (" + hexPrefix(bytes) +
           ")";
  }
};

// Bytes a codec produced for the wire (encode, onError, heartbeat) must decode as one frame:
// the harness's own DecodeLoop decodes them.
void checkDecodes(const std::string& bytes, Direction direction, const Call& call) {
  std::unique_ptr<Mpp::Codec> codec = newCodec();
  DecodeLoop loop(*codec, direction);
  std::string message;
  if (!guarded("decode of bytes the codec produced", [&] { loop.feed(bytes); }, message)) {
    violation(call.text() + " produced bytes that do not decode (" + message +
              "): " + hexPrefix(bytes));
  }
  if (loop.frames().size() != 1 || loop.held() != 0 || loop.pending() != 0) {
    violation(call.text() + " produced bytes that decode to " +
              std::to_string(loop.frames().size()) + " frame(s) and " +
              std::to_string(loop.held() + loop.pending()) +
              " byte(s) left over, not one frame: " + hexPrefix(bytes));
  }
}

// A Session call's outcome: codec errors are the framework's business, the rest is a bug.
bool callOk(const CallOutcome& outcome, const Call& call) {
  switch (outcome.kind) {
  case CallOutcome::Kind::Ok:
    return true;
  case CallOutcome::Kind::CodecError:
    return false;
  case CallOutcome::Kind::Violation:
    violation(call.text() + ": " + outcome.message);
  case CallOutcome::Kind::BadInput:
    violation(call.text() + ": a frame the decode loop produced does not decode on its own (" +
              outcome.message + ")");
  }
  return false;
}

int directionOf(Mpp::MessageType type) {
  switch (type) {
  case Mpp::MessageType::Request:
  case Mpp::MessageType::Oneway:
    return 0;
  case Mpp::MessageType::Response:
  case Mpp::MessageType::Error:
  case Mpp::MessageType::Heartbeat:
    return 1;
  default:
    return -1;
  }
}

Mpp::Mutation mutationFor(uint8_t control, uint8_t param, MetadataImpl& frame) {
  if ((control & 0x80) != 0 && !frame.putStrings().empty()) {
    std::string key = frame.putStrings().front().first;
    for (char& c : key) {
      if (c >= 'a' && c <= 'z') {
        c = static_cast<char>(c - 'a' + 'A');
      }
    }
    return {{key, "changed"}, {"x-new", "1"}};
  }
  return CodecgenFuzzFixtures::kMutations[(param >> 4) & 3];
}

void extra(uint8_t control, uint8_t param, Run& run, Direction direction) {
  const int kind = (control >> 3) & 7;
  if (kind < 5) {
    return;
  }
  const int error_type = param % 6;
  const std::string& message = CodecgenFuzzFixtures::kMessages[(param >> 1) & 3];
  const bool last = (control & 0x40) != 0;
  if (kind == 6 && last) {
    const Call call{"onError", -1, {}};
    const CallOutcome out = session->onError(std::nullopt, direction, error_type, message);
    if (callOk(out, call)) {
      checkDecodes(out.output, Direction::Response, call);
    }
    return;
  }
  auto& frames = run.loop->frames();
  if (frames.empty()) {
    return;
  }
  const size_t index = last ? frames.size() - 1 : 0;
  MetadataImpl& frame = *frames[index];
  const std::string bytes = frame.originMessage().toString();
  if (kind == 5) {
    const bool response = (param & 8) != 0;
    const Call call{response ? "encode on the response path" : "encode on the request path",
                    static_cast<int>(index), bytes};
    const CallOutcome out =
        session->encode(bytes, direction, mutationFor(control, param, frame),
                        response ? EncodePath::Response : EncodePath::Request);
    // The layout may depend on the direction: re-decode only where both agree.
    if (callOk(out, call) && directionOf(frame.getMessageType()) == static_cast<int>(direction) &&
        out.output != bytes) {
      checkDecodes(out.output, direction, call);
    }
  } else if (kind == 6) {
    const Call call{"onError", static_cast<int>(index), bytes};
    const CallOutcome out = session->onError(bytes, direction, error_type, message);
    if (callOk(out, call)) {
      checkDecodes(out.output, Direction::Response, call);
    }
  } else {
    const Call call{"heartbeat encode", static_cast<int>(index), bytes};
    const CallOutcome out = session->heartbeat(bytes, direction);
    if (callOk(out, call) && !out.output.empty()) {
      checkDecodes(out.output, Direction::Response, call);
    }
  }
}

// CODECGEN_FUZZ_CROSSCHECK=1: every input is also decoded by the harness's DecodeLoop, which must
// agree with FastLoop (tests/test_fuzz.py runs the target so for a few seconds per protocol).
bool crosscheck = false;

void crossCheck(Run& fast, std::string_view stream, const std::vector<size_t>& reads,
                Direction direction) {
  std::unique_ptr<Mpp::Codec> codec = newCodec();
  DecodeLoop loop(*codec, direction);
  std::string message;
  const bool ok = guarded(
      "decode (harness DecodeLoop)",
      [&] {
        size_t offset = 0;
        for (size_t size : reads) {
          loop.feed(stream.substr(offset, size));
          offset += size;
        }
        if (offset < stream.size()) {
          loop.feed(stream.substr(offset));
        }
      },
      message);
  auto& a = fast.loop->frames();
  auto& b = loop.frames();
  bool same = ok == !fast.error && a.size() == b.size() &&
              (fast.error || fast.loop->held() + fast.loop->pending() == loop.held() + loop.pending());
  for (size_t i = 0; same && i < a.size(); i++) {
    same = sameFrame(*a[i], *b[i]);
  }
  if (!same) {
    violation("the fuzz target's decode loop and the harness's DecodeLoop disagree on " +
              hexPrefix(stream) + ": " + std::to_string(a.size()) + " vs " +
              std::to_string(b.size()) + " frames, error " + (fast.error ? fast.message : "none") +
              " vs " + (ok ? "none" : message));
  }
}

void testOneInput(const uint8_t* data, size_t size) {
  struct Finish {
    ~Finish() {
      loops[0].finish();
      loops[1].finish();
    }
  } finish;
  const uint8_t control = data[0];
  const uint8_t param = data[1];
  const std::string_view stream(reinterpret_cast<const char*>(data) + 2, size - 2);
  const Direction direction = (control & 1) != 0 ? Direction::Response : Direction::Request;

  std::vector<size_t> reads;
  if (((control >> 1) & 3) == 3) {
    if ((param & 0x80) == 0) {
      reads.push_back(static_cast<size_t>(param & 127) * stream.size() / 128);
    } else {
      reads.assign(std::min<size_t>(stream.size(), (param & 15) + 1), 1);
    }
  }

  Run run;
  decodeRun(run, loops[0], stream, reads, direction);
  if (!reads.empty()) {
    Run one;
    decodeRun(one, loops[1], stream, {}, direction);
    compareRuns(one, run, stream);
  }
  if (crosscheck) {
    crossCheck(run, stream, reads, direction);
  }
  extra(control, param, run, direction);
}

} // namespace

// Sanitizer defaults for fuzzing (ASAN_OPTIONS still overrides them), both measured (FUZZING.md):
// detect_stack_use_after_return makes every C++ throw (every refused input) collect the fake
// stack, ~3x the cost of a whole decode; a 256 MB quarantine of the model's 16 KB buffer slices
// keeps cycling through cold memory. A 16 MB quarantine still holds every block freed while one
// input runs, so a use-after-free within an input is still caught.
extern "C" const char* __asan_default_options() {
  return "detect_stack_use_after_return=0:quarantine_size_mb=16";
}

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  // ENVOY_LOG formatting costs more than most decodes; CODECGEN_FUZZ_LOG=check keeps it on.
  const char* log = std::getenv("CODECGEN_FUZZ_LOG");
  Envoy::Logger::Sink::Mode mode = Envoy::Logger::Sink::Mode::Off;
  if (log != nullptr && std::strcmp(log, "check") == 0) {
    mode = Envoy::Logger::Sink::Mode::Check;
  } else if (log != nullptr && std::strcmp(log, "print") == 0) {
    mode = Envoy::Logger::Sink::Mode::Print;
  }
  Envoy::Logger::Sink::setMode(mode);
  std::string error;
  session = Session::open(CODECGEN_FUZZ_FACTORY, error);
  factory = Registry::getFactory(CODECGEN_FUZZ_FACTORY);
  if (session == nullptr || factory == nullptr) {
    std::fprintf(stderr, "codecgen-fuzz: %s\n", error.c_str());
    std::exit(2);
  }
  config = factory->createEmptyConfigProto();
  crosscheck = std::getenv("CODECGEN_FUZZ_CROSSCHECK") != nullptr;
  if (const char* ignore = std::getenv("CODECGEN_FUZZ_IGNORE"); ignore != nullptr) {
    std::string_view rest(ignore);
    while (!rest.empty()) {
      const size_t bar = rest.find('|');
      if (bar != 0) {
        ignored.emplace_back(rest.substr(0, bar));
      }
      rest = bar == std::string_view::npos ? std::string_view() : rest.substr(bar + 1);
    }
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) {
    return 0;
  }
  try {
    testOneInput(data, size);
  } catch (const Ignored&) {
  }
  return 0;
}
