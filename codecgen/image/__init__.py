"""``codecgen image``: build context, docker build and verification of a MetaProtocol proxy image.

- :mod:`codecgen.image.context`   the Docker build context (Dockerfile, README, codec folders)
- :mod:`codecgen.image.build`     engine preflight, build with live progress, tag, extract, containers
- :mod:`codecgen.image.progress`  build-stream parsing (BuildKit and classic) and progress output
- :mod:`codecgen.image.bootstrap` the static Envoy bootstrap used by ``image verify``
- :mod:`codecgen.image.cli`       the command line: ``add_parser(subparsers)``
"""
