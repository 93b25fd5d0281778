#!/usr/bin/env python3
"""Writes tests/e2e/data/fixture.npz: a .npz laid out as numpy's savez/savez_compressed write it
(zip members '<key>.npy', zip64 extra fields forced as numpy does), built with the standard
library only, so the C++ .npz reader is tested without numpy. Run it to regenerate the file:

    python3 tests/e2e/make_npz_fixture.py
"""
import os
import struct
import zipfile


def npy(descr, shape, values, fmt):
    header = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (
        descr, "".join("%d, " % d for d in shape) if len(shape) != 1 else "%d," % shape[0])
    pad = (64 - (10 + len(header) + 1) % 64) % 64
    header = header + " " * pad + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + \
        struct.pack("<%d%s" % (len(values), fmt), *values)


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "fixture.npz")
    members = {
        # float64 [2, 3], as golden tensors are stored
        "logits": npy("<f8", (2, 3), [0.1, -2.5, 3e-300, 1.0 / 3.0, -0.0, 12345.678], "d"),
        # an accumulator key with a colon, as '<node>:S'
        "conv1:S": npy("<f8", (1, 2, 2, 1), [3.0, -4.0, 0.0, 127.0], "d"),
        "input": npy("<f4", (1, 4), [0.0, 1.0 / 255.0, 0.5, 1.0], "f"),
        "labels": npy("<i8", (3,), [7, 0, 9], "q"),
        "codes": npy("|u1", (2, 2), [0, 15, 255, 1], "B"),
    }
    with zipfile.ZipFile(out, "w") as z:
        for i, (name, data) in enumerate(members.items()):
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED if i % 2 == 0 else zipfile.ZIP_STORED
            with z.open(info, "w", force_zip64=True) as f:
                f.write(data)
    print("wrote", out)


if __name__ == "__main__":
    main()
