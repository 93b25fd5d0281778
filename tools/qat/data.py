"""Fashion-MNIST (IDX format) loading, shared by training, the reference CLI and the scripts.

The data directory defaults to /usr/share/datasets/fashion-mnist and can be overridden with the
environment variable PIM_FMNIST_DIR or the --data-dir flag of each script.
"""
import gzip
import os
import struct

import numpy as np

DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"


def data_dir(override=None):
    return override or os.environ.get("PIM_FMNIST_DIR") or DEFAULT_DIR


def read_idx(path):
    """Reads an IDX file (optionally gzip-compressed) into a numpy array of its stored dtype."""
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise ValueError(f"{path}: cannot read IDX file: {e}") from None
    if len(raw) < 4:
        raise ValueError(f"{path}: too short for an IDX header ({len(raw)} bytes)")
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if zero != 0 or dtype_code not in dtypes:
        raise ValueError(f"{path}: not an IDX file (magic {raw[:4].hex()})")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header")
    shape = struct.unpack(">" + "I" * ndim, raw[4:header])
    dt = np.dtype(dtypes[dtype_code])
    count = int(np.prod(shape)) if ndim else 1
    if len(raw) - header != count * dt.itemsize:
        raise ValueError(f"{path}: header says {shape} ({count * dt.itemsize} bytes of data), "
                         f"file holds {len(raw) - header}")
    return np.frombuffer(raw, dtype=dt, offset=header).reshape(shape)


def images_to_float(images_u8):
    """uint8 [N,28,28] -> float32 NCHW [N,1,28,28] in [0,1] (value k/255 rounded to float32)."""
    x = images_u8.astype(np.float32) / np.float32(255.0)
    return x.reshape(x.shape[0], 1, x.shape[1], x.shape[2])


def load_split(split, directory=None):
    """split in {'train', 't10k'} -> (float32 images NCHW, int64 labels)."""
    d = data_dir(directory)
    images = read_idx(os.path.join(d, f"{split}-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(d, f"{split}-labels-idx1-ubyte.gz"))
    return images_to_float(images), labels.astype(np.int64)


def load_images(path):
    """Images from an IDX file (uint8, scaled to [0,1]) or a .npy/.npz array (float, NCHW or NHW)."""
    if path.endswith(".npy"):
        x = np.load(path)
    elif path.endswith(".npz"):
        z = np.load(path)
        key = "input" if "input" in z.files else z.files[0]
        x = z[key]
    else:
        x = read_idx(path)
    if x.dtype == np.uint8:
        x = images_to_float(x) if x.ndim == 3 else x.astype(np.float32) / np.float32(255.0)
    if x.ndim == 3:
        x = x[:, None, :, :]
    return x


def load_labels(path):
    if path.endswith(".npy"):
        return np.load(path).astype(np.int64)
    return read_idx(path).astype(np.int64)
