#!/usr/bin/python3
"""Numpy reference executor for PIM-QAT ONNX models (docs/onnx-convention.md).

Loads any ONNX file that follows the convention (QDQ or QONNX form) and evaluates it with the
normative arithmetic: host tensors in float64, integer codes and accumulators exact, row groups,
ADC schemes and the ADC step Delta exactly as in the convention (section 3), host operators in the
exact form of section 4. Independent of PyTorch (numpy + onnx only).

    /usr/bin/python3 tools/qat/reference.py MODEL.onnx --images t10k-images-idx3-ubyte.gz \
        [--labels t10k-labels-idx1-ubyte.gz] [--dump out.npz] [--scheme native] \
        [--adc-bits 4] [--rows 64] [--adc-step 12.5] [--digital] [--limit N]

prints `accuracy: 0.xxxx` when labels are given. --dump writes every value keyed by its ONNX value
name, `<node>:S` for each quantized matrix layer's integer accumulator, `input` and `logits`.

Library use:
    ref = Reference("model.onnx", Options(scheme="native", adc_bits=4))
    logits = ref.run(images)                 # float64 [N, classes]
    logits, values = ref.run(images, keep=True)
"""
import argparse
import math
import os
import sys

import numpy as np
import onnx
from numpy.lib.stride_tricks import sliding_window_view
from onnx import numpy_helper

QONNX_DOMAINS = ("qonnx.custom_op.general", "finn.custom_op.general", "finn")
SCHEMES = ("native", "differential", "bit_serial")
# Target limits (docs/chip-model.md 1; convention 5): weight bits, input bits per scheme.
MAX_WEIGHT_BITS = 8
MAX_INPUT_BITS = {"native": 4, "differential": 4, "bit_serial": 8}
DEFAULTS = {"scheme": "native", "adc_bits": 7, "rows": 64}
HOST_OPS = ("QuantizeLinear", "DequantizeLinear", "Quant", "BatchNormalization", "Relu", "Clip",
            "Add", "MaxPool", "AveragePool", "GlobalAveragePool", "Flatten", "Reshape", "Softmax",
            "Concat", "Conv", "Gemm", "MatMul")


class ModelError(ValueError):
    """A model the reference cannot evaluate; the message names the node and the reason."""


class Options:
    """Overrides, like the pimc flags. None = take the model's value."""

    def __init__(self, scheme=None, adc_bits=None, rows=None, adc_step=None, digital=False):
        if scheme is not None and scheme not in SCHEMES:
            raise ModelError(f"--scheme {scheme!r}: expected one of {', '.join(SCHEMES)}")
        if adc_bits is not None and not 1 <= adc_bits <= 16:
            raise ModelError(f"--adc-bits {adc_bits}: expected 1..16")
        if rows is not None and rows < 1:
            raise ModelError(f"--rows {rows}: expected >= 1")
        if adc_step is not None and not (adc_step > 0 and math.isfinite(adc_step)):
            raise ModelError(f"--adc-step {adc_step}: expected a positive number")
        self.scheme, self.adc_bits, self.rows = scheme, adc_bits, rows
        self.adc_step, self.digital = adc_step, digital


def adc_range(scheme, bits):
    if scheme == "differential":
        return 0, 2 ** bits - 1
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


class MatrixLayer:
    """Analysis of one quantized Conv/Gemm/MatMul: where its codes come from and how it runs."""

    def __init__(self, node):
        self.node = node
        self.name = node.name
        self.op = node.op_type
        self.act_codes = None    # value name of the activation codes (QDQ) or Quant node output
        self.act_from_quant = None  # the QONNX Quant node producing the activation, else None
        self.s_x = None
        self.b_a = None
        self.Q = None            # int64 [O, K] (Conv: OIHW flattened; Gemm/MatMul: output-major)
        self.s_w = None          # float64 [O]
        self.b_w = None
        self.bias = None         # float64 [O] or None
        self.placement = "digital"
        self.scheme = self.adc_bits = self.rows = None
        self.delta = 1.0
        self.delta_rule = "digital"


class Reference:
    def __init__(self, model, options=None):
        self.opts = options or Options()
        if isinstance(model, (str, os.PathLike)):
            try:
                model = onnx.load(str(model))
            except Exception as e:  # noqa: BLE001 - the onnx package raises many kinds
                raise ModelError(f"{model}: cannot load ONNX file: {e}") from None
        self.model = model
        g = model.graph
        self.meta = {p.key: p.value for p in model.metadata_props}
        self.inits = {}
        for t in g.initializer:
            a = numpy_helper.to_array(t)
            self.inits[t.name] = a
        self.nodes = list(g.node)
        names = set()
        for i, n in enumerate(self.nodes):
            if not n.name:
                raise ModelError(f"node #{i} ({n.op_type}) has no name; the convention needs "
                                 "unique node names")
            if n.name in names:
                raise ModelError(f"node name {n.name!r} is used twice")
            names.add(n.name)
            if n.op_type not in HOST_OPS or (n.domain not in ("", "ai.onnx") and
                                              not (n.op_type == "Quant" and
                                                   n.domain in QONNX_DOMAINS)):
                raise ModelError(f"node {n.name!r} ({n.domain + '.' if n.domain else ''}"
                                 f"{n.op_type}): unsupported operator")
        self.producer = {o: n for n in self.nodes for o in n.output}
        self.inputs = [i.name for i in g.input if i.name not in self.inits]
        if len(self.inputs) != 1:
            raise ModelError(f"expected one graph input, found {self.inputs}")
        self.outputs = [o.name for o in g.output]
        # Values that do not depend on the graph input (dequantized weights): not batched.
        self.constants = set(self.inits)
        for n in self.nodes:
            if all((not i) or i in self.constants for i in n.input):
                self.constants.update(n.output)
        self.layers = {}
        for n in self.nodes:
            if n.op_type in ("Conv", "Gemm", "MatMul"):
                layer = self._analyze(n)
                if layer is not None:
                    self.layers[n.name] = layer

    # ---------------------------------------------------------------------------------------
    # analysis
    def _attr(self, node, name, default=None):
        for a in node.attribute:
            if a.name == name:
                return onnx.helper.get_attribute_value(a)
        return default

    def _const(self, name, node, what):
        if name not in self.inits:
            raise ModelError(f"{node.name}: {what} {name!r} must be an initializer")
        return self.inits[name]

    def _meta(self, layer, key, default):
        v = self.meta.get(f"pim.layer.{layer}.{key}", self.meta.get(f"pim.{key}"))
        return default if v is None else v

    def _int_meta(self, layer, key):
        v = self._meta(layer, key, DEFAULTS[key])
        try:
            return int(v)
        except ValueError:
            raise ModelError(f"metadata pim.{key} for {layer}: {v!r} is not an integer") from None

    def _activation(self, layer, value):
        """Fills the activation part of `layer` if `value` is an unsigned zero-point-0 quantized
        activation; returns False if it is not a quantized activation at all."""
        n = self.producer.get(value)
        if n is None:
            return False
        if n.op_type == "DequantizeLinear":
            qn = self.producer.get(n.input[0])
            if qn is None or qn.op_type != "QuantizeLinear":
                return False
            s = self._const(n.input[1], n, "scale").astype(np.float64)
            s_q = self._const(qn.input[1], qn, "scale").astype(np.float64)
            zp_dq = self._zero_point(n)
            zp_q = self._zero_point(qn)
            if zp_q.dtype != np.uint8 or zp_dq.dtype != np.uint8:
                return False  # signed activation: not a PIM-mappable input, evaluated as float
            if s.size != 1 or s_q.size != 1:
                raise ModelError(f"{layer.name}: activation scale must be per-tensor, "
                                 f"got shape {s.shape}")
            if float(s.reshape(())) != float(s_q.reshape(())):
                raise ModelError(f"{layer.name}: QuantizeLinear {qn.name} and DequantizeLinear "
                                 f"{n.name} use different scales")
            if np.any(zp_q != 0) or np.any(zp_dq != 0):
                raise ModelError(f"{layer.name}: activation zero point must be 0, got "
                                 f"{int(zp_q.reshape(-1)[0])}")
            layer.s_x = float(s.reshape(()))
            layer.act_codes = n.input[0]
            layer.b_a = self._act_bits_qdq(qn, layer.s_x)
            return True
        if n.op_type == "Quant":
            signed = self._attr(n, "signed", 1)
            if signed:
                return False
            s = self._const(n.input[1], n, "scale").astype(np.float64)
            zp = self._const(n.input[2], n, "zeropt").astype(np.float64)
            bits = self._const(n.input[3], n, "bitwidth").astype(np.float64)
            if s.size != 1:
                raise ModelError(f"{layer.name}: activation scale must be per-tensor, "
                                 f"got shape {s.shape}")
            if np.any(zp != 0):
                raise ModelError(f"{layer.name}: activation zero point must be 0")
            layer.s_x = float(s.reshape(()))
            layer.act_codes = n.output[0]
            layer.act_from_quant = n
            layer.b_a = int(bits.reshape(()))
            return True
        return False

    def _zero_point(self, n):
        if len(n.input) > 2 and n.input[2]:
            return np.asarray(self._const(n.input[2], n, "zero point"))
        return np.zeros((), np.uint8)

    def _act_bits_qdq(self, qn, s_x):
        clip = self.producer.get(qn.input[0])
        if clip is None or clip.op_type != "Clip":
            return 8
        if len(clip.input) < 3 or not clip.input[2]:
            return 8
        m = float(self._const(clip.input[2], clip, "Clip max").astype(np.float64).reshape(()))
        levels = np.rint(m / s_x) + 1
        b = math.log2(levels) if levels > 0 else float("nan")
        if not (b == int(b) and 1 <= b <= 8):
            raise ModelError(f"{qn.name}: Clip max {m!r} / scale {s_x!r} gives "
                             f"{levels - 1:.0f} levels, not 2^b - 1 (activation bit-width "
                             "must be an integer)")
        return int(b)

    def _weight(self, layer, value, out_axis):
        """Fills Q, s_w, b_w if `value` is a quantized weight; False if it is not quantized."""
        n = self.producer.get(value)
        if n is None:
            return False
        if n.op_type == "DequantizeLinear":
            if n.input[0] not in self.inits:
                return False
            q = self.inits[n.input[0]]
            if q.dtype != np.int8:
                return False
            s = self._const(n.input[1], n, "weight scale").astype(np.float64)
            zp = self._zero_point(n)
            if np.any(zp != 0):
                raise ModelError(f"{layer.name}: weight zero point must be 0 (symmetric), "
                                 f"got {int(zp.reshape(-1)[np.argmax(zp.reshape(-1) != 0)])}")
            if np.any(q == -128):
                raise ModelError(f"{layer.name}: weight code -128 is not symmetric "
                                 "(codes must lie in [-127, 127])")
            axis = self._attr(n, "axis", 1)
            if s.size > 1:
                if axis < 0:
                    axis += q.ndim
                if axis != out_axis or s.ndim != 1 or s.size != q.shape[out_axis]:
                    raise ModelError(f"{layer.name}: weight scale of shape {s.shape} on axis "
                                     f"{axis}: only per-tensor or per-output-channel (axis "
                                     f"{out_axis}) scales are supported")
            layer.Q = q.astype(np.int64)
            layer.s_w_raw = s.reshape(-1)
            maxq = int(np.abs(layer.Q).max()) if layer.Q.size else 0
            layer.b_w = 1 + math.ceil(math.log2(maxq + 1))
            return True
        if n.op_type == "Quant":
            if n.input[0] not in self.inits:
                return False
            signed = self._attr(n, "signed", 1)
            narrow = self._attr(n, "narrow", 0)
            if not signed or not narrow:
                raise ModelError(f"{layer.name}: weight Quant {n.name} must be signed=1 narrow=1 "
                                 f"(got signed={signed} narrow={narrow})")
            w = self.inits[n.input[0]].astype(np.float64)
            s = self._const(n.input[1], n, "scale").astype(np.float64)
            zp = self._const(n.input[2], n, "zeropt").astype(np.float64)
            bits = int(self._const(n.input[3], n, "bitwidth").reshape(()))
            if np.any(zp != 0):
                raise ModelError(f"{layer.name}: weight zero point must be 0 (symmetric)")
            # The scale broadcasts against W (numpy rules, aligned from the right) and may vary
            # only along the output axis: [O, 1, 1, 1] on a Conv, [N] or [1, N] on a [K, N] MatMul.
            lead = w.ndim - s.ndim
            if lead < 0:
                raise ModelError(f"{layer.name}: weight scale of shape {s.shape} has a higher rank "
                                 f"than the weight {w.shape}")
            if s.size > 1 and any(d != 1 and (lead + i != out_axis or d != w.shape[out_axis])
                                  for i, d in enumerate(s.shape)):
                raise ModelError(f"{layer.name}: weight scale of shape {s.shape}: only "
                                 f"per-tensor or per-output-channel (axis {out_axis}) "
                                 "scales are supported")
            s_vec = s.reshape(-1)
            hi = 2 ** (bits - 1) - 1
            layer.Q = np.clip(np.rint(w / s), -hi, hi).astype(np.int64)
            layer.s_w_raw = s_vec
            layer.b_w = bits
            return True
        return False

    def _analyze(self, n):
        layer = MatrixLayer(n)
        if n.op_type == "Conv":
            out_axis = 0
        elif n.op_type == "Gemm":
            out_axis = 0 if self._attr(n, "transB", 0) else 1
        else:
            out_axis = 1
        has_act = self._activation(layer, n.input[0])
        has_w = self._weight(layer, n.input[1], out_axis)
        if not (has_act and has_w):
            return None
        if n.op_type == "Conv":
            if self._attr(n, "group", 1) != 1:
                raise ModelError(f"{n.name}: Conv group {self._attr(n, 'group')} "
                                 "is not supported (group must be 1)")
            q = layer.Q.reshape(layer.Q.shape[0], -1)
        elif n.op_type == "Gemm":
            if self._attr(n, "transA", 0):
                raise ModelError(f"{n.name}: Gemm transA=1 is not supported")
            for a in ("alpha", "beta"):
                if self._attr(n, a, 1.0) != 1.0:
                    raise ModelError(f"{n.name}: Gemm {a}={self._attr(n, a)} must be 1")
            q = layer.Q if out_axis == 0 else layer.Q.T
        else:
            if layer.Q.ndim != 2:
                raise ModelError(f"{n.name}: MatMul weight must be 2-D, got {layer.Q.shape}")
            q = layer.Q.T
        layer.Q = np.ascontiguousarray(q)
        o = layer.Q.shape[0]
        layer.s_w = (np.full(o, layer.s_w_raw[0]) if layer.s_w_raw.size == 1
                     else layer.s_w_raw.copy())
        if len(n.input) > 2 and n.input[2]:
            b = self._const(n.input[2], n, "bias").astype(np.float64)
            layer.bias = np.broadcast_to(b.reshape(-1), (o,)).copy() if b.size in (1, o) else None
            if layer.bias is None:
                raise ModelError(f"{n.name}: bias of shape {b.shape} does not match {o} outputs")
        self._place(layer)
        return layer

    def _place(self, layer):
        name = layer.name
        o = self.opts
        scheme = o.scheme or self._meta(name, "scheme", DEFAULTS["scheme"])
        if scheme not in SCHEMES:
            raise ModelError(f"{name}: unknown scheme {scheme!r}")
        layer.scheme = scheme
        layer.adc_bits = o.adc_bits or self._int_meta(name, "adc_bits")
        layer.rows = o.rows or self._int_meta(name, "rows")
        placement = self.meta.get(f"pim.layer.{name}.placement")
        if placement not in (None, "pim", "digital"):
            raise ModelError(f"{name}: placement {placement!r} must be pim or digital")
        mappable = (layer.b_w <= MAX_WEIGHT_BITS and layer.b_a <= MAX_INPUT_BITS[scheme])
        if o.digital or placement == "digital":
            layer.placement = "digital"
        elif mappable:
            layer.placement = "pim"
        elif placement == "pim":
            why = (f"weight codes need {layer.b_w} bits, target allows {MAX_WEIGHT_BITS}"
                   if layer.b_w > MAX_WEIGHT_BITS else
                   f"input needs {layer.b_a} bits, {scheme} allows {MAX_INPUT_BITS[scheme]}")
            raise ModelError(f"{name}: placement pim but not mappable: {why}")
        else:
            layer.placement = "digital"
        if layer.placement == "digital":
            layer.delta, layer.delta_rule = 1.0, "digital"
            return
        if o.adc_step is not None:
            layer.delta, layer.delta_rule = float(o.adc_step), "override"
            return
        step = self.meta.get(f"pim.layer.{name}.adc_step")
        if step is not None:
            try:
                layer.delta = float(step)
            except ValueError:
                raise ModelError(f"{name}: adc_step {step!r} is not a number") from None
            if not (layer.delta > 0 and math.isfinite(layer.delta)):
                raise ModelError(f"{name}: adc_step {step!r} must be positive")
            layer.delta_rule = "trained"
            return
        layer.delta, layer.delta_rule = full_range_delta(layer.Q, layer.b_a, layer.rows,
                                                         layer.scheme, layer.adc_bits), "full-range"

    # ---------------------------------------------------------------------------------------
    # execution
    def describe(self):
        """One line per quantized matrix layer: placement, scheme, bits, R, Delta and its rule."""
        lines = []
        for name, l in self.layers.items():
            if l.placement == "pim":
                lines.append(f"{name}: pim {l.scheme} b={l.adc_bits} R={l.rows} "
                             f"b_w={l.b_w} b_a={l.b_a} Delta={l.delta!r} ({l.delta_rule})")
            else:
                lines.append(f"{name}: digital b_w={l.b_w} b_a={l.b_a}")
        return lines

    def run(self, x, keep=False, batch=256):
        """Evaluates the model on x (float array, NCHW). Returns float64 logits (the first graph
        output), and with keep=True also the dict of all values (`input`, every value name,
        `<node>:S`, `logits`)."""
        x = np.asarray(x)
        outs, dumps = [], []
        for i in range(0, max(len(x), 1), batch):
            vals = self._run_batch(x[i:i + batch])
            outs.append(vals[self.outputs[0]])
            if keep:
                dumps.append(vals)
        logits = np.concatenate(outs, 0)
        if not keep:
            return logits
        merged = {k: (dumps[0][k] if k in self.constants else
                      np.concatenate([d[k] for d in dumps], 0)) for k in dumps[0]}
        merged["input"] = x
        merged["logits"] = logits
        return logits, merged

    def _run_batch(self, x):
        vals = {self.inputs[0]: x.astype(np.float64)}
        for name, a in self.inits.items():
            vals[name] = a
        out = {}
        for n in self.nodes:
            try:
                ins = [vals[i] if i else None for i in n.input]
            except KeyError as e:
                raise ModelError(f"{n.name}: input {e.args[0]!r} is not computed before it "
                                 "(graph not topologically sorted?)") from None
            if n.name in self.layers:
                y, s = self._matrix(self.layers[n.name], vals)
                out[n.name + ":S"] = s
            else:
                y = self._host(n, ins)
            vals[n.output[0]] = y
            out[n.output[0]] = y
        return out

    # -- quantized matrix layers ------------------------------------------------------------
    def _codes(self, layer, vals):
        if layer.act_from_quant is not None:
            n = layer.act_from_quant
            x = vals[n.input[0]].astype(np.float64)
            X = np.rint(x / layer.s_x)
        else:
            X = vals[layer.act_codes].astype(np.float64)
        return np.clip(X, 0, 2 ** layer.b_a - 1)

    def _matrix(self, layer, vals):
        # Codes are integers <= 255: float32 holds them exactly and halves the im2col traffic.
        X = self._codes(layer, vals).astype(np.float32)
        n = layer.node
        if layer.op == "Conv":
            cols, (N, Ho, Wo) = im2col(X, layer.Q.shape[1], n, self._attr)
        else:
            if layer.op == "Gemm" and X.ndim != 2:
                raise ModelError(f"{layer.name}: Gemm input must be 2-D, got {X.shape}")
            lead = X.shape[:-1]
            cols = X.reshape(-1, X.shape[-1])
        if cols.shape[1] != layer.Q.shape[1]:
            raise ModelError(f"{layer.name}: input has {cols.shape[1]} reduction rows, weight "
                             f"has {layer.Q.shape[1]}")
        if layer.placement == "digital":
            S = exact_matmul(cols, layer.Q, 2 ** layer.b_a - 1)
        else:
            S = pim_matmul(cols, layer.Q, layer.scheme, layer.adc_bits, layer.rows, layer.delta,
                           layer.b_a)
        Y = ((S * layer.delta) * layer.s_x) * layer.s_w[None, :]
        if layer.bias is not None:
            Y = Y + layer.bias[None, :]
        O = layer.Q.shape[0]
        if layer.op == "Conv":
            S = S.reshape(N, Ho, Wo, O).transpose(0, 3, 1, 2)
            Y = Y.reshape(N, Ho, Wo, O).transpose(0, 3, 1, 2)
        else:
            S = S.reshape(lead + (O,))
            Y = Y.reshape(lead + (O,))
        return np.ascontiguousarray(Y), np.ascontiguousarray(S).astype(np.int64)

    # -- host ops ------------------------------------------------------------------------------
    def _host(self, n, ins):
        op = n.op_type
        A = self._attr
        if op == "QuantizeLinear":
            x, s = ins[0].astype(np.float64), ins[1].astype(np.float64)
            zp = ins[2] if len(ins) > 2 and ins[2] is not None else np.zeros((), np.uint8)
            lo, hi = (0, 255) if zp.dtype == np.uint8 else (-128, 127)
            s, zpf = _axis_param(s, x, A(n, "axis", 1)), _axis_param(zp.astype(np.float64), x,
                                                                      A(n, "axis", 1))
            return np.clip(np.rint(x / s) + zpf, lo, hi).astype(zp.dtype)
        if op == "DequantizeLinear":
            q = ins[0].astype(np.float64)
            s = ins[1].astype(np.float64)
            zp = ins[2].astype(np.float64) if len(ins) > 2 and ins[2] is not None else 0.0
            axis = A(n, "axis", 1)
            return (q - _axis_param(np.asarray(zp), q, axis)) * _axis_param(s, q, axis)
        if op == "Quant":
            x = ins[0].astype(np.float64)
            s, zp = ins[1].astype(np.float64), ins[2].astype(np.float64)
            b = int(np.asarray(ins[3]).reshape(()))
            signed, narrow = A(n, "signed", 1), A(n, "narrow", 0)
            mode = A(n, "rounding_mode", "ROUND")
            if isinstance(mode, bytes):
                mode = mode.decode()
            if mode != "ROUND":
                raise ModelError(f"{n.name}: Quant rounding_mode {mode!r} is not supported "
                                 "(only ROUND, half to even)")
            if signed:
                hi = 2 ** (b - 1) - 1
                lo = -hi if narrow else -(2 ** (b - 1))
            else:
                lo, hi = 0, 2 ** b - 1 - (1 if narrow else 0)
            q = np.clip(np.rint(x / s) + zp, lo, hi)
            return (q - zp) * s
        if op == "BatchNormalization":
            if A(n, "training_mode", 0):
                raise ModelError(f"{n.name}: BatchNormalization training_mode=1 not supported")
            x = ins[0]
            eps = float(np.float32(A(n, "epsilon", 1e-5)))
            sh = (1, -1) + (1,) * (x.ndim - 2)
            scale, bias, mean, var = (v.astype(np.float64).reshape(sh) for v in ins[1:5])
            return (x - mean) / np.sqrt(var + eps) * scale + bias
        if op == "Relu":
            return np.maximum(ins[0], 0.0)
        if op == "Clip":
            x = ins[0]
            if len(ins) > 1 and ins[1] is not None:
                x = np.maximum(x, float(np.asarray(ins[1], np.float64)))
            if len(ins) > 2 and ins[2] is not None:
                x = np.minimum(x, float(np.asarray(ins[2], np.float64)))
            return x
        if op == "Add":
            return ins[0].astype(np.float64) + ins[1].astype(np.float64)
        if op in ("MaxPool", "AveragePool"):
            return self._pool(n, ins[0])
        if op == "GlobalAveragePool":
            x = ins[0]
            flat = x.reshape(x.shape[0], x.shape[1], -1)
            acc = np.zeros(flat.shape[:2])
            for i in range(flat.shape[2]):
                acc = acc + flat[:, :, i]
            return (acc / flat.shape[2]).reshape(x.shape[:2] + (1,) * (x.ndim - 2))
        if op == "Flatten":
            x = ins[0]
            axis = A(n, "axis", 1)
            axis = axis + x.ndim if axis < 0 else axis
            return x.reshape(int(np.prod(x.shape[:axis])), -1)
        if op == "Reshape":
            x, shape = ins[0], [int(v) for v in ins[1]]
            shape = [x.shape[i] if v == 0 and not A(n, "allowzero", 0) else v
                     for i, v in enumerate(shape)]
            return x.reshape(shape)
        if op == "Softmax":
            x = ins[0]
            axis = A(n, "axis", -1)
            e = np.exp(x - x.max(axis=axis, keepdims=True))
            return e / e.sum(axis=axis, keepdims=True)
        if op == "Concat":
            return np.concatenate([v.astype(np.float64) for v in ins], axis=A(n, "axis"))
        if op == "Conv":
            return self._float_conv(n, ins)
        if op in ("Gemm", "MatMul"):
            return self._float_gemm(n, ins)
        raise ModelError(f"node {n.name!r} ({op}): unsupported operator")

    def _pool(self, n, x):
        A = self._attr
        k = list(A(n, "kernel_shape"))
        nd = len(k)
        if nd != 2 or x.ndim != 4:
            raise ModelError(f"{n.name}: only 2-D pooling is supported")
        s = list(A(n, "strides", [1] * nd))
        d = list(A(n, "dilations", [1] * nd))
        pads = list(A(n, "pads", [0] * 2 * nd))
        if A(n, "auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET", b"VALID", "VALID"):
            raise ModelError(f"{n.name}: auto_pad {A(n, 'auto_pad')!r} is not supported")
        ceil = A(n, "ceil_mode", 0)
        N, C, H, W = x.shape
        out = []
        for i, size in enumerate((H, W)):
            span = (k[i] - 1) * d[i] + 1
            num = size + pads[i] + pads[i + nd] - span
            o = (-(-num // s[i]) if ceil else num // s[i]) + 1
            if ceil and (o - 1) * s[i] >= size + pads[i]:
                o -= 1
            out.append(o)
        Ho, Wo = out
        # Pad generously for ceil_mode windows that run past the end.
        ph = max(0, (Ho - 1) * s[0] + (k[0] - 1) * d[0] + 1 - H - pads[0])
        pw = max(0, (Wo - 1) * s[1] + (k[1] - 1) * d[1] + 1 - W - pads[1])
        maxpool = n.op_type == "MaxPool"
        fill = -np.inf if maxpool else 0.0
        xp = np.full((N, C, H + pads[0] + ph, W + pads[1] + pw), fill)
        xp[:, :, pads[0]:pads[0] + H, pads[1]:pads[1] + W] = x
        inside = np.zeros(xp.shape[2:])
        inside[pads[0]:pads[0] + H, pads[1]:pads[1] + W] = 1
        padded_area = np.zeros(xp.shape[2:])
        padded_area[:H + pads[0] + pads[2], :W + pads[1] + pads[3]] = 1
        acc = None
        cnt = np.zeros((Ho, Wo))
        include_pad = A(n, "count_include_pad", 0)
        for ky in range(k[0]):
            for kx in range(k[1]):
                ys, xs = ky * d[0], kx * d[1]
                win = xp[:, :, ys:ys + (Ho - 1) * s[0] + 1:s[0], xs:xs + (Wo - 1) * s[1] + 1:s[1]]
                if maxpool:
                    acc = win.copy() if acc is None else np.maximum(acc, win)
                else:
                    acc = (np.zeros_like(win) if acc is None else acc) + win
                    m = inside if not include_pad else padded_area
                    cnt += m[ys:ys + (Ho - 1) * s[0] + 1:s[0], xs:xs + (Wo - 1) * s[1] + 1:s[1]]
        return acc if maxpool else acc / cnt

    def _float_conv(self, n, ins):
        x, w = ins[0].astype(np.float64), ins[1].astype(np.float64)
        if self._attr(n, "group", 1) != 1:
            raise ModelError(f"{n.name}: Conv group {self._attr(n, 'group')} is not supported")
        o = w.shape[0]
        cols, (N, Ho, Wo) = im2col(x, w[0].size, n, self._attr)
        y = ordered_matmul(cols, w.reshape(o, -1))
        if len(ins) > 2 and ins[2] is not None:
            y = y + ins[2].astype(np.float64)[None, :]
        return np.ascontiguousarray(y.reshape(N, Ho, Wo, o).transpose(0, 3, 1, 2))

    def _float_gemm(self, n, ins):
        a, b = ins[0].astype(np.float64), ins[1].astype(np.float64)
        if n.op_type == "Gemm":
            if self._attr(n, "transA", 0):
                a = a.T
            if self._attr(n, "transB", 0):
                b = b.T
            y = ordered_matmul(a, b.T) * float(np.float32(self._attr(n, "alpha", 1.0)))
            if len(ins) > 2 and ins[2] is not None:
                y = y + float(np.float32(self._attr(n, "beta", 1.0))) * ins[2].astype(np.float64)
            return y
        lead = a.shape[:-1]
        return ordered_matmul(a.reshape(-1, a.shape[-1]), b.T).reshape(lead + (b.shape[1],))


def _axis_param(p, x, axis):
    p = np.asarray(p)
    if p.size == 1:
        return p.reshape(())
    axis = axis + x.ndim if axis < 0 else axis
    shape = [1] * x.ndim
    shape[axis] = p.size
    return p.reshape(shape)


def im2col(x, k_total, node, attr):
    """x [N,C,H,W] -> cols [N*Ho*Wo, C*kh*kw] with k = (c, ky, kx) row-major, zero padding."""
    if x.ndim != 4:
        raise ModelError(f"{node.name}: Conv input must be 4-D NCHW, got {x.shape}")
    N, C, H, W = x.shape
    ks = attr(node, "kernel_shape", None)
    if ks is None:
        kk = int(round(math.sqrt(k_total / C)))
        ks = [kk, kk]
    kh, kw = ks
    if C * kh * kw != k_total:
        raise ModelError(f"{node.name}: input has {C} channels, weight expects "
                         f"{k_total // (kh * kw)}")
    sh, sw = attr(node, "strides", [1, 1])
    dh, dw = attr(node, "dilations", [1, 1])
    auto = attr(node, "auto_pad", b"NOTSET")
    if auto not in (b"NOTSET", "NOTSET", b"VALID", "VALID"):
        raise ModelError(f"{node.name}: auto_pad {auto!r} is not supported (use explicit pads)")
    pt, pl, pb, pr = attr(node, "pads", [0, 0, 0, 0])
    Ho = (H + pt + pb - ((kh - 1) * dh + 1)) // sh + 1
    Wo = (W + pl + pr - ((kw - 1) * dw + 1)) // sw + 1
    if Ho < 1 or Wo < 1:
        raise ModelError(f"{node.name}: kernel larger than the padded input")
    xp = np.zeros((N, C, H + pt + pb, W + pl + pr), x.dtype)
    xp[:, :, pt:pt + H, pl:pl + W] = x
    win = sliding_window_view(xp, ((kh - 1) * dh + 1, (kw - 1) * dw + 1), axis=(2, 3))
    win = win[:, :, :(Ho - 1) * sh + 1:sh, :(Wo - 1) * sw + 1:sw, ::dh, ::dw]
    cols = win.transpose(0, 2, 3, 1, 4, 5)                 # [N, Ho, Wo, C, kh, kw]
    return cols.reshape(N * Ho * Wo, C * kh * kw), (N, Ho, Wo)


def _int_dot(a, b_t, bound):
    """a [M,K] @ b_t.T for integer-valued arrays, exact: float32 BLAS when every partial sum stays
    below 2^24 (then float32 holds it exactly whatever the summation order), else float64 (exact
    below 2^53)."""
    if bound < 2 ** 24:
        return (a.astype(np.float32, copy=False) @ b_t.T.astype(np.float32)).astype(np.float64)
    if bound >= 2 ** 53:
        raise ModelError("integer accumulator would exceed 2^53")
    return a.astype(np.float64) @ b_t.T.astype(np.float64)


def exact_matmul(cols, Q, x_top):
    bound = cols.shape[1] * max(int(np.abs(Q).max()) if Q.size else 0, 1) * max(x_top, 1)
    return _int_dot(cols, Q, bound)


def full_range_delta(Q, b_a, rows, scheme, adc_bits):
    """Convention 3.2: P_max / code_max over all output channels and row groups."""
    O, K = Q.shape
    G = -(-K // rows)
    pad = np.zeros((O, G * rows), np.int64)
    pad[:, :K] = Q
    g = pad.reshape(O, G, rows)
    pos = np.maximum(g, 0).sum(2)
    neg = np.maximum(-g, 0).sum(2)
    x_top = 1 if scheme == "bit_serial" else 2 ** b_a - 1
    p_max = float(max(pos.max(), neg.max())) * x_top
    code_max = 2 ** adc_bits - 1 if scheme == "differential" else 2 ** (adc_bits - 1) - 1
    if p_max == 0:
        return 1.0
    return p_max / code_max


def pim_matmul(cols, Q, scheme, adc_bits, rows, delta, b_a):
    """S [M, O] of convention 3.1 for integer codes cols [M, K] and weights Q [O, K]."""
    M, K = cols.shape
    O = Q.shape[0]
    lo, hi = adc_range(scheme, adc_bits)
    S = np.zeros((M, O))
    for g0 in range(0, K, rows):
        xg = cols[:, g0:g0 + rows]
        qg = Q[:, g0:g0 + rows]
        r = xg.shape[1]
        qmax = max(int(np.abs(qg).max()) if qg.size else 0, 1)
        if scheme == "native":
            p = _int_dot(xg, qg, r * qmax * (2 ** b_a - 1))
            S += np.clip(np.rint(p / delta), lo, hi)
        elif scheme == "differential":
            bound = r * qmax * (2 ** b_a - 1)
            pp = _int_dot(xg, np.maximum(qg, 0), bound)
            pn = _int_dot(xg, np.maximum(-qg, 0), bound)
            S += np.clip(np.rint(pp / delta), lo, hi) - np.clip(np.rint(pn / delta), lo, hi)
        else:
            xi = xg.astype(np.int64)
            for j in range(b_a):
                plane = (xi >> j) & 1
                p = _int_dot(plane, qg, r * qmax)
                S += (2.0 ** j) * np.clip(np.rint(p / delta), lo, hi)
    return S


def ordered_matmul(a, b_t):
    """a [M,K] @ b_t.T summed over k in order from 0 (float layers, convention 4)."""
    acc = np.zeros((a.shape[0], b_t.shape[0]))
    for k in range(a.shape[1]):
        acc = acc + a[:, k:k + 1] * b_t[None, :, k]
    return acc


def dump_npz(path, values):
    """Writes values to a compressed .npz (readable by np.load), byte-identical for the same
    values: sorted keys, fixed zip timestamps. Codes keep their integer dtypes."""
    import io
    import zipfile
    tmp = path + ".tmp"
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        for k in sorted(values):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(values[k]), allow_pickle=False)
            info = zipfile.ZipInfo(k + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, buf.getvalue())
    os.replace(tmp, path)


def main(argv=None):
    ap = argparse.ArgumentParser(description="numpy reference executor for PIM ONNX models")
    ap.add_argument("model")
    ap.add_argument("--images", required=True, help="IDX (.gz ok), .npy or .npz (key input)")
    ap.add_argument("--labels", help="IDX or .npy labels; prints accuracy")
    ap.add_argument("--dump", help="write every intermediate tensor to this .npz")
    ap.add_argument("--scheme", choices=SCHEMES)
    ap.add_argument("--adc-bits", type=int)
    ap.add_argument("--rows", type=int)
    ap.add_argument("--adc-step", type=float)
    ap.add_argument("--digital", action="store_true",
                    help="force every layer digital (digital-QAT evaluation, Delta -> 0)")
    ap.add_argument("--limit", type=int, default=0, help="evaluate only the first N images")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--verbose", "-v", action="store_true", help="print the layer placement")
    args = ap.parse_args(argv)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import data
    try:
        opts = Options(args.scheme, args.adc_bits, args.rows, args.adc_step, args.digital)
        ref = Reference(args.model, opts)
        x = data.load_images(args.images)
        y = data.load_labels(args.labels) if args.labels else None
    except (ModelError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.limit:
        x = x[:args.limit]
        y = y[:args.limit] if y is not None else None
    if args.verbose:
        print("\n".join(ref.describe()))
    try:
        if args.dump:
            logits, vals = ref.run(x, keep=True, batch=args.batch)
            dump_npz(args.dump, vals)
        else:
            logits = ref.run(x, batch=args.batch)
    except ModelError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if y is not None:
        if len(y) < len(x):
            print(f"error: {len(y)} labels for {len(x)} images", file=sys.stderr)
            return 2
        acc = float((logits.argmax(1) == y[:len(x)]).mean())
        print(f"accuracy: {acc:.4f}")
    else:
        print("predictions:", " ".join(str(int(v)) for v in logits.argmax(1)[:20]),
              "..." if len(x) > 20 else "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
