"""The numpy reference against a loop-by-loop implementation of the convention, on tiny
hand-built models (every scheme, both forms, odd K, small R, per-tensor scales)."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import reference
from synth import naive_conv_s, naive_s, quantized_layer_model

SCHEMES = ["native", "differential", "bit_serial"]


def _codes(x, s_x, b_a):
    return np.clip(np.rint(x.astype(np.float64) / np.float64(np.float32(s_x))), 0, 2 ** b_a - 1)


@pytest.mark.parametrize("form", ["qdq", "qonnx"])
@pytest.mark.parametrize("scheme", SCHEMES)
def test_conv_matches_loops(form, scheme):
    rng = np.random.default_rng(1)
    b_a, rows, bits = 3, 8, 3
    Q = rng.integers(-7, 8, (4, 3, 3, 3))          # K = 27: not a multiple of R = 8
    s_w = rng.uniform(0.01, 0.1, 4).astype(np.float32)
    s_x = 0.125
    x = rng.uniform(-0.1, 1.0, (2, 3, 7, 6)).astype(np.float32)
    conv = dict(kernel_shape=[3, 3], strides=[2, 1], pads=[1, 0, 2, 1], dilations=[1, 2])
    m = quantized_layer_model("Conv", form, Q, s_w, s_x, b_a, x.shape, conv=conv,
                              bias=[0.5, -0.25, 0.0, 1.0],
                              meta={"pim.scheme": scheme, "pim.adc_bits": str(bits),
                                    "pim.rows": str(rows),
                                    "pim.layer.layer.adc_step": "3.5"})
    onnx.checker.check_model(m)
    ref = reference.Reference(m)
    assert ref.layers["layer"].placement == "pim"
    assert ref.layers["layer"].delta_rule == "trained"
    y, vals = ref.run(x, keep=True)
    S = naive_conv_s(_codes(x, s_x, b_a), Q, [2, 1], [1, 0, 2, 1], [1, 2], scheme=scheme,
                     bits=bits, rows=rows, delta=3.5, b_a=b_a)
    np.testing.assert_array_equal(vals["layer:S"], S)
    expect = ((S * 3.5) * np.float64(np.float32(s_x))) * s_w.astype(np.float64)[None, :, None, None]
    expect = expect + np.array([0.5, -0.25, 0.0, 1.0])[None, :, None, None]
    np.testing.assert_array_equal(y, expect)


@pytest.mark.parametrize("form", ["qdq", "qonnx"])
@pytest.mark.parametrize("op,trans_b", [("Gemm", 1), ("Gemm", 0), ("MatMul", 0)])
@pytest.mark.parametrize("scheme", SCHEMES)
def test_gemm_matmul_per_tensor_scale(form, op, trans_b, scheme):
    rng = np.random.default_rng(2)
    K, O, b_a, rows, bits = 37, 5, 4, 16, 4
    Qok = rng.integers(-3, 4, (O, K))
    Q = Qok if (op == "Gemm" and trans_b) else Qok.T
    s_x = 0.0625
    x = rng.uniform(0, 1.2, (3, K)).astype(np.float32)
    m = quantized_layer_model(op, form, Q, np.float32(0.03), s_x, b_a, x.shape, trans_b=trans_b,
                              meta={"pim.scheme": scheme, "pim.adc_bits": str(bits),
                                    "pim.rows": str(rows)})
    ref = reference.Reference(m)
    layer = ref.layers["layer"]
    assert layer.delta_rule == "full-range"
    y, vals = ref.run(x, keep=True)
    X = _codes(x, s_x, b_a)
    S = np.array([[naive_s(X[n], Qok[o], scheme, bits, rows, layer.delta, b_a)
                   for o in range(O)] for n in range(3)])
    np.testing.assert_array_equal(vals["layer:S"], S)
    np.testing.assert_array_equal(
        y, ((S * layer.delta) * np.float64(np.float32(s_x))) * np.float64(np.float32(0.03)))


def test_full_range_delta_by_hand():
    Q = np.array([[1, -2, 3, 0, -1], [-4, 4, -4, 1, 1]])
    # R = 2: groups {0,1}, {2,3}, {4}. Positive sums: o0: 1, 3, 0; o1: 4, 1, 1.
    # Negative sums: o0: 2, 0, 1; o1: 4, 4, 0.  max = 4.
    assert reference.full_range_delta(Q, 2, 2, "native", 3) == 4 * 3 / 3
    assert reference.full_range_delta(Q, 2, 2, "differential", 3) == 4 * 3 / 7
    assert reference.full_range_delta(Q, 2, 2, "bit_serial", 3) == 4 * 1 / 3
    assert reference.full_range_delta(np.zeros((2, 3), np.int64), 4, 2, "native", 7) == 1.0


def test_full_range_delta_used_and_nothing_clips():
    """With the full-range rule the ADC never clips: worst-case inputs hit the top code."""
    Q = np.array([[7, 7, -7, 7, 7, 7, 7, 7, 7, 7]], np.int8)
    m = quantized_layer_model("Gemm", "qdq", Q, [0.5], 1.0, 4, (1, 10),
                              meta={"pim.adc_bits": "4", "pim.rows": "4"})
    ref = reference.Reference(m)
    layer = ref.layers["layer"]
    assert layer.delta == 4 * 7 * 15 / 7
    _, vals = ref.run(np.full((1, 10), 15.0, np.float32), keep=True)
    # groups: [7,7,-7,7] -> p=14*15=210 -> 210/60=3.5 -> rne 4; [7,7,7,7] -> 420/60=7;
    # [7,7] -> 210/60 = 3.5 -> 4
    assert vals["layer:S"].tolist() == [[4 + 7 + 4]]


def test_options_override_and_digital():
    rng = np.random.default_rng(3)
    Q = rng.integers(-7, 8, (3, 20))
    x = rng.uniform(0, 1, (4, 20)).astype(np.float32)
    m = quantized_layer_model("Gemm", "qdq", Q, np.float32(0.1), 1 / 15, 4, x.shape,
                              meta={"pim.scheme": "native", "pim.adc_bits": "3",
                                    "pim.layer.layer.adc_step": "10"})
    dig = reference.Reference(m, reference.Options(digital=True))
    _, v = dig.run(x, keep=True)
    X = _codes(x, 1 / 15, 4)
    np.testing.assert_array_equal(v["layer:S"], X.astype(np.int64) @ Q.T)
    ov = reference.Reference(m, reference.Options(scheme="differential", adc_bits=5, rows=7,
                                                  adc_step=2.5))
    layer = ov.layers["layer"]
    assert (layer.scheme, layer.adc_bits, layer.rows, layer.delta, layer.delta_rule) == \
        ("differential", 5, 7, 2.5, "override")
    _, v = ov.run(x, keep=True)
    S = [[naive_s(X[n], Q[o], "differential", 5, 7, 2.5, 4) for o in range(3)] for n in range(4)]
    np.testing.assert_array_equal(v["layer:S"], S)


def test_placement_digital_metadata_and_unmappable_input():
    Q = np.ones((2, 8), np.int64)
    x = np.full((1, 8), 0.5, np.float32)
    m = quantized_layer_model("Gemm", "qdq", Q, 1.0, 1 / 255, 8, x.shape,
                              meta={"pim.layer.layer.placement": "digital"})
    assert reference.Reference(m).layers["layer"].placement == "digital"
    # 8-bit input is not mappable for native (4 bits max) but is for bit_serial.
    m = quantized_layer_model("Gemm", "qdq", Q, 1.0, 1 / 255, 8, x.shape)
    assert reference.Reference(m).layers["layer"].placement == "digital"
    r = reference.Reference(m, reference.Options(scheme="bit_serial"))
    assert r.layers["layer"].placement == "pim" and r.layers["layer"].b_a == 8
    m = quantized_layer_model("Gemm", "qdq", Q, 1.0, 1 / 255, 8, x.shape,
                              meta={"pim.layer.layer.placement": "pim"})
    with pytest.raises(reference.ModelError, match="layer: placement pim but not mappable: "
                                                   "input needs 8 bits, native allows 4"):
        reference.Reference(m)


def test_rne_ties_to_even():
    # p / Delta exactly x.5 rounds to even: p = 5, Delta = 2 -> 2; p = 7 -> 4 (3.5 -> 4).
    Q = np.array([[1, 1, 1, 1, 1, 1, 1]], np.int8)
    m = quantized_layer_model("Gemm", "qdq", Q, 1.0, 1.0, 4, (2, 7),
                              meta={"pim.layer.layer.adc_step": "2", "pim.rows": "64",
                                    "pim.adc_bits": "7"})
    x = np.array([[1, 1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1, 1]], np.float32)
    _, v = reference.Reference(m).run(x, keep=True)
    assert v["layer:S"].tolist() == [[2], [4]]


def _model_with_node(node, inits=()):
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info(
        "input", TensorProto.FLOAT, [1, 4])], [helper.make_tensor_value_info(
            "out", TensorProto.FLOAT, [1, 4])], initializer=list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def test_error_unsupported_op():
    m = _model_with_node(helper.make_node("Sigmoid", ["input"], ["out"], name="sig1"))
    with pytest.raises(reference.ModelError, match=r"node 'sig1' \(Sigmoid\): unsupported operator"):
        reference.Reference(m)


def test_error_unnamed_node():
    m = _model_with_node(helper.make_node("Relu", ["input"], ["out"]))
    with pytest.raises(reference.ModelError, match="has no name"):
        reference.Reference(m)


@pytest.mark.parametrize("op,trans_b", [("MatMul", 0), ("Gemm", 0)])
def test_qonnx_weight_scale_of_lower_rank_broadcasts_per_output_channel(op, trans_b):
    """A [N] weight scale on a [K, N] weight is per output channel by numpy broadcasting, as pimc
    reads it; a scale that varies along another axis is refused."""
    rng = np.random.default_rng(4)
    K, O = 9, 5
    Q = rng.integers(-7, 8, (K, O))
    s_w = rng.uniform(0.01, 0.05, O).astype(np.float32)
    x = rng.uniform(0, 1, (2, K)).astype(np.float32)
    m = quantized_layer_model(op, "qonnx", Q, s_w, 0.1, 4, x.shape, trans_b=trans_b)
    want = reference.Reference(m).run(x)
    for t in m.graph.initializer:
        if t.name == "sw":
            t.CopyFrom(numpy_helper.from_array(s_w, "sw"))  # [1, O] -> [O]
    np.testing.assert_array_equal(reference.Reference(m).run(x), want)
    for t in m.graph.initializer:
        if t.name == "sw":
            t.CopyFrom(numpy_helper.from_array(np.full((K, 1), 0.03, np.float32), "sw"))  # along K
    with pytest.raises(reference.ModelError, match=r"weight scale of shape \(9, 1\): only per-tensor"):
        reference.Reference(m)
    for t in m.graph.initializer:
        if t.name == "sw":
            t.CopyFrom(numpy_helper.from_array(np.full((1, 1, 1), 0.03, np.float32), "sw"))
    with pytest.raises(reference.ModelError, match=r"weight scale of shape \(1, 1, 1\) has a higher rank"):
        reference.Reference(m)


def test_error_weight_code_minus_128():
    Q = np.array([[-128, 1]], np.int8)
    m = quantized_layer_model("Gemm", "qdq", Q, 1.0, 0.1, 4, (1, 2))
    with pytest.raises(reference.ModelError, match="layer: weight code -128 is not symmetric"):
        reference.Reference(m)


def test_error_activation_bits_not_integer():
    m = quantized_layer_model("Gemm", "qdq", np.ones((1, 2)), 1.0, 0.1, 4, (1, 2))
    for t in m.graph.initializer:
        if t.name == "cmax":
            t.CopyFrom(numpy_helper.from_array(np.float32(1.0), "cmax"))  # 10 levels
    with pytest.raises(reference.ModelError, match="gives 10 levels, not 2\\^b - 1"):
        reference.Reference(m)


def test_error_group_conv():
    Q = np.ones((2, 1, 1, 1), np.int64)
    m = quantized_layer_model("Conv", "qdq", Q, [1.0, 1.0], 0.1, 4, (1, 2, 3, 3),
                              conv=dict(kernel_shape=[1, 1], group=2))
    with pytest.raises(reference.ModelError, match="layer: Conv group 2 is not supported"):
        reference.Reference(m)


def test_host_ops_exact_forms():
    """AveragePool (count_include_pad both ways), MaxPool with padding, Softmax, Concat,
    Reshape, Flatten, float Gemm: against direct numpy."""
    x = np.arange(2 * 1 * 4 * 4, dtype=np.float32).reshape(2, 1, 4, 4) - 10
    nodes = [
        helper.make_node("AveragePool", ["input"], ["ap0"], name="ap0", kernel_shape=[3, 3],
                         pads=[1, 1, 1, 1], count_include_pad=0),
        helper.make_node("AveragePool", ["input"], ["ap1"], name="ap1", kernel_shape=[3, 3],
                         pads=[1, 1, 1, 1], count_include_pad=1),
        helper.make_node("MaxPool", ["input"], ["mp"], name="mp", kernel_shape=[2, 2],
                         pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Concat", ["ap0", "ap1"], ["cat"], name="cat", axis=1),
        helper.make_node("Flatten", ["cat"], ["fl"], name="fl", axis=1),
        helper.make_node("Reshape", ["fl", "shape"], ["rs"], name="rs"),
        helper.make_node("Softmax", ["rs"], ["out"], name="sm", axis=-1),
    ]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(
        "input", TensorProto.FLOAT, [2, 1, 4, 4])], [helper.make_tensor_value_info(
            "out", TensorProto.FLOAT, [2, 32])],
        initializer=[numpy_helper.from_array(np.array([2, -1], np.int64), "shape")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(m)
    _, v = reference.Reference(m).run(x, keep=True)
    xd = x.astype(np.float64)
    xp = np.pad(xd, ((0, 0), (0, 0), (1, 1), (1, 1)))
    ones = np.pad(np.ones((4, 4)), 1)
    ap0 = np.zeros((2, 1, 4, 4))
    ap1 = np.zeros((2, 1, 4, 4))
    for i in range(4):
        for j in range(4):
            s = np.zeros(2)
            for ky in range(3):
                for kx in range(3):
                    s = s + xp[:, 0, i + ky, j + kx]
            ap0[:, 0, i, j] = s / ones[i:i + 3, j:j + 3].sum()
            ap1[:, 0, i, j] = s / 9
    np.testing.assert_array_equal(v["ap0"], ap0)
    np.testing.assert_array_equal(v["ap1"], ap1)
    mp = np.full((2, 1, 3, 3), -np.inf)
    xpm = np.pad(xd, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
    for i in range(3):
        for j in range(3):
            mp[:, 0, i, j] = xpm[:, 0, 2 * i:2 * i + 2, 2 * j:2 * j + 2].max((1, 2))
    np.testing.assert_array_equal(v["mp"], mp)
    rs = np.concatenate([ap0, ap1], 1).reshape(2, -1)
    e = np.exp(rs - rs.max(-1, keepdims=True))
    np.testing.assert_array_equal(v["out"], e / e.sum(-1, keepdims=True))


def test_cli_prints_accuracy(tmp_path, capsys):
    rng = np.random.default_rng(5)
    Q = rng.integers(-7, 8, (10, 12))
    m = quantized_layer_model("Gemm", "qdq", Q, np.float32(0.1), 1 / 15, 4, ("N", 12))
    path = tmp_path / "m.onnx"
    onnx.save(m, str(path))
    x = rng.uniform(0, 1, (50, 12)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    logits = reference.Reference(m).run(x)
    y = logits.argmax(1)
    y[:5] = (y[:5] + 1) % 10
    np.save(tmp_path / "y.npy", y)
    rc = reference.main([str(path), "--images", str(tmp_path / "x.npy"), "--labels",
                         str(tmp_path / "y.npy"), "--dump", str(tmp_path / "d.npz")])
    assert rc == 0
    assert capsys.readouterr().out.strip() == "accuracy: 0.9000"
    d = np.load(tmp_path / "d.npz")
    assert {"input", "logits", "layer:S", "codes", "act", "out"} <= set(d.files)
    rc = reference.main([str(tmp_path / "missing.onnx"), "--images", str(tmp_path / "x.npy")])
    assert rc == 2
    assert "cannot load ONNX file" in capsys.readouterr().err
