#!/usr/bin/env bash
# Installs everything codecgen and its tests need on a fresh Debian 12 / Ubuntu machine, then runs
# the main job on a bundled protocol: generate the awesomerpc codec and verify it against the
# reference codec.
#
#   scripts/install.sh
#
# System packages come from apt. Python packages go into a virtualenv, .venv in this checkout,
# on every machine alike (Debian's own python3 refuses `pip install`, PEP 668): codecgen editable
# with its "dev" extra, which lists every Python module a test imports (pyproject.toml). The
# virtualenv is made by the first python3 on PATH ($PYTHON overrides it).
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
PYTHON="${PYTHON:-python3}"

APT_PACKAGES=(
  python3 python3-venv python3-pip                  # the virtualenv .venv (PEP 668: no pip into the system)
  g++ clang-16 libclang-rt-16-dev clang-format-16   # compile matrix, sanitizers, libFuzzer, Envoy style
  docker.io busybox-static                          # image build tests (a private dockerd, local images)
  tshark mosquitto                                   # real-protocol proofs (dissectors, an MQTT broker)
  zookeeper etcd-server                              # codecgen bridge: real registries its tests start
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
  # tshark asks whether non-root users may capture: the default (no) is kept.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  echo "install: virtualenv .venv ($("$PYTHON" -c 'import sys; print(sys.executable, sys.version.split()[0])'))"
  "$PYTHON" -m venv .venv
fi
echo "install: codecgen (editable) with the dev extra into .venv"
.venv/bin/python -m pip install -q -e ".[dev]"

echo "install: Node.js test peers (tests/node, pinned by its package-lock.json)"
npm ci --prefix tests/node --no-audit --no-fund --silent

echo "main job: codecgen generate protocols/awesomerpc.py -o out/awesomerpc"
.venv/bin/codecgen generate protocols/awesomerpc.py -o out/awesomerpc
echo "main job: codecgen verify protocols/awesomerpc.py"
.venv/bin/codecgen verify protocols/awesomerpc.py
