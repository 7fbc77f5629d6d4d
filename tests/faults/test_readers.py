"""Hostile dataset files: every reader refuses them quickly, in bounded memory, with a
DatasetError that says what is wrong and how to fix it (never MemoryError or a hang).

The hostile files are made in tmp_path: gzip bombs from one compressed block of zeros repeated
as gzip members (gzip allows several), a named pipe, a folder, npz archives whose headers lie,
images over a lowered pixel cap. Memory is measured with tracemalloc in this process (NumPy's
allocations are traced too) and with the peak RSS of a real `cnnstudio train` process.
"""

from __future__ import annotations

import gzip
import io
import os
import struct
import subprocess
import sys
import tarfile
import threading
import time
import tracemalloc
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnstudio.train.data import DatasetError, load_dataset
from cnnstudio.train.datasets import common as common_steps
from cnnstudio.train.datasets import folder as folder_reader
from cnnstudio.train.datasets.idx import GzipStream

ROOT = Path(__file__).resolve().parents[2]
ZEROS_BLOCK = 64 * 2**20  # one gzip member inflates to this; ~65 KB compressed
BOMB_MEMBERS = 32  # 2 GiB inflated from a 2 MB file
SMALL_PEAK = 32 * 2**20  # what a refusal may cost in traced memory


@pytest.fixture(scope="module")
def zeros_member() -> bytes:
    return gzip.compress(bytes(ZEROS_BLOCK), compresslevel=9)


def idx_header(*dims: int) -> bytes:
    return bytes([0, 0, 0x08, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


def gzip_bomb(path: Path, header: bytes, member: bytes, members: int = BOMB_MEMBERS) -> Path:
    """A gzip file: the IDX header as one member, then `members` members of zeros."""
    with open(path, "wb") as file:
        file.write(gzip.compress(header))
        for _ in range(members):
            file.write(member)
    return path


def labels_file(path: Path, n: int) -> Path:
    path.write_bytes(idx_header(n) + (np.arange(n) % 10).astype(np.uint8).tobytes())
    return path


def images_file(path: Path, n: int, side: int = 8) -> Path:
    rng = np.random.default_rng(0)
    path.write_bytes(idx_header(n, side, side) + rng.integers(0, 256, n * side * side,
                                                              dtype=np.uint8).tobytes())
    return path


def refused(load: Callable[[], object]) -> tuple[str, int, float]:
    """(the DatasetError's message, peak traced bytes, seconds) of a load that must fail."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(DatasetError) as err:
            load()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    message = str(err.value)
    assert "\n" not in message and "Traceback" not in message
    return message, peak, time.perf_counter() - start


# --- IDX: gzip bombs and lying headers ----------------------------------------------------------

def test_a_gzip_whose_header_promises_more_than_the_limit_is_refused_before_inflating(
        tmp_path, zeros_member):
    bomb = gzip_bomb(tmp_path / "bomb.gz", idx_header(8_000_000, 28, 28), zeros_member)
    assert bomb.stat().st_size < 3 * 2**20
    labels = labels_file(tmp_path / "labels", 100)
    message, peak, seconds = refused(lambda: load_dataset(f"idx:{bomb},{labels}"))
    assert message == (
        f"{bomb} promises 8,000,000 images of 28×28 (5.8 GiB once decoded), more than the "
        "4.0 GiB limit for one dataset file. If the file should be smaller it is damaged "
        "(download it again); otherwise use a subset of the images, or a folder of image files "
        "(folder:DIR), which is read from disk while training"
    )
    assert peak < SMALL_PEAK and seconds < 2


def test_a_plain_file_whose_header_promises_more_than_the_limit_is_refused(tmp_path):
    path = tmp_path / "images.idx"
    path.write_bytes(idx_header(6_000_000, 32, 32) + bytes(1000))
    labels = labels_file(tmp_path / "labels", 100)
    message, _, _ = refused(lambda: load_dataset(f"idx:{path},{labels}"))
    assert "promises 6,000,000 images of 32×32 (5.7 GiB once decoded)" in message
    assert "more than the 4.0 GiB limit" in message


def test_a_gzip_that_inflates_far_past_its_promise_is_refused_after_a_bounded_read(
        tmp_path, zeros_member):
    liar = gzip_bomb(tmp_path / "liar.gz", idx_header(100, 28, 28), zeros_member)
    labels = labels_file(tmp_path / "labels", 100)
    message, peak, seconds = refused(lambda: load_dataset(f"idx:{liar},{labels}"))
    assert message.startswith("liar.gz holds more data than its header promises (100 images of "
                              "28×28, then more than 1.0 MiB besides)")
    assert "download it again" in message
    assert peak < SMALL_PEAK and seconds < 2


def test_the_label_and_image_counts_are_compared_before_either_file_is_read(
        tmp_path, zeros_member):
    images = gzip_bomb(tmp_path / "images.gz", idx_header(2_000_000, 28, 28), zeros_member)
    labels = labels_file(tmp_path / "labels", 100)
    message, peak, seconds = refused(lambda: load_dataset(f"idx:{images},{labels}"))
    assert message.startswith("images.gz holds 2,000,000 images but labels holds 100 labels")
    assert peak < SMALL_PEAK and seconds < 2


@pytest.mark.parametrize("tail, note", [
    (b"\0" * 10, "has 10 bytes after its images; ignored them"),
    (b"junk", "has data that is not gzip after its gzip data; ignored it"),
])
def test_small_extras_after_gzipped_values_are_noted_not_refused(tmp_path, tail, note):
    plain = images_file(tmp_path / "plain.idx", 40)
    data = plain.read_bytes()
    packed = tmp_path / "images.gz"
    if tail == b"junk":  # after the last member
        packed.write_bytes(gzip.compress(data) + tail)
    else:  # inside the gzip data, in a member of its own
        packed.write_bytes(gzip.compress(data[:500]) + gzip.compress(data[500:] + tail))
    labels = labels_file(tmp_path / "labels", 40)
    loaded = load_dataset(f"idx:{packed},{labels}", validation_fraction=0.25)
    reference = load_dataset(f"idx:{plain},{labels}", validation_fraction=0.25)
    assert np.array_equal(loaded.train_x, reference.train_x)
    assert any(note in n for n in loaded.notes)


def test_gzip_members_read_in_any_sizes_give_the_whole_data(tmp_path):
    """Several members, read in uneven pieces: member ends must neither lose nor repeat bytes."""
    rng = np.random.default_rng(1)
    data = rng.integers(0, 256, 50_000, dtype=np.uint8).tobytes()
    cuts = sorted(rng.choice(len(data), 6, replace=False).tolist())
    pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])]
    path = tmp_path / "members.gz"
    path.write_bytes(b"".join(gzip.compress(piece) for piece in pieces))
    for sizes in ([100] * 600, [1] * 3 + [7_919] * 10, [50_000]):
        with open(path, "rb") as file:
            stream = GzipStream(file, path)
            read = b"".join(stream.read(n) for n in sizes)
        assert read == data[:len(read)] and len(read) == min(sum(sizes), len(data))


def finishes(load: Callable[[], object], pipes: list[Path], seconds: float = 5) -> BaseException:
    """The exception `load` raises, asserting it comes within `seconds` instead of waiting on a
    pipe forever (a reader that opens one is released afterwards, so no thread stays stuck)."""
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            load()
        except BaseException as err:  # noqa: BLE001 - handed to the test thread
            outcome.append(err)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    hung = worker.is_alive()
    for pipe in pipes:  # a reader blocked in open() gets a writer, then end of file
        try:
            os.close(os.open(pipe, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass
    worker.join(seconds)
    assert not hung, "the reader waited on a named pipe"
    assert outcome, "a named pipe or folder was read as a dataset"
    return outcome[0]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_named_pipes_and_folders_are_refused_without_opening_them(tmp_path):
    pipe = tmp_path / "images-pipe"
    os.mkfifo(pipe)
    folder = tmp_path / "a-folder"
    folder.mkdir()
    labels = labels_file(tmp_path / "labels", 10)
    cases = [
        (f"idx:{pipe},{labels}", f"{pipe} is a named pipe (FIFO), not a regular file; the "
                                 "dataset spec needs the IDX images file here"),
        (f"idx:{images_file(tmp_path / 'i', 10)},{pipe}", "is a named pipe (FIFO)"),
        (f"npz:{pipe}", f"{pipe} is a named pipe (FIFO), not a regular file"),
        (f"idx:{folder},{labels}", f"{folder} is a folder, but the dataset spec needs the IDX "
                                   "images file here"),
        (f"npz:{folder}", f"{folder} is a folder"),
    ]
    for spec, expected in cases:
        err = finishes(lambda: load_dataset(spec), [pipe])
        assert isinstance(err, DatasetError), repr(err)
        assert expected in str(err)


# --- npz: lying headers, over-large members, pickles, labels ------------------------------------

def npy_bytes(shape: tuple[int, ...], dtype: str, payload: bytes) -> bytes:
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": shape})
    return header.getvalue() + payload


def write_npz(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(f"{name}.npy", data)
    return path


def test_an_npz_member_whose_header_promises_a_huge_array_is_refused_before_reading(tmp_path):
    labels = npy_bytes((10,), "i8", np.arange(10).astype("i8").tobytes())
    path = write_npz(tmp_path / "huge.npz", {
        "x": npy_bytes((1_000_000, 1000, 1000), "u1", bytes(100)), "y": labels})
    message, peak, seconds = refused(lambda: load_dataset(f"npz:{path}"))
    assert message.startswith(f"{path}: array 'x' promises the shape 1000000 × 1000 × 1000 of "
                              "uint8 (931.3 GiB once decoded), more than the 4.0 GiB limit")
    assert peak < SMALL_PEAK and seconds < 2


def test_an_npz_member_shorter_than_its_header_says_is_damaged(tmp_path):
    labels = npy_bytes((10,), "i8", np.arange(10).astype("i8").tobytes())
    path = write_npz(tmp_path / "short.npz", {"x": npy_bytes((10, 8, 8), "u1", bytes(64)),
                                             "y": labels})
    message, _, _ = refused(lambda: load_dataset(f"npz:{path}"))
    assert message == (f"{path}: array 'x' declares the shape 10 × 8 × 8 of uint8 (640 bytes) "
                       "but holds 64 bytes; the file is damaged: save it again")


def test_an_npz_within_the_format_but_over_the_limit_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(common_steps, "MAX_DECODED_BYTES", 2**20)
    path = tmp_path / "big.npz"
    np.savez_compressed(path, x=np.zeros((40, 1, 256, 256), np.uint8), y=np.arange(40) % 2)
    message, peak, _ = refused(lambda: load_dataset(f"npz:{path}"))
    assert "array 'x' promises the shape 40 × 1 × 256 × 256 of uint8 (2.5 MiB once decoded), " \
           "more than the 1.0 MiB limit" in message
    assert peak < 2**20


def test_an_encrypted_npz_member_is_reported_not_crashed_on(tmp_path):
    path = write_npz(tmp_path / "locked.npz", {"x": npy_bytes((4, 2, 2), "u1", bytes(16)),
                                              "y": npy_bytes((4,), "u1", bytes([0, 1, 0, 1]))})
    data = bytearray(path.read_bytes())
    for signature, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # local, central
        start = data.find(signature)
        while start >= 0:
            data[start + flags_at] |= 0x01  # "encrypted"
            start = data.find(signature, start + 4)
    path.write_bytes(bytes(data))
    message, _, _ = refused(lambda: load_dataset(f"npz:{path}"))
    assert message.startswith(f"{path}: array 'x' is damaged (") and "encrypted" in message


def test_pickles_and_single_arrays_are_never_loaded(tmp_path):
    objects = np.array([{"a": 1}] * 4, dtype=object)
    np.savez(tmp_path / "pickled.npz", x=objects, y=np.arange(4) % 2)
    message, _, _ = refused(lambda: load_dataset(f"npz:{tmp_path / 'pickled.npz'}"))
    assert "array 'x' holds Python objects, which are not read for safety" in message
    np.save(tmp_path / "single.npy", np.zeros((4, 2, 2), np.uint8))
    (tmp_path / "single.npy").rename(tmp_path / "single.npz")
    message, _, _ = refused(lambda: load_dataset(f"npz:{tmp_path / 'single.npz'}"))
    assert "holds a single array (.npy), not an .npz archive" in message


def test_a_uint64_label_beyond_int64_is_too_large_not_negative(tmp_path):
    y = (np.arange(10) % 2).astype(np.uint64)
    y[3] = 2**63 + 5
    np.savez(tmp_path / "d.npz", x=np.zeros((10, 4, 4), np.uint8), y=y)
    message, _, _ = refused(lambda: load_dataset(f"npz:{tmp_path / 'd.npz'}"))
    assert "negative" not in message
    assert "has the label 9,223,372,036,854,775,813, which is too large" in message
    assert "at most 100,000 classes" in message


def test_a_stray_large_label_warns_that_most_classes_never_occur(tmp_path):
    y = np.arange(40) % 10
    y[7] = 1000
    np.savez(tmp_path / "d.npz", x=np.zeros((40, 4, 4), np.uint8), y=y)
    loaded = load_dataset(f"npz:{tmp_path / 'd.npz'}")
    assert loaded.num_classes == 1001
    (note,) = [n for n in loaded.notes if "never occur" in n]
    assert note.startswith("labels run from 0 to 1,000 but 990 classes never occur (10, 11, ")
    assert "labels should be 0..K-1 for K classes" in note and "1,001 outputs" in note
    assert not any("classs" in n for n in loaded.notes)


# --- image folders: pixel caps and PIL's decompression-bomb check -------------------------------

def image_folder(root: Path, big: dict[str, tuple[int, int]]) -> Path:
    """Two classes of 20×20 images, plus the named big ones (width, height) in class a."""
    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
        for i in range(4):
            Image.new("L", (20, 20), 60 * i).save(root / label / f"{i}.png")
    for name, size in big.items():
        Image.new("L", size, 200).save(root / "a" / name)
    return root


def test_images_over_the_pixel_cap_are_skipped_with_a_note(tmp_path, monkeypatch):
    monkeypatch.setattr(folder_reader, "MAX_IMAGE_PIXELS", 1000)
    root = image_folder(tmp_path / "pets", {"big.png": (40, 40)})
    loaded = load_dataset(f"folder:{root}", (1, 20, 20), validation_fraction=0.25)
    assert loaded.skipped == 1 and loaded.num_train + loaded.num_val == 8
    assert ("skipped 1 image with too many pixels: a/big.png (big.png: 40×40 = 1,600 pixels, "
            "more than the limit of 1,000 for one image; shrink it)") in loaded.notes


def test_pils_decompression_bomb_warning_and_error_become_skip_notes(tmp_path, monkeypatch,
                                                                     capfd):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # PIL warns above, raises above 2,000
    root = image_folder(tmp_path / "pets", {"warns.png": (40, 30), "raises.png": (50, 50)})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = load_dataset(f"folder:{root}", (1, 20, 20), validation_fraction=0.25)
        no_shape = load_dataset(f"folder:{root}", validation_fraction=0.25)
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]
    assert "DecompressionBomb" not in capfd.readouterr().err
    assert loaded.skipped == 2 and no_shape.skipped == 2 and no_shape.image_shape == (1, 20, 20)
    (note,) = [n for n in loaded.notes if n.startswith("skipped 2 images with too many pixels")]
    assert "a/raises.png, a/warns.png" in note
    assert "(raises.png: 2,500 pixels, more than the limit of 1,000 for one image" in note


# --- torchvision layout: CIFAR archives ---------------------------------------------------------

def cifar_archive(root: Path, members: dict[str, bytes]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / "cifar-10-python.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def test_a_cifar_archive_that_climbs_out_of_its_folder_is_not_unpacked(tmp_path):
    root = tmp_path / "data"
    archive = cifar_archive(root, {"cifar-10-batches-py/data_batch_1": b"x",
                                   "cifar-10-batches-py/../../evil.txt": b"owned"})
    message, _, _ = refused(lambda: load_dataset(f"cifar10:{root}"))
    assert message.startswith(f"{archive} holds the file 'cifar-10-batches-py/../../evil.txt', "
                              "which is not part of CIFAR-10")
    assert not (tmp_path / "evil.txt").exists()
    assert not (root / "cifar-10-batches-py").exists()


def test_a_cifar_archive_that_unpacks_past_the_limit_is_not_unpacked(tmp_path, monkeypatch):
    monkeypatch.setattr(common_steps, "MAX_DECODED_BYTES", 4096)
    root = tmp_path / "data"
    archive = cifar_archive(root, {f"cifar-10-batches-py/data_batch_{i}": bytes(3000)
                                   for i in (1, 2)})
    message, _, _ = refused(lambda: load_dataset(f"cifar10:{root}"))
    assert message.startswith(f"{archive} holds 2 files or more (5.9 KiB once decoded), more "
                              "than the 4.0 KiB limit")
    assert not (root / "cifar-10-batches-py").exists()


# --- the real command line ----------------------------------------------------------------------

def cli_peak(args: list[str]) -> tuple[int, str, int, float]:
    """(exit code, stderr, peak RSS in bytes, seconds) of `cnnstudio ARGS` in a fresh process.

    A small wrapper process runs the command and reads its children's peak RSS, so nothing else
    this test session ran is counted.
    """
    wrapper = ("import resource, subprocess, sys\n"
               "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
               "sys.stderr.write(done.stderr)\n"
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
               "sys.exit(done.returncode)\n")
    cli = Path(sys.executable).with_name("cnnstudio")
    command = [str(cli)] if cli.exists() else [sys.executable, "-m", "cnnstudio"]
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", wrapper, *command, *args], capture_output=True,
                          text=True, timeout=120, cwd=ROOT)
    peak_kib = int(done.stdout.strip().splitlines()[-1])
    return done.returncode, done.stderr, peak_kib * 1024, time.perf_counter() - start


def test_cnnstudio_train_refuses_a_gzip_bomb_quickly_in_bounded_memory(tmp_path, zeros_member):
    """The bomb that needs the bounded inflating: its header promises 100 images, its data
    inflates to 2 GiB (the one that promises too much is refused from its header, above)."""
    labels = labels_file(tmp_path / "labels", 100)
    bomb = gzip_bomb(tmp_path / "lies.gz", idx_header(100, 28, 28), zeros_member)
    code, err, peak, seconds = cli_peak([
        "train", "--template", "keras-mnist", "--dataset", f"idx:{bomb},{labels}",
        "--epochs", "1", "--out", str(tmp_path / "run")])
    assert code == 2 and err.startswith("cnnstudio: error: lies.gz holds more data than its "
                                        "header promises (100 images of 28×28")
    assert "internal error" not in err and "Traceback" not in err
    assert peak < 1.5 * 2**30, f"peak RSS {peak / 2**20:.0f} MiB"
    assert seconds < 60
