#pragma once
// Host model of Envoy's logging front end (Logger::Loggable, ENVOY_LOG, ENVOY_LOG_MISC).
//
// Every ENVOY_LOG expands to a real fmt::format call over its arguments, so arguments are
// "used" (no -Wunused) and a format string that does not fit its arguments is detected. What
// happens to the text depends on the process-wide mode (Logger::Sink):
//   Off    - nothing is formatted (fastest);
//   Check  - the message is formatted and discarded (the default; catches format errors);
//   Print  - the message is formatted and written to stderr.
#include <cstdint>
#include <string>

#include "fmt/format.h"

namespace Envoy {
namespace Logger {

// The ids a Loggable<> may name (a subset of Envoy's list, covering what codecs use).
enum class Id {
  admin, assert, backtrace, client, config, connection, conn_handler, dubbo, envoy_bug, file,
  filter, grpc, hc, health_checker, http, init, io, kafka, main, matcher, misc, mongo, pool,
  quic, rds, redis, router, runtime, stats, tracing, thrift, upstream, wasm,
};

const char* idName(Id id);

// Level names as used in ENVOY_LOG(<level>, ...).
struct Levels {
  enum Level : int { trace = 0, debug = 1, info = 2, warn = 3, error = 4, critical = 5, off = 6 };
};

class Sink {
public:
  enum class Mode : int { Off = 0, Check = 1, Print = 2 };
  static Mode mode();
  static void setMode(Mode mode);
  static bool enabled(int level) { return mode() != Mode::Off && level != Levels::off; }
  static void write(Id id, int level, const std::string& message);
};

class Logger {
public:
  explicit constexpr Logger(Id id) : id_(id) {}
  Id id() const { return id_; }
  const char* name() const { return idName(id_); }

private:
  Id id_;
};

Logger& getLogger(Id id);

/**
 * Mixin giving a class the static logger ENVOY_LOG refers to.
 */
template <Id id> class Loggable {
protected:
  static Logger& __log_do_not_use_read_comment() { return getLogger(id); }
};

} // namespace Logger
} // namespace Envoy

#define ENVOY_LOGGER() __log_do_not_use_read_comment()

#define ENVOY_LOG_TO_LOGGER(LOGGER, LEVEL, ...)                                                    \
  do {                                                                                             \
    if (::Envoy::Logger::Sink::enabled(::Envoy::Logger::Levels::LEVEL)) {                          \
      ::Envoy::Logger::Sink::write((LOGGER).id(), ::Envoy::Logger::Levels::LEVEL,                  \
                                   ::fmt::format(__VA_ARGS__));                                    \
    }                                                                                              \
  } while (false)

#define ENVOY_LOG(LEVEL, ...) ENVOY_LOG_TO_LOGGER(ENVOY_LOGGER(), LEVEL, __VA_ARGS__)

#define ENVOY_LOG_MISC(LEVEL, ...)                                                                 \
  ENVOY_LOG_TO_LOGGER(::Envoy::Logger::getLogger(::Envoy::Logger::Id::misc), LEVEL, __VA_ARGS__)
