#!/usr/bin/env bash
# Installs the Debian 12 packages pim needs to build, test and run. Run as root (or with sudo).
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libprotobuf-dev protobuf-compiler libonnx-dev libabsl-dev libspdlog-dev libfmt-dev libcli11-dev
  zlib1g-dev libboost-dev libboost-system-dev libusb-1.0-0-dev
  libgtest-dev libgmock-dev libbenchmark-dev libdnnl-dev libumockdev-dev umockdev
  python3-numpy python3-onnx python3-torch python3-pytest python3-sklearn libopenblas0-serial
  dataset-fashion-mnist
)

as_root=()
if [ "$(id -u)" -ne 0 ]; then as_root=(sudo); fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  "${as_root[@]}" apt-get update
  DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
fi
