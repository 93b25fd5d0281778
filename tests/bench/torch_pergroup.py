"""The PIM layer simulated the way training frameworks do it: im2col (F.unfold), one float
matmul per row group, round/clamp (the ADC), accumulate. Prints the best time of one layer.

Usage: python3 torch_pergroup.py C H W BATCH ROWS ADC_BITS THREADS REPS
Called by pim_bench_fused (tests/bench/fused_kernel_bench.cc) in the same run.
"""
import sys
import time

import torch
import torch.nn.functional as F


def main():
    c, h, w, batch, rows, adc_bits, threads, reps = (int(a) for a in sys.argv[1:9])
    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 16, (batch, c, h, w), generator=g).float()
    wq = torch.randint(-7, 8, (c, c * 9), generator=g).float()
    k = c * 9
    lo, hi = -(2 ** (adc_bits - 1)), 2 ** (adc_bits - 1) - 1
    p_max = max(float(wq[:, g0:g0 + rows].clamp(min=0).sum(1).max()) for g0 in range(0, k, rows)) * 15
    delta = p_max / hi

    def layer(x):
        cols = F.unfold(x, 3, padding=1)  # [N, K, L]
        s = torch.zeros(batch, c, h * w)
        for g0 in range(0, k, rows):
            p = torch.matmul(wq[:, g0:g0 + rows], cols[:, g0:g0 + rows, :])
            s += torch.clamp(torch.round(p / delta), lo, hi)
        return s

    with torch.no_grad():
        layer(x)
        best = float("inf")
        for _ in range(reps):
            t0 = time.perf_counter()
            layer(x)
            best = min(best, time.perf_counter() - t0)
    print(f"seconds={best:.6f}")


if __name__ == "__main__":
    main()
