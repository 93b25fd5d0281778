"""The bundled models: the numpy reference agrees with the PyTorch model (eval mode) on the
golden images, both ONNX forms give identical results, the files are what export_all.py writes,
and the golden files are what make_golden.py writes."""
import glob
import os
import re

import numpy as np
import pytest
import torch

import export
import reference
import train

torch.set_num_threads(1)
HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = os.path.join(HERE, "models")
GOLDEN = os.path.join(os.path.dirname(os.path.dirname(HERE)), "tests", "data", "golden")
CKPTS = sorted(glob.glob(os.path.join(MODELS, "*.pt")))
NAMES = [os.path.basename(p)[:-3] for p in CKPTS]
EXPECTED = ["fmnist-cnn-qat", "fmnist-resnet-qat"] + [
    f"fmnist-cnn-{s}-b{b}" for s in ("native", "differential", "bit_serial") for b in (7, 4)] + [
    f"fmnist-resnet-{s}-b4" for s in ("native", "differential", "bit_serial")]


def test_bundled_model_set():
    missing = [n for n in EXPECTED if n not in NAMES]
    assert not missing, f"missing bundled models: {missing}"
    for n in NAMES:
        for suffix in (".onnx", ".qonnx.onnx", ".log"):
            assert os.path.exists(os.path.join(MODELS, n + suffix)), n + suffix
        assert os.path.getsize(os.path.join(MODELS, n + ".qonnx.onnx")) < 2 * 1024 * 1024
        assert os.path.exists(os.path.join(GOLDEN, n + ".npz")), f"golden for {n}"


@pytest.mark.parametrize("name", NAMES)
def test_reference_agrees_with_pytorch(name):
    golden = np.load(os.path.join(GOLDEN, name + ".npz"))
    n = 32  # of the 64 golden images: keeps the whole test suite under two minutes
    x = golden["input"][:n]
    model, cfg = train.load_checkpoint(os.path.join(MODELS, name + ".pt"))
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    qdq = reference.Reference(os.path.join(MODELS, name + ".onnx"))
    got = qdq.run(x)
    # The stored logits are the reference's own: regression check, exact.
    np.testing.assert_array_equal(got, golden["logits"][:n])
    full = int(golden["full_images"])
    _, vals = qdq.run(x[:full], keep=True)
    for key in golden.files:
        if key not in ("input", "logits", "full_images"):
            np.testing.assert_array_equal(vals[key], golden[key], err_msg=f"{name}: {key}")
    qonnx = reference.Reference(os.path.join(MODELS, name + ".qonnx.onnx")).run(x)
    np.testing.assert_array_equal(qonnx, got)
    if not cfg.get("scheme"):
        # A conventional-QAT file deploys on PIM by default (full-range Delta, 7 bits; that is
        # what the golden file holds); the PyTorch model is its digital evaluation.
        got = reference.Reference(os.path.join(MODELS, name + ".onnx"),
                                  reference.Options(digital=True)).run(x)
    flips = int((got.argmax(1) != want.argmax(1)).sum())
    print(f"{name}: {flips} of {len(x)} argmax differences (PyTorch float32 vs reference "
          f"float64), max |logit diff| {np.abs(got - want).max():.2e}")
    # Only a float tie that flips a rounding may change a prediction.
    assert flips <= 1


@pytest.mark.parametrize("name", NAMES)
def test_files_are_exported_from_checkpoint(name):
    model, cfg = train.load_checkpoint(os.path.join(MODELS, name + ".pt"))
    for form in ("qdq", "qonnx"):
        path = export.output_path(os.path.join(MODELS, name), form)
        data = export.build(model, cfg, form).SerializeToString(deterministic=True)
        with open(path, "rb") as f:
            assert f.read() == data, f"{path} is stale: run tools/qat/export_all.py"


def test_bn_reestimate_reports_the_background_code_change(capsys):
    # docs/calibration.md 4: bn_reestimate.py re-estimates the BatchNorm statistics in the
    # deployed arithmetic and names the first quantizer whose blank-image (background) codes
    # change; for the bundled fmnist-resnet-differential-b4 that is one act3 channel.
    import bn_reestimate
    assert bn_reestimate.main(["fmnist-resnet-differential-b4", "--images", "512", "--eval", "200"]) == 0
    out = capsys.readouterr().out
    assert "the first quantizer where they change is act3" in out
    assert "act3 channel 4: 5.598 -> 5.498" in out
    before, after = (float(v) for v in re.search(r"images ([\d.]+) as saved, ([\d.]+) with", out).groups())
    assert 80 < before <= 100 and 80 < after <= 100
