"""What every dataset loader shares: the error type, the loaded dataset, and the array steps.

Images travel as uint8 N×C×H×W NumPy arrays from the reader to the engine. Conversions
(channels, size) happen here once, on whole arrays, in chunks that keep the temporary float
copies small; every conversion is counted in a `Changes` counter whose keys are note templates,
so the counts of the training and validation parts add up into one note.
"""

from __future__ import annotations

import stat
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from cnnstudio.core.files import file_kind
from cnnstudio.core.summary import format_bytes

Shape = tuple[int, int, int]
Changes = Counter  # note template with {n} and {images} -> number of images concerned

CHUNK_ELEMENTS = 1 << 22  # pixels per chunk of float work (16 MiB of float32)
MAX_CLASSES = 100_000
MAX_DECODED_BYTES = 4 * 2**30
"""The most that one dataset file or array may decode to (4 GiB of uint8 pixels).

Checked against what a file's header promises before anything is inflated or allocated, so a
small hostile file (a gzip or zip bomb, a header that lies) is refused at once instead of eating
the memory. Larger image collections belong in a folder (folder:DIR), which streams from disk.
"""
LUMINANCE = (0.299, 0.587, 0.114)
COLOUR_TO_GREY = (
    "converted {n} colour {images} to 1 channel (luminance 0.299 R + 0.587 G + 0.114 B)"
)
DROP_ALPHA = "dropped the alpha channel of {n} RGBA {images}"
FOR_INPUT = " to match the Input block"


class DatasetError(Exception):
    """A dataset that cannot be loaded; the message names the file, the problem and the fix."""


def grey_to_colour(channels: int) -> str:
    return f"converted {{n}} grey {{images}} to {channels} channels"


def plural(n: int, word: str) -> str:
    """'1 image', '2 images', '3 classes' (words ending in s, x, ch or sh take -es)."""
    if n == 1:
        return f"{n:,} {word}"
    return f"{n:,} {word}es" if word.endswith(("s", "x", "ch", "sh")) else f"{n:,} {word}s"


def check_decoded_size(nbytes: int, what: str) -> None:
    """DatasetError when `what` (e.g. 'x.gz promises 8,000,000 images of 28×28') would take
    more than MAX_DECODED_BYTES once decoded."""
    if nbytes > MAX_DECODED_BYTES:
        limit = format_bytes(MAX_DECODED_BYTES)
        raise DatasetError(
            f"{what} ({format_bytes(nbytes)} once decoded), more than the {limit} limit for one "
            "dataset file. If the file should be smaller it is damaged (download it again); "
            "otherwise use a subset of the images, or a folder of image files (folder:DIR), "
            "which is read from disk while training"
        )


def regular_file_size(path: Path, what: str) -> int:
    """The size of the regular file at path, or a DatasetError saying what is there instead.

    Devices, pipes and sockets are refused before anything opens them: reading /dev/zero never
    ends and opening a pipe waits for a writer.
    """
    try:
        info = path.stat()
    except FileNotFoundError:
        raise DatasetError(
            f"{what} not found: {path}; check the path in the dataset spec"
        ) from None
    except OSError as err:
        raise DatasetError(f"cannot read {path}: {err.strerror or err}") from None
    if stat.S_ISDIR(info.st_mode):
        raise DatasetError(f"{path} is a folder, but the dataset spec needs the {what} here")
    if not stat.S_ISREG(info.st_mode):
        kind = file_kind(info.st_mode)
        raise DatasetError(
            f"{path} is {kind}, not a regular file; the dataset spec needs the {what} here, a "
            "file saved on disk: check the path"
        )
    return info.st_size


def render_notes(changes: Changes) -> list[str]:
    return [
        template.format(n=f"{n:,}", images="image" if n == 1 else "images")
        for template, n in changes.items()
        if n
    ]


@dataclass(eq=False)
class LoadedDataset:
    """A dataset held in memory, split into training and validation parts.

    mean and std are per channel, on pixel values scaled to [0, 1], measured on the training
    part only (after any conversion), so normalising never peeks at the validation images.
    """

    name: str
    train_x: np.ndarray
    train_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    classes: list[str]
    mean: np.ndarray
    std: np.ndarray
    notes: list[str] = field(default_factory=list)
    skipped: int = 0
    spec: str = ""

    streaming = False

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_shape(self) -> Shape:
        _, c, h, w = self.train_x.shape
        return (c, h, w)

    @property
    def num_train(self) -> int:
        return len(self.train_y)

    @property
    def num_val(self) -> int:
        return len(self.val_y)


def check_input_shape(input_shape: object) -> Shape | None:
    if input_shape is None:
        return None
    try:
        c, h, w = (int(v) for v in input_shape)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise DatasetError(
            f"the Input block's shape must be (channels, height, width), got {input_shape!r}"
        ) from None
    if min(c, h, w) < 1:
        raise DatasetError(f"the Input block's shape must be positive, got {(c, h, w)}")
    return (c, h, w)


def convert_channels(
    x: np.ndarray, target: int, changes: Changes, source: str, why: str = FOR_INPUT
) -> np.ndarray:
    """x (N×C×H×W uint8) with `target` channels: grey repeated, colour to luminance, alpha dropped.

    Only 1 (grey), 3 (RGB) and 4 (RGBA) channels have a meaning to convert between; any other
    mismatch is a DatasetError that says what to set the Input block to.
    """
    n, c = x.shape[:2]
    if c == target:
        return x
    if c not in (1, 3, 4) or target not in (1, 3, 4):
        fix = "1 (grey) or 3 (colour)" if c in (1, 3, 4) else str(c)
        raise DatasetError(
            f"{source} has {c}-channel images but the Input block expects {target} channels; "
            "CNN Studio converts only between 1 (grey), 3 (RGB) and 4 (RGBA) channels: "
            f"set the Input block's channels to {fix}"
        )
    if c == 4:
        x = x[:, :3]
        changes[DROP_ALPHA + why] += n
        c = 3
        if target == 3:
            return np.ascontiguousarray(x)
    if c == 1:
        changes[grey_to_colour(target) + why] += n
        x = np.repeat(x, 3, axis=1)
        return add_alpha(x) if target == 4 else x
    if target == 4:
        changes["added an opaque alpha channel to {n} colour {images}" + why] += n
        return add_alpha(x)
    changes[COLOUR_TO_GREY + why] += n
    return luminance(x)


def add_alpha(x: np.ndarray) -> np.ndarray:
    alpha = np.full((x.shape[0], 1, *x.shape[2:]), 255, np.uint8)
    return np.concatenate([x, alpha], axis=1)


def luminance(x: np.ndarray) -> np.ndarray:
    """N×3×H×W uint8 to N×1×H×W uint8 with ITU-R 601 weights (the same as PIL's convert('L'))."""
    n, _, h, w = x.shape
    out = np.empty((n, 1, h, w), np.uint8)
    step = max(1, CHUNK_ELEMENTS // (3 * h * w))
    r, g, b = LUMINANCE
    for start in range(0, n, step):
        f = x[start:start + step].astype(np.float32)
        grey = r * f[:, 0] + g * f[:, 1] + b * f[:, 2]
        out[start:start + step, 0] = np.clip(np.rint(grey), 0, 255)
    return out


def resize(x: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of N×C×H×W uint8 with antialiasing, through float once, in chunks."""
    n, c, h, w = x.shape
    out = np.empty((n, c, height, width), np.uint8)
    step = max(1, CHUNK_ELEMENTS // (c * max(h * w, height * width)))
    for start in range(0, n, step):
        chunk = torch.from_numpy(x[start:start + step].astype(np.float32))
        scaled = F.interpolate(
            chunk, size=(height, width), mode="bilinear", align_corners=False, antialias=True
        )
        out[start:start + step] = scaled.round_().clamp_(0, 255).to(torch.uint8).numpy()
    return out


def conform(
    x: np.ndarray, input_shape: Shape | None, changes: Changes, source: str
) -> np.ndarray:
    """x fitted to the Input block's channels and size. RGBA loses alpha even unasked."""
    c = x.shape[1]
    if input_shape is None:
        if c == 4:
            x = convert_channels(x, 3, changes, source, why="")
        return x
    target_c, target_h, target_w = input_shape
    if target_c >= c:  # resize the fewer channels: before adding channels, after removing them
        x = _resize_noted(x, target_h, target_w, changes)
    x = convert_channels(x, target_c, changes, source)
    return _resize_noted(x, target_h, target_w, changes)


def _resize_noted(x: np.ndarray, height: int, width: int, changes: Changes) -> np.ndarray:
    h, w = x.shape[2:]
    if (h, w) == (height, width):
        return x
    changes[f"resized {{n}} {{images}} from {h}×{w} to {height}×{width}{FOR_INPUT}"] += len(x)
    return resize(x, height, width)


def split_indices(
    n: int, fraction: float, seed: int, source: str
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (train, validation) indices from a permutation seeded with `seed`."""
    if not 0.0 < fraction < 1.0:
        raise DatasetError(f"the validation fraction must lie between 0 and 1, got {fraction!r}")
    n_val = int(n * fraction + 0.5)
    if n_val < 2 or n - n_val < 2:
        raise DatasetError(
            f"{source} has only {plural(n, 'image')}: too few to split into training and "
            f"validation sets with a validation fraction of {fraction:g} (each needs at least 2); "
            "add images or change the validation fraction"
        )
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def channel_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact per-channel mean and (population) std of x/255, from pixel-value histograms.

    std is at least 1/255 (one grey level), so normalising a constant channel cannot divide
    by zero.
    """
    n, c = x.shape[:2]
    counts = np.zeros((c, 256), np.int64)
    step = max(1, CHUNK_ELEMENTS // max(1, x.size // max(n, 1)))
    for start in range(0, n, step):
        chunk = x[start:start + step]
        for channel in range(c):
            counts[channel] += np.bincount(chunk[:, channel].ravel(), minlength=256)
    values = np.arange(256, dtype=np.float64) / 255.0
    total = np.maximum(counts.sum(axis=1), 1)
    mean = counts @ values / total
    var = np.maximum(counts @ (values * values) / total - mean * mean, 0.0)
    return mean.astype(np.float32), np.maximum(np.sqrt(var), 1 / 255).astype(np.float32)


def check_label_range(y: np.ndarray, source: str) -> tuple[int, int]:
    """(lowest, highest) label as exact Python ints, read in y's own type before any cast (a
    uint64 label of 2**63 or more would turn negative in int64); DatasetError if one is negative
    or too large to be a class number."""
    low, high = int(y.min()), int(y.max())
    if low < 0:
        raise DatasetError(
            f"{source} has a negative label ({low:,}); labels must be class numbers 0, 1, 2, …"
        )
    if high + 1 > MAX_CLASSES:
        raise DatasetError(
            f"{source} has the label {high:,}, which is too large: labels are class numbers "
            f"0..K-1 and a network can have at most {MAX_CLASSES:,} classes; number the classes "
            "0, 1, 2, … without gaps"
        )
    return low, high


def numbered_classes(y: np.ndarray, source: str) -> tuple[list[str], list[str]]:
    """Class names '0'..'K-1' for integer labels with K = max label + 1, and notes on gaps."""
    _, high = check_label_range(y, source)
    if high < 1:
        raise DatasetError(
            f"{source}: every label is {high}; a classifier needs at least two classes"
        )
    missing = np.setdiff1d(np.arange(high + 1), np.unique(y))
    notes = []
    if missing.size:
        shown = ", ".join(str(v) for v in missing[:10]) + (", …" if missing.size > 10 else "")
        notes.append(
            f"labels run from 0 to {high:,} but {plural(int(missing.size), 'class')} never "
            f"occur ({shown}): labels should be 0..K-1 for K classes; the network still gets "
            f"{high + 1:,} outputs, one for each number, so renumber the labels without gaps "
            "unless those classes are meant to exist"
        )
    return [str(k) for k in range(high + 1)], notes


def owned(x: np.ndarray) -> np.ndarray:
    """A C-contiguous, writable array (a copy only when x is a read-only or strided view)."""
    if x.flags.c_contiguous and x.flags.writeable:
        return x
    return np.array(x, order="C", copy=True)


def build(
    name: str,
    spec: str,
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    classes: list[str],
    input_shape: Shape | None,
    source: str,
    notes: list[str] | None = None,
    skipped: int = 0,
) -> LoadedDataset:
    """The LoadedDataset of two parts: conversions applied and noted, statistics measured."""
    changes: Changes = Counter()
    train_x = owned(conform(train[0], input_shape, changes, source))
    val_x = owned(conform(val[0], input_shape, changes, source))
    train_y = owned(np.asarray(train[1], dtype=np.int64))
    val_y = owned(np.asarray(val[1], dtype=np.int64))
    all_notes = [*(notes or []), *render_notes(changes)]
    absent = sorted(set(np.unique(val_y).tolist()) - set(np.unique(train_y).tolist()))
    if absent:
        shown = ", ".join(repr(classes[k]) for k in absent[:5]) + (", …" if len(absent) > 5 else "")
        all_notes.append(
            f"{plural(len(absent), 'class')} ha{'s' if len(absent) == 1 else 've'} validation "
            f"images but no training images ({shown}); the network cannot learn "
            f"{'it' if len(absent) == 1 else 'them'}"
        )
    mean, std = channel_stats(train_x)
    return LoadedDataset(
        name=name,
        train_x=train_x,
        train_y=train_y,
        val_x=val_x,
        val_y=val_y,
        classes=classes,
        mean=mean,
        std=std,
        notes=all_notes,
        skipped=skipped,
        spec=spec,
    )


def build_split(
    name: str,
    spec: str,
    x: np.ndarray,
    y: np.ndarray,
    classes: list[str],
    input_shape: Shape | None,
    source: str,
    fraction: float,
    seed: int,
    notes: list[str] | None = None,
    skipped: int = 0,
) -> LoadedDataset:
    """build() after a seeded random split of one set of images into training and validation."""
    train_idx, val_idx = split_indices(len(y), fraction, seed, source)
    return build(
        name, spec, (x[train_idx], y[train_idx]), (x[val_idx], y[val_idx]), classes,
        input_shape, source, notes, skipped,
    )
