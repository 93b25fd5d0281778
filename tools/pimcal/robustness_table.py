#!/usr/bin/env python3
"""The robustness table of docs/results.md: accuracy of the bundled PIM-QAT models on the
ideal, typical and harsh simulator profiles, over several noise seeds, for

    none   the Program as compiled
    bn     after `pimcal bn` on that device (same profile and seed)
    lin    `pimrun --calibration` with `pimcal adc` measured on that device
    both   `pimcal bn --calibration` (statistics measured through linearized codes), run with
           `pimrun --calibration`
    adj    the adjusted-precision model (trained at a lower b_PIM than it is deployed at,
           tools/qat/train.py --train-adc-bits), no correction
    nt     the noise-trained model (trained with thermal noise on every ADC input,
           tools/qat/train.py --train-noise-lsb), no correction
    nt bn  the noise-trained model after `pimcal bn` on that device

Models: every `<arch>-<scheme>-b<bits>.onnx` in the model directories (tools/qat/models by
default, plus --models-dir), so models that arrive later are picked up by re-running. Partner
models stand beside the model with the same arch, scheme and deploy bits: an adjusted-precision
model is one whose training log's command has `--train-adc-bits T` with T below its `--adc-bits`
(name `...-adj<T>`), a noise-trained one has `--train-noise-lsb S` with S > 0 (name `...-noise`).
Without one, the column says so.

The BN calibration check (on 'typical', BN calibration within 1 point of the ideal chip) is measured
separately on more test images (--claim-limit, default 8000: the test images that
validation_check.py's slice, 8000-9999, leaves out): the ideal chip as compiled and
BN-calibrated and 'typical' with BN calibration, for every model and partner (adjusted-precision
and noise-trained).

Every number comes from running the real tools (pimc, pimcal, pimrun) on the test set. Measured
accuracies are kept in a cache (--cache, JSON, committed) keyed by the model files' SHA-256,
profile, seed, image count and BN samples, so adding a model or a seed runs only what is new;
after a change to the tools, re-measure with --cache ''. After retraining a model, --prune drops
the entries of its old file. make_results.py calls
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
# Test images the BN calibration check is reported on: [0, 8000). validation_check.py explores
# recipes on 8000-9999, which the check never sees.
CLAIM_IMAGES = 8000
CONDITIONS = ["none", "bn", "lin", "both", "adj", "nt", "nt bn"]
MODEL_NAME = re.compile(r"^(?P<arch>.+)-(?P<scheme>native|differential|bit_serial)-b(?P<bits>\d+)$")
PARTNER_SUFFIX = re.compile(r"-(adj\d+|noise)$")


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {p.returncode}: {p.stderr.strip()}")
    return p.stdout


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class Model:
    """A model file; a partner's name may end in -adj<T> (T: training b_PIM) or -noise."""

    def __init__(self, path, train_bits=None, train_noise=0.0):
        self.path = path
        self.name = os.path.basename(path)[:-len(".onnx")]
        self.train_bits, self.train_noise = train_bits, train_noise
        m = MODEL_NAME.match(PARTNER_SUFFIX.sub("", self.name))
        self.arch, self.scheme, self.bits = m["arch"], m["scheme"], int(m["bits"])
        self.key = f"{self.arch}-{self.scheme}-b{self.bits}"

    @property
    def mode(self):
        return "unsigned" if self.scheme == "differential" else "signed"


def training_options(onnx_path):
    """(deploy adc bits, train adc bits, train noise LSB) from the training log's command line,
    or None."""
    log = onnx_path[:-len(".onnx")] + ".log"
    if not os.path.exists(log):
        return None
    with open(log) as f:
        first = f.readline()
    if not first.startswith("# command:"):
        return None
    args = shlex.split(first[len("# command:"):])
    def value(flag, default, kind=int):
        return kind(args[args.index(flag) + 1]) if flag in args else default
    deploy = value("--adc-bits", 7)
    return deploy, value("--train-adc-bits", deploy), value("--train-noise-lsb", 0.0, float)


def discover(dirs):
    """(models, adjusted, noise_trained): PIM-QAT models by key, and the adjusted-precision and
    noise-trained models by the key of the model they stand beside."""
    models, adjusted, noise_trained = {}, {}, {}
    for d in dirs:
        for path in sorted(glob.glob(os.path.join(d, "*.onnx"))):
            base = os.path.basename(path)[:-len(".onnx")]
            if base.endswith(".qonnx"):
                continue
            if not MODEL_NAME.match(PARTNER_SUFFIX.sub("", base)):
                continue  # conventional-QAT baselines and other files
            options = training_options(path)
            if options and options[1] < options[0]:
                adjusted[Model(path).key] = Model(path, train_bits=options[1])
            elif options and options[2] > 0:
                noise_trained[Model(path).key] = Model(path, train_noise=options[2])
            elif MODEL_NAME.match(base):
                m = Model(path)
                models[m.key] = m
    return models, adjusted, noise_trained


class Tools:
    """The real tools on Fashion-MNIST in `data`: BN calibration on its training images, accuracy
    on the first `limit` test images (0: all), or on `test_set` = (images, labels) files instead."""

    def __init__(self, build, data, limit, bn_samples, adc_repeats, work, test_set=None):
        self.bin = os.path.join(build, "bin")
        self.data, self.limit, self.bn_samples, self.work = data, limit, bn_samples, work
        self.test_set = test_set or (os.path.join(data, "t10k-images-idx3-ubyte.gz"),
                                     os.path.join(data, "t10k-labels-idx1-ubyte.gz"))
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

    def none_and_bn(self, model, device, tag, none=True):
        """{'bn': accuracy after `pimcal bn` on the device, 'none': as compiled (unless none=False)}."""
        pimb = self.compile(model)
        row = {"bn": self.accuracy(self.bn(pimb, device, os.path.join(self.work, f"{model.name}-{tag}.bn.pimb")), device)}
        if none:
            row["none"] = self.accuracy(pimb, device)
        return row

    def accuracy(self, pimb, device, calibration=None):
        cmd = [self.tool("pimrun"), pimb, "--device", device, "--json",
               "--input", self.test_set[0], "--labels", self.test_set[1]]
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


class Cache:
    """Measured values by key, saved to the file after every new value (a long measurement can
    be resumed; several runs may share the file). Without run_tools, only what it holds."""

    def __init__(self, values, path, run_tools):
        self.values, self.path, self.run_tools = values, path, run_tools
        self.lock = threading.Lock()

    def get(self, key, make, run=True):
        with self.lock:
            if key in self.values or not self.run_tools or not run:
                return self.values.get(key)
        value = make()
        with self.lock:
            self.values[key] = value
            save_cache(self.path, self.values)
        return value


def device_of(profile, seed):
    return f"sim:profile={profile},seed={seed}", f"{profile}-{seed}"


def measure(tools, models, adjusted, noise_trained, profiles, seeds, cache, jobs, log, partners_only=False):
    """results[model][profile][condition] = [accuracy per seed]. A partner model's accuracies are
    cached under its own key, so it can arrive after its partner was measured."""

    def corrections(model, profile, seed):
        device, tag = device_of(profile, seed)
        pimb = tools.compile(model)
        cal = tools.adc(model, device, tag)
        bn = tools.bn(pimb, device, os.path.join(tools.work, f"{model.name}-{tag}.bn.pimb"))
        bn_lin = tools.bn(pimb, device, os.path.join(tools.work, f"{model.name}-{tag}.bnlin.pimb"), cal)
        row = {"none": tools.accuracy(pimb, device), "bn": tools.accuracy(bn, device),
               "lin": tools.accuracy(pimb, device, cal), "both": tools.accuracy(bn_lin, device, cal)}
        log(f"{model.name} {tag}: " + ", ".join(f"{k} {v:.2f}" for k, v in row.items()))
        return row

    def adjusted_accuracy(adj, profile, seed):
        acc = tools.accuracy(tools.compile(adj), device_of(profile, seed)[0])
        log(f"{adj.name} {profile}-{seed}: {acc:.2f}")
        return acc

    def noise_trained_accuracy(nt, profile, seed):
        measured = tools.none_and_bn(nt, *device_of(profile, seed))
        row = {"nt": measured["none"], "nt bn": measured["bn"]}
        log(f"{nt.name} {profile}-{seed}: " + ", ".join(f"{k} {v:.2f}" for k, v in row.items()))
        return row

    def job(model, profile, seed):
        row = dict(cache.get(cache_key(model, profile, seed, tools), lambda: corrections(model, profile, seed),
                             not partners_only) or {})
        adj = adjusted.get(model.key)
        if adj:
            acc = cache.get(cache_key(adj, profile, seed, tools), lambda: adjusted_accuracy(adj, profile, seed))
            if acc is not None:
                row["adj"] = acc
        nt = noise_trained.get(model.key)
        if nt:
            row.update(cache.get(cache_key(nt, profile, seed, tools),
                                 lambda: noise_trained_accuracy(nt, profile, seed)) or {})
        return model, profile, row

    return run_jobs(job, [(m, p, s) for m in models.values() for p in profiles for s in seeds_for(p, seeds)], jobs)


def measure_claim(tools, models, seeds, cache, jobs, log):
    """The BN calibration check on tools.limit images: claim[model][profile][condition] = [accuracy per
    seed], 'none' and 'bn' on the ideal chip, 'bn' on 'typical' for every seed."""

    def accuracies(model, profile, seed):
        row = tools.none_and_bn(model, *device_of(profile, seed), none=profile == "ideal")
        log(f"{model.name} {profile}-{seed} ({tools.limit or 10000} images): "
            + ", ".join(f"{k} {v:.2f}" for k, v in row.items()))
        return row

    def job(model, profile, seed):
        return model, profile, cache.get(cache_key(model, profile, seed, tools) + "|claim",
                                         lambda: accuracies(model, profile, seed)) or {}

    return run_jobs(job, [(m, "ideal", seeds[0]) for m in models] + [(m, "typical", s) for m in models for s in seeds],
                    jobs)


def run_jobs(job, work, jobs):
    """Runs job(model, profile, seed) -> (model, profile, row) over `work` on `jobs` threads;
    returns results[model name][profile][condition] = [value per seed, in work order]."""
    results = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        for model, profile, row in pool.map(lambda a: job(*a), work):
            for cond, value in row.items():
                results.setdefault(model.name, {}).setdefault(profile, {}).setdefault(cond, []).append(value)
    return results


def cell(values, expected):
    """mean ± sample sd; says how many seeds when fewer than `expected` were measured."""
    if not values:
        return "n/a"
    partial = f" ({len(values)} of {expected} seeds)" if len(values) < expected else ""
    if len(values) == 1:
        return f"{values[0]:.2f}{partial}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}{partial}"


def partner_note(partners, models, what, flag):
    named = [f"`{p.name}` ({what(p)}) in the row of `{models[k].name}`" for k, p in partners.items() if k in models]
    return "; ".join(named) if named else f"no such model is bundled (tools/qat/train.py {flag}), so n/a"


def markdown(results, claim, models, adjusted, noise_trained, seeds, limit, claim_limit, bn_samples, adc_repeats,
             profiles):
    adj_note = "adj: " + partner_note(adjusted, models, lambda a: f"trained at b_PIM = {a.train_bits}, deployed at "
                                      f"{a.bits}", "--train-adc-bits")
    rows = [k for k in sorted(noise_trained) if k in models]
    nt_note = ("nt, nt bn: the row's noise-trained partner `<model>-noise` (trained with thermal noise on every ADC "
               "input, docs/qat.md) as compiled and after `pimcal bn` on that device, in the rows of "
               + ", ".join(f"`{models[k].name}` ({noise_trained[k].train_noise:g} LSB)" for k in rows)
               if rows else "nt, nt bn: " + partner_note(noise_trained, models, str, "--train-noise-lsb"))
    lines = ["## Robustness to chip non-idealities", "",
             f"Top-1 accuracy (%) on the first {limit or 10000} Fashion-MNIST test images, mean ± sample "
             f"standard deviation over simulator seeds {', '.join(map(str, seeds))} of the profile (the seed "
             "draws the per-column ADC errors and the noise); 'ideal' has neither, so it is one run. "
             f"none: as compiled; bn: `pimcal bn` on that device ({bn_samples} training images); "
             f"lin: `pimrun --calibration` with `pimcal adc --repeats {adc_repeats}` measured on that device; both: `pimcal bn "
             "--calibration` then `pimrun --calibration`. " + adj_note + ". " + nt_note + ". "
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
    return "\n".join(lines) + "\n\n" + claim_markdown(claim, models, [adjusted, noise_trained], seeds, claim_limit)


def claim_markdown(claim, models, partners, seeds, limit):
    """The BN calibration check: on 'typical', BN calibration within 1 point of the ideal chip. The ideal
    chip is taken both as compiled and BN-calibrated: a model whose compiled statistics do not fit
    even the ideal chip (the first fmnist-resnet-differential-b4, docs/results.md at 0f4d65e: 79.6
    as compiled, 87.0 after BN calibration) gains from BN calibration there too, and comparing
    with its uncalibrated ideal accuracy would flatter the typical chip. A partner model
    (noise-trained or adjusted-precision; `partners`: dicts by the standard model's key) is held to
    the better of its own ideal chip and its standard partner's."""
    def ideal(name, cond):
        values = claim.get(name, {}).get("ideal", {}).get(cond)
        return statistics.mean(values) if values else None

    rows = []
    for key in sorted(models):
        for model, partner in [(models[key], None)] + [(p[key], models[key]) for p in partners if key in p]:
            typ = claim.get(model.name, {}).get("typical", {}).get("bn")
            refs = [ideal(model.name, "none"), ideal(model.name, "bn")]
            if partner:
                refs = [max(r, ideal(partner.name, c)) if r is not None and ideal(partner.name, c) is not None else None
                        for r, c in zip(refs, ("none", "bn"))]
            if None in refs or not typ:
                continue
            t = statistics.mean(typ)
            gaps = [r - t for r in refs]
            verdict = "yes" if max(gaps) <= 1.0 else "**no**"
            label = f"{model.name} (vs. the better of it and `{partner.name}`)" if partner else model.name
            rows.append(f"| {label} | {refs[0]:.2f} | {refs[1]:.2f} | {cell(typ, len(seeds))} | {gaps[0]:+.2f} | "
                        f"{gaps[1]:+.2f} | {verdict} |")
    if not rows:
        return ""
    images = limit or 10000
    se = 100 * (0.88 * 0.12 / images) ** 0.5  # binomial, at the models' ~88% accuracy
    return "\n".join([
        "### The BN calibration check", "",
        f"On 'typical', BN calibration within 1 point of the ideal chip, measured on the first {images} test images "
        f"(seeds {', '.join(map(str, seeds))}; `robustness_table.py --claim-limit {limit}`): the ideal chip as "
        "compiled and BN-calibrated, 'typical' with BN calibration (mean ± sd over seeds), and the gaps (ideal minus "
        "typical; 'within 1 point' needs both gaps <= 1). A partner model (adjusted-precision or noise-trained) is "
        "compared with the better ideal-chip accuracy of itself and its standard partner. One accuracy on "
        f"{images} images has a binomial standard error of about {se:.1f} points; the ideal and the typical figures "
        "are on the same images, which makes their difference somewhat tighter than that.", "",
        "| model | ideal | ideal, bn | typical, bn | gap | gap to ideal, bn | within 1 point |",
        "|---|---|---|---|---|---|---|"] + rows) + "\n\n"


def load_cache(path):
    if path and os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    return {}


def write_cache(path, values):
    with open(path + ".tmp", "w") as f:
        json.dump(values, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(path + ".tmp", path)


def save_cache(path, cache):
    """Merges `cache` into the file (several runs may measure different models at once)."""
    if not path:
        return
    with open(path + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        merged = load_cache(path)
        merged.update(cache)
        cache.update(merged)
        write_cache(path, merged)


def prune_cache(path, model_dirs):
    """Drops the entries whose model file is gone or has changed (a retrained model's old
    SHA-256); returns how many were dropped. Such entries are never shown, only kept."""
    current = {(os.path.basename(p)[:-len(".onnx")], sha256(p)[:16])
               for d in model_dirs for p in glob.glob(os.path.join(d, "*.onnx"))}
    with open(path + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        values = load_cache(path)
        kept = {k: v for k, v in values.items() if tuple(k.split("|")[:2]) in current}
        write_cache(path, kept)
    return len(values) - len(kept)


def robustness_section(build=os.path.join(ROOT, "build"), model_dirs=(MODELS,), profiles=("ideal", "typical", "harsh"),
                       seeds=(1, 2, 3), limit=500, claim_limit=CLAIM_IMAGES, bn_samples=512, adc_repeats=4, data=DATA, jobs=1,
                       cache_path=CACHE, only=None, measure_missing=True, partners_only=False, claim_only=False,
                       table_only=False,
                       log=lambda s: print(s, file=sys.stderr)):
    """The Markdown section. make_results.py calls it with measure_missing=False (cache only)."""
    models, adjusted, noise_trained = discover(model_dirs)
    if only:
        models = {k: m for k, m in models.items() if re.search(only, m.name)}
    cache = Cache(load_cache(cache_path), cache_path if measure_missing else None, measure_missing)
    seeds = list(seeds)
    with tempfile.TemporaryDirectory() as work:
        os.mkdir(os.path.join(work, "claim"))
        tools = Tools(build, data, limit, bn_samples, adc_repeats, work)
        claim_tools = Tools(build, data, claim_limit, bn_samples, adc_repeats, os.path.join(work, "claim"))
        table_cache = Cache(cache.values, None, False) if claim_only else cache  # claim_only: table from the cache
        results = measure(tools, models, adjusted, noise_trained, profiles, seeds, table_cache, jobs, log, partners_only)
        claim_cache = Cache(cache.values, None, False) if table_only else cache  # table_only: claim from the cache
        claim = measure_claim(claim_tools, list(models.values()) + [p[k] for p in (adjusted, noise_trained) for k in p
                                                                     if k in models], seeds, claim_cache, jobs, log)
    return markdown(results, claim, models, adjusted, noise_trained, seeds, limit, claim_limit, bn_samples, adc_repeats,
                    profiles)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"), help="build directory with bin/pimc, pimrun, pimcal")
    ap.add_argument("--models-dir", action="append", default=[], help="also look for models here (repeatable)")
    ap.add_argument("--only", help="only models whose name matches this regex")
    ap.add_argument("--profiles", default="ideal,typical,harsh")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--limit", type=int, default=500, help="test images (0: all 10000)")
    ap.add_argument("--claim-limit", type=int, default=CLAIM_IMAGES, help="test images for the BN calibration check (0: all 10000)")
    ap.add_argument("--bn-samples", type=int, default=512, help="pimcal bn --samples (default: pimcal bn's own default, 512)")
    ap.add_argument("--adc-repeats", type=int, default=4, help="pimcal adc --repeats")
    ap.add_argument("--jobs", type=int, default=1, help="(model, profile, seed) runs in parallel")
    ap.add_argument("--data", default=os.environ.get("PIM_FMNIST_DIR", DATA))
    ap.add_argument("--cache", default=CACHE, help="JSON cache of measured accuracies ('' for none)")
    ap.add_argument("--partners-only", action="store_true",
                    help="measure only the adjusted-precision and noise-trained models (e.g. while another run "
                         "measures the rest)")
    ap.add_argument("--claim-only", action="store_true", help="measure only the BN calibration check")
    ap.add_argument("--table-only", action="store_true", help="measure only the table, not the BN calibration check")
    ap.add_argument("--out", help="write the Markdown here instead of stdout")
    ap.add_argument("--prune", action="store_true",
                    help="drop the cache entries of model files that are gone or changed (e.g. retrained), then exit")
    a = ap.parse_args()
    if a.prune:
        if not a.cache:
            ap.error("--prune needs --cache")
        dropped = prune_cache(a.cache, [MODELS] + a.models_dir)
        print(f"robustness_table: dropped {dropped} entries of models that are gone or changed from {a.cache}",
              file=sys.stderr)
        return 0
    try:
        md = robustness_section(a.build, [MODELS] + a.models_dir, a.profiles.split(","),
                                [int(s) for s in a.seeds.split(",")], a.limit, a.claim_limit, a.bn_samples,
                                a.adc_repeats, a.data, a.jobs, a.cache, a.only, partners_only=a.partners_only,
                                claim_only=a.claim_only, table_only=a.table_only)
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
