"""IDX files (the MNIST format), plain or gzipped, and the bundled MNIST sample.

An IDX file is a 4-byte magic number (0, 0, value type, number of dimensions), one big-endian
uint32 per dimension, then the values. Only unsigned bytes (type 0x08) are read: images are
0x00000803 (N×H×W), labels 0x00000801 (N). Gzip is recognised by its magic bytes, not by the
file name, since downloads are often renamed or decompressed without renaming.
"""

from __future__ import annotations

import functools
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from cnnstudio.core.summary import format_bytes
from cnnstudio.resources import MissingResource, resource_path
from cnnstudio.train.datasets.common import (
    DatasetError,
    LoadedDataset,
    Shape,
    build,
    build_split,
    check_decoded_size,
    numbered_classes,
    plural,
    regular_file_size,
)

GZIP_MAGIC = b"\x1f\x8b"
IDX_TYPES = {0x08: "unsigned byte", 0x09: "signed byte", 0x0B: "16-bit integer",
             0x0C: "32-bit integer", 0x0D: "float", 0x0E: "double"}
ROLES = {"images": 3, "labels": 1}
SAMPLE_TRAIN = 8000
SAMPLE_NAME = "MNIST sample"
READ_CHUNK = 1 << 20  # bytes read or inflated at a time
EXTRA_ALLOWED = 1 << 20  # inflated bytes past the promised values that are noted, not refused


class GzipStream:
    """The inflated bytes of a gzip file (one member or several), handed out on demand.

    Nothing is inflated beyond what read() asks for, so memory stays bounded whatever the
    compressed data would grow to. `cut` turns true when the data ends inside a member (a
    truncated download); `trailing` when bytes that are not gzip follow the last member.
    """

    def __init__(self, file: BinaryIO, path: Path) -> None:
        self.file, self.path = file, path
        self.inflater = zlib.decompressobj(wbits=31)
        self.pending = b""  # compressed bytes not yet given to the inflater
        self.cut = self.trailing = self.done = False

    def _next_member(self) -> bool:
        """Start the member after a finished one; False at the end of the gzip data."""
        self.pending = self.inflater.unused_data + self.pending
        if len(self.pending) < 2:
            self.pending += self.file.read(READ_CHUNK)
        if not self.pending:
            return False
        if self.pending[:2] != GZIP_MAGIC:
            self.trailing = True
            return False
        self.inflater = zlib.decompressobj(wbits=31)
        return True

    def read(self, size: int) -> bytes:
        """Up to size inflated bytes; fewer only at the end of the data."""
        parts, need = [], size
        while need > 0 and not self.done:
            if self.inflater.eof and not self._next_member():
                self.done = True
                break
            if not self.pending:
                self.pending = self.file.read(READ_CHUNK)
                if not self.pending:
                    self.cut = self.done = True
                    break
            try:
                out = self.inflater.decompress(self.pending, need)
            except zlib.error as err:
                raise DatasetError(
                    f"{self.path} looks gzipped but its compressed data is damaged ({err}); "
                    "download it again"
                ) from None
            # at a member's end the rest of the input is in unused_data (and may be repeated
            # in unconsumed_tail): _next_member takes it from there
            self.pending = b"" if self.inflater.eof else self.inflater.unconsumed_tail
            parts.append(out)
            need -= len(out)
        return b"".join(parts)

    def skip(self, limit: int) -> int:
        """Inflate and drop up to limit bytes; how many there were."""
        skipped = 0
        while skipped < limit:
            got = len(self.read(min(READ_CHUNK, limit - skipped)))
            if not got:
                break
            skipped += got
        return skipped


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


class IdxFile:
    """An open IDX file, plain or gzipped: its header checked on opening, its values on demand.

    Everything the header promises is checked before a value is read: the size against
    MAX_DECODED_BYTES, and for a plain file against the file's length, so a lying header or a
    decompression bomb costs neither time nor memory.
    """

    def __init__(self, path: Path, role: str) -> None:
        self.path, self.role = path, role
        size = regular_file_size(path, f"IDX {role} file")
        try:
            self.file: BinaryIO = open(path, "rb")  # closed by close() or __exit__
        except OSError as err:
            raise DatasetError(f"cannot read {path}: {err.strerror or err}") from None
        try:
            self._read_header(size)
        except OSError as err:
            self.file.close()
            raise DatasetError(f"cannot read {path}: {err.strerror or err}") from None
        except BaseException:
            self.file.close()
            raise

    def _read_header(self, size: int) -> None:
        path, role = self.path, self.role
        self.gz = self.file.read(2) == GZIP_MAGIC
        self.file.seek(0)
        self.stream: GzipStream | BinaryIO = GzipStream(self.file, path) if self.gz else self.file
        magic = self.stream.read(4)
        problem = _magic_problem(magic, path, role)
        if problem:
            raise DatasetError(problem)
        ndim = ROLES[role]
        raw_dims = self.stream.read(4 * ndim)
        if len(raw_dims) < 4 * ndim:
            raise DatasetError(f"{path} ends inside its IDX header; the file is truncated: "
                               "download it again")
        self.dims: tuple[int, ...] = struct.unpack(f">{ndim}I", raw_dims)
        self.count = self.dims[0]
        self.per_item = int(np.prod(self.dims[1:], dtype=np.int64))
        if self.count == 0 or self.per_item == 0:
            raise DatasetError(f"{path} holds no {role} (its header says {self.dims})")
        self.nbytes = self.count * self.per_item
        check_decoded_size(self.nbytes, f"{path} promises {self._what()}")
        self.extra = 0 if self.gz else size - 4 - 4 * ndim - self.nbytes
        if self.extra < 0:
            self._truncated((size - 4 - 4 * ndim) // self.per_item)

    def _what(self) -> str:
        if self.role == "images":
            return f"{self.count:,} images of {self.dims[1]}×{self.dims[2]}"
        return f"{self.count:,} labels"

    def _truncated(self, held: int) -> None:
        cut = isinstance(self.stream, GzipStream) and self.stream.cut
        gz_note = " (its gzip data ends early)" if cut else ""
        raise DatasetError(
            f"{self.path.name}: header says {self._what()} but the file holds only "
            f"{held:,}{gz_note}; the file is truncated: download it again ({self.path})"
        )

    def values(self) -> tuple[np.ndarray, list[str]]:
        """The values, shaped as the header says, and notes; DatasetError if the data is short."""
        try:
            return self._values()
        except OSError as err:
            raise DatasetError(f"cannot read {self.path}: {err.strerror or err}") from None

    def _values(self) -> tuple[np.ndarray, list[str]]:
        out = np.empty(self.nbytes, np.uint8)
        done = 0
        while done < self.nbytes:
            got = self.stream.read(min(READ_CHUNK, self.nbytes - done))
            if not got:
                self._truncated(done // self.per_item)
            out[done:done + len(got)] = np.frombuffer(got, np.uint8)
            done += len(got)
        notes = []
        name, role = self.path.name, self.role
        if isinstance(self.stream, GzipStream):
            self.extra = self.stream.skip(EXTRA_ALLOWED + 1)
            if self.extra > EXTRA_ALLOWED:
                raise DatasetError(
                    f"{name} holds more data than its header promises ({self._what()}, then "
                    f"more than {format_bytes(EXTRA_ALLOWED)} besides); the file is damaged "
                    f"or not an IDX file: download it again ({self.path})"
                )
            if self.stream.cut:
                notes.append(f"{name}: the gzip data ends early, but all the {role} are there")
            if self.stream.trailing:
                notes.append(f"{name} has data that is not gzip after its gzip data; ignored it")
        if self.extra:
            notes.append(f"{name} has {plural(self.extra, 'byte')} after its {role}; ignored them")
        return out.reshape(self.dims), notes

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> IdxFile:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def read_idx_pair(images: Path, labels: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Images N×1×H×W and labels N (int64) from two IDX files that must agree on N.

    Both headers are checked before either file's values are read.
    """
    with IdxFile(images, "images") as x_file, IdxFile(labels, "labels") as y_file:
        if x_file.count != y_file.count:
            raise DatasetError(
                f"{images.name} holds {plural(x_file.count, 'image')} but {labels.name} holds "
                f"{plural(y_file.count, 'label')}; the two files must come from the same set "
                f"(images: {images}, labels: {labels})"
            )
        x, notes = x_file.values()
        y, label_notes = y_file.values()
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
