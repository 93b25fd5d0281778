#!/usr/bin/python3
"""Re-export every checkpoint tools/qat/models/<name>.pt to <name>.onnx (QDQ) and
<name>.qonnx.onnx (QONNX). Deterministic: the same checkpoint gives byte-identical files.

    /usr/bin/python3 tools/qat/export_all.py [--check]   (--check: fail if a file would change)
"""
import argparse
import glob
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import export  # noqa: E402
import train  # noqa: E402

MODELS = os.path.join(HERE, "models")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="only verify the files are up to date")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    stale = 0
    for ckpt in sorted(glob.glob(os.path.join(MODELS, "*.pt"))):
        prefix = ckpt[:-3]
        model, cfg = train.load_checkpoint(ckpt)
        for form in ("qdq", "qonnx"):
            path = export.output_path(prefix, form)
            m = export.build(model, cfg, form)
            export.check(m)
            data = m.SerializeToString(deterministic=True)
            old = open(path, "rb").read() if os.path.exists(path) else None
            if old == data:
                continue
            stale += 1
            if args.check:
                print(f"stale: {os.path.relpath(path)}")
            else:
                with open(path, "wb") as f:
                    f.write(data)
                print(f"wrote {os.path.relpath(path)} ({len(data)} bytes)")
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
