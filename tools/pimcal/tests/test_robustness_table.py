"""The robustness table's own logic (no tools run): model discovery with partners, the cache, and
the verdict of the issue's check."""
import json

import robustness_table as rt


def _model(d, name, command):
    (d / f"{name}.onnx").write_bytes(b"not read by discover")
    (d / f"{name}.log").write_text(f"# command: /usr/bin/python3 tools/qat/train.py {command}\n")


def test_discover_finds_models_and_both_kinds_of_partner(tmp_path):
    _model(tmp_path, "fmnist-cnn-native-b4", "--scheme native --adc-bits 4")
    _model(tmp_path, "fmnist-cnn-native-b4-adj3", "--scheme native --adc-bits 4 --train-adc-bits 3")
    _model(tmp_path, "fmnist-cnn-native-b4-noise", "--scheme native --adc-bits 4 --train-noise-lsb 0.35")
    _model(tmp_path, "fmnist-cnn-differential-b7", "--scheme differential --adc-bits 7")
    _model(tmp_path, "fmnist-cnn-qat", "--epochs 2")  # conventional baseline: not a table row
    (tmp_path / "fmnist-cnn-native-b4.qonnx.onnx").write_bytes(b"")  # the other form: skipped
    models, adjusted, noise = rt.discover([str(tmp_path)])
    assert sorted(models) == ["fmnist-cnn-differential-b7", "fmnist-cnn-native-b4"]
    assert models["fmnist-cnn-differential-b7"].mode == "unsigned"
    assert adjusted["fmnist-cnn-native-b4"].name == "fmnist-cnn-native-b4-adj3"
    assert adjusted["fmnist-cnn-native-b4"].train_bits == 3
    assert noise["fmnist-cnn-native-b4"].name == "fmnist-cnn-native-b4-noise"
    assert noise["fmnist-cnn-native-b4"].train_noise == 0.35


def test_cache_runs_each_measurement_once_and_merges_the_file(tmp_path):
    path = str(tmp_path / "cache.json")
    (tmp_path / "cache.json").write_text(json.dumps({"other": 1.0}))
    cache = rt.Cache(rt.load_cache(path), path, run_tools=True)
    calls = []
    assert cache.get("k", lambda: calls.append(1) or 2.5) == 2.5
    assert cache.get("k", lambda: calls.append(1) or 9.9) == 2.5
    assert calls == [1]
    assert json.loads((tmp_path / "cache.json").read_text()) == {"other": 1.0, "k": 2.5}
    read_only = rt.Cache(rt.load_cache(path), None, run_tools=False)
    assert read_only.get("missing", lambda: calls.append(1) or 1.0) is None and calls == [1]


def _claim_rows(claim, models, noise, adjusted=None):
    md = rt.claim_markdown(claim, models, [adjusted or {}, noise], [1, 2, 3], 2000)
    return {line.split(" | ")[0].lstrip("| ").split(" ")[0]: line for line in md.splitlines()
            if line.startswith("| fmnist")}


def test_claim_verdict_uses_both_ideal_figures_and_the_better_partner(tmp_path):
    for name in ("fmnist-cnn-native-b4", "fmnist-cnn-native-b7", "fmnist-cnn-native-b4-noise"):
        (tmp_path / f"{name}.onnx").write_bytes(b"")
    models = {m.key: m for m in (rt.Model(str(tmp_path / "fmnist-cnn-native-b4.onnx")),
                                 rt.Model(str(tmp_path / "fmnist-cnn-native-b7.onnx")))}
    noise = {"fmnist-cnn-native-b4": rt.Model(str(tmp_path / "fmnist-cnn-native-b4-noise.onnx"), train_noise=0.35)}
    claim = {
        # within 1 of the compiled ideal chip but 1.2 below the BN-calibrated one: missed
        "fmnist-cnn-native-b4": {"ideal": {"none": [87.5], "bn": [88.0]}, "typical": {"bn": [86.9, 86.8, 86.7]}},
        "fmnist-cnn-native-b7": {"ideal": {"none": [88.9], "bn": [88.7]}, "typical": {"bn": [88.2, 88.1, 88.3]}},
        # its own ideal chip is low (85.0 / 87.0); it is held to its partner's 87.5 / 88.0
        "fmnist-cnn-native-b4-noise": {"ideal": {"none": [85.0], "bn": [87.0]}, "typical": {"bn": [87.2, 87.0, 87.1]}},
    }
    rows = _claim_rows(claim, models, noise)
    assert rows["fmnist-cnn-native-b4"].endswith("| +0.70 | +1.20 | **no** |")
    assert rows["fmnist-cnn-native-b7"].endswith("| yes |")
    assert "| 87.50 | 88.00 |" in rows["fmnist-cnn-native-b4-noise"]
    assert rows["fmnist-cnn-native-b4-noise"].endswith("| +0.40 | +0.90 | yes |")
    claim["fmnist-cnn-native-b4-noise"]["typical"]["bn"] = [86.9, 86.9, 86.9]
    assert _claim_rows(claim, models, noise)["fmnist-cnn-native-b4-noise"].endswith("| +1.10 | **no** |")
    # an adjusted-precision partner is held to the better ideal chip the same way
    adjusted = {"fmnist-cnn-native-b4": rt.Model(str(tmp_path / "fmnist-cnn-native-b4-adj3.onnx"), train_bits=3)}
    claim["fmnist-cnn-native-b4-adj3"] = {"ideal": {"none": [86.0], "bn": [88.4]}, "typical": {"bn": [87.6, 87.5, 87.7]}}
    rows = _claim_rows(claim, models, noise, adjusted)
    assert "| 87.50 | 88.40 |" in rows["fmnist-cnn-native-b4-adj3"]
    assert rows["fmnist-cnn-native-b4-adj3"].endswith("| -0.10 | +0.80 | yes |")
    assert "fmnist-cnn-native-b4-noise" in rows
    # a model with no typical figures yet has no row
    del claim["fmnist-cnn-native-b7"]["typical"]
    assert "fmnist-cnn-native-b7" not in _claim_rows(claim, models, noise)


def test_prune_drops_only_entries_of_gone_or_changed_model_files(tmp_path):
    (tmp_path / "fmnist-cnn-native-b4.onnx").write_bytes(b"retrained")
    current = rt.sha256(str(tmp_path / "fmnist-cnn-native-b4.onnx"))[:16]
    path = tmp_path / "cache.json"
    path.write_text(json.dumps({
        f"fmnist-cnn-native-b4|{current}|typical|1|500|512|4": 87.0,
        f"fmnist-cnn-native-b4|{current}|ideal|1|2000|512|4|claim": {"bn": 88.0},
        "fmnist-cnn-native-b4|0123456789abcdef|typical|1|500|512|4": 85.0,  # the model before retraining
        "fmnist-cnn-gone-b4|0123456789abcdef|ideal|1|500|512|4": 80.0,  # a model no longer there
    }))
    assert rt.prune_cache(str(path), [str(tmp_path)]) == 2
    assert sorted(json.loads(path.read_text())) == [f"fmnist-cnn-native-b4|{current}|ideal|1|2000|512|4|claim",
                                                    f"fmnist-cnn-native-b4|{current}|typical|1|500|512|4"]
