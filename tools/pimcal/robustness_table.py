#!/usr/bin/env python3
"""The robustness table of docs/results.md (issue 6): accuracy of the bundled PIM-QAT models on the
ideal, typical and harsh simulator profiles, over several noise seeds, for

    none   the Program as compiled
    bn     after `pimcal bn` on that device (same profile and seed)
    lin    `pimrun --calibration` with `pimcal adc` measured on that device
    both   `pimcal bn --calibration` (statistics measured through linearized codes), run with
           `pimrun --calibration`
    adj    the adjusted-precision model (trained at a lower b_PIM than it is deployed at,
           tools/qat/train.py --train-adc-bits), no correction

Models: every `<arch>-<scheme>-b<bits>.onnx` in the model directories (tools/qat/models by
default, plus --models-dir), so models that arrive later are picked up by re-running. An
adjusted-precision model is any model there whose training log's command has
`--train-adc-bits T` with T below its `--adc-bits`; it fills the adj column of the model with the
same arch, scheme and deploy bits. Without one, the column says so.

Every number comes from running the real tools (pimc, pimcal, pimrun) on the test set. Measured
accuracies are kept in a cache (--cache, JSON, committed) keyed by the model files' SHA-256,
profile, seed, image count and BN samples, so adding a model or a seed runs only what is new;
after a change to the tools, re-measure with --cache ''. make_results.py calls
robustness_section(measure=False): it prints what the cache holds and never runs a tool.
The 'ideal' profile has no noise and no per-column variation: one seed is run for it.

    OMP_NUM_THREADS=1 nice -n 19 tools/pimcal/robustness_table.py --build build --seeds 1,2,3 --limit 500 --jobs 1
"""
import argparse
import concurrent.futures
import fcntl
import glob
import hashlib
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
MODELS = os.path.join(ROOT, "tools", "qat", "models")
CACHE = os.path.join(HERE, "robustness_cache.json")
DATA = "/usr/share/datasets/fashion-mnist"
CONDITIONS = ["none", "bn", "lin", "both", "adj"]
MODEL_NAME = re.compile(r"^(?P<arch>.+)-(?P<scheme>native|differential|bit_serial)-b(?P<bits>\d+)$")


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {p.returncode}: {p.stderr.strip()}")
    return p.stdout


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class Model:
    """A model file; an adjusted-precision model's name may end in -adj<T> (T: training b_PIM)."""

    def __init__(self, path, train_bits=None):
        self.path = path
        self.name = os.path.basename(path)[:-len(".onnx")]
        self.train_bits = train_bits
        m = MODEL_NAME.match(re.sub(r"-adj\d+$", "", self.name))
        self.arch, self.scheme, self.bits = m["arch"], m["scheme"], int(m["bits"])
        self.key = f"{self.arch}-{self.scheme}-b{self.bits}"

    @property
    def mode(self):
        return "unsigned" if self.scheme == "differential" else "signed"


def training_bits(onnx_path):
    """(deploy adc bits, train adc bits) from the training log's command line, or None."""
    log = onnx_path[:-len(".onnx")] + ".log"
    if not os.path.exists(log):
        return None
    with open(log) as f:
        first = f.readline()
    if not first.startswith("# command:"):
        return None
    args = shlex.split(first[len("# command:"):])
    def value(flag, default):
        return int(args[args.index(flag) + 1]) if flag in args else default
    deploy = value("--adc-bits", 7)
    return deploy, value("--train-adc-bits", deploy)


def discover(dirs):
    """(models, adjusted): PIM-QAT models by key, and adjusted-precision models by the key of the
    model they stand beside."""
    models, adjusted = {}, {}
    for d in dirs:
        for path in sorted(glob.glob(os.path.join(d, "*.onnx"))):
            base = os.path.basename(path)[:-len(".onnx")]
            if base.endswith(".qonnx"):
                continue
            if not MODEL_NAME.match(re.sub(r"-adj\d+$", "", base)):
                continue  # conventional-QAT baselines and other files
            bits = training_bits(path)
            if bits and bits[1] < bits[0]:
                adjusted[Model(path).key] = Model(path, bits[1])
            elif MODEL_NAME.match(base):
                m = Model(path)
                models[m.key] = m
    return models, adjusted


class Tools:
    def __init__(self, build, data, limit, bn_samples, adc_repeats, work):
        self.bin = os.path.join(build, "bin")
        self.data, self.limit, self.bn_samples, self.work = data, limit, bn_samples, work
        self.adc_repeats = adc_repeats
        self.lock = threading.Lock()
        self.pending = {}  # file -> its lock, so two jobs never build the same file

    def tool(self, name):
        return os.path.join(self.bin, name)

    def once(self, out, make):
        """Builds `out` with make(out) once, even when several threads ask for it."""
        with self.lock:
            lock = self.pending.setdefault(out, threading.Lock())
        with lock:
            if not os.path.exists(out):
                make(out + ".tmp")
                os.replace(out + ".tmp", out)
        return out

    def compile(self, model):
        return self.once(os.path.join(self.work, model.name + ".pimb"),
                         lambda out: run([self.tool("pimc"), "compile", model.path, "-o", out]))

    def adc(self, model, device, tag):
        # One measurement per (device, resolution, mode), shared by the models that use it.
        out = os.path.join(self.work, f"{tag}-b{model.bits}-{model.mode}.cal.pb")
        return self.once(out, lambda o: run([self.tool("pimcal"), "adc", "--device", device, "--adc-bits",
                                             str(model.bits), "--modes", model.mode, "--repeats",
                                             str(self.adc_repeats), "-o", o]))

    def bn(self, pimb, device, out, calibration=None):
        cmd = [self.tool("pimcal"), "bn", pimb, "--device", device, "--samples", str(self.bn_samples),
               "--data", os.path.join(self.data, "train-images-idx3-ubyte.gz")]
        if calibration:
            cmd += ["--calibration", calibration]
        return self.once(out, lambda o: run(cmd + ["-o", o]))

    def accuracy(self, pimb, device, calibration=None):
        cmd = [self.tool("pimrun"), pimb, "--device", device, "--json",
               "--input", os.path.join(self.data, "t10k-images-idx3-ubyte.gz"),
               "--labels", os.path.join(self.data, "t10k-labels-idx1-ubyte.gz")]
        if self.limit:
            cmd += ["--limit", str(self.limit)]
        if calibration:
            cmd += ["--calibration", calibration]
        return 100.0 * json.loads(run(cmd))["accuracy"]


def seeds_for(profile, seeds):
    return seeds[:1] if profile == "ideal" else seeds


def cache_key(model, profile, seed, tools):
    return "|".join([model.name, sha256(model.path)[:16], profile, str(seed), str(tools.limit), str(tools.bn_samples),
                     str(tools.adc_repeats)])


def measure(tools, models, adjusted, profiles, seeds, cache, cache_path, jobs, log, run_tools=True, adj_only=False):
    """results[model][profile][condition] = [accuracy per seed]; without run_tools, only what the
    cache holds. The adjusted-precision model's accuracy is cached under its own key, so it can
    arrive after its partner was measured."""
    cache_lock = threading.Lock()

    def cached(key, make, run=True):
        with cache_lock:
            if key in cache or not run_tools or not run:
                return cache.get(key)
        value = make()
        with cache_lock:
            cache[key] = value
            save_cache(cache_path, cache)  # after every run: a long measurement can be resumed
        return value

    def corrections(model, profile, seed):
        device, tag = f"sim:profile={profile},seed={seed}", f"{profile}-{seed}"
        pimb = tools.compile(model)
        cal = tools.adc(model, device, tag)
        bn = tools.bn(pimb, device, os.path.join(tools.work, f"{model.name}-{tag}.bn.pimb"))
        bn_lin = tools.bn(pimb, device, os.path.join(tools.work, f"{model.name}-{tag}.bnlin.pimb"), cal)
        row = {"none": tools.accuracy(pimb, device), "bn": tools.accuracy(bn, device),
               "lin": tools.accuracy(pimb, device, cal), "both": tools.accuracy(bn_lin, device, cal)}
        log(f"{model.name} {tag}: " + ", ".join(f"{k} {v:.2f}" for k, v in row.items()))
        return row

    def job(model, profile, seed):
        row = dict(cached(cache_key(model, profile, seed, tools), lambda: corrections(model, profile, seed),
                          not adj_only) or {})
        adj = adjusted.get(model.key)
        if adj:
            device = f"sim:profile={profile},seed={seed}"
            def adjusted_accuracy():
                acc = tools.accuracy(tools.compile(adj), device)
                log(f"{adj.name} {profile}-{seed}: {acc:.2f}")
                return acc

            acc = cached(cache_key(adj, profile, seed, tools), adjusted_accuracy)
            if acc is not None:
                row["adj"] = acc
        return model, profile, row

    work = [(m, p, s) for m in models.values() for p in profiles for s in seeds_for(p, seeds)]
    results = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        for model, profile, row in pool.map(lambda a: job(*a), work):
            for cond, acc in row.items():
                results.setdefault(model.name, {}).setdefault(profile, {}).setdefault(cond, []).append(acc)
    return results


def cell(values, expected):
    """mean ± sample sd; says how many seeds when fewer than `expected` were measured."""
    if not values:
        return "n/a"
    partial = f" ({len(values)} of {expected} seeds)" if len(values) < expected else ""
    if len(values) == 1:
        return f"{values[0]:.2f}{partial}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}{partial}"


def markdown(results, models, adjusted, seeds, limit, bn_samples, adc_repeats, profiles):
    adj_note = ("adj: " + "; ".join(f"`{a.name}` (trained at b_PIM = {a.train_bits}, deployed at {a.bits}) "
                                    f"in the row of `{models[k].name}`" for k, a in adjusted.items() if k in models)
                if any(k in models for k in adjusted) else
                "adj: no adjusted-precision model is bundled (tools/qat/train.py --train-adc-bits), so that "
                "column is n/a")
    lines = ["## Robustness to chip non-idealities", "",
             f"Top-1 accuracy (%) on the first {limit or 10000} Fashion-MNIST test images, mean ± sample "
             f"standard deviation over simulator seeds {', '.join(map(str, seeds))} of the profile (the seed "
             "draws the per-column ADC errors and the noise); 'ideal' has neither, so it is one run. "
             f"none: as compiled; bn: `pimcal bn` on that device ({bn_samples} training images); "
             f"lin: `pimrun --calibration` with `pimcal adc --repeats {adc_repeats}` measured on that device; both: `pimcal bn "
             "--calibration` then `pimrun --calibration`. " + adj_note + ". "
             "Generated by tools/pimcal/robustness_table.py (commands in docs/calibration.md).", "",
             "| model | profile | " + " | ".join(CONDITIONS) + " |",
             "|---|---|" + "---|" * len(CONDITIONS)]
    for name in sorted(results):
        for profile in profiles:
            by_cond = results[name].get(profile)
            if by_cond:
                lines.append(f"| {name} | {profile} | " + " | ".join(cell(by_cond.get(c, []), len(seeds_for(profile, seeds))) for c in CONDITIONS)
                             + " |")
    missing = sorted(m.name for m in models.values() if m.name not in results)
    if missing:
        lines += ["", "Not measured yet (run robustness_table.py): " + ", ".join(f"`{n}`" for n in missing) + "."]
    # The claim: on 'typical', BN calibration within 1 point of the ideal chip. The ideal
    # chip is taken both as compiled and BN-calibrated: a model whose compiled statistics do not
    # fit even the ideal chip (fmnist-resnet-differential-b4) gains from BN calibration there
    # too, and comparing with its uncalibrated ideal accuracy would flatter the typical chip.
    claims = []
    for name in sorted(results):
        ideal = results[name].get("ideal", {})
        typ = results[name].get("typical", {}).get("bn")
        if ideal.get("none") and ideal.get("bn") and typ:
            t = statistics.mean(typ)
            gaps = [statistics.mean(ideal["none"]) - t, statistics.mean(ideal["bn"]) - t]
            verdict = "yes" if max(gaps) <= 1.0 else "**no**"
            claims.append(f"| {name} | {statistics.mean(ideal['none']):.2f} | {statistics.mean(ideal['bn']):.2f} | "
                          f"{cell(typ, len(seeds))} | {gaps[0]:+.2f} | {gaps[1]:+.2f} | {verdict} |")
    if claims:
        images = limit or 10000
        se = 100 * (0.88 * 0.12 / images) ** 0.5  # binomial, at the models' ~88% accuracy
        lines += ["", "The check of issue 6 (on 'typical', BN calibration within 1 point of the ideal chip): the ideal "
                  "chip as compiled and BN-calibrated, 'typical' with BN calibration (mean ± sd over seeds), and the "
                  "gaps (ideal minus typical; 'within 1 point' needs both gaps <= 1). On "
                  f"{images} images one accuracy has a binomial standard error of about {se:.1f} points, so a gap "
                  "is resolved only to about that.", "",
                  "| model | ideal | ideal, bn | typical, bn | gap | gap to ideal, bn | within 1 point |",
                  "|---|---|---|---|---|---|---|"] + claims
    return "\n".join(lines) + "\n\n"


def load_cache(path):
    if path and os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    return {}


def save_cache(path, cache):
    """Merges `cache` into the file (several runs may measure different models at once)."""
    if not path:
        return
    with open(path + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        merged = load_cache(path)
        merged.update(cache)
        cache.update(merged)
        with open(path + ".tmp", "w") as f:
            json.dump(merged, f, indent=1, sort_keys=True)
            f.write("\n")
        os.replace(path + ".tmp", path)


def robustness_section(build=os.path.join(ROOT, "build"), model_dirs=(MODELS,), profiles=("ideal", "typical", "harsh"),
                       seeds=(1, 2, 3), limit=500, bn_samples=512, adc_repeats=4, data=DATA, jobs=1, cache_path=CACHE,
                       only=None, measure_missing=True, adj_only=False, log=lambda s: print(s, file=sys.stderr)):
    """The Markdown section. make_results.py calls it with measure_missing=False (cache only)."""
    models, adjusted = discover(model_dirs)
    if only:
        models = {k: m for k, m in models.items() if re.search(only, m.name)}
    cache = load_cache(cache_path)
    seeds = list(seeds)
    with tempfile.TemporaryDirectory() as work:
        tools = Tools(build, data, limit, bn_samples, adc_repeats, work)
        results = measure(tools, models, adjusted, profiles, seeds, cache, cache_path if measure_missing else None, jobs,
                          log, measure_missing, adj_only)
    return markdown(results, models, adjusted, seeds, limit, bn_samples, adc_repeats, profiles)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"), help="build directory with bin/pimc, pimrun, pimcal")
    ap.add_argument("--models-dir", action="append", default=[], help="also look for models here (repeatable)")
    ap.add_argument("--only", help="only models whose name matches this regex")
    ap.add_argument("--profiles", default="ideal,typical,harsh")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--limit", type=int, default=500, help="test images (0: all 10000)")
    ap.add_argument("--bn-samples", type=int, default=512, help="pimcal bn --samples (default: pimcal bn's own default, 512)")
    ap.add_argument("--adc-repeats", type=int, default=4, help="pimcal adc --repeats")
    ap.add_argument("--jobs", type=int, default=1, help="(model, profile, seed) runs in parallel")
    ap.add_argument("--data", default=os.environ.get("PIM_FMNIST_DIR", DATA))
    ap.add_argument("--cache", default=CACHE, help="JSON cache of measured accuracies ('' for none)")
    ap.add_argument("--adj-only", action="store_true",
                    help="measure only the adjusted-precision models (e.g. while another run measures the rest)")
    ap.add_argument("--out", help="write the Markdown here instead of stdout")
    a = ap.parse_args()
    try:
        md = robustness_section(a.build, [MODELS] + a.models_dir, a.profiles.split(","),
                                [int(s) for s in a.seeds.split(",")], a.limit, a.bn_samples, a.adc_repeats, a.data,
                                a.jobs, a.cache, a.only, adj_only=a.adj_only)
    except RuntimeError as e:
        print(f"robustness_table: {e}", file=sys.stderr)
        return 1
    if a.out:
        with open(a.out, "w") as f:
            f.write(md)
    else:
        sys.stdout.write(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
