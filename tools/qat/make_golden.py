#!/usr/bin/python3
"""Golden vectors for the C++ side: for each bundled model tools/qat/models/<model>.onnx (QDQ
form) writes tests/data/golden/<model>.npz with

    input          the first 64 Fashion-MNIST test images, float32 NCHW in [0, 1]
    logits         float64 [64, 10], the reference's output for all 64 images
    <value name>   every node output as the numpy reference computed it (float64; QuantizeLinear
                   codes in their uint8 container), for the first FULL images (default 1)
    <node>:S       the integer accumulator of each quantized matrix layer (int64), first FULL
    full_images    int64 scalar FULL: how many leading images the per-node tensors cover

Every node output of all 64 images would be ~20 MB per model in float64 (mostly BN and conv
outputs, incompressible); one image keeps each file near 0.5 MB while every tensor is
still checked bit for bit, and the 64 logits cover the rest.

    /usr/bin/python3 tools/qat/make_golden.py [--images 64] [--full-images 1] [--data-dir DIR]
"""
import argparse
import glob
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import data  # noqa: E402
import reference  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
GOLDEN = os.path.join(ROOT, "tests", "data", "golden")


def golden_values(model_path, x, full):
    ref = reference.Reference(model_path)
    logits = ref.run(x)
    _, vals = ref.run(x[:full], keep=True)
    vals["input"] = x.astype(np.float32)
    vals["logits"] = logits
    vals["full_images"] = np.array(full, np.int64)
    return vals


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--full-images", type=int, default=1)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("models", nargs="*", help="model names (default: all bundled)")
    args = ap.parse_args(argv)
    x, _ = data.load_split("t10k", args.data_dir)
    x = x[:args.images]
    os.makedirs(GOLDEN, exist_ok=True)
    paths = sorted(p for p in glob.glob(os.path.join(HERE, "models", "*.onnx"))
                   if not p.endswith(".qonnx.onnx"))
    for path in paths:
        name = os.path.basename(path)[:-len(".onnx")]
        if args.models and name not in args.models:
            continue
        vals = golden_values(path, x, args.full_images)
        out = os.path.join(GOLDEN, name + ".npz")
        reference.dump_npz(out, vals)
        print(f"wrote {os.path.relpath(out)} ({os.path.getsize(out)} bytes, {len(vals)} tensors)")


if __name__ == "__main__":
    main()
