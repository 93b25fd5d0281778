#!/usr/bin/python3
"""Makes the synthetic ONNX models the compiler tests use (docs/onnx-convention.md forms).

Run from anywhere with the system Python (it needs `onnx` and numpy):
    /usr/bin/python3 tests/data/onnx/make_test_models.py
Outputs are written next to this script and committed; they are small and deterministic
(fixed seeds, no timestamps), so rerunning the script reproduces them byte for byte.
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
OPSET = [helper.make_opsetid("", 13)]
QONNX_DOMAIN = "qonnx.custom_op.general"


def f32(a):
    return np.asarray(a, dtype=np.float32)


class Builder:
    """Collects nodes and initializers; names every node."""

    def __init__(self, seed):
        self.nodes = []
        self.inits = []
        self.rng = np.random.default_rng(seed)

    def init(self, name, array):
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(self, op, name, inputs, outputs, domain="", **attrs):
        self.nodes.append(helper.make_node(op, inputs, outputs, name=name, domain=domain, **attrs))
        return outputs[0]

    # --- QDQ form -----------------------------------------------------------------------------
    def qdq_act(self, x, name, scale, bits=None):
        """Optional Clip(0, M) -> QuantizeLinear(uint8) -> DequantizeLinear."""
        if bits is not None:
            m = scale * (2 ** bits - 1)
            x = self.node("Clip", f"{name}_clip", [x, self.init(f"{name}_lo", f32(0.0)),
                                                   self.init(f"{name}_hi", f32(m))], [f"{name}_clipped"])
        s = self.init(f"{name}_scale", f32(scale))
        zp = self.init(f"{name}_zp", np.uint8(0))
        q = self.node("QuantizeLinear", f"{name}_quant", [x, s, zp], [f"{name}_q"])
        return self.node("DequantizeLinear", f"{name}_dequant", [q, s, zp], [f"{name}_dq"])

    def qdq_weight(self, name, codes, scales, axis=0):
        q = self.init(f"{name}_wq", codes.astype(np.int8))
        s = self.init(f"{name}_ws", f32(scales))
        zp = self.init(f"{name}_wzp", np.zeros(np.shape(scales), dtype=np.int8))
        attrs = {"axis": axis} if np.ndim(scales) > 0 else {}
        return self.node("DequantizeLinear", f"{name}_wdequant", [q, s, zp], [f"{name}_w"], **attrs)

    # --- QONNX form ---------------------------------------------------------------------------
    def quant(self, x, name, scale, bits, signed, narrow):
        s = self.init(f"{name}_scale", f32(scale))
        zp = self.init(f"{name}_zeropt", f32(0.0))
        b = self.init(f"{name}_bitwidth", f32(bits))
        return self.node("Quant", name, [x, s, zp, b], [f"{name}_out"], domain=QONNX_DOMAIN,
                         signed=int(signed), narrow=int(narrow), rounding_mode="ROUND")

    def codes(self, shape, max_abs):
        return self.rng.integers(-max_abs, max_abs + 1, size=shape)

    def bn(self, x, name, channels):
        scale = self.init(f"{name}_gamma", f32(self.rng.uniform(0.5, 1.5, channels)))
        bias = self.init(f"{name}_beta", f32(self.rng.uniform(-0.2, 0.2, channels)))
        mean = self.init(f"{name}_mean", f32(self.rng.uniform(-0.1, 0.1, channels)))
        var = self.init(f"{name}_var", f32(self.rng.uniform(0.5, 2.0, channels)))
        return self.node("BatchNormalization", name, [x, scale, bias, mean, var], [f"{name}_out"],
                         epsilon=1e-5)

    def save(self, file_name, inputs, outputs, metadata=None, opset=None):
        graph = helper.make_graph(self.nodes, file_name.replace(".onnx", ""), inputs, outputs,
                                  self.inits)
        model = helper.make_model(graph, opset_imports=opset or OPSET, producer_name="make_test_models")
        model.ir_version = 8
        for k, v in (metadata or {}).items():
            entry = model.metadata_props.add()
            entry.key, entry.value = k, v
        if not any(n.domain == QONNX_DOMAIN for n in self.nodes):
            onnx.checker.check_model(model)
        path = os.path.join(HERE, file_name)
        with open(path, "wb") as f:
            f.write(model.SerializeToString())
        return path


def image_input(channels=1, size=8):
    return helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", channels, size, size])


def logits_output(n):
    return helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", n])


def qdq_conv():
    """A small QDQ conv net: 4-bit activations, 4-bit per-channel weights, BN, residual Add,
    pooling, a Gemm head and a trained adc_step on conv2."""
    b = Builder(1)
    x = b.qdq_act("input", "a0", 1.0 / 15, bits=4)
    w = b.qdq_weight("conv1", b.codes((4, 1, 3, 3), 7), b.rng.uniform(0.01, 0.05, 4))
    y = b.node("Conv", "conv1", [x, w, b.init("conv1_b", f32(b.rng.uniform(-0.1, 0.1, 4)))],
               ["conv1_out"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    y = b.bn(y, "bn1", 4)
    y = b.node("Relu", "relu1", [y], ["relu1_out"])
    skip = y
    x = b.qdq_act(y, "a1", 0.1, bits=4)
    w = b.qdq_weight("conv2", b.codes((4, 4, 3, 3), 7), b.rng.uniform(0.01, 0.05, 4))
    y = b.node("Conv", "conv2", [x, w], ["conv2_out"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    y = b.node("Add", "add1", [y, skip], ["add1_out"])
    y = b.node("Relu", "relu2", [y], ["relu2_out"])
    y = b.node("MaxPool", "pool1", [y], ["pool1_out"], kernel_shape=[2, 2], strides=[2, 2])
    x = b.qdq_act(y, "a2", 0.1, bits=4)
    w = b.qdq_weight("conv3", b.codes((8, 4, 3, 3), 7), b.rng.uniform(0.01, 0.05, 8))
    y = b.node("Conv", "conv3", [x, w], ["conv3_out"], kernel_shape=[3, 3], strides=[2, 2],
               pads=[1, 1, 1, 1])
    y = b.node("Relu", "relu3", [y], ["relu3_out"])
    y = b.node("GlobalAveragePool", "gap", [y], ["gap_out"])
    y = b.node("Flatten", "flatten", [y], ["flat"], axis=1)
    x = b.qdq_act(y, "a3", 0.1, bits=4)
    w = b.qdq_weight("fc", b.codes((10, 8), 7), b.rng.uniform(0.01, 0.05, 10))
    b.node("Gemm", "fc", [x, w, b.init("fc_b", f32(b.rng.uniform(-0.1, 0.1, 10)))], ["logits"],
           transB=1)
    return b.save("qdq_conv.onnx", [image_input()], [logits_output(10)],
                  {"pim.training": "pim-qat", "pim.layer.conv2.adc_step": "2.5",
                   "pim.layer.fc.placement": "digital"})


def qonnx_conv():
    """The QONNX (Brevitas/FINN) form: Quant nodes on weights and activations."""
    b = Builder(2)
    x = b.node("Clip", "clip0", ["input", b.init("clip0_lo", f32(0.0)), b.init("clip0_hi", f32(1.0))],
               ["clip0_out"])
    x = b.quant(x, "qa0", 1.0 / 15, 4, signed=False, narrow=False)
    w = b.quant(b.init("conv1_w", f32(b.rng.normal(0, 0.1, (6, 1, 3, 3)))), "qw1",
                f32(b.rng.uniform(0.02, 0.04, 6)).reshape(6, 1, 1, 1), 4, signed=True, narrow=True)
    y = b.node("Conv", "conv1", [x, w], ["conv1_out"], kernel_shape=[3, 3])
    y = b.node("Relu", "relu1", [y], ["relu1_out"])
    x = b.quant(y, "qa1", 0.05, 3, signed=False, narrow=False)
    y = b.node("AveragePool", "pool1", [x], ["pool1_out"], kernel_shape=[2, 2], strides=[2, 2])
    y = b.node("Flatten", "flatten", [y], ["flat"], axis=1)
    x = b.quant(y, "qa2", 0.05, 4, signed=False, narrow=False)
    w = b.quant(b.init("fc_w", f32(b.rng.normal(0, 0.1, (54, 10)))), "qw2", f32(0.03), 5,
                signed=True, narrow=True)
    y = b.node("MatMul", "fc", [x, w], ["fc_out"])
    b.node("Softmax", "softmax", [y], ["logits"], axis=-1)
    opset = OPSET + [helper.make_opsetid(QONNX_DOMAIN, 1)]
    return b.save("qonnx_conv.onnx", [image_input()], [logits_output(10)],
                  {"pim.training": "pim-qat", "pim.scheme": "differential", "pim.adc_bits": "6"},
                  opset=opset)


def qdq_mlp():
    """Fully connected layers with K not a multiple of 64 (K = 100, then 70) and a [K,N] Gemm."""
    b = Builder(3)
    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 100])
    x = b.qdq_act("input", "a0", 1.0 / 15, bits=4)
    w = b.qdq_weight("fc1", b.codes((70, 100), 7), b.rng.uniform(0.01, 0.05, 70))
    y = b.node("Gemm", "fc1", [x, w], ["fc1_out"], transB=1)
    y = b.node("Relu", "relu1", [y], ["relu1_out"])
    x = b.qdq_act(y, "a1", 0.1, bits=4)
    w = b.qdq_weight("fc2", b.codes((70, 12), 3), b.rng.uniform(0.01, 0.05, 12), axis=1)
    y = b.node("Gemm", "fc2", [x, w, b.init("fc2_b", f32(np.zeros(12)))], ["fc2_out"])
    x = b.qdq_act(y, "a2", 0.1, bits=None)  # no Clip: 8-bit activation
    w = b.qdq_weight("fc3", b.codes((12, 10), 7), f32(0.02))
    b.node("MatMul", "fc3", [x, w], ["logits"])
    return b.save("qdq_mlp.onnx", [inp], [logits_output(10)],
                  {"pim.rows": "32", "pim.layer.fc1.scheme": "bit_serial"})


def wide_weights():
    """conv3 has weight codes in [-31, 31] (6 bits) and asks for PIM placement."""
    b = Builder(4)
    x = b.qdq_act("input", "a0", 1.0 / 15, bits=4)
    w = b.qdq_weight("conv3", b.codes((4, 1, 3, 3), 31), b.rng.uniform(0.01, 0.05, 4))
    w_codes = b.inits[-3]
    arr = numpy_helper.to_array(w_codes).copy()
    arr[0, 0, 0, 0] = 31  # make the range exact
    w_codes.CopyFrom(numpy_helper.from_array(arr, w_codes.name))
    b.node("Conv", "conv3", [x, w], ["conv3_out"], kernel_shape=[3, 3])
    b.node("GlobalAveragePool", "gap", ["conv3_out"], ["gap_out"])
    b.node("Flatten", "flatten", ["gap_out"], ["logits"])
    return b.save("wide_weights.onnx", [image_input()], [logits_output(4)],
                  {"pim.layer.conv3.placement": "pim"})


def unsupported_op():
    """A Sin node named `weird` between two supported ops."""
    b = Builder(5)
    y = b.node("Relu", "relu0", ["input"], ["relu0_out"])
    y = b.node("Sin", "weird", [y], ["weird_out"])
    b.node("Flatten", "flatten", [y], ["logits"])
    return b.save("unsupported_op.onnx", [image_input()], [logits_output(64)])


def float_layer():
    """An unquantized Conv and Gemm (host, double) next to nothing else."""
    b = Builder(6)
    w = b.init("conv_w", f32(b.rng.normal(0, 0.1, (2, 1, 3, 3))))
    y = b.node("Conv", "conv", ["input", w], ["conv_out"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    y = b.node("Flatten", "flatten", [y], ["flat"])
    w = b.init("fc_w", f32(b.rng.normal(0, 0.1, (10, 128))))
    b.node("Gemm", "fc", [y, w], ["logits"], transB=1)
    return b.save("float_layer.onnx", [image_input()], [logits_output(10)])


def broken_files(source):
    with open(source, "rb") as f:
        data = f.read()
    with open(os.path.join(HERE, "truncated.onnx"), "wb") as f:
        f.write(data[: len(data) // 2])
    with open(os.path.join(HERE, "not_onnx.onnx"), "wb") as f:
        f.write(b"This is a text file, not an ONNX model.\n" * 4)


def main():
    src = qdq_conv()
    qonnx_conv()
    qdq_mlp()
    wide_weights()
    unsupported_op()
    float_layer()
    broken_files(src)


if __name__ == "__main__":
    main()
