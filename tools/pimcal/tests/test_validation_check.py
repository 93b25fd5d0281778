"""validation_check.py's own logic (no tools run): the slice it measures on and its argument checks."""
import gzip
import subprocess
import sys

import numpy as np
import pytest

import validation_check as vc


def _idx(path, header, data):
    with gzip.open(path, "wb") as f:
        f.write(header + data.tobytes())


def test_slice_holds_exactly_the_requested_test_images(tmp_path):
    images = np.arange(5 * 28 * 28, dtype=np.uint32).astype(np.uint8).reshape(5, 28, 28)
    labels = np.array([3, 1, 4, 1, 5], np.uint8)
    _idx(tmp_path / "t10k-images-idx3-ubyte.gz", b"\0\0\x08\x03" + (5).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2, images)
    _idx(tmp_path / "t10k-labels-idx1-ubyte.gz", b"\0\0\x08\x01" + (5).to_bytes(4, "big"), labels)
    x, y = vc.write_slice(str(tmp_path), 2, 3, str(tmp_path))
    x, y = np.load(x), np.load(y)
    assert x.shape == (3, 1, 28, 28) and x.dtype == np.float32
    np.testing.assert_array_equal(x[:, 0] * 255.0, images[2:5].astype(np.float32))
    assert y.dtype == np.int64 and y.tolist() == [4, 1, 5]


@pytest.mark.parametrize("args, message", [
    (["--first", "9000", "--count", "2000", "m.onnx"], "must lie within the 10000 test images"),
    (["--seeds", "1,x", "tools/qat/models/fmnist-cnn-native-b7.onnx"], "expected comma-separated integers"),
    (["missing-b4.onnx"], "not an .onnx file"),
    (["--bn-samples", "0", "tools/qat/models/fmnist-cnn-native-b7.onnx"], "--bn-samples 0: must be positive"),
    (["--bn-chip", "no-such.textproto", "tools/qat/models/fmnist-cnn-native-b7.onnx"], "--bn-chip no-such.textproto: no such file"),
])
def test_bad_arguments_get_one_clear_error(args, message):
    p = subprocess.run([sys.executable, vc.__file__, *args], capture_output=True, text=True, cwd=vc.rt.ROOT)
    assert p.returncode == 2 and message in p.stderr, p.stderr
