#!/usr/bin/python3
"""How well a checkpoint's BatchNorm statistics fit its own deployed arithmetic (PyTorch side).

Evaluates the model as saved, then re-estimates every BatchNormalization's running mean and
variance from N training images in the deployment configuration (cumulative average of batch
statistics, no noise, no gradient) and evaluates again; prints the two accuracies and, per BN
layer, how far the saved statistics are from the re-estimated ones. Nothing is written: this is
the training-side counterpart of `pimcal bn` on the ideal chip, for finding out whether a model's
shortfall on the ideal chip comes from stale statistics.

    OMP_NUM_THREADS=1 /usr/bin/python3 tools/qat/bn_reestimate.py fmnist-resnet-differential-b4 --per-layer

It also lists the channels of a blank image whose background code changes with the re-estimated
statistics (an activation value near a rounding tie makes a model sensitive to tiny shifts).
"""
import argparse
import os
import sys

import torch

import data
import train

HERE = os.path.dirname(os.path.abspath(__file__))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", help="bundled model name (tools/qat/models/<model>.pt) or a .pt path")
    ap.add_argument("--images", type=int, default=512, help="training images for the re-estimation")
    ap.add_argument("--eval", type=int, default=2000, help="first N test images to evaluate on")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--per-layer", action="store_true",
                    help="also evaluate with only one layer's statistics re-estimated, for each layer")
    ap.add_argument("--data-dir", default=None)
    a = ap.parse_args(argv)
    if a.images < 1 or a.eval < 1 or a.batch < 1:
        ap.error("--images, --eval and --batch must be positive")
    path = a.model if a.model.endswith(".pt") else os.path.join(HERE, "models", a.model + ".pt")
    if not os.path.exists(path):
        ap.error(f"{path}: no such checkpoint")
    torch.set_num_threads(1)
    model, _ = train.load_checkpoint(path)
    xte, yte = data.load_split("t10k", a.data_dir)
    xtr, _ = data.load_split("train", a.data_dir)
    xte, yte = xte[:a.eval], yte[:a.eval]
    before = train.evaluate(model, xte, yte, batch=100)

    bns = [(n, m) for n, m in model.named_modules() if isinstance(m, torch.nn.BatchNorm2d)]
    saved = {n: (m.running_mean.clone(), m.running_var.clone()) for n, m in bns}
    for _, m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches below
    model.train()  # batch statistics, in the deployed arithmetic: a noise-trained model's training
    for layer in (l for _, l in model.qlayers() if l.pim is not None):  # noise is switched off
        layer.pim.noise_lsb = 0.0
    with torch.no_grad():
        for i in range(0, min(a.images, len(xtr)), a.batch):
            model(torch.from_numpy(xtr[i:min(i + a.batch, a.images)]))
    model.eval()
    after = train.evaluate(model, xte, yte, batch=100)

    print(f"{os.path.basename(path)[:-3]}: accuracy on {len(xte)} test images {100 * before:.2f} as saved, "
          f"{100 * after:.2f} with BN statistics re-estimated on {min(a.images, len(xtr))} training images")
    fresh = {n: (m.running_mean.clone(), m.running_var.clone()) for n, m in bns}

    def use(stats):
        for n, m in bns:
            m.running_mean.copy_(stats[n][0])
            m.running_var.copy_(stats[n][1])

    print("layer  max|mean shift|/std  running-var ratio saved/re-estimated (min..max)"
          + ("  accuracy with only this layer re-estimated" if a.per_layer else ""))
    for n, m in bns:
        mean, var = saved[n]
        shift = ((mean - fresh[n][0]).abs() / fresh[n][1].sqrt()).max().item()
        ratio = var / fresh[n][1]
        line = f"{n.split('.')[-1]:6} {shift:.3f}  {ratio.min().item():.3f}..{ratio.max().item():.3f}"
        if a.per_layer:
            use({k: (fresh[k] if k == n else saved[k]) for k, _ in bns})
            line += f"  {100 * train.evaluate(model, xte, yte, batch=100):.2f}"
        print(line)

    # A blank (all-zero) image: interior pixels are constant, so each channel's value at the input
    # of an activation quantizer is one number; a value near a rounding tie flips a whole
    # channel's background code when the statistics move a little.
    def background(stats):
        use(stats)
        with torch.no_grad():
            _, vals = model(torch.zeros(1, *xte.shape[1:]), keep=True)
        out = {}
        for kind, name, ins in model.ops:
            if kind == "actq" and name != "act0" and vals[ins[0]].dim() == 4:
                v = vals[ins[0]][0]
                out[name] = v[:, v.shape[1] // 2, v.shape[2] // 2] / float(model.mods[name].export_scale())
        return out

    old, new = background(saved), background(fresh)

    def code(q, u):
        return int(torch.round(u.clamp(0, model.mods[q].qmax)))

    changed = [(q, [(c, old[q][c].item(), new[q][c].item()) for c in range(len(old[q]))
                    if code(q, old[q][c]) != code(q, new[q][c])]) for q in old]
    changed = [(q, flips) for q, flips in changed if flips]
    if not changed:
        print("background codes of a blank image: none change")
    else:
        first, flips = changed[0]
        print(f"background codes of a blank image: the first quantizer where they change is {first} "
              "(channel: value/s_x saved -> re-estimated)")
        for c, u, v in flips:
            print(f"  {first} channel {c}: {u:.3f} -> {v:.3f}")
        if len(changed) > 1:
            print("  downstream of it: " + ", ".join(f"{q} {len(f)} channels" for q, f in changed[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
