"""Train a quantized Fashion-MNIST model: conventional QAT or PIM-QAT, and export it.

Conventional QAT (no PIM quantization in training), from scratch:
    nice -n 10 /usr/bin/python3 tools/qat/train.py --arch fmnist-cnn --epochs 4 \
        --out tools/qat/models/fmnist-cnn-qat
PIM-QAT fine-tuned from it:
    nice -n 10 /usr/bin/python3 tools/qat/train.py --arch fmnist-cnn --scheme native \
        --adc-bits 4 --epochs 1 --init tools/qat/models/fmnist-cnn-qat.pt \
        --out tools/qat/models/fmnist-cnn-native-b4
Adjusted precision (train at 3 ADC bits, deploy at 4): add --train-adc-bits 3.
Noise-aware (the chip's thermal noise, sigma in LSB, added to every ADC input in training only):
add --train-noise-lsb 0.35.

Writes <out>.pt (checkpoint: state dict + configuration), <out>.onnx (QDQ form),
<out>.qonnx.onnx (QONNX form) and, with --log, the training log. Runs on one thread.
"""
import argparse
import math
import os
import shlex
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

import data
import nets

HERE = os.path.dirname(os.path.abspath(__file__))


def log(fh, msg):
    print(msg, flush=True)
    if fh:
        fh.write(msg + "\n")
        fh.flush()


def make_model(cfg):
    model = nets.build(cfg["arch"], cfg.get("a_bits", 4), cfg.get("w_bits", 4))
    if cfg.get("scheme"):
        model.set_pim(cfg["scheme"], cfg["train_adc_bits"], cfg["rows"], cfg.get("rescale", True),
                      cfg.get("delta_mode", "learned"), cfg.get("train_noise_lsb", 0.0))
    return model


def load_checkpoint(path):
    ck = torch.load(path, map_location="cpu")
    # The saved state already holds the deployment ADC step (train.py deploys before saving).
    model = make_model(dict(ck["config"], train_adc_bits=ck["config"]["adc_bits"]))
    model.load_state_dict(ck["state"])
    model.eval()
    return model, ck["config"]


def evaluate(model, x, y, batch=500):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            out = model(torch.from_numpy(x[i:i + batch]))
            correct += int((out.argmax(1).numpy() == y[i:i + batch]).sum())
    return correct / len(x)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arch", default="fmnist-cnn", choices=sorted(nets.ARCHS))
    ap.add_argument("--scheme", default=None, choices=["native", "differential", "bit_serial"],
                    help="PIM scheme; omit for conventional QAT")
    ap.add_argument("--adc-bits", type=int, default=7, help="deployment ADC bits (pim.adc_bits)")
    ap.add_argument("--train-adc-bits", type=int, default=None,
                    help="ADC bits used in training (adjusted precision; default --adc-bits)")
    ap.add_argument("--train-noise-lsb", type=float, default=0.0,
                    help="thermal noise sigma (LSB) added to every ADC input in training (PIM only)")
    ap.add_argument("--rows", type=int, default=64)
    ap.add_argument("--no-rescale", action="store_true", help="disable backward rescaling")
    ap.add_argument("--delta-mode", default="learned", choices=["learned", "full-range"],
                    help="ADC step: learned (LSQ) or derived each step by the full-range rule")
    ap.add_argument("--epochs", type=float, default=4.0)
    ap.add_argument("--lr", type=float, default=None,
                    help="Adam learning rate (default 2e-3 from scratch, 5e-4 with --init)")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--init", default=None, help="checkpoint to fine-tune from")
    ap.add_argument("--train-subset", type=int, default=0, help="use only N training images")
    ap.add_argument("--eval-subset", type=int, default=10000)
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--out", required=True, help="output prefix (writes .pt, .onnx, .qonnx.onnx)")
    ap.add_argument("--log", default=None, help="training log file")
    ap.add_argument("--no-export", action="store_true")
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args(argv)
    if not 0.0 <= args.train_noise_lsb <= 16.0:
        ap.error(f"--train-noise-lsb {args.train_noise_lsb}: must be in [0, 16] (LSB)")
    if args.train_noise_lsb > 0 and not args.scheme:
        ap.error("--train-noise-lsb needs --scheme: noise is added to the PIM layers' ADC inputs")

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    fh = open(args.log, "w") if args.log else None
    cmd = "/usr/bin/python3 tools/qat/train.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    log(fh, f"# command: {cmd}")
    log(fh, f"# torch {torch.__version__}, seed {args.seed}, threads 1")

    xtr, ytr = data.load_split("train", args.data_dir)
    xte, yte = data.load_split("t10k", args.data_dir)
    xte, yte = xte[:args.eval_subset], yte[:args.eval_subset]
    if args.train_subset:
        xtr, ytr = xtr[:args.train_subset], ytr[:args.train_subset]

    train_bits = args.train_adc_bits or args.adc_bits
    cfg = {"arch": args.arch, "scheme": args.scheme, "adc_bits": args.adc_bits,
           "train_adc_bits": train_bits, "train_noise_lsb": args.train_noise_lsb, "rows": args.rows,
           "rescale": not args.no_rescale,
           "delta_mode": args.delta_mode,
           "a_bits": 4, "w_bits": 4, "seed": args.seed,
           "training": "pim-qat" if args.scheme else "conventional-qat", "command": cmd}
    model = make_model(cfg)
    if args.init:
        ck = torch.load(args.init, map_location="cpu")
        missing = model.load_state_dict(ck["state"], strict=False)
        # The ADC step of a conventional checkpoint is meaningless: re-initialize it.
        for _, layer in model.qlayers():
            layer.adc_initialized.fill_(False)
        log(fh, f"# fine-tuned from {os.path.relpath(args.init)} "
                f"({ck['config'].get('training')}, {ck['config'].get('scheme')}); "
                f"missing keys {missing.missing_keys}")
    lr = args.lr or (5e-4 if args.init else 2e-3)
    log(fh, f"# config: {cfg}; lr {lr}; batch {args.batch}; epochs {args.epochs}")

    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps_per_epoch = len(xtr) // args.batch
    total = max(1, int(round(args.epochs * steps_per_epoch)))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    rng = np.random.default_rng(args.seed)
    step, t0 = 0, time.time()
    loss_sum, acc_sum, n_sum = 0.0, 0.0, 0
    log(fh, "step epoch loss train_acc lr seconds rescale_ratios")
    while step < total:
        perm = rng.permutation(len(xtr))
        for b in range(steps_per_epoch):
            if step >= total:
                break
            idx = perm[b * args.batch:(b + 1) * args.batch]
            xb, yb = torch.from_numpy(xtr[idx]), torch.from_numpy(ytr[idx])
            model.train()
            out = model(xb)
            loss = F.cross_entropy(out, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            loss_sum += loss.item() * len(idx)
            acc_sum += (out.argmax(1) == yb).sum().item()
            n_sum += len(idx)
            if step % args.log_every == 0 or step == total:
                ratios = " ".join(f"{l.last_ratio:.3f}" for _, l in model.qlayers()
                                  if l.pim is not None and not l.digital)
                log(fh, f"{step} {step / steps_per_epoch:.2f} {loss_sum / n_sum:.4f} "
                        f"{acc_sum / n_sum:.4f} {sched.get_last_lr()[0]:.2e} "
                        f"{time.time() - t0:.0f} {ratios}")
                loss_sum, acc_sum, n_sum = 0.0, 0.0, 0

    if args.scheme:
        model.deploy_adc_bits(args.adc_bits)
    model.eval()
    # Save first: the evaluation below is the memory-hungry part (bit_serial at batch size B
    # holds b_a * B images' worth of per-group partial sums).
    torch.save({"config": cfg, "state": model.state_dict()}, args.out + ".pt")
    acc = evaluate(model, xte, yte, batch=100 if args.scheme else 500)
    log(fh, f"# test accuracy (PyTorch eval, {len(xte)} images, deployment config): {acc:.4f}")
    if args.scheme:
        steps = {n: l.export_adc_step() for n, l in model.qlayers() if not l.digital}
        log(fh, "# adc_step: " + " ".join(f"{n}={v:.6g}" for n, v in steps.items()))
    if not args.no_export:
        import export
        for form in ("qdq", "qonnx"):
            path = export.output_path(args.out, form)
            export.save(model, cfg, path, form)
            log(fh, f"# wrote {os.path.relpath(path)}")
    log(fh, f"# total seconds {time.time() - t0:.0f}")
    if fh:
        fh.close()


if __name__ == "__main__":
    main()
