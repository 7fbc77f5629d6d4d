"""NumPy .npz archives: images `x` and labels `y` (or Keras' x_train/y_train/x_test/y_test).

x may be uint8 or any integer type with values 0..255, or float in [0, 1] or [0, 255]; its layout
is N×H×W, N×H×W×C (channels last, C in 1, 3, 4), N×C×H×W, or N×D with D a perfect square (flat
grey images). Everything becomes uint8 N×C×H×W here, the rest is shared with the other loaders.
"""

from __future__ import annotations

import math
import zipfile
import zlib
from pathlib import Path

import numpy as np
from numpy.lib import format as npy

from cnnstudio.train.datasets.common import (
    DatasetError,
    LoadedDataset,
    Shape,
    build,
    build_split,
    check_decoded_size,
    check_label_range,
    numbered_classes,
    regular_file_size,
)

CHANNELS = (1, 3, 4)
SAVE_HINT = "save it with numpy.savez(FILE, x=images, y=labels)"
HEADER_READERS = {(1, 0): npy.read_array_header_1_0, (2, 0): npy.read_array_header_2_0}
# what reading a damaged member raises; RuntimeError: encrypted, NotImplementedError: a
# compression method zipfile cannot undo
DAMAGED = (OSError, EOFError, ValueError, RuntimeError, NotImplementedError, zipfile.BadZipFile,
           zlib.error)


def _checked_header(member: zipfile.ZipExtFile, where: str) -> tuple[int, int, str]:
    """(where the data starts, its size in bytes, 'the shape … of dtype') from a member's
    .npy header; DatasetError for a pickle, an unknown format or a size over the limit."""
    try:
        version = npy.read_magic(member)
    except ValueError:
        raise DatasetError(f"{where} is not a NumPy array; {SAVE_HINT}") from None
    reader = HEADER_READERS.get(version)
    if reader is None:
        raise DatasetError(
            f"{where} uses the .npy format version {version[0]}.{version[1]}, which CNN Studio "
            f"does not read; {SAVE_HINT}"
        )
    shape, _, dtype = reader(member)
    if dtype.hasobject:
        raise DatasetError(
            f"{where} holds Python objects, which are not read for safety; store numbers "
            "(uint8 pixels, integer labels)"
        )
    declared = f"the shape {' × '.join(str(d) for d in shape) or '()'} of {dtype}"
    nbytes = math.prod(shape) * dtype.itemsize
    check_decoded_size(nbytes, f"{where} promises {declared}")
    return member.tell(), nbytes, declared


class NpzArchive:
    """The arrays of an .npz file, each checked from its .npy header before it is read.

    The header's shape and type must fit MAX_DECODED_BYTES and agree with the member's size in
    the zip directory, and no array of Python objects (a pickle) is ever read, so a small
    hostile archive can neither run code nor inflate into more memory than it declares.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        regular_file_size(path, "npz file")
        try:
            with open(path, "rb") as file:
                start = file.read(len(npy.MAGIC_PREFIX))
            if start == npy.MAGIC_PREFIX:
                raise DatasetError(
                    f"{path} holds a single array (.npy), not an .npz archive; {SAVE_HINT}"
                )
            self.zip = zipfile.ZipFile(path)
        except (OSError, zipfile.BadZipFile, EOFError, ValueError) as err:
            raise DatasetError(
                f"{path} is not a readable .npz archive ({err}); {SAVE_HINT}"
            ) from None
        self.members = {name[:-4] if name.endswith(".npy") else name: name
                        for name in self.zip.namelist()}
        self.files = list(self.members)

    def array(self, key: str) -> np.ndarray:
        """The array `key`; DatasetError if it is too big, damaged, not numbers or a pickle."""
        where = f"{self.path}: array '{key}'"
        info = self.zip.getinfo(self.members[key])
        try:
            with self.zip.open(info) as member:
                header_end, nbytes, declared = _checked_header(member, where)
            if info.file_size - header_end != nbytes:
                raise DatasetError(
                    f"{where} declares {declared} ({nbytes:,} bytes) but holds "
                    f"{info.file_size - header_end:,} bytes; the file is damaged: save it again"
                )
            with self.zip.open(info) as member:
                return npy.read_array(member, allow_pickle=False)
        except DatasetError:
            raise
        except DAMAGED as err:
            raise DatasetError(f"{where} is damaged ({err}); save the file again") from None

    def close(self) -> None:
        self.zip.close()

    def __enter__(self) -> NpzArchive:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def images_from_array(x: np.ndarray, source: str, notes: list[str]) -> np.ndarray:
    """Any supported image array as uint8 N×C×H×W; what was assumed goes into notes."""
    shape = " × ".join(str(d) for d in x.shape)
    if x.ndim == 2 and x.shape[1] > 0 and math.isqrt(x.shape[1]) ** 2 == x.shape[1]:
        side = math.isqrt(x.shape[1])
        notes.append(f"{source} holds flat rows of {x.shape[1]} values: read as {side}×{side} "
                     "grey images")
        x = x.reshape(len(x), 1, side, side)
    elif x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[3] in CHANNELS:
        if x.shape[1] in CHANNELS:
            notes.append(f"{source} has the shape {shape}: read as channels last (N×H×W×C)")
        x = x.transpose(0, 3, 1, 2)
    elif x.ndim != 4 or x.shape[1] not in CHANNELS:
        raise DatasetError(
            f"{source} has the shape {shape}; images must be N×H×W, N×H×W×C or N×C×H×W with "
            "C = 1, 3 or 4 channels (or N×D flat grey images with D a square number)"
        )
    if len(x) == 0 or x.size == 0:
        raise DatasetError(f"{source} holds no images (shape {shape})")
    return _to_uint8(x, source, notes)


def _to_uint8(x: np.ndarray, source: str, notes: list[str]) -> np.ndarray:
    kind = x.dtype.kind
    if x.dtype == np.uint8:
        return x
    if kind in "iu":
        low, high = int(x.min()), int(x.max())
        if low < 0 or high > 255:
            raise DatasetError(
                f"{source} holds {x.dtype} values from {low} to {high}; pixels must be 0..255 "
                "(uint8) or floats in [0, 1]: scale the images before saving"
            )
        notes.append(f"{source}: read {x.dtype} pixels (0..255) as 8-bit")
        return x.astype(np.uint8)
    if kind != "f":
        raise DatasetError(
            f"{source} holds {x.dtype} values; images must be uint8 (0..255) or float "
            "(0..1 or 0..255)"
        )
    low, high = float(np.min(x)), float(np.max(x))
    if not (math.isfinite(low) and math.isfinite(high)):
        raise DatasetError(f"{source} contains NaN or infinite values; fix the images first")
    if low < 0.0 or high > 255.0:
        hint = "it looks normalised already; " if low < 0.0 else ""
        raise DatasetError(
            f"{source} holds values from {low:.3g} to {high:.3g}; {hint}save the raw pixels, "
            "as floats in [0, 1] or [0, 255] or as uint8"
        )
    scale = 255.0 if high <= 1.0 else 1.0
    notes.append(
        f"{source}: float pixels in [0, {'1' if scale > 1 else '255'}] stored as 8-bit (0..255)"
    )
    out = np.empty(x.shape, np.uint8)
    flat_in, flat_out = x.reshape(len(x), -1), out.reshape(len(out), -1)
    step = max(1, (1 << 22) // flat_in.shape[1])
    for start in range(0, len(x), step):
        chunk = flat_in[start:start + step].astype(np.float32) * scale
        flat_out[start:start + step] = np.clip(np.rint(chunk), 0, 255)
    return out


def labels_from_array(y: np.ndarray, n: int, source: str, notes: list[str]) -> np.ndarray:
    """Integer class labels (int64, length N); one-hot rows are turned into class numbers."""
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    elif y.ndim == 2 and y.shape[1] > 1:
        if not (np.isin(y, (0, 1)).all() and (y.sum(axis=1) == 1).all()):
            raise DatasetError(
                f"{source} is a {y.shape[0]} × {y.shape[1]} table that is not one-hot; labels "
                "must be one class number per image"
            )
        notes.append(f"{source}: one-hot labels turned into class numbers")
        y = y.argmax(axis=1)
    if y.ndim != 1:
        raise DatasetError(f"{source} has the shape {y.shape}; labels must be one number per image")
    whole = y.dtype.kind == "f" and np.isfinite(y).all() and (y == np.round(y)).all()
    if y.dtype.kind not in "iu" and not whole:
        raise DatasetError(f"{source} holds {y.dtype} values; labels must be integers")
    if len(y) != n:
        raise DatasetError(f"{source} holds {len(y):,} labels for {n:,} images; give one per image")
    if len(y):
        check_label_range(y, source)  # in y's own type: int64 would wrap a huge uint64 label
    return y.astype(np.int64)


def _pair(archive: NpzArchive, path: Path, xk: str, yk: str,
          notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    x = images_from_array(archive.array(xk), f"{path.name}: '{xk}'", notes)
    y = labels_from_array(archive.array(yk), len(x), f"{path.name}: '{yk}'", notes)
    return x, y


def load_npz(
    spec: str, path: Path, input_shape: Shape | None, fraction: float, seed: int
) -> LoadedDataset:
    with NpzArchive(path) as archive:
        keys = set(archive.files)
        notes: list[str] = []
        if {"x", "y"} <= keys:
            x, y = _pair(archive, path, "x", "y", notes)
            classes, class_notes = numbered_classes(y, path.name)
            return build_split(path.name, spec, x, y, classes, input_shape, path.name,
                               fraction, seed, notes + class_notes)
        if {"x_train", "y_train"} <= keys:
            train = _pair(archive, path, "x_train", "y_train", notes)
            if {"x_test", "y_test"} <= keys:
                val = _pair(archive, path, "x_test", "y_test", notes)
                notes.append(f"{path.name}: x_test/y_test used as the validation set")
                if len(val[1]) < 2 or len(train[1]) < 2:
                    raise DatasetError(
                        f"{path} needs at least 2 training and 2 test images, has "
                        f"{len(train[1])} and {len(val[1])}"
                    )
                classes, class_notes = numbered_classes(np.concatenate([train[1], val[1]]),
                                                        path.name)
                return build(path.name, spec, train, val, classes, input_shape, path.name,
                             notes + class_notes)
            classes, class_notes = numbered_classes(train[1], path.name)
            return build_split(path.name, spec, *train, classes, input_shape, path.name,
                               fraction, seed, notes + class_notes)
    found = ", ".join(sorted(keys)) or "none"
    missing = " and ".join(repr(k) for k in ("x", "y") if k not in keys)
    raise DatasetError(
        f"{path} has no array {missing} (arrays found: {found}); {SAVE_HINT}"
    )
