"""Image folders: one subfolder per class, PNG, JPEG or BMP, grey or colour, any size.

Every image is decoded with PIL, converted to the channel count and resized (bilinear; PIL
antialiases when it shrinks) to the Input block's H×W one by one, since sizes differ. Threads
decode in parallel: PIL releases the GIL while it decodes and resizes. A folder whose decoded
images would not fit the memory limit becomes a StreamingDataset that decodes on demand. An
image with more than MAX_IMAGE_PIXELS pixels is skipped with a note before it is decoded.
"""

from __future__ import annotations

import os
import re
import threading
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import torch
from PIL import Image, ImageOps

from cnnstudio.core.summary import format_bytes
from cnnstudio.train.datasets.common import (
    COLOUR_TO_GREY,
    FOR_INPUT,
    Changes,
    DatasetError,
    LoadedDataset,
    Shape,
    build,
    channel_stats,
    grey_to_colour,
    plural,
    render_notes,
    split_indices,
)

EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp"})
GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
WIDE_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
PIL_MODE = {1: "L", 3: "RGB", 4: "RGBA"}
HEADER_SAMPLE = 200  # images whose headers decide the size when no Input shape is given
STATS_SAMPLE = 2000  # images that estimate mean and std of a streamed folder
DROP_TRANSPARENCY = "dropped the transparency (alpha) of {n} {images}"
MAX_IMAGE_PIXELS = 8192 * 8192
"""The most pixels one image file may have (67 megapixels, 256 MiB decoded as RGBA).

Checked from the header, before decoding, so a small file that claims a huge canvas (a
decompression bomb) costs nothing; it lies below PIL's own limit (89 megapixels), whose
warning would otherwise reach stderr as raw text.
"""
Progress = Callable[[int, int], None]
Files = list[tuple[Path, int]]
PIL_BOMB = re.compile(r"\((\d+) pixels\)")  # in PIL's decompression-bomb message
_OPEN_LOCK = threading.Lock()


class ImageTooLarge(Exception):
    """An image file with more pixels than MAX_IMAGE_PIXELS, or than PIL's bomb limit."""


class Failure(NamedTuple):
    """An image file that was skipped: why, and whether it was for having too many pixels."""

    path: Path
    reason: str
    too_large: bool = False


@dataclass
class FolderScan:
    root: Path
    classes: list[str]
    files: Files
    notes: list[str] = field(default_factory=list)


def _is_hidden(path: Path, base: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(base).parts)


def scan_folder(root: Path) -> FolderScan:
    """Class subfolders (sorted names) and their image files; empty classes skipped with a note."""
    layout = f"put the images of each class in a subfolder named after it (e.g. {root / 'cats'} " \
             f"and {root / 'dogs'})"
    if not root.exists():
        raise DatasetError(f"image folder not found: {root}; check the path in the dataset spec")
    if not root.is_dir():
        raise DatasetError(f"{root} is a file; folder:DIR needs a folder: {layout}")
    try:
        entries = sorted(p for p in root.iterdir() if not p.name.startswith("."))
        subdirs = [p for p in entries if p.is_dir()]
        loose = [p for p in entries if p.is_file() and p.suffix.lower() in EXTENSIONS]
        per_class = {d.name: sorted(p for p in d.rglob("*") if p.is_file()
                                    and not _is_hidden(p, d)) for d in subdirs}
    except OSError as err:
        raise DatasetError(f"cannot read the folder {root}: {err.strerror or err}") from None
    if len(subdirs) < 2:
        found = f"{len(subdirs)}: {subdirs[0].name!r}" if subdirs else "none"
        stray = f" ({plural(len(loose), 'image')} lie directly in it)" if loose else ""
        nested = len(subdirs) == 1 and sum(p.is_dir() for p in subdirs[0].iterdir()) >= 2
        hint = f" (did you mean folder:{subdirs[0]}?)" if nested else ""
        raise DatasetError(
            f"{root} needs at least two class subfolders, found {found}{hint}{stray}; {layout}"
        )
    notes, files, classes, empty, others = [], [], [], [], []
    for name, paths in per_class.items():
        images = [p for p in paths if p.suffix.lower() in EXTENSIONS]
        others += [p for p in paths if p.suffix.lower() not in EXTENSIONS]
        if not images:
            empty.append(name)
            continue
        files += [(p, len(classes)) for p in images]
        classes.append(name)
    for name in empty:
        notes.append(f"skipped the empty class folder {name!r} (no PNG, JPEG or BMP images)")
    if len(classes) < 2:
        found = f"{len(classes)}: {classes[0]!r}" if classes else "none"
        raise DatasetError(
            f"{root} needs at least two class subfolders with images, found {found} "
            f"({', '.join(repr(e) for e in empty)} hold no PNG, JPEG or BMP images); {layout}"
        )
    if loose:
        notes.append(f"ignored {plural(len(loose), 'image')} directly in {root}: only images "
                     "inside a class subfolder are used")
    if others:
        what = "is not a PNG, JPEG or BMP image" if len(others) == 1 else (
            "are not PNG, JPEG or BMP images")
        notes.append(f"ignored {plural(len(others), 'file')} that {what} "
                     f"(e.g. {others[0].relative_to(root)})")
    return FolderScan(root, classes, files, notes)


def _as_8bit(image: Image.Image) -> Image.Image:
    """16-bit and float grey images scaled into 0..255 (PIL's own conversion would clip)."""
    values = np.asarray(image, dtype=np.float32)
    top = float(values.max()) if values.size else 0.0
    scale = (255.0 if top <= 1.0 else 1.0) if image.mode == "F" else (
        1 / 257 if top > 255 else 1.0)
    return Image.fromarray(np.clip(np.rint(values * scale), 0, 255).astype(np.uint8), "L")


def open_image(path: Path) -> Image.Image:
    """Image.open (which reads only the header), or ImageTooLarge for too many pixels.

    PIL's own decompression-bomb check runs inside Image.open and warns (below twice its limit)
    or raises (above it); both become ImageTooLarge. Catching the warning changes the
    process-wide warning filters for a moment, so the decoding threads take turns here.
    """
    with _OPEN_LOCK, warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(path)
        except (Image.DecompressionBombWarning, Image.DecompressionBombError) as err:
            found = PIL_BOMB.search(str(err))
            pixels = f"{int(found.group(1)):,} pixels" if found else "too many pixels"
            limit = min(MAX_IMAGE_PIXELS, Image.MAX_IMAGE_PIXELS or MAX_IMAGE_PIXELS)
            raise ImageTooLarge(
                f"{pixels}, more than the limit of {limit:,} for one image; shrink it"
            ) from None
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
        image.close()
        raise ImageTooLarge(
            f"{width:,}×{height:,} = {width * height:,} pixels, more than the limit of "
            f"{MAX_IMAGE_PIXELS:,} for one image; shrink it"
        )
    return image


def decode(path: Path, shape: Shape, why_channels: str = FOR_INPUT,
           why_size: str = FOR_INPUT) -> tuple[np.ndarray, list[str]]:
    """One image as uint8 C×H×W and the note templates of what was done to it.

    Raises ImageTooLarge for too many pixels and whatever PIL raises for a bad file; callers
    decide whether that skips or stops.
    """
    channels, height, width = shape
    events = []
    with open_image(path) as opened:
        opened.load()
        image = opened
        if image.getexif().get(0x0112, 1) != 1:
            image = ImageOps.exif_transpose(image)
        if image.mode in WIDE_MODES:
            image = _as_8bit(image)
        grey = image.mode in GREY_MODES
        alpha = "A" in image.getbands() or (image.mode == "P" and "transparency" in image.info)
        if channels == 1 and not grey:
            events.append(COLOUR_TO_GREY + why_channels)
        elif channels > 1 and grey:
            events.append(grey_to_colour(channels) + why_channels)
        if alpha and channels != 4:
            events.append(DROP_TRANSPARENCY)
        if image.mode != PIL_MODE[channels]:
            image = image.convert(PIL_MODE[channels])
        if image.size != (width, height):
            events.append(f"resized {{n}} {{images}} to {height}×{width}{why_size}")
            image = image.resize((width, height), Image.Resampling.BILINEAR)
        array = np.asarray(image, dtype=np.uint8)
    return array.reshape(height, width, channels).transpose(2, 0, 1), events


def _reason(err: BaseException, path: Path) -> str:
    text = " ".join(str(err).replace(f" {str(path)!r}", "").split()) or type(err).__name__
    return text if len(text) <= 120 else text[:117] + "..."


class FolderImages(torch.utils.data.Dataset):
    """(uint8 tensor C×H×W, label) decoded from disk on demand, for a DataLoader."""

    def __init__(self, files: Files, input_shape: Shape) -> None:
        self.files = list(files)
        self.input_shape = tuple(int(v) for v in input_shape)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.files[index]
        try:
            array, _ = decode(path, self.input_shape)  # type: ignore[arg-type]
        except Exception as err:  # PIL raises many types for bad files; all mean "unreadable"
            raise DatasetError(
                f"cannot read the image {path} ({_reason(err, path)}); remove or replace it and "
                "start again"
            ) from None
        return torch.from_numpy(np.ascontiguousarray(array)), label


@dataclass(eq=False)
class StreamingDataset:
    """A folder too big for memory: the file lists of each split, decoded while training.

    mean and std are estimated from a seeded sample of at most 2,000 training images.
    """

    name: str
    train_files: Files
    val_files: Files
    classes: list[str]
    image_shape: Shape
    mean: np.ndarray
    std: np.ndarray
    notes: list[str] = field(default_factory=list)
    skipped: int = 0
    spec: str = ""

    streaming = True

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def num_train(self) -> int:
        return len(self.train_files)

    @property
    def num_val(self) -> int:
        return len(self.val_files)

    def train_set(self) -> FolderImages:
        return FolderImages(self.train_files, self.image_shape)

    def val_set(self) -> FolderImages:
        return FolderImages(self.val_files, self.image_shape)


def natural_shape(files: Files, seed: int) -> tuple[Shape, str, str]:
    """Shape for a folder when the Input block is unknown: the most common size, colour if any.

    Reads only headers, of a seeded sample. Returns (shape, why channels, why size) for notes.
    """
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(files), min(len(files), HEADER_SAMPLE), replace=False)
    sizes: Counter = Counter()
    colour = False
    for i in picked:
        try:
            with open_image(files[i][0]) as image:
                sizes[(image.height, image.width)] += 1
                colour = colour or image.mode not in GREY_MODES
        except Exception:  # unreadable files are reported when they are decoded
            continue
    (height, width), _ = sizes.most_common(1)[0] if sizes else ((32, 32), 0)
    shape = (3 if colour else 1, height, width)
    return shape, " (the folder mixes grey and colour images)", " (the most common size)"


def decode_many(
    files: Files, shape: Shape, whys: tuple[str, str], progress: Progress | None = None
) -> tuple[np.ndarray, np.ndarray, Changes, list[Failure]]:
    """Decode files in parallel into one array: (images, readable mask, changes, failures)."""
    x = np.empty((len(files), *shape), np.uint8)
    ok = np.zeros(len(files), bool)

    def work(i: int) -> tuple[list[str], Failure | None]:
        path = files[i][0]
        try:
            x[i], events = decode(path, shape, *whys)
        except ImageTooLarge as err:
            return [], Failure(path, str(err), too_large=True)
        except Exception as err:  # PIL raises many types for bad files; all mean "unreadable"
            return [], Failure(path, _reason(err, path))
        ok[i] = True
        return events, None

    changes: Changes = Counter()
    failures = []
    workers = max(1, min(8, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for done, (events, error) in enumerate(pool.map(work, range(len(files))), 1):
            changes.update(events)
            if error is not None:
                failures.append(error)
            if progress is not None and (done % 64 == 0 or done == len(files)):
                progress(done, len(files))
    return x, ok, changes, failures


def _skipped_notes(failures: list[Failure], root: Path, where: str = "") -> list[str]:
    """One note for the unreadable images, one for those with too many pixels."""
    notes = []
    for too_large, what, why in ((False, "unreadable image", ""),
                                 (True, "image", " with too many pixels")):
        group = [f for f in failures if f.too_large == too_large]
        if not group:
            continue
        names = ", ".join(str(f.path.relative_to(root)) for f in group[:5])
        more = f" and {len(group) - 5:,} more" if len(group) > 5 else ""
        notes.append(f"skipped {plural(len(group), what)}{why}{where}: {names}{more} "
                     f"({group[0].path.name}: {group[0].reason})")
    return notes


def load_folder(
    spec: str,
    root: Path,
    input_shape: Shape | None,
    fraction: float,
    seed: int,
    memory_limit: int,
    progress: Progress | None = None,
) -> LoadedDataset | StreamingDataset:
    scan = scan_folder(root)
    name = root.name or str(root)
    if input_shape is None:
        shape, *why = natural_shape(scan.files, seed)
    else:
        shape, why = input_shape, [FOR_INPUT, FOR_INPUT]
    whys = (why[0], why[1])
    needed = len(scan.files) * int(np.prod(shape))
    if needed > memory_limit:
        return _streaming(scan, name, spec, shape, whys, fraction, seed, needed, memory_limit)
    x, ok, changes, failures = decode_many(scan.files, shape, whys, progress)
    notes = list(scan.notes)
    if not ok.any():
        path, reason, _ = failures[0]
        raise DatasetError(
            f"none of the {plural(len(scan.files), 'image')} in {root} could be read (for "
            f"example {path.relative_to(root)}: {reason}); check that they are PNG, JPEG or "
            "BMP files"
        )
    notes += _skipped_notes(failures, root)
    labels = np.array([label for _, label in scan.files], np.int64)[ok]
    present = np.unique(labels)
    classes = scan.classes
    if len(present) < len(classes):
        lost = [classes[k] for k in range(len(classes)) if k not in set(present.tolist())]
        many = len(lost) > 1
        notes.append(f"left out the class{'es' if many else ''} "
                     f"{', '.join(repr(c) for c in lost)}: none of {'their' if many else 'its'} "
                     "images could be read")
        if len(present) < 2:
            raise DatasetError(f"{root}: only the class {classes[present[0]]!r} has readable "
                               "images; a classifier needs at least two classes")
        labels = np.searchsorted(present, labels)
        classes = [classes[k] for k in present]
    notes += render_notes(changes)
    readable = np.flatnonzero(ok)  # indexing x through it avoids a compacted copy of x
    train_idx, val_idx = split_indices(len(readable), fraction, seed, name)
    return build(name, spec, (x[readable[train_idx]], labels[train_idx]),
                 (x[readable[val_idx]], labels[val_idx]), classes, shape, name, notes,
                 skipped=len(failures))


def _streaming(
    scan: FolderScan, name: str, spec: str, shape: Shape, whys: tuple[str, str],
    fraction: float, seed: int, needed: int, limit: int,
) -> StreamingDataset:
    train_idx, val_idx = split_indices(len(scan.files), fraction, seed, name)
    train_files = [scan.files[i] for i in train_idx]
    val_files = [scan.files[i] for i in val_idx]
    rng = np.random.default_rng(seed)
    picked = np.sort(rng.choice(len(train_files), min(len(train_files), STATS_SAMPLE),
                                replace=False))
    sample = [train_files[i] for i in picked]
    x, ok, changes, failures = decode_many(sample, shape, whys)
    if not ok.any():
        path, reason, _ = failures[0]
        raise DatasetError(
            f"none of the {plural(len(sample), 'image')} sampled from {scan.root} could be read "
            f"(for example {path.relative_to(scan.root)}: {reason}); check that they are PNG, "
            "JPEG or BMP files"
        )
    mean, std = channel_stats(x[ok])
    broken = {failure.path for failure in failures}
    train_files = [item for item in train_files if item[0] not in broken]
    notes = list(scan.notes)
    notes.append(
        f"the decoded images would take {format_bytes(needed)}, more than the memory limit of "
        f"{format_bytes(limit)}, so they are read from disk while training; mean and std "
        f"are estimated from {plural(len(sample), 'training image')}"
    )
    notes += [f"in the sample: {note}" for note in render_notes(changes)]
    notes += _skipped_notes(failures, scan.root, " found in the sample (training stops at any "
                                                 "other unreadable image)")
    return StreamingDataset(name, train_files, val_files, list(scan.classes), shape, mean, std,
                            notes, skipped=len(failures), spec=spec)
