#!/usr/bin/python3
"""The BN calibration check (docs/calibration.md 4) on a validation slice of the test set, for
choosing a training recipe without looking at the images the check is reported on
(robustness_table.py: the first 8000 for the check, the first 500 for the table). Default slice:
test images 8000-9999.

For each model: the ideal chip as compiled and after `pimcal bn`, and 'typical' after `pimcal bn`
for each seed. Models given together that stand for the same arch, scheme and ADC bits (a model
and its -noise partner) share one reference, the best of their ideal-chip figures; the gap is
that reference minus the mean 'typical' figure, as in the check.

    OMP_NUM_THREADS=1 tools/pimcal/validation_check.py \\
        tools/qat/models/fmnist-cnn-differential-b4.onnx tools/qat/models/fmnist-cnn-differential-b4-noise.onnx
"""
import argparse
import os
import statistics
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "qat"))
import data  # noqa: E402  (tools/qat/data.py)
import robustness_table as rt  # noqa: E402

IMAGES = 10000
CHECK_IMAGES = rt.CLAIM_IMAGES  # the check is reported on test images [0, CHECK_IMAGES)


def write_slice(directory, first, count, work):
    """The test images [first, first + count) as float32 NCHW .npy (scaled 1/255) and int64
    labels, the forms pimrun reads."""
    images, labels = data.load_split("t10k", directory)
    x, y = os.path.join(work, "images.npy"), os.path.join(work, "labels.npy")
    np.save(x, images[first:first + count])
    np.save(y, labels[first:first + count])
    return x, y


def measure(tools, model, seeds, bn_chip=None):
    """(ideal, ideal after pimcal bn, ['typical' after pimcal bn per seed]). With `bn_chip` (a chip
    file), the statistics of the 'typical' figures are measured on that chip with the same seed
    instead, and the calibrated Program is then run on 'typical'."""
    row = tools.none_and_bn(model, "sim", "ideal")
    pimb = tools.compile(model)
    typical = []
    for s in seeds:
        device = rt.device_of("typical", s)[0]
        calibrate_on = f"sim:profile={bn_chip},seed={s}" if bn_chip else device
        calibrated = tools.bn(pimb, calibrate_on, os.path.join(tools.work, f"{model.name}-bn-{s}.pimb"))
        typical.append(tools.accuracy(calibrated, device))
    return row["none"], row["bn"], typical


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", help="ONNX models (named <arch>-<scheme>-b<bits>[-noise|-adj<T>].onnx)")
    ap.add_argument("--first", type=int, default=8000, help="first test image of the slice")
    ap.add_argument("--count", type=int, default=2000, help="images in the slice")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--bn-samples", type=int, default=512, help="training images for pimcal bn")
    ap.add_argument("--bn-chip", metavar="FILE",
                    help="measure the 'typical' figures' BN statistics on this chip file (same seed), "
                         "e.g. 'typical' without its noise, then run on 'typical'")
    ap.add_argument("--build", default=os.path.join(rt.ROOT, "build"))
    ap.add_argument("--data", default=os.environ.get("PIM_FMNIST_DIR", rt.DATA))
    args = ap.parse_args()
    if not (0 <= args.first and 0 < args.count and args.first + args.count <= IMAGES):
        ap.error(f"--first {args.first} --count {args.count}: the slice must lie within the {IMAGES} test images")
    if args.bn_samples <= 0:
        ap.error(f"--bn-samples {args.bn_samples}: must be positive")
    if args.bn_chip and not os.path.isfile(args.bn_chip):
        ap.error(f"--bn-chip {args.bn_chip}: no such file")
    if args.first < CHECK_IMAGES:
        print(f"note: the slice overlaps the first {CHECK_IMAGES} test images, which the check is reported on",
              file=sys.stderr)
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        ap.error(f"--seeds {args.seeds!r}: expected comma-separated integers")
    for path in args.models:
        if not path.endswith(".onnx") or not os.path.isfile(path):
            ap.error(f"{path}: not an .onnx file")
        if not rt.MODEL_NAME.match(rt.PARTNER_SUFFIX.sub("", os.path.basename(path)[:-len(".onnx")])):
            ap.error(f"{path}: name is not <arch>-<scheme>-b<bits>[-noise|-adj<T>].onnx")

    with tempfile.TemporaryDirectory(prefix="pim-validation-") as work:
        images, labels = write_slice(args.data, args.first, args.count, work)
        tools = rt.Tools(args.build, args.data, 0, bn_samples=args.bn_samples, adc_repeats=4, work=work,
                         test_set=(images, labels))
        rows = {}
        for path in args.models:
            model = rt.Model(path)
            rows[model.name] = (model, *measure(tools, model, seeds, args.bn_chip))
            ideal, ideal_bn, typical = rows[model.name][1:]
            print(f"{model.name}: ideal {ideal:.2f}, ideal bn {ideal_bn:.2f}, typical bn "
                  f"{statistics.mean(typical):.2f} ({', '.join(f'{v:.2f}' for v in typical)})", flush=True)
    if args.bn_chip:
        print(f"\n'typical' figures: BN statistics measured on {args.bn_chip} (same seed), run on 'typical'")
    print(f"\ntest images {args.first}-{args.first + args.count - 1}, seeds {args.seeds}, {args.bn_samples} BN "
          "images; gap: best ideal figure of the models of the same arch, scheme and bits minus the mean 'typical' after pimcal bn")
    for name, (model, ideal, ideal_bn, typical) in rows.items():
        reference = max(max(r[1], r[2]) for r in rows.values() if r[0].key == model.key)
        print(f"{name}: gap {reference - statistics.mean(typical):+.2f}")


if __name__ == "__main__":
    main()
