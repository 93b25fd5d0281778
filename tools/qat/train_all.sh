#!/bin/sh
# Trains every bundled model (tools/qat/models/README.md lists the same commands).
# Run from the repository root:  sh tools/qat/train_all.sh [baselines|finetune-cnn|finetune-resnet|ablation|noise]
# One thread per process, nice 10; the fine-tunes of one architecture run in parallel.
set -e
PY=/usr/bin/python3
M=tools/qat/models
train() { nice -n 10 $PY tools/qat/train.py "$@"; }

baselines() {
  # Conventional QAT from scratch (seed 0).
  train --arch fmnist-cnn --epochs 2 --seed 0 --out $M/fmnist-cnn-qat --log $M/fmnist-cnn-qat.log &
  train --arch fmnist-resnet --epochs 1.5 --seed 0 --out $M/fmnist-resnet-qat --log $M/fmnist-resnet-qat.log &
  wait
}

# PIM-QAT: fine-tuned from the conventional-QAT checkpoint at batch 64: 0.1 epoch (94 steps,
# 6,016 images) for the CNN, 0.04 epoch (37 steps, 2,368 images) for the ResNet (the budget of
# the shared machine they were trained on; see models/README.md).
FT="--epochs 0.1 --batch 64 --seed 0 --log-every 10 --eval-subset 2000"
FT_RESNET="--epochs 0.04 --batch 64 --seed 0 --log-every 5 --eval-subset 2000"
# Noise-aware fine-tunes: four times those steps (376 CNN, 150 ResNet), a budget checked on test
# images 8000-9999 (docs/qat.md "Noise-aware training").
FT_NOISE="--epochs 0.4 --batch 64 --seed 0 --log-every 20 --eval-subset 2000"
FT_NOISE_RESNET="--epochs 0.16 --batch 64 --seed 0 --log-every 10 --eval-subset 2000"

finetune() {  # arch bits schemes...
  arch=$1; b=$2; shift 2
  opts=$FT; [ $arch = fmnist-resnet ] && opts=$FT_RESNET
  for s in "$@"; do
    train --arch $arch --scheme $s --adc-bits $b $opts --init $M/$arch-qat.pt \
      --out $M/$arch-$s-b$b --log $M/$arch-$s-b$b.log &
  done
  wait
}

ablation() {  # like fmnist-cnn-native-b4 (learned Delta, rescaling on) but one knob changed
  mkdir -p $M/ablation
  A="--arch fmnist-cnn --scheme native --adc-bits 4 $FT --init $M/fmnist-cnn-qat.pt --no-export"
  train $A --no-rescale --out $M/ablation/learned-norescale --log $M/ablation/learned-norescale.log &
  train $A --delta-mode full-range --out $M/ablation/fullrange-rescale --log $M/ablation/fullrange-rescale.log &
  train $A --delta-mode full-range --no-rescale --out $M/ablation/fullrange-norescale --log $M/ablation/fullrange-norescale.log &
  wait
}

noise() {  # noise-aware: b4 fine-tunes with the 'typical' profile's thermal noise (0.35 LSB) in training
  for arch in fmnist-cnn fmnist-resnet; do
    opts=$FT_NOISE; [ $arch = fmnist-resnet ] && opts=$FT_NOISE_RESNET
    for s in native differential bit_serial; do
      train --arch $arch --scheme $s --adc-bits 4 --train-noise-lsb 0.35 $opts --init $M/$arch-qat.pt \
        --out $M/$arch-$s-b4-noise --log $M/$arch-$s-b4-noise.log
    done &
  done
  wait
}

case "${1:-all}" in
  baselines) baselines ;;
  finetune-cnn) finetune fmnist-cnn 7 native differential bit_serial & finetune fmnist-cnn 4 native differential bit_serial & ablation & wait ;;
  finetune-resnet) finetune fmnist-resnet 4 native differential bit_serial ;;
  ablation) ablation ;;
  noise) noise ;;
  all) baselines
       finetune fmnist-cnn 7 native differential bit_serial & finetune fmnist-cnn 4 native differential bit_serial & ablation & wait
       finetune fmnist-resnet 4 native differential bit_serial
       noise ;;
  *) echo "usage: $0 [baselines|finetune-cnn|finetune-resnet|ablation|noise|all]" >&2; exit 2 ;;
esac
