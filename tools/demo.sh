#!/usr/bin/env bash
# Installs what pim needs (Debian 12), builds it, compiles the bundled PIM-QAT model and runs it
# on the simulator over the whole Fashion-MNIST test set, printing accuracy and the per-layer report.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
bash tools/build.sh

model=${PIM_DEMO_MODEL:-tools/qat/models/fmnist-cnn-native-b4.onnx}
data=${PIM_DATA_DIR:-/usr/share/datasets/fashion-mnist}
mkdir -p build/demo
program=build/demo/$(basename "${model%.onnx}").pimb

echo "== pimc compile $model"
build/bin/pimc compile "$model" -o "$program"
echo
echo "== pimrun $program --device sim (10,000 test images)"
build/bin/pimrun "$program" --device sim \
  --input "$data/t10k-images-idx3-ubyte.gz" --labels "$data/t10k-labels-idx1-ubyte.gz" --profile
