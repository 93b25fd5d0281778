"""The PIM layer simulated the way training frameworks do it, in PyTorch float32: per row group a
partial sum, round/clamp (the ADC), accumulate. Prints the best time of one layer.

Two formulations (both are how PIM-QAT code simulates the array; neither is tuned for this bench):
  conv    what this project's training does (tools/qat/quant.py, QLayer._grouped): one conv2d
          over G copies of the weights, each masked to its row group's k-range ([G*O, C, 3, 3]),
          then round(p / Delta), clamp, and a sum over the G groups. On this torch build conv2d
          runs on mkldnn, so this is the faster of the two.
  matmul  im2col (F.unfold) and one float matmul per row group, round/clamp, accumulate.
Both do the same float work a training forward pass does at evaluation (no autograd).

Usage: python3 torch_pergroup.py C H W BATCH ROWS ADC_BITS THREADS REPS [conv|matmul]
Called by pim_bench_fused (tests/bench/fused_kernel_bench.cc) in the same run.
"""
import sys
import time

import torch
import torch.nn.functional as F


def main():
    c, h, w, batch, rows, adc_bits, threads, reps = (int(a) for a in sys.argv[1:9])
    mode = sys.argv[9] if len(sys.argv) > 9 else "conv"
    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 16, (batch, c, h, w), generator=g).float()
    wq = torch.randint(-7, 8, (c, c * 9), generator=g).float()
    k = c * 9
    groups = (k + rows - 1) // rows
    lo, hi = -(2 ** (adc_bits - 1)), 2 ** (adc_bits - 1) - 1
    p_max = max(float(wq[:, g0:g0 + rows].clamp(min=0).sum(1).max()) for g0 in range(0, k, rows)) * 15
    delta = p_max / hi

    idx = torch.arange(k)
    mask = torch.stack([((idx >= i * rows) & (idx < (i + 1) * rows)).float() for i in range(groups)])
    wg = (wq.unsqueeze(0) * mask.unsqueeze(1)).reshape(groups * c, c, 3, 3)  # as tools/qat

    def layer_conv(x):
        p = F.conv2d(x, wg, padding=1).reshape(batch, groups, c, h, w)
        return torch.clamp(torch.round(p / delta), lo, hi).sum(1)

    def layer_matmul(x):
        cols = F.unfold(x, 3, padding=1)  # [N, K, L]
        s = torch.zeros(batch, c, h * w)
        for g0 in range(0, k, rows):
            p = torch.matmul(wq[:, g0:g0 + rows], cols[:, g0:g0 + rows, :])
            s += torch.clamp(torch.round(p / delta), lo, hi)
        return s

    layer = layer_conv if mode == "conv" else layer_matmul
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
