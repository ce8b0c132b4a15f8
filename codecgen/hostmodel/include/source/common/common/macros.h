#pragma once

// Host model of the Envoy macros codecs occasionally use.
#define CONSTRUCT_ON_FIRST_USE(type, ...)                                                          \
  do {                                                                                             \
    static const type* objectptr = new type{__VA_ARGS__};                                          \
    return *objectptr;                                                                             \
  } while (0)

#define MUTABLE_CONSTRUCT_ON_FIRST_USE(type, ...)                                                  \
  do {                                                                                             \
    static type* objectptr = new type{__VA_ARGS__};                                                \
    return *objectptr;                                                                             \
  } while (0)
