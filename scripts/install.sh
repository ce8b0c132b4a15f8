#!/usr/bin/env bash
# Installs everything codecgen and its tests need on a fresh Debian 12 / Ubuntu machine
# (system packages and the Python package), then runs the main job on a bundled protocol:
# generate the awesomerpc codec and verify it against the reference codec.
#
#   scripts/install.sh            install, then generate + verify protocols/awesomerpc.py
#   scripts/install.sh --deps     install only (what .ci/run uses)
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

APT_PACKAGES=(
  g++ clang-16 libclang-rt-16-dev clang-format-16   # compile matrix, sanitizers, libFuzzer, Envoy style
  docker.io busybox-static                          # image build tests (a private dockerd, local images)
  tshark mosquitto                                   # real-protocol proofs (dissectors, an MQTT broker)
)
# Needed as commands: installed from Debian only when the command is missing (a machine may have
# Node.js from elsewhere, with its own npm, which Debian's npm package would conflict with).
APT_COMMANDS=(
  node:nodejs npm:npm                                # Node.js peers: THeader (Apache Thrift), SOFA Bolt, Tars
)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
for entry in "${APT_COMMANDS[@]}"; do
  command -v "${entry%%:*}" >/dev/null 2>&1 || missing+=("${entry#*:}")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "install: apt packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

echo "install: python package (editable) with the dev extras"
python3 -m pip install -q -e ".[dev]"

echo "install: Node.js test peers (tests/node, pinned by its package-lock.json)"
npm ci --prefix tests/node --no-audit --no-fund --silent

if [ "${1:-}" = "--deps" ]; then
  exit 0
fi

echo "main job: codecgen generate protocols/awesomerpc.py -o out/awesomerpc"
codecgen generate protocols/awesomerpc.py -o out/awesomerpc
echo "main job: codecgen verify protocols/awesomerpc.py"
codecgen verify protocols/awesomerpc.py
