#include "source/common/common/logger.h"

#include <atomic>
#include <cstdio>

namespace Envoy {
namespace Logger {

namespace {
std::atomic<int> sink_mode{static_cast<int>(Sink::Mode::Check)};

const char* levelName(int level) {
  static const char* const names[] = {"trace", "debug", "info", "warning", "error", "critical"};
  return level >= 0 && level < 6 ? names[level] : "off";
}
} // namespace

const char* idName(Id id) {
  switch (id) {
  case Id::admin: return "admin";
  case Id::assert: return "assert";
  case Id::backtrace: return "backtrace";
  case Id::client: return "client";
  case Id::config: return "config";
  case Id::connection: return "connection";
  case Id::conn_handler: return "conn_handler";
  case Id::dubbo: return "dubbo";
  case Id::envoy_bug: return "envoy_bug";
  case Id::file: return "file";
  case Id::filter: return "filter";
  case Id::grpc: return "grpc";
  case Id::hc: return "hc";
  case Id::health_checker: return "health_checker";
  case Id::http: return "http";
  case Id::init: return "init";
  case Id::io: return "io";
  case Id::kafka: return "kafka";
  case Id::main: return "main";
  case Id::matcher: return "matcher";
  case Id::misc: return "misc";
  case Id::mongo: return "mongo";
  case Id::pool: return "pool";
  case Id::quic: return "quic";
  case Id::rds: return "rds";
  case Id::redis: return "redis";
  case Id::router: return "router";
  case Id::runtime: return "runtime";
  case Id::stats: return "stats";
  case Id::tracing: return "tracing";
  case Id::thrift: return "thrift";
  case Id::upstream: return "upstream";
  case Id::wasm: return "wasm";
  }
  return "unknown";
}

Sink::Mode Sink::mode() { return static_cast<Mode>(sink_mode.load(std::memory_order_relaxed)); }

void Sink::setMode(Mode mode) { sink_mode.store(static_cast<int>(mode)); }

void Sink::write(Id id, int level, const std::string& message) {
  if (mode() == Mode::Print) {
    std::fprintf(stderr, "[%s][%s] %s\n", levelName(level), idName(id), message.c_str());
  }
}

Logger& getLogger(Id id) {
  // One logger per id, created on first use and never destroyed (static init order safe).
  static Logger* loggers[static_cast<int>(Id::wasm) + 1] = {};
  Logger*& slot = loggers[static_cast<int>(id)];
  if (slot == nullptr) {
    slot = new Logger(id);
  }
  return *slot;
}

} // namespace Logger
} // namespace Envoy
