#!/usr/bin/python3
"""How much of each ADC non-ideality batch-norm calibration can undo, per scheme
(docs/calibration.md section 5).

BN calibration replaces each BatchNorm's mean and variance with the chip's own: per output
channel it is an affine correction of the layer's pre-BN output. It can therefore remove any
error of the accumulated sum S that is an affine function of the ideal S per channel (gain,
offset), and nothing else. This script measures, for every PIM layer of a model, how large the
part of the error is that no per-channel affine map removes:

    S      the ideal accumulated codes (docs/onnx-convention.md 3.1) for the layer's ideal input codes,
    S'     the same with a non-ideal ADC (the simulator's model, docs/chip-model.md section 4),
    r      S' - (a S + b), a and b fitted per output channel by least squares,
    ratio  rms(r) / (a * std(S)) per channel, RMS over channels: the residual error relative to
           the signal after the best BN correction (0 on an ideal ADC).

Each layer sees the ideal chip's input, so the figure isolates that layer's own conversion errors.
The non-ideal ADC follows the simulator: analog value u = p / Delta in LSB, v = gain u + offset
+ sigma n, code = lo + number of thresholds <= v - lo, thresholds i + 0.5 + bow 4 f (1 - f) + DNL
(nondecreasing), with gain, offset and DNL drawn per conversion column: one column per (row group,
output, conversion) -- the differential scheme's two conversions and every row group have their
own column, as on the chip. This is a second, independent model written for the study (numpy,
not the simulator's code); the accuracies it explains are measured with the real tools.

    /usr/bin/python3 tools/pimcal/scheme_error_study.py --images 100 \\
        fmnist-cnn-native-b4 fmnist-cnn-differential-b4 fmnist-cnn-bit_serial-b4
"""
import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tools", "qat"))
import data  # noqa: E402
import reference  # noqa: E402

# docs/chip-model.md: the 'typical' profile, and each of its components alone.
TYPICAL = dict(gain_sigma=0.01, offset_sigma_lsb=0.3, inl_bow_lsb=0.5, dnl_sigma_lsb=0.15, noise_sigma_lsb=0.35)
PROFILES = {
    "noise": dict(noise_sigma_lsb=0.35),
    "offset": dict(offset_sigma_lsb=0.3),
    "bow": dict(inl_bow_lsb=0.5),
    "dnl": dict(dnl_sigma_lsb=0.15),
    "gain": dict(gain_sigma=0.01),
    "typical": TYPICAL,
}


class Adc:
    """Non-ideal converters, one per column (drawn on first use of a column key)."""

    def __init__(self, bits, signed, params, seed):
        self.bits, self.params = bits, params
        self.lo = -(2 ** (bits - 1)) if signed else 0
        self.rng = np.random.default_rng(seed)

    def columns(self, o):
        """Draws o columns: (gain [o], offset [o], thresholds [o, 2^b - 1])."""
        p, rng = self.params, self.rng
        n_thr = 2 ** self.bits - 1
        gain = 1 + p.get("gain_sigma", 0) * rng.standard_normal(o)
        offset = p.get("offset_sigma_lsb", 0) * rng.standard_normal(o)
        f = np.arange(1, n_thr + 1) / (n_thr + 1)
        thr = np.arange(n_thr) + 0.5 + p.get("inl_bow_lsb", 0) * 4 * f * (1 - f)
        thr = thr[None, :] + p.get("dnl_sigma_lsb", 0) * rng.standard_normal((o, n_thr))
        return gain, offset, np.maximum.accumulate(thr, axis=1)

    def convert(self, u, columns):
        """Codes for analog values u [M, O] (in LSB), output o on column o of `columns`."""
        gain, offset, thr = columns
        v = gain[None, :] * u + offset[None, :]
        if self.params.get("noise_sigma_lsb", 0):
            v = v + self.params["noise_sigma_lsb"] * self.rng.standard_normal(u.shape)
        idx = v - self.lo
        codes = np.zeros(u.shape)
        for t in range(thr.shape[1]):  # count thresholds <= idx, per column
            codes += idx >= thr[None, :, t]
        return self.lo + codes


def nonideal_matmul(cols, Q, scheme, adc_bits, rows, delta, b_a, adc):
    """S' for convention 3.3 with `adc` converting every conversion."""
    M, K = cols.shape
    S = np.zeros((M, Q.shape[0]))
    for g0 in range(0, K, rows):
        xg = cols[:, g0:g0 + rows].astype(np.float64)
        qg = Q[:, g0:g0 + rows].astype(np.float64)
        o = Q.shape[0]
        if scheme == "native":
            S += adc.convert(xg @ qg.T / delta, adc.columns(o))
        elif scheme == "differential":
            S += (adc.convert(xg @ np.maximum(qg, 0).T / delta, adc.columns(o))
                  - adc.convert(xg @ np.maximum(-qg, 0).T / delta, adc.columns(o)))
        else:
            xi = xg.astype(np.int64)
            cols_g = adc.columns(o)  # bit planes reuse the column (docs/chip-model.md)
            for j in range(b_a):
                S += (2.0 ** j) * adc.convert(((xi >> j) & 1) @ qg.T / delta, cols_g)
    return S


def residual_ratio(S, S2):
    """RMS over channels of rms(S2 - affine fit on S) / (slope * std(S))."""
    ratios = []
    for c in range(S.shape[1]):
        s, t = S[:, c], S2[:, c]
        if s.std() == 0:
            continue
        a, b = np.polyfit(s, t, 1)
        r = t - (a * s + b)
        ratios.append((r.std() / (abs(a) * s.std())) ** 2)
    return float(np.sqrt(np.mean(ratios)))


def study(model_path, images, profiles, seed):
    ref = reference.Reference(model_path)
    captured = []
    original = reference.pim_matmul

    def capture(cols, Q, scheme, adc_bits, rows, delta, b_a):
        S = original(cols, Q, scheme, adc_bits, rows, delta, b_a)
        captured.append((cols.copy(), Q, scheme, adc_bits, rows, delta, b_a, S))
        return S

    reference.pim_matmul = capture
    try:
        ref.run(images, batch=len(images))
    finally:
        reference.pim_matmul = original
    names = [n for n, l in ref.layers.items() if l.placement == "pim"]
    out = {}
    for name, (cols, Q, scheme, bits, rows, delta, b_a, S) in zip(names, captured):
        for prof in profiles:
            adc = Adc(bits, scheme != "differential", PROFILES[prof], seed)
            S2 = nonideal_matmul(cols, Q, scheme, bits, rows, delta, b_a, adc)
            out.setdefault(name, {})[prof] = residual_ratio(S, S2)
        # The baseline the model was trained with: the ideal ADC's own rounding against the
        # exact (unquantized) sum of u over the row groups.
        exact = np.zeros_like(S)
        conv_u, diff_u = [], []
        for g0 in range(0, Q.shape[1], rows):
            xg = cols[:, g0:g0 + rows].astype(np.float64)
            qg = Q[:, g0:g0 + rows].astype(np.float64)
            if scheme == "bit_serial":
                xi = xg.astype(np.int64)
                for j in range(b_a):
                    u = ((xi >> j) & 1) @ qg.T / delta
                    exact += (2.0 ** j) * u
                    conv_u.append(np.abs(u).mean())
                continue
            up, un = xg @ np.maximum(qg, 0).T / delta, xg @ np.maximum(-qg, 0).T / delta
            exact += up - un
            diff_u.append(np.abs(up - un).mean())
            conv_u += [up.mean(), un.mean()] if scheme == "differential" else [np.abs(up - un).mean()]
        out[name]["quantization"] = residual_ratio(exact, S)
        out[name]["|u|"] = float(np.mean(conv_u))
        out[name]["|u+ - u-|"] = float(np.mean(diff_u)) if diff_u else float("nan")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", help="model names in tools/qat/models (without .onnx)")
    ap.add_argument("--images", type=int, default=100, help="first N Fashion-MNIST test images")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--profiles", default=",".join(PROFILES))
    ap.add_argument("--data", default=os.environ.get("PIM_FMNIST_DIR", "/usr/share/datasets/fashion-mnist"))
    a = ap.parse_args()
    x = data.load_images(os.path.join(a.data, "t10k-images-idx3-ubyte.gz"))[:a.images]
    profiles = a.profiles.split(",")
    print("residual error after the best per-channel affine (BN) correction, relative to the signal "
          f"(%), first {a.images} test images, seed {a.seed}")
    print("| model | layer | ideal ADC rounding | " + " | ".join(profiles) +
          " | mean abs(u) per conversion (LSB) | mean abs(u+ - u-) per group (LSB) |")
    print("|---|---|---|" + "---|" * (len(profiles) + 2))
    for m in a.models:
        res = study(os.path.join(ROOT, "tools", "qat", "models", m + ".onnx"), x, profiles, a.seed)
        for layer, r in res.items():
            print(f"| {m} | {layer} | {100 * r['quantization']:.1f} | " + " | ".join(f"{100 * r[p]:.1f}" for p in profiles)
                  + f" | {r['|u|']:.2f} | " + ("-" if np.isnan(r['|u+ - u-|']) else f"{r['|u+ - u-|']:.2f}") + " |",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
