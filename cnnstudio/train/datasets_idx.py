"""IDX files (the MNIST format), plain or gzipped, and the bundled MNIST sample.

An IDX file is a 4-byte magic number (0, 0, value type, number of dimensions), one big-endian
uint32 per dimension, then the values. Only unsigned bytes (type 0x08) are read: images are
0x00000803 (N×H×W), labels 0x00000801 (N). Gzip is recognised by its magic bytes, not by the
file name, since downloads are often renamed or decompressed without renaming.
"""

from __future__ import annotations

import functools
import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from cnnstudio.resources import MissingResource, resource_path
from cnnstudio.train.datasets_common import (
    DatasetError,
    LoadedDataset,
    Shape,
    build,
    build_split,
    numbered_classes,
    plural,
)

GZIP_MAGIC = b"\x1f\x8b"
IDX_TYPES = {0x08: "unsigned byte", 0x09: "signed byte", 0x0B: "16-bit integer",
             0x0C: "32-bit integer", 0x0D: "float", 0x0E: "double"}
ROLES = {"images": 3, "labels": 1}
SAMPLE_TRAIN = 8000
SAMPLE_NAME = "MNIST sample"


def read_file(path: Path, what: str = "file") -> bytes:
    """The bytes of a file, or a DatasetError that says what is wrong with the path."""
    if not path.exists():
        raise DatasetError(f"{what} not found: {path}; check the path in the dataset spec")
    if path.is_dir():
        raise DatasetError(f"{path} is a folder, but a {what} is expected here")
    try:
        return path.read_bytes()
    except OSError as err:
        raise DatasetError(f"cannot read {path}: {err.strerror or err}") from None


def gunzip(data: bytes, path: Path) -> tuple[bytes, bool]:
    """(decompressed bytes, whether the gzip stream ended early).

    A truncated download still yields its first part, so the IDX check below can say how many
    images survive instead of a bare 'unexpected end of stream'.
    """
    try:
        return gzip.decompress(data), False
    except EOFError:
        pass
    except (OSError, zlib.error) as err:
        raise DatasetError(
            f"{path} looks gzipped but its compressed data is damaged ({err}); download it again"
        ) from None
    try:
        return zlib.decompressobj(wbits=31).decompress(data), True
    except zlib.error as err:
        raise DatasetError(f"{path}: damaged gzip data ({err}); download it again") from None


def _magic_problem(data: bytes, path: Path, role: str) -> str | None:
    ndim = ROLES[role]
    expected = f"00 00 08 0{ndim}"
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] not in IDX_TYPES:
        first = " ".join(f"{b:02x}" for b in data[:4]) or "nothing"
        return (
            f"{path} is not an IDX {role[:-1]} file: it starts with the bytes {first}, where IDX "
            f"{role[:-1]} files start with {expected}; check that the spec names the right file"
        )
    if data[3] != ndim:
        other = {3: "image", 1: "label"}.get(data[3])
        if other:
            return (
                f"{path} is an IDX {other} file, not an IDX {role[:-1]} file; the spec is "
                "idx:IMAGES,LABELS with the images file first"
            )
        return f"{path} holds a {data[3]}-dimensional IDX array; IDX {role} files have {ndim}"
    if data[2] != 0x08:
        return (
            f"{path} holds {IDX_TYPES[data[2]]} values; CNN Studio reads IDX files of unsigned "
            f"bytes (magic number {expected})"
        )
    return None


def read_idx(path: Path, role: str) -> tuple[np.ndarray, list[str]]:
    """An IDX images (N×H×W) or labels (N) array as uint8, and notes; DatasetError if broken."""
    raw = read_file(path, f"IDX {role} file")
    data, cut = gunzip(raw, path) if raw[:2] == GZIP_MAGIC else (raw, False)
    problem = _magic_problem(data, path, role)
    if problem:
        raise DatasetError(problem)
    ndim = ROLES[role]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError(f"{path} ends inside its IDX header; the file is truncated: "
                           "download it again")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    count, per_item = dims[0], int(np.prod(dims[1:], dtype=np.int64))
    if count == 0 or per_item == 0:
        raise DatasetError(f"{path} holds no {role} (its header says {dims})")
    held = (len(data) - header) // per_item
    gz_note = " (its gzip data ends early)" if cut else ""
    if held < count:
        what = f"{count:,} images of {dims[1]}×{dims[2]}" if role == "images" else (
            f"{count:,} labels")
        raise DatasetError(
            f"{path.name}: header says {what} but the file holds only {held:,}{gz_note}; the "
            f"file is truncated: download it again ({path})"
        )
    notes = []
    extra = len(data) - header - count * per_item
    if extra:
        notes.append(f"{path.name} has {plural(extra, 'byte')} after its {role}; ignored them")
    if cut:
        notes.append(f"{path.name}: the gzip data ends early, but all the {role} are there")
    values = np.frombuffer(data, np.uint8, count * per_item, header)
    return values.reshape(dims), notes


def read_idx_pair(images: Path, labels: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Images N×1×H×W and labels N (int64) from two IDX files that must agree on N."""
    x, notes = read_idx(images, "images")
    y, label_notes = read_idx(labels, "labels")
    if len(x) != len(y):
        raise DatasetError(
            f"{images.name} holds {plural(len(x), 'image')} but {labels.name} holds "
            f"{plural(len(y), 'label')}; the two files must come from the same set "
            f"(images: {images}, labels: {labels})"
        )
    return x[:, None], y.astype(np.int64), notes + label_notes


def load_idx(
    spec: str,
    images: Path,
    labels: Path,
    input_shape: Shape | None,
    fraction: float,
    seed: int,
) -> LoadedDataset:
    x, y, notes = read_idx_pair(images, labels)
    source = images.name
    classes, class_notes = numbered_classes(y, source)
    return build_split(
        images.name, spec, x, y, classes, input_shape, source, fraction, seed,
        notes + class_notes,
    )


@functools.lru_cache(maxsize=1)
def _bundled_mnist() -> tuple[np.ndarray, np.ndarray]:
    """The bundled MNIST test set, read once per process (read-only arrays)."""
    try:
        images = resource_path("datasets", "mnist", "t10k-images-idx3-ubyte.gz")
        labels = resource_path("datasets", "mnist", "t10k-labels-idx1-ubyte.gz")
        x, y, _ = read_idx_pair(images, labels)
    except (MissingResource, DatasetError) as err:
        raise DatasetError(f"the bundled MNIST sample is broken: {err}") from None
    x.flags.writeable = False
    y.flags.writeable = False
    return x, y


def load_mnist_sample(spec: str, input_shape: Shape | None) -> LoadedDataset:
    """The real MNIST test set that ships with CNN Studio: a fixed 8,000/2,000 split."""
    x, y = _bundled_mnist()
    n_val = len(y) - SAMPLE_TRAIN
    note = (
        f"the bundled MNIST sample has a fixed split: the first {SAMPLE_TRAIN:,} images train, "
        f"the last {n_val:,} validate (the validation fraction and split seed are not used)"
    )
    train, val = (x[:SAMPLE_TRAIN], y[:SAMPLE_TRAIN]), (x[SAMPLE_TRAIN:], y[SAMPLE_TRAIN:])
    return build(SAMPLE_NAME, spec, train, val, [str(k) for k in range(10)], input_shape,
                 SAMPLE_NAME, [note])
