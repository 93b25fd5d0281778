"""Tiny hand-built ONNX models for the tests (built with onnx.helper, independent of export.py),
and a loop-by-loop implementation of the convention to check the reference against."""
import numpy as np
from onnx import TensorProto, helper, numpy_helper

QONNX = "qonnx.custom_op.general"


def quantized_layer_model(op, form, Q, s_w, s_x, b_a, x_shape, conv=None, trans_b=1,
                          bias=None, meta=None, b_w=None):
    """input -> activation quantizer (b_a bits, scale s_x) -> op (Conv/Gemm/MatMul) -> out.
    Q: int weight codes in ONNX layout; s_w: scalar or per-output-channel vector."""
    inits, nodes = [], []

    def init(name, a):
        inits.append(numpy_helper.from_array(np.asarray(a), name))
        return name

    s_w = np.asarray(s_w, np.float32)
    out_axis = 0 if op == "Conv" or (op == "Gemm" and trans_b) else 1
    if form == "qdq":
        top = np.float32(np.float32(s_x) * np.float32(2 ** b_a - 1))
        nodes.append(helper.make_node("Clip", ["input", init("cmin", np.float32(0)),
                                               init("cmax", top)], ["clip"], name="clip"))
        nodes.append(helper.make_node("QuantizeLinear", ["clip", init("sx", np.float32(s_x)),
                                                         init("zx", np.uint8(0))], ["codes"],
                                      name="quantize"))
        nodes.append(helper.make_node("DequantizeLinear", ["codes", "sx", "zx"], ["act"],
                                      name="act"))
        zw = np.zeros(s_w.shape, np.int8)
        nodes.append(helper.make_node("DequantizeLinear", [init("wq", np.asarray(Q, np.int8)),
                                                           init("sw", s_w), init("zw", zw)],
                                      ["w"], name="wdq", axis=out_axis))
    else:
        nodes.append(helper.make_node("Quant", ["input", init("sx", np.float32(s_x)),
                                                init("zx", np.float32(0)),
                                                init("bx", np.float32(b_a))], ["act"],
                                      name="act", domain=QONNX, signed=0, narrow=0,
                                      rounding_mode="ROUND"))
        shape = [1] * np.asarray(Q).ndim
        if s_w.size > 1:
            shape[out_axis] = s_w.size
        sw = s_w.reshape(shape) if s_w.size > 1 else s_w
        w = (np.asarray(Q, np.float32) * sw).astype(np.float32)
        bits = b_w or 1 + int(np.ceil(np.log2(np.abs(Q).max() + 1)))
        nodes.append(helper.make_node("Quant", [init("wf", w), init("sw", sw),
                                                init("zw", np.float32(0)),
                                                init("bw", np.float32(bits))], ["w"],
                                      name="wq", domain=QONNX, signed=1, narrow=1,
                                      rounding_mode="ROUND"))
    ins = ["act", "w"]
    if bias is not None:
        ins.append(init("bias", np.asarray(bias, np.float32)))
    attrs = dict(conv or {})
    if op == "Gemm":
        attrs["transB"] = trans_b
    nodes.append(helper.make_node(op, ins, ["out"], name="layer", **attrs))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(
        "input", TensorProto.FLOAT, list(x_shape))], [helper.make_tensor_value_info(
            "out", TensorProto.FLOAT, ["o%d" % i for i in range(4 if op == "Conv" else 2)])],
        initializer=inits)
    opsets = [helper.make_opsetid("", 13)]
    if form == "qonnx":
        opsets.append(helper.make_opsetid(QONNX, 1))
    m = helper.make_model(graph, opset_imports=opsets)
    helper.set_model_props(m, meta or {})
    return m


def naive_s(xvec, q, scheme, bits, rows, delta, b_a):
    """S for one output: xvec [K] integer codes, q [K] integer weights. Plain Python loops."""
    K = len(xvec)
    total = 0
    for g0 in range(0, K, rows):
        ks = range(g0, min(g0 + rows, K))
        if scheme == "native":
            p = sum(int(q[k]) * int(xvec[k]) for k in ks)
            total += min(max(int(np.rint(p / delta)), -2 ** (bits - 1)), 2 ** (bits - 1) - 1)
        elif scheme == "differential":
            pp = sum(max(int(q[k]), 0) * int(xvec[k]) for k in ks)
            pn = sum(max(-int(q[k]), 0) * int(xvec[k]) for k in ks)
            cp = min(max(int(np.rint(pp / delta)), 0), 2 ** bits - 1)
            cn = min(max(int(np.rint(pn / delta)), 0), 2 ** bits - 1)
            total += cp - cn
        elif scheme == "bit_serial":
            for j in range(b_a):
                p = sum(int(q[k]) * ((int(xvec[k]) >> j) & 1) for k in ks)
                c = min(max(int(np.rint(p / delta)), -2 ** (bits - 1)), 2 ** (bits - 1) - 1)
                total += (2 ** j) * c
        else:  # digital
            total += sum(int(q[k]) * int(xvec[k]) for k in ks)
    return total


def naive_conv_s(X, Q, stride, pads, dil, **kw):
    """X [N,C,H,W] codes, Q [O,C,kh,kw]: S [N,O,Ho,Wo] with explicit loops."""
    N, C, H, W = X.shape
    O, _, kh, kwid = Q.shape
    pt, pl, pb, pr = pads
    Ho = (H + pt + pb - (kh - 1) * dil[0] - 1) // stride[0] + 1
    Wo = (W + pl + pr - (kwid - 1) * dil[1] - 1) // stride[1] + 1
    S = np.zeros((N, O, Ho, Wo), np.int64)
    for n in range(N):
        for i in range(Ho):
            for j in range(Wo):
                vec = []
                for c in range(C):
                    for ky in range(kh):
                        for kx in range(kwid):
                            y = i * stride[0] - pt + ky * dil[0]
                            x = j * stride[1] - pl + kx * dil[1]
                            inside = 0 <= y < H and 0 <= x < W
                            vec.append(X[n, c, y, x] if inside else 0)
                for o in range(O):
                    S[n, o, i, j] = naive_s(vec, Q[o].reshape(-1), **kw)
    return S
