#pragma once
// Host model: factory.h reaches Envoy::Config::TypedFactory through this header in real Envoy
// (transitively); the model includes it directly.
#include "envoy/config/typed_config.h"

#include "source/common/protobuf/protobuf.h"
