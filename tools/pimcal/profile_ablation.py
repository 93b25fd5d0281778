#!/usr/bin/python3
"""Which ADC non-ideality BN calibration leaves uncorrected (docs/calibration.md section 5).

For each model, runs the real tools on chips that have one component of the 'typical' profile
at a time (sim/chips/typical.textproto: gain, offset, INL bow, DNL, thermal noise), all of them
but the noise, and all of them: `pimc compile`, `pimcal bn` on that chip, and `pimrun` of the
compiled and the BN-calibrated Program, printing top-1 accuracies. The profile files are written
to a temporary directory from typical.textproto, so they follow it.

    nice -n 19 /usr/bin/python3 tools/pimcal/profile_ablation.py --build build --limit 2000 \\
        fmnist-cnn-native-b4 fmnist-cnn-differential-b4
"""
import argparse
import os
import re
import sys
import tempfile

from robustness_table import Model, Tools

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
COMPONENTS = ["gain_sigma", "offset_sigma_lsb", "inl_bow_lsb", "dnl_sigma_lsb", "noise_sigma_lsb"]
VARIANTS = {  # name -> components kept from 'typical'
    "ideal": [],
    "gain": ["gain_sigma"],
    "offset": ["offset_sigma_lsb"],
    "bow": ["inl_bow_lsb"],
    "dnl": ["dnl_sigma_lsb"],
    "noise": ["noise_sigma_lsb"],
    "no-noise": ["gain_sigma", "offset_sigma_lsb", "inl_bow_lsb", "dnl_sigma_lsb"],
    "typical": COMPONENTS,
}


def write_profile(directory, name, keep):
    """typical.textproto with the profile's components not in `keep` removed."""
    with open(os.path.join(ROOT, "sim", "chips", "typical.textproto")) as f:
        text = f.read()
    for c in COMPONENTS:
        if c not in keep:
            text = re.sub(rf"^\s*{c}:.*\n", "", text, flags=re.M)
    text = text.replace('name: "typical"', f'name: "typical-{name}"')
    path = os.path.join(directory, f"{name}.textproto")
    with open(path, "w") as f:
        f.write(text)
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", help="model names in tools/qat/models (without .onnx)")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--limit", type=int, default=2000, help="first N test images")
    ap.add_argument("--bn-samples", type=int, default=512)
    ap.add_argument("--data", default=os.environ.get("PIM_FMNIST_DIR", "/usr/share/datasets/fashion-mnist"))
    a = ap.parse_args()

    print(f"top-1 accuracy (%), first {a.limit} test images, seed {a.seed}, pimcal bn --samples {a.bn_samples}")
    print("| model | chip | as compiled | BN-calibrated |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as work:
        # The robustness table's own tool calls (pimc compile, pimcal bn, pimrun --json).
        tools = Tools(a.build, a.data, a.limit, a.bn_samples, adc_repeats=None, work=work)
        for m in a.models:
            pimb = tools.compile(Model(os.path.join(ROOT, "tools", "qat", "models", m + ".onnx")))
            for v in a.variants.split(","):
                device = f"sim:profile={write_profile(work, v, VARIANTS[v])},seed={a.seed}"
                bn = tools.bn(pimb, device, os.path.join(work, f"{m}-{v}.bn.pimb"))
                print(f"| {m} | {v} | {tools.accuracy(pimb, device):.2f} | {tools.accuracy(bn, device):.2f} |",
                      flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RuntimeError as e:
        print(f"profile_ablation: {e}", file=sys.stderr)
        sys.exit(1)
