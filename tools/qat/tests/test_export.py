"""Export (QDQ and QONNX) of the training-side model and agreement of the PyTorch PIM layer with
the numpy reference, on small randomly initialized nets (no training)."""
import numpy as np
import onnx
import pytest
import torch

import export
import nets
import reference

torch.set_num_threads(1)


def _net(scheme, adc_bits=4, rows=64, seed=0, arch="fmnist-cnn"):
    torch.manual_seed(seed)
    m = nets.build(arch)
    m.set_pim(scheme, adc_bits, rows)
    x = torch.rand(8, 1, 28, 28)
    m.train()
    m(x[:4])  # initializes the LSQ scales and the ADC steps
    m.eval()
    cfg = {"arch": arch, "scheme": scheme, "adc_bits": adc_bits, "train_adc_bits": adc_bits,
           "rows": rows, "training": "pim-qat" if scheme else "conventional-qat"}
    return m, cfg


def _images(n=6, seed=1):
    g = torch.Generator().manual_seed(seed)
    # Fashion-MNIST-like values k/255 so the input quantizer is exact.
    return (torch.randint(0, 256, (n, 1, 28, 28), generator=g).float() / 255.0)


@pytest.mark.parametrize("form", ["qdq", "qonnx"])
def test_export_deterministic_and_checked(form):
    m, cfg = _net("native")
    a = export.build(m, cfg, form).SerializeToString(deterministic=True)
    m2, cfg2 = _net("native")
    b = export.build(m2, cfg2, form).SerializeToString(deterministic=True)
    assert a == b
    model = onnx.load_from_string(a)
    onnx.checker.check_model(model, full_check=True)
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("BatchNormalization") == 5
    names = [n.name for n in model.graph.node]
    assert len(set(names)) == len(names)
    assert {"conv1", "conv2", "conv5", "bn1", "fc", "act1"} <= set(names)
    assert [i.name for i in model.graph.input] == ["input"]
    assert [o.name for o in model.graph.output] == ["logits"]
    assert {o.domain: o.version for o in model.opset_import}[""] == 13
    if form == "qonnx":
        assert {o.domain: o.version for o in model.opset_import}[export.QONNX_DOMAIN] == 1
        assert "QuantizeLinear" not in ops and ops.count("Quant") == 12
    else:
        assert "Quant" not in ops and ops.count("QuantizeLinear") == 6
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["pim.scheme"] == "native" and meta["pim.adc_bits"] == "4"
    assert meta["pim.rows"] == "64" and meta["pim.training"] == "pim-qat"
    assert meta["pim.layer.conv1.placement"] == "digital"
    assert meta["pim.layer.fc.placement"] == "digital"
    for name in ("conv2", "conv3", "conv4", "conv5"):
        step = meta[f"pim.layer.{name}.adc_step"]
        assert float(step) == m.mods[name].export_adc_step()
        assert len(step.replace(".", "").replace("e-", "").lstrip("0")) <= 17


def test_conventional_export_has_no_adc_step():
    m, cfg = _net(None)
    meta = {p.key: p.value for p in export.build(m, cfg).metadata_props}
    assert meta["pim.training"] == "conventional-qat"
    assert not [k for k in meta if k.endswith(".adc_step")]


@pytest.mark.parametrize("scheme", ["native", "differential", "bit_serial"])
@pytest.mark.parametrize("rows", [64, 20])
def test_torch_pim_layer_bit_exact_with_reference(scheme, rows):
    """Given the reference's input codes, every PyTorch PIM layer produces the reference's S."""
    m, cfg = _net(scheme, adc_bits=4, rows=rows)
    ref = reference.Reference(export.build(m, cfg, "qdq"))
    x = _images(3)
    _, vals = ref.run(x.numpy(), keep=True)
    inputs = {"conv2": "act1", "conv3": "act2", "conv4": "act3", "conv5": "act4"}
    for layer_name, act in inputs.items():
        layer = m.mods[layer_name]
        X = torch.from_numpy(vals[act + ".codes"].astype(np.float32))
        q, _ = layer.weight_codes()
        with torch.no_grad():
            S, step = layer.pim_accumulate(X, q)
        assert float(step) == ref.layers[layer_name].delta
        np.testing.assert_array_equal(S.numpy().astype(np.int64), vals[layer_name + ":S"],
                                      err_msg=f"{scheme} R={rows} {layer_name}")


@pytest.mark.parametrize("scheme,arch", [(None, "fmnist-cnn"), ("native", "fmnist-cnn"),
                                         ("differential", "fmnist-cnn"),
                                         ("bit_serial", "fmnist-cnn"),
                                         ("native", "fmnist-resnet")])
def test_torch_and_reference_logits_agree(scheme, arch):
    m, cfg = _net(scheme, arch=arch)
    x = _images()
    with torch.no_grad():
        want = m(x).numpy()
    opts = reference.Options(digital=scheme is None)
    got = {}
    for form in ("qdq", "qonnx"):
        got[form] = reference.Reference(export.build(m, cfg, form), opts).run(x.numpy())
    np.testing.assert_array_equal(got["qdq"], got["qonnx"])
    # float32 (PyTorch) vs float64 (reference) host arithmetic: tiny differences, unless a
    # value sits on a rounding tie of a quantizer (then one code flips).
    close = np.abs(got["qdq"] - want).max(1) < 1e-4
    assert close.sum() >= len(x) - 1, np.abs(got["qdq"] - want).max(1)


def test_adjusted_precision_keeps_full_scale():
    m, cfg = _net("native", adc_bits=3)
    before = {n: l.export_adc_step() for n, l in m.qlayers() if not l.digital}
    m.deploy_adc_bits(5)
    cfg = dict(cfg, adc_bits=5, train_adc_bits=3)
    meta = {p.key: p.value for p in export.build(m, cfg).metadata_props}
    assert meta["pim.adc_bits"] == "5" and meta["pim.train_adc_bits"] == "3"
    for n, step in before.items():
        assert float(meta[f"pim.layer.{n}.adc_step"]) == step / 4


def test_noise_aware_training_adds_noise_in_training_only():
    m, cfg = _net("native", adc_bits=4)
    noisy = nets.build("fmnist-cnn")
    noisy.set_pim("native", 4, 64, noise_lsb=0.5)
    noisy.load_state_dict(m.state_dict())  # same weights and ADC steps (already initialized)
    x = _images(4)
    with torch.no_grad():
        m.eval(), noisy.eval()
        assert torch.equal(m(x), noisy(x)), "evaluation must be noiseless"
        m.train(), noisy.train()
        torch.manual_seed(3)
        a = noisy(x)
        torch.manual_seed(3)
        b = noisy(x)
        assert torch.equal(a, b), "the noise draw follows torch's seed"
        assert not torch.equal(a, m(x)), "training adds noise before the ADC"
    meta = {p.key: p.value for p in export.build(noisy.eval(), dict(cfg, train_noise_lsb=0.5)).metadata_props}
    assert meta["pim.train_noise_lsb"] == "0.5"
    assert "pim.train_noise_lsb" not in {p.key for p in export.build(m, cfg).metadata_props}
    with pytest.raises(ValueError, match="noise_lsb -1"):
        noisy.set_pim("native", 4, 64, noise_lsb=-1.0)
