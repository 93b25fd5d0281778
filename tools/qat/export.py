"""Export a trained OpNet (nets.py) to ONNX opset 13 in the forms of docs/onnx-convention.md.

The graph is built directly with onnx.helper from the module's op list (not torch.onnx.export),
so node names (conv1, bn1, ...) and value names are stable and the file is byte-identical for the
same checkpoint. Forms:

    qdq    activations Clip -> QuantizeLinear(uint8) -> DequantizeLinear; weights int8 codes ->
           DequantizeLinear(axis 0, per-channel scale)
    qonnx  Quant nodes (domain qonnx.custom_op.general, version 1) on activations and float weights

Names: an op's output value is the op's name (the last one is `logits`); an activation quantizer
`actN` is the node `actN` (DequantizeLinear or Quant) preceded in QDQ form by `actN.clip`
and `actN.quantize` (output `actN.codes`); a layer's weight is the value `<layer>.weight`.
BatchNormalization stays its own node (never folded).
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

QONNX_DOMAIN = "qonnx.custom_op.general"
OPSET = 13


def output_path(prefix, form):
    return prefix + (".onnx" if form == "qdq" else ".qonnx.onnx")


def fmt_double(v):
    """17 significant digits: parses back to the same double."""
    return format(float(v), ".17g")


class _Graph:
    def __init__(self):
        self.nodes, self.inits = [], []

    def init(self, name, array):
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(self, op, name, inputs, output=None, domain=None, **attrs):
        out = output or name
        self.nodes.append(helper.make_node(op, inputs, [out], name=name, domain=domain, **attrs))
        return out


def _act(g, form, name, x, quant):
    s = quant.export_scale().numpy().astype(np.float32)
    bits = quant.bits
    if form == "qonnx":
        return g.node("Quant", name, [x, g.init(name + ".scale", s),
                                      g.init(name + ".zero_point", np.float32(0)),
                                      g.init(name + ".bitwidth", np.float32(bits))],
                      domain=QONNX_DOMAIN, signed=0, narrow=0, rounding_mode="ROUND")
    if quant.learned:
        # The Clip bound carries the activation bit-width: b_a = log2(rne(M / s_x) + 1).
        top = np.float32(s * np.float32(2 ** bits - 1))
        x = g.node("Clip", name + ".clip", [x, g.init(name + ".clip_min", np.float32(0)),
                                            g.init(name + ".clip_max", top)])
    scale = g.init(name + ".scale", s)
    zp = g.init(name + ".zero_point", np.uint8(0))
    codes = g.node("QuantizeLinear", name + ".quantize", [x, scale, zp], output=name + ".codes")
    return g.node("DequantizeLinear", name, [codes, scale, zp])


def _layer(g, form, name, x, layer, out):
    q, s = layer.export_codes()
    q = q.numpy().astype(np.int8)
    s = s.numpy().astype(np.float32)
    if form == "qonnx":
        shape = (-1,) + (1,) * (q.ndim - 1)
        w = (q.astype(np.float32) * s.reshape(shape)).astype(np.float32)
        wq = g.node("Quant", name + ".weight_quant",
                    [g.init(name + ".weight_float", w),
                     g.init(name + ".weight_scale", s.reshape(shape)),
                     g.init(name + ".weight_zero_point", np.float32(0)),
                     g.init(name + ".weight_bitwidth", np.float32(layer.w_bits))],
                    output=name + ".weight", domain=QONNX_DOMAIN, signed=1, narrow=1,
                    rounding_mode="ROUND")
    else:
        wq = g.node("DequantizeLinear", name + ".weight_dequant",
                    [g.init(name + ".weight_codes", q), g.init(name + ".weight_scale", s),
                     g.init(name + ".weight_zero_point", np.zeros(s.shape, np.int8))],
                    output=name + ".weight", axis=0)
    ins = [x, wq]
    if layer.bias is not None:
        ins.append(g.init(name + ".bias", layer.bias.detach().numpy().astype(np.float32)))
    if layer.kind == "conv":
        p = layer.padding
        return g.node("Conv", name, ins, output=out, kernel_shape=[layer.kernel] * 2,
                      strides=[layer.stride] * 2, pads=[p, p, p, p], dilations=[1, 1], group=1)
    return g.node("Gemm", name, ins, output=out, transB=1)


def build(model, cfg, form="qdq"):
    """ModelProto of a trained OpNet in eval mode; cfg is the training configuration."""
    if form not in ("qdq", "qonnx"):
        raise ValueError(f"unknown form {form!r} (expected qdq or qonnx)")
    model.eval()
    g = _Graph()
    last = model.ops[-1][1]
    for kind, name, ins in model.ops:
        out = "logits" if name == last else name
        mod = model.mods[name] if name in model.mods else None
        if kind == "actq":
            v = _act(g, form, name, ins[0], mod)
        elif kind in ("conv", "fc"):
            v = _layer(g, form, name, ins[0], mod, out)
        elif kind == "bn":
            v = g.node("BatchNormalization", name,
                       [ins[0], g.init(name + ".scale", mod.weight.detach().numpy()),
                        g.init(name + ".bias", mod.bias.detach().numpy()),
                        g.init(name + ".mean", mod.running_mean.numpy()),
                        g.init(name + ".var", mod.running_var.numpy())],
                       output=out, epsilon=float(mod.eps))
        elif kind == "relu":
            v = g.node("Relu", name, ins, output=out)
        elif kind == "maxpool":
            v = g.node("MaxPool", name, ins, output=out, kernel_shape=[2, 2], strides=[2, 2])
        elif kind == "add":
            v = g.node("Add", name, ins, output=out)
        elif kind == "gap":
            v = g.node("GlobalAveragePool", name, ins, output=out)
        elif kind == "flatten":
            v = g.node("Flatten", name, ins, output=out, axis=1)
        else:
            raise ValueError(f"{name}: cannot export op kind {kind}")
        assert v == out or kind == "actq", (name, v, out)
    graph = helper.make_graph(
        g.nodes, model.arch.replace("-", "_"),
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 28, 28])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
        initializer=g.inits)
    opsets = [helper.make_opsetid("", OPSET)]
    if form == "qonnx":
        opsets.append(helper.make_opsetid(QONNX_DOMAIN, 1))
    m = helper.make_model(graph, opset_imports=opsets, producer_name="pim-qat",
                          producer_version="1")
    meta = metadata(model, cfg)
    helper.set_model_props(m, meta)
    m.metadata_props.sort(key=lambda p: p.key)
    return m


def metadata(model, cfg):
    pim = bool(cfg.get("scheme"))
    meta = {
        "pim.training": cfg.get("training", "pim-qat" if pim else "conventional-qat"),
        "pim.scheme": cfg.get("scheme") or "native",
        "pim.adc_bits": str(cfg.get("adc_bits", 7)),
        "pim.rows": str(cfg.get("rows", 64)),
    }
    if pim and cfg.get("train_adc_bits", cfg["adc_bits"]) != cfg["adc_bits"]:
        meta["pim.train_adc_bits"] = str(cfg["train_adc_bits"])
    if pim and cfg.get("train_noise_lsb", 0.0) > 0:
        meta["pim.train_noise_lsb"] = fmt_double(cfg["train_noise_lsb"])
    for name, layer in model.qlayers():
        if layer.digital:
            meta[f"pim.layer.{name}.placement"] = "digital"
        elif pim:
            meta[f"pim.layer.{name}.adc_step"] = fmt_double(layer.export_adc_step())
    return meta


def check(m):
    """onnx.checker with full_check (includes shape inference). The QONNX `Quant` op has no
    schema in the onnx package; with its domain declared in opset_import (version 1) the checker
    (onnx 1.12) checks such nodes structurally and shape inference leaves their outputs unknown,
    so the full check passes for both forms."""
    onnx.checker.check_model(m, full_check=True)


def save(model, cfg, path, form):
    m = build(model, cfg, form)
    check(m)
    data = m.SerializeToString(deterministic=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
    return path
