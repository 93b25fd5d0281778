"""PIM quantization-aware training: quantizers and the quantized Conv2d / Linear layer.

Arithmetic follows docs/onnx-convention.md:

    X = clamp(rne(x / s_x), 0, 2^b_a - 1)                        activation codes (ActQuant)
    Q = clamp(rne(W / s_w[o]), -(2^(b_w-1) - 1), 2^(b_w-1) - 1)    weight codes (per output channel)
    S = sum over row groups of ADC(partial sum)                    (PIM placement)
      = sum_k Q X                                                  (digital placement)
    Y = S * Delta * s_x * s_w[o] + bias[o]

All rounding is torch.round (round half to even, like np.rint). Every rounding uses a
straight-through estimator (STE). Scales s_x, s_w and the ADC step Delta are learned LSQ-style
(Esser et al. 2020: gradient of the step through the STE, scaled by 1/sqrt(numel * q_max)).

In eval mode the integer parts (rne(x/s_x), rne(p/Delta)) are computed in float64 so that the
PyTorch model and the numpy reference (tools/qat/reference.py) agree bit for bit on the codes,
up to float32-vs-float64 differences in the host ops between layers.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

SCHEMES = ("native", "differential", "bit_serial")


def round_ste(x):
    return x + (torch.round(x) - x).detach()


def grad_scale(x, g):
    """Value x, gradient scaled by g."""
    return (x - x * g).detach() + x * g


def adc_range(scheme, bits):
    """(lo, hi) code range of the ADC for a scheme (convention 3.1)."""
    if scheme == "differential":
        return 0, 2 ** bits - 1
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


class ActQuant(nn.Module):
    """Unsigned activation quantizer, zero point 0, learned scale (LSQ).

    forward(x) -> (y, X, s): y = X * s (float, what the host sees), X the integer codes (float
    tensor holding integers, STE gradient), s the scale (0-d tensor, LSQ gradient).
    A fixed scale (the input image: 1/255) is a buffer and is not trained.
    """

    def __init__(self, bits, fixed_scale=None):
        super().__init__()
        self.bits = bits
        self.qmax = 2 ** bits - 1
        if fixed_scale is not None:
            self.register_buffer("scale", torch.tensor(float(fixed_scale), dtype=torch.float32))
            self.learned = False
        else:
            self.scale = nn.Parameter(torch.tensor(1.0))
            self.learned = True
        self.register_buffer("initialized", torch.tensor(fixed_scale is not None))

    def forward(self, x):
        if self.learned and not bool(self.initialized) and self.training:
            with torch.no_grad():
                # LSQ initialization 2 mean|x| / sqrt(q_max), on the first batch.
                self.scale.fill_(max(2.0 * x.abs().mean().item() / math.sqrt(self.qmax), 1e-4))
                self.initialized.fill_(True)
        if self.training:
            s = self.scale.abs() + 1e-8 if self.learned else self.scale
            if self.learned:
                s = grad_scale(s, 1.0 / math.sqrt(x[0].numel() * self.qmax))
            X = torch.clamp(round_ste(x / s), 0, self.qmax)
        else:
            s = self.scale.abs() + 1e-8 if self.learned else self.scale
            s = s.detach()
            # Exactly the convention: clamp(rne(x / s), 0, 2^b - 1) with the division in double.
            X = torch.clamp(torch.round(x.double() / s.double()), 0, self.qmax).float()
        return X * s, X, s

    def export_scale(self):
        """The float32 scale written to the ONNX file."""
        s = self.scale.detach().abs() + 1e-8 if self.learned else self.scale.detach()
        return s.float()


class PimConfig:
    """PIM quantization of one layer: scheme, ADC bits used in training, rows R, and the thermal
    noise (sigma in LSB of that ADC) added to every conversion's input in training only."""

    def __init__(self, scheme="native", adc_bits=7, rows=64, noise_lsb=0.0):
        if scheme not in SCHEMES:
            raise ValueError(f"unknown scheme {scheme!r} (expected one of {', '.join(SCHEMES)})")
        if not 1 <= adc_bits <= 16:
            raise ValueError(f"adc_bits {adc_bits} out of range 1..16")
        if rows < 1:
            raise ValueError(f"rows {rows} must be >= 1")
        if not (0.0 <= noise_lsb <= 16.0):
            raise ValueError(f"noise_lsb {noise_lsb} out of range [0, 16]")
        self.scheme, self.adc_bits, self.rows, self.noise_lsb = scheme, adc_bits, rows, noise_lsb


class QLayer(nn.Module):
    """Quantized Conv2d (group 1) or Linear with optional PIM quantization.

    kind: 'conv' or 'linear'. Weight codes are narrow signed w_bits; per-output-channel scale.
    forward(X, s_x) takes the integer codes and scale from the ActQuant feeding it.
    `digital=True` pins the layer to the host (pim.layer.<node>.placement = digital).
    `pim` (PimConfig or None): None = conventional QAT (S exact).
    `rescale`: backward rescaling (see docs/qat.md): the gradient leaving the PIM quantizer is
    multiplied by std(Y_pim) / std(Y_ideal) so that, behind the following BatchNorm, the weight
    gradient has the magnitude of the same layer without PIM quantization.
    """

    def __init__(self, kind, cin, cout, kernel=1, stride=1, padding=0, bias=False, w_bits=4,
                 digital=False):
        super().__init__()
        self.kind = kind
        self.cin, self.cout = cin, cout
        self.kernel, self.stride, self.padding = kernel, stride, padding
        shape = (cout, cin, kernel, kernel) if kind == "conv" else (cout, cin)
        self.weight = nn.Parameter(torch.empty(shape))
        nn.init.kaiming_normal_(self.weight, nonlinearity="relu")
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None
        self.w_bits = w_bits
        self.qmax = 2 ** (w_bits - 1) - 1
        self.w_scale = nn.Parameter(torch.ones(cout))
        self.register_buffer("w_initialized", torch.tensor(False))
        self.digital = digital
        self.pim = None
        self.rescale = True
        self.adc_step = nn.Parameter(torch.tensor(1.0))
        # "learned" (LSQ, the default) or "full-range" (derived from the current weights each
        # step by the rule of convention 3.2, as a chip with a fixed ADC range would; used by
        # the rescaling ablation). in_bits: b_a of the input, for the full-range rule.
        self.delta_mode = "learned"
        self.in_bits = 4
        self.register_buffer("adc_initialized", torch.tensor(False))
        self.last_ratio = float("nan")  # std(Y_pim)/std(Y_ideal) of the last training batch

    # -- configuration ---------------------------------------------------------------------
    def set_pim(self, pim, rescale=True):
        if self.digital:
            return
        self.pim = pim
        self.rescale = rescale
        self.adc_initialized.fill_(False)

    @property
    def k(self):
        return self.weight[0].numel()

    # -- quantizers -------------------------------------------------------------------------
    def _init_w_scale(self):
        with torch.no_grad():
            w = self.weight.reshape(self.cout, -1)
            if self.w_bits <= 4:
                s = 2.0 * w.abs().mean(1) / math.sqrt(self.qmax)
            else:
                s = w.abs().max(1).values / self.qmax
            self.w_scale.copy_(s.clamp_min(1e-6))
            self.w_initialized.fill_(True)

    def weight_scale(self):
        return self.w_scale.abs() + 1e-8

    def weight_codes(self):
        """(Q [O, K] float holding integers with STE gradient, s_w [O])."""
        if self.training and not bool(self.w_initialized):
            self._init_w_scale()
        s = self.weight_scale()
        w = self.weight.reshape(self.cout, -1)
        if self.training:
            s_g = grad_scale(s, 1.0 / math.sqrt(w.shape[1] * self.qmax))
            q = torch.clamp(round_ste(w / s_g[:, None]), -self.qmax, self.qmax)
            return q, s_g
        s = s.detach()
        q = torch.clamp(torch.round(w.detach().double() / s.double()[:, None]),
                        -self.qmax, self.qmax).float()
        return q, s

    # -- forward ----------------------------------------------------------------------------
    def _unfold(self, X):
        """X [N,C,H,W] -> ([N,K,L], (Ho, Wo)); K ordered (c, ky, kx) as ONNX im2col."""
        if self.kind == "linear":
            return X.reshape(X.shape[0], -1, 1), None
        n, _, h, w = X.shape
        ho = (h + 2 * self.padding - self.kernel) // self.stride + 1
        wo = (w + 2 * self.padding - self.kernel) // self.stride + 1
        cols = F.unfold(X, self.kernel, padding=self.padding, stride=self.stride)
        return cols, (ho, wo)

    def _exact(self, X, q):
        if self.kind == "conv":
            return F.conv2d(X, q.reshape(self.weight.shape), stride=self.stride,
                            padding=self.padding)
        return F.linear(X, q)

    def _adc(self, p, lo, hi, numel):
        """ADC with LSQ step: returns integer codes c (STE) and the step used. In training, the
        configured thermal noise (sigma LSB, a fresh draw per conversion) is added before
        rounding, as the chip model adds it (docs/chip-model.md 4); evaluation has none."""
        if self.training:
            step = self.adc_step.abs().clamp_min(1e-8)
            step = grad_scale(step, 1.0 / math.sqrt(numel * max(hi, 1)))
            v = p / step
            if self.pim.noise_lsb > 0:
                v = v + self.pim.noise_lsb * torch.randn_like(v)
            c = torch.clamp(round_ste(v), lo, hi)
        else:
            step = self.step_tensor()
            c = torch.clamp(torch.round(p.double() / step.double()), lo, hi).float()
        return c, step

    def _init_adc_step(self, parts, lo, hi):
        """Delta minimizing the ADC's mean squared error on the first batch (grid search), with
        the training noise (one fixed draw) included."""
        with torch.no_grad():
            p = torch.cat([x.reshape(-1) for x in parts])
            gen = torch.Generator().manual_seed(0)
            if p.numel() > 262_144:
                p = p[torch.randperm(p.numel(), generator=gen)[:262_144]]
            noise = self.pim.noise_lsb * torch.randn(p.shape, generator=gen) if self.pim.noise_lsb > 0 else 0.0
            top = p.abs().max().item()
            best, best_err = 1.0, float("inf")
            if top > 0:
                for i in range(64):
                    d = top / max(hi, 1) * 2.0 ** (-i / 8.0)
                    err = ((torch.clamp(torch.round(p / d + noise), lo, hi) * d - p) ** 2).mean().item()
                    if err < best_err:
                        best, best_err = d, err
            self.adc_step.fill_(best)
            self.adc_initialized.fill_(True)

    def _grouped(self, X, w):
        """Per-row-group partial sums. w: [M, K] weight rows; returns [N, G, M, *spatial].

        Each row group is one copy of w masked to the group's k-range; all copies go through a
        single convolution (mkldnn; the generic BLAS of this torch build makes an im2col + matmul
        formulation ~20x slower). Values are integers < 2^24, rounded to remove any doubt about
        the convolution algorithm's float32 summation.
        """
        r = self.pim.rows
        k = w.shape[1]
        g = (k + r - 1) // r
        idx = torch.arange(k)
        mask = torch.stack([((idx >= i * r) & (idx < (i + 1) * r)).to(w.dtype) for i in range(g)])
        wg = (w.unsqueeze(0) * mask.unsqueeze(1)).reshape(g * w.shape[0], k)   # [G*M, K]
        if self.kind == "conv":
            wg = wg.reshape(g * w.shape[0], self.cin, self.kernel, self.kernel)
            p = F.conv2d(X, wg, stride=self.stride, padding=self.padding)
        else:
            p = F.linear(X, wg)
        p = p + (torch.round(p) - p).detach()
        return p.reshape(p.shape[0], g, w.shape[0], *p.shape[2:])

    def full_range_step(self, q):
        """Convention 3.2 on weight codes q [O, K]."""
        cfg = self.pim
        r = cfg.rows
        k = q.shape[1]
        g = (k + r - 1) // r
        qg = F.pad(q.detach(), (0, g * r - k)).reshape(q.shape[0], g, r)
        p_max = torch.maximum(F.relu(qg).sum(2).max(), F.relu(-qg).sum(2).max()).item()
        p_max *= 1 if cfg.scheme == "bit_serial" else 2 ** self.in_bits - 1
        code_max = 2 ** cfg.adc_bits - 1 if cfg.scheme == "differential" else 2 ** (cfg.adc_bits - 1) - 1
        return p_max / code_max if p_max > 0 else 1.0

    def pim_accumulate(self, X, q):
        """S ([N, O, Ho, Wo] or [N, O], exact integers) by the layer's PIM scheme, and Delta."""
        cfg = self.pim
        n = X.shape[0]
        lo, hi = adc_range(cfg.scheme, cfg.adc_bits)
        if self.delta_mode == "full-range":
            with torch.no_grad():
                self.adc_step.fill_(self.full_range_step(q))
                self.adc_initialized.fill_(True)
        if cfg.scheme == "native":
            parts = [self._grouped(X, q)]
        elif cfg.scheme == "differential":
            pq = self._grouped(X, torch.cat([F.relu(q), F.relu(-q)], 0))
            parts = [pq[:, :, :self.cout], pq[:, :, self.cout:]]
        else:  # bit_serial: planes of the integer codes (no gradient through the bit split)
            xi = X.detach().round().to(torch.int32)
            bits = max(int(xi.max().item()).bit_length(), 1)
            planes = torch.cat([((xi >> j) & 1).float() for j in range(bits)], 0)
            p = self._grouped(planes, q)                                 # [J*N, G, O, ...]
            parts = [p.reshape(bits, n, *p.shape[1:])]                   # [J, N, G, O, ...]
        if self.training and not bool(self.adc_initialized):
            self._init_adc_step(parts, lo, hi)
        numel = sum(x.numel() for x in parts) // max(n, 1)
        if cfg.scheme == "native":
            c, step = self._adc(parts[0], lo, hi, numel)
            s = c.sum(1)
        elif cfg.scheme == "differential":
            cp, step = self._adc(parts[0], lo, hi, numel)
            cn, _ = self._adc(parts[1], lo, hi, numel)
            s = (cp - cn).sum(1)
        else:
            c, step = self._adc(parts[0], lo, hi, numel)
            weights = (2.0 ** torch.arange(c.shape[0], dtype=c.dtype))
            s = (c.sum(2) * weights.reshape((-1,) + (1,) * (c.dim() - 2))).sum(0)
            if self.training:
                # Gradient to X as for the ideal layer (the bit split has none): S ~ p / Delta.
                ideal = self._exact(X, q.detach()) / step.detach()
                s = s + (ideal - ideal.detach())
        return s, step

    def forward(self, X, s_x):
        q, s_w = self.weight_codes()
        if self.pim is None or self.digital:
            S = self._exact(X, q)
            y = S * s_x
        else:
            S, step = self.pim_accumulate(X, q)
            y = S * step * s_x
            if self.training:
                with torch.no_grad():
                    ideal = self._exact(X, q)
                    ratio = (y.std() / (ideal * s_x).std().clamp_min(1e-12)).item()
                self.last_ratio = ratio
                if self.rescale and math.isfinite(ratio) and ratio > 0:
                    y = grad_scale(y, ratio)
        shape = (1, -1, 1, 1) if self.kind == "conv" else (1, -1)
        y = y * s_w.reshape(shape)
        if self.bias is not None:
            y = y + self.bias.reshape(shape)
        return y

    # -- export -----------------------------------------------------------------------------
    def export_codes(self):
        """(Q int tensor in ONNX layout, s_w float32 [O]) as the eval-mode forward uses them."""
        was = self.training
        self.eval()
        with torch.no_grad():
            q, s = self.weight_codes()
        self.train(was)
        return q.reshape(self.weight.shape).round().to(torch.int8), s.float()

    def step_tensor(self):
        """The float32 ADC step Delta the eval-mode forward uses (and the export writes)."""
        return self.adc_step.detach().abs().clamp_min(1e-8)

    def export_adc_step(self):
        return float(self.step_tensor().item())

    def deploy_adc_bits(self, bits):
        """Adjusted precision: switch a layer trained at b_t ADC bits to b_d = bits, keeping the
        ADC full-scale range: Delta_d = Delta_t * 2^(b_t - b_d) (exact, a power of two)."""
        if self.pim is None or bits == self.pim.adc_bits:
            return
        with torch.no_grad():
            self.adc_step.copy_(self.step_tensor() * 2.0 ** (self.pim.adc_bits - bits))
        self.pim = PimConfig(self.pim.scheme, bits, self.pim.rows, self.pim.noise_lsb)
