"""Host model of the Envoy / meta-protocol-proxy C++ API and a harness that replays the
framework's codec contract over a generated (or hand-written) codec. See native.py."""
