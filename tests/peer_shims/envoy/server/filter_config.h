#pragma once
// tests/test_peer_codecs.py: meta-protocol-proxy's trpc codec_checker.h includes this Envoy
// header but uses nothing from it; the host model has no server API.
