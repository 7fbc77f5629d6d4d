"""The dataset layer: real MNIST from the bundle, and real IDX, image and npz files in tmp_path."""

from __future__ import annotations

import ast
import gzip
import pickle
import shutil
import struct
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnstudio.core.sources import SOURCE_IDS, SOURCES
from cnnstudio.train.data import (
    LOADERS,
    DatasetError,
    DatasetSpec,
    FolderImages,
    LoadedDataset,
    StreamingDataset,
    class_counts,
    describe,
    load_dataset,
    parse_spec,
    sample_grid,
)


@pytest.fixture(scope="module")
def mnist() -> LoadedDataset:
    return load_dataset("mnist-sample")


def idx_bytes(array: np.ndarray) -> bytes:
    magic = bytes([0, 0, 0x08, array.ndim])
    return magic + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(np.uint8).tobytes()


def write_idx(path: Path, array: np.ndarray, gz: bool) -> Path:
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data, compresslevel=1) if gz else data)
    return path


def assert_plain(message: str) -> None:
    assert "Traceback" not in message and "\n" not in message


# --- the bundled sample -------------------------------------------------------------------------

def test_mnist_sample_is_the_real_mnist_test_set_split_8000_2000(mnist):
    assert mnist.train_x.shape == (8000, 1, 28, 28) and mnist.val_x.shape == (2000, 1, 28, 28)
    assert mnist.train_x.dtype == np.uint8 and mnist.train_x.flags.c_contiguous
    assert mnist.train_y.dtype == np.int64 and mnist.val_y.dtype == np.int64
    assert mnist.classes == [str(k) for k in range(10)] and mnist.num_classes == 10
    assert mnist.image_shape == (1, 28, 28)
    assert set(np.unique(mnist.train_y)) == set(range(10))
    assert 0 <= mnist.val_y.min() and mnist.val_y.max() <= 9
    assert abs(float(mnist.mean[0]) - 0.1307) < 0.02 and abs(float(mnist.std[0]) - 0.3081) < 0.02
    assert mnist.mean.dtype == np.float32 and mnist.std.shape == (1,)
    assert describe(mnist).startswith("MNIST sample: 8,000 training + 2,000 validation images")
    assert "fixed split" in mnist.notes[0] and mnist.skipped == 0


def test_class_counts_and_sample_grid(mnist):
    counts = class_counts(mnist)
    assert list(counts) == mnist.classes and sum(counts.values()) == 8000
    images, labels = sample_grid(mnist, 25, seed=3)
    assert images.shape == (25, 1, 28, 28) and images.dtype == np.uint8
    assert labels.tolist() == list(range(10)) * 2 + list(range(5))
    again, _ = sample_grid(mnist, 25, seed=3)
    assert np.array_equal(images, again)


# --- IDX ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("gz, name", [(True, "imgs.gz"), (False, "imgs.idx"),
                                      (True, "gz-without-extension"), (False, "plain.gz")])
def test_idx_round_trip_detects_gzip_by_its_bytes(tmp_path, mnist, gz, name):
    x, y = mnist.train_x[:200, 0], mnist.train_y[:200]
    images = write_idx(tmp_path / name, x, gz)
    labels = write_idx(tmp_path / f"labels-{name}", y, gz)
    loaded = load_dataset(f"idx:{images}, {labels}", validation_fraction=0.25)
    assert (loaded.num_train, loaded.num_val) == (150, 50)
    assert loaded.classes == [str(k) for k in range(10)] and loaded.name == name
    original = {x[i].tobytes(): int(y[i]) for i in range(200)}
    for part_x, part_y in ((loaded.train_x, loaded.train_y), (loaded.val_x, loaded.val_y)):
        assert all(original[img[0].tobytes()] == lab for img, lab in zip(part_x, part_y))
    assert len({img.tobytes() for img in np.concatenate([loaded.train_x, loaded.val_x])}) == 200


def test_truncated_idx_says_how_many_images_survive(tmp_path, mnist):
    x = np.concatenate([mnist.train_x[:, 0], mnist.val_x[:, 0]])
    data = idx_bytes(x)[: 16 + 4999 * 784 + 100]
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(data)
    labels = write_idx(tmp_path / "labels", np.zeros(10000, np.uint8), False)
    with pytest.raises(DatasetError) as err:
        load_dataset(f"idx:{path},{labels}")
    assert ("t10k-images-idx3-ubyte: header says 10,000 images of 28×28 but the file holds only "
            "4,999; the file is truncated: download it again") in str(err.value)
    packed = tmp_path / "cut.gz"
    packed.write_bytes(gzip.compress(idx_bytes(x[:2000]), compresslevel=1)[:200_000])
    labels = write_idx(tmp_path / "labels", np.zeros(2000, np.uint8), False)
    with pytest.raises(DatasetError, match=r"header says 2,000 images .* gzip data ends early"):
        load_dataset(f"idx:{packed},{labels}")


def test_wrong_magic_and_swapped_files(tmp_path, mnist):
    images = write_idx(tmp_path / "images", mnist.train_x[:20, 0], False)
    labels = write_idx(tmp_path / "labels", mnist.train_y[:20], False)
    png = tmp_path / "photo.png"
    Image.new("L", (4, 4)).save(png)
    with pytest.raises(DatasetError) as err:
        load_dataset(f"idx:{png},{labels}")
    assert f"{png} is not an IDX image file: it starts with the bytes 89 50 4e 47" in str(err.value)
    assert "00 00 08 03" in str(err.value)
    with pytest.raises(DatasetError, match="is an IDX label file, not an IDX image file"):
        load_dataset(f"idx:{labels},{images}")


def test_label_and_image_counts_must_agree(tmp_path, mnist):
    images = write_idx(tmp_path / "imgs", mnist.train_x[:100, 0], True)
    labels = write_idx(tmp_path / "labs", mnist.train_y[:90], True)
    with pytest.raises(DatasetError) as err:
        load_dataset(f"idx:{images},{labels}")
    message = str(err.value)
    assert "imgs holds 100 images but labs holds 90 labels" in message
    assert str(images) in message and str(labels) in message


def test_idx_classes_are_max_label_plus_one(tmp_path, mnist):
    labels = np.where(mnist.train_y[:100] == 3, 12, mnist.train_y[:100])
    loaded = load_dataset(f"idx:{write_idx(tmp_path / 'i', mnist.train_x[:100, 0], False)},"
                          f"{write_idx(tmp_path / 'l', labels, False)}")
    assert loaded.classes == [str(k) for k in range(13)]
    assert any("never occur (3, 10, 11)" in note for note in loaded.notes)


def test_missing_files_and_folders(tmp_path):
    for spec, fragment in [
        (f"idx:{tmp_path}/a,{tmp_path}/b", "IDX images file not found"),
        (f"folder:{tmp_path}/nothing", "image folder not found"),
        (f"npz:{tmp_path}/d.npz", "npz file not found"),
    ]:
        with pytest.raises(DatasetError, match=fragment) as err:
            load_dataset(spec)
        assert str(tmp_path) in str(err.value)


def test_same_seed_same_split_other_seed_other_split(tmp_path, mnist):
    spec = (f"idx:{write_idx(tmp_path / 'i', mnist.train_x[:300, 0], False)},"
            f"{write_idx(tmp_path / 'l', mnist.train_y[:300], False)}")
    a = load_dataset(spec, split_seed=7)
    b = load_dataset(spec, split_seed=7)
    c = load_dataset(spec, split_seed=8)
    assert np.array_equal(a.val_x, b.val_x) and np.array_equal(a.train_y, b.train_y)
    assert not np.array_equal(a.val_x, c.val_x)
    assert (a.num_train, a.num_val) == (240, 60)


def test_a_dataset_too_small_to_split(tmp_path, mnist):
    spec = (f"idx:{write_idx(tmp_path / 'i', mnist.train_x[:6, 0], False)},"
            f"{write_idx(tmp_path / 'l', np.arange(6) % 2, False)}")
    with pytest.raises(DatasetError, match="has only 6 images: too few to split"):
        load_dataset(spec)
    assert load_dataset(spec, validation_fraction=0.5).num_val == 3


# --- channels and size --------------------------------------------------------------------------

def test_grey_to_colour_and_resize_with_notes():
    loaded = load_dataset("mnist-sample", (3, 32, 32))
    assert loaded.train_x.shape == (8000, 3, 32, 32) and loaded.image_shape == (3, 32, 32)
    assert np.array_equal(loaded.train_x[:, 0], loaded.train_x[:, 2])
    assert "converted 10,000 grey images to 3 channels to match the Input block" in loaded.notes
    assert "resized 10,000 images from 28×28 to 32×32 to match the Input block" in loaded.notes
    assert abs(float(loaded.mean[1]) - 0.13) < 0.02


def test_colour_to_grey_uses_luminance_and_rgba_loses_alpha(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (20, 8, 8, 4), dtype=np.uint8)
    path = tmp_path / "rgba.npz"
    np.savez(path, x=x, y=np.arange(20) % 2)
    grey = load_dataset(f"npz:{path}", (1, 8, 8), validation_fraction=0.5, split_seed=1)
    expected = np.rint(x[..., :3].astype(np.float64) @ [0.299, 0.587, 0.114]).astype(np.uint8)
    got = np.concatenate([grey.train_x, grey.val_x])[:, 0]
    assert {g.tobytes() for g in got} == {e.tobytes() for e in expected}
    assert ("converted 20 colour images to 1 channel (luminance 0.299 R + 0.587 G + 0.114 B) "
            "to match the Input block") in grey.notes
    assert "dropped the alpha channel of 20 RGBA images to match the Input block" in grey.notes
    colour = load_dataset(f"npz:{path}")
    assert colour.image_shape == (3, 8, 8)
    assert "dropped the alpha channel of 20 RGBA images" in colour.notes
    with pytest.raises(DatasetError, match=r"set the Input block's channels to 1 \(grey\) or 3"):
        load_dataset(f"npz:{path}", (2, 8, 8))


# --- npz ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("layout", ["NHW", "NHWC", "NCHW", "float01", "float255", "int64"])
def test_npz_layouts_and_types_give_the_same_images(tmp_path, mnist, layout):
    x = mnist.train_x[:50, 0]
    stored = {"NHW": x, "NHWC": x[..., None], "NCHW": x[:, None], "float01": x / 255.0,
              "float255": x.astype(np.float32), "int64": x.astype(np.int64)}[layout]
    np.savez(tmp_path / "d.npz", x=stored, y=mnist.train_y[:50])
    loaded = load_dataset(f"npz:{tmp_path / 'd.npz'}", validation_fraction=0.2)
    assert loaded.image_shape == (1, 28, 28) and (loaded.num_train, loaded.num_val) == (40, 10)
    index = {x[i].tobytes() for i in range(50)}
    assert all(img[0].tobytes() in index for img in loaded.train_x)


def test_npz_problems(tmp_path):
    x = np.zeros((10, 8, 8), np.uint8)
    two = np.arange(10) % 2
    cases = [
        (dict(x=x), r"has no array 'y' \(arrays found: x\); save it with numpy.savez"),
        (dict(x=x, y=np.zeros(9, int)), "holds 9 labels for 10 images"),
        (dict(x=np.zeros((10, 2, 8, 8, 1)), y=two), "has the shape 10 × 2 × 8 × 8 × 1"),
        (dict(x=x.astype(complex), y=two), "holds complex128 values"),
        (dict(x=x - 0.5, y=two), "it looks normalised already"),
        (dict(x=x, y=np.full(10, 0.5)), "labels must be integers"),
        (dict(x=x, y=-two), "has a negative label"),
    ]
    for arrays, pattern in cases:
        np.savez(tmp_path / "bad.npz", **arrays)
        with pytest.raises(DatasetError, match=pattern) as err:
            load_dataset(f"npz:{tmp_path / 'bad.npz'}")
        assert "bad.npz" in str(err.value)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match="is not a readable .npz archive"):
        load_dataset(f"npz:{tmp_path / 'junk.npz'}")


def test_npz_with_keras_names_uses_its_own_test_split(tmp_path, mnist):
    np.savez(tmp_path / "mnist.npz", x_train=mnist.train_x[:30, 0], y_train=mnist.train_y[:30],
             x_test=mnist.val_x[:10, 0], y_test=mnist.val_y[:10])
    loaded = load_dataset(f"npz:{tmp_path / 'mnist.npz'}")
    assert (loaded.num_train, loaded.num_val) == (30, 10)
    assert np.array_equal(loaded.val_x, mnist.val_x[:10])


# --- image folders ------------------------------------------------------------------------------

def make_pets(root: Path, per_class: int = 6) -> Path:
    """cats: grey and colour PNGs of two sizes; dogs: colour and grey JPEGs; an empty 'birds'."""
    for name in ("cats", "dogs", "birds"):
        (root / name).mkdir(parents=True)
    for i in range(per_class):
        Image.new("L", (20, 24), 40 + i).save(root / "cats" / f"grey{i}.png")
        Image.new("RGB", (30, 30), (200, 10 * i, 0)).save(root / "cats" / f"colour{i}.png")
        Image.new("RGB", (28, 28), (0, 0, 100 + i)).save(root / "dogs" / f"dog{i}.jpg", quality=95)
        Image.new("L", (16, 16), 150 + i).save(root / "dogs" / f"greydog{i}.jpeg")
    (root / "dogs" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not an image")
    (root / "cats" / "notes.txt").write_text("not an image")
    return root


def test_image_folder_converts_resizes_and_skips_what_it_cannot_read(tmp_path):
    root = make_pets(tmp_path / "pets")
    calls = []
    loaded = load_dataset(f"folder:{root}", (3, 16, 16), progress=lambda *a: calls.append(a))
    assert calls[-1] == (25, 25)
    assert loaded.classes == ["cats", "dogs"] and loaded.name == "pets"
    assert loaded.num_train + loaded.num_val == 24 and loaded.skipped == 1
    assert loaded.train_x.shape[1:] == (3, 16, 16)
    notes = " | ".join(loaded.notes)
    assert "skipped the empty class folder 'birds'" in notes
    assert "skipped 1 unreadable image: dogs/broken.png" in notes
    assert "converted 12 grey images to 3 channels to match the Input block" in notes
    assert "resized 18 images to 16×16 to match the Input block" in notes
    assert "ignored 1 file that is not a PNG, JPEG or BMP image (e.g. cats/notes.txt)" in notes
    pixels = {tuple(img[:, 8, 8]) for img in np.concatenate([loaded.train_x, loaded.val_x])}
    assert (40, 40, 40) in pixels and (155, 155, 155) in pixels and (200, 0, 0) in pixels
    assert class_counts(loaded)["cats"] + class_counts(loaded)["dogs"] == loaded.num_train
    grey = load_dataset(f"folder:{root}", (1, 16, 16))
    assert ("converted 12 colour images to 1 channel (luminance 0.299 R + 0.587 G + 0.114 B) "
            "to match the Input block") in grey.notes


def test_image_folder_without_input_shape_takes_the_common_size_and_colour(tmp_path):
    root = make_pets(tmp_path / "pets")
    for i in range(8):
        Image.new("RGB", (30, 30)).save(root / "dogs" / f"extra{i}.png")
    loaded = load_dataset(f"folder:{root}")
    assert loaded.image_shape == (3, 30, 30)
    assert any("(the most common size)" in note for note in loaded.notes)


def test_image_folder_needs_two_classes_and_one_readable_image(tmp_path):
    (tmp_path / "one" / "cats").mkdir(parents=True)
    Image.new("L", (8, 8)).save(tmp_path / "one" / "cats" / "a.png")
    with pytest.raises(DatasetError, match="needs at least two class subfolders, found 1: 'cats'"):
        load_dataset(f"folder:{tmp_path / 'one'}")
    for name in ("a", "b"):
        (tmp_path / "bad" / name).mkdir(parents=True)
        for i in range(3):
            (tmp_path / "bad" / name / f"{i}.jpg").write_bytes(b"\xff\xd8 broken")
    with pytest.raises(DatasetError, match="none of the 6 images in .* could be read") as err:
        load_dataset(f"folder:{tmp_path / 'bad'}", (1, 8, 8))
    assert_plain(str(err.value))
    for name in ("c", "d"):
        (tmp_path / "bad" / name).mkdir()
        for i in range(4):
            Image.new("L", (8, 8), i).save(tmp_path / "bad" / name / f"{i}.png")
    loaded = load_dataset(f"folder:{tmp_path / 'bad'}", (1, 8, 8))
    assert loaded.classes == ["c", "d"] and loaded.skipped == 6
    assert set(loaded.train_y.tolist()) | set(loaded.val_y.tolist()) == {0, 1}
    assert "left out the classes 'a', 'b': none of their images could be read" in loaded.notes


def test_a_big_folder_streams_from_disk(tmp_path):
    root = make_pets(tmp_path / "pets")
    streamed = load_dataset(f"folder:{root}", (3, 16, 16), memory_limit_bytes=1000)
    assert isinstance(streamed, StreamingDataset) and streamed.streaming
    assert streamed.num_train + streamed.num_val == 24 and streamed.skipped <= 1
    assert all(path.name != "broken.png" for path, _ in streamed.train_files)
    assert any("read from disk while training" in note for note in streamed.notes)
    images = FolderImages(streamed.val_files, streamed.image_shape)
    image, label = images[0]
    assert image.dtype == torch.uint8 and tuple(image.shape) == (3, 16, 16) and label in (0, 1)
    batch, labels = next(iter(torch.utils.data.DataLoader(streamed.train_set(), batch_size=4)))
    assert tuple(batch.shape) == (4, 3, 16, 16) and labels.dtype == torch.int64
    grid, grid_labels = sample_grid(streamed, 4, seed=0)
    assert grid.shape == (4, 3, 16, 16) and grid_labels.tolist() == [0, 1, 0, 1]
    assert "read from disk while training" in describe(streamed)
    broken = FolderImages([(root / "dogs" / "broken.png", 1)], (3, 16, 16))
    with pytest.raises(DatasetError, match="cannot read the image .*broken.png"):
        broken[0]


def test_streamed_statistics_match_the_in_memory_ones_without_broken_files(tmp_path):
    root = make_pets(tmp_path / "pets")
    (root / "dogs" / "broken.png").unlink()
    streamed = load_dataset(f"folder:{root}", (3, 16, 16), memory_limit_bytes=1)
    loaded = load_dataset(f"folder:{root}", (3, 16, 16))
    assert np.allclose(streamed.mean, loaded.mean) and np.allclose(streamed.std, loaded.std)
    assert class_counts(streamed) == class_counts(loaded)


# --- torchvision layouts ------------------------------------------------------------------------

def write_mnist_raw(raw: Path, mnist: LoadedDataset, gz: bool) -> None:
    raw.mkdir(parents=True)
    suffix = ".gz" if gz else ""
    write_idx(raw / f"train-images-idx3-ubyte{suffix}", mnist.train_x[:600, 0], gz)
    write_idx(raw / f"train-labels-idx1-ubyte{suffix}", mnist.train_y[:600], gz)
    write_idx(raw / f"t10k-images-idx3-ubyte{suffix}", mnist.val_x[:100, 0], gz)
    write_idx(raw / f"t10k-labels-idx1-ubyte{suffix}", mnist.val_y[:100], gz)


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_from_a_folder_in_torchvisions_layout(tmp_path, mnist, gz):
    write_mnist_raw(tmp_path / "MNIST" / "raw", mnist, gz)
    loaded = load_dataset(f"mnist:{tmp_path}", validation_fraction=0.5)
    assert (loaded.num_train, loaded.num_val, loaded.name) == (600, 100, "MNIST")
    assert np.array_equal(loaded.train_x, mnist.train_x[:600])
    assert loaded.classes == [str(k) for k in range(10)]
    if not gz:  # torchvision reads the same files to the same arrays
        from torchvision.datasets import MNIST

        reference = MNIST(str(tmp_path), train=False)
        assert np.array_equal(reference.data.numpy(), loaded.val_x[:, 0])
        assert np.array_equal(reference.targets.numpy(), loaded.val_y)


def test_fashion_mnist_takes_its_class_names_from_torchvision(tmp_path, mnist):
    write_mnist_raw(tmp_path / "FashionMNIST" / "raw", mnist, True)
    loaded = load_dataset(f"fashion-mnist:{tmp_path}", (1, 32, 32))
    assert loaded.classes[0] == "T-shirt/top" and loaded.classes[9] == "Ankle boot"
    assert loaded.image_shape == (1, 32, 32) and loaded.name == "Fashion-MNIST"


def test_cifar10_from_a_folder(tmp_path, monkeypatch):
    import torchvision.datasets.cifar as cifar

    monkeypatch.setattr(cifar, "check_integrity", lambda *args, **kwargs: True)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        batch = {"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8),
                 "labels": rng.integers(0, 10, 4).tolist()}
        (folder / name).write_bytes(pickle.dumps(batch))
    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
               "truck"]
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": classes}))
    loaded = load_dataset(f"cifar10:{tmp_path}", (1, 32, 32))
    assert (loaded.num_train, loaded.num_val, loaded.classes) == (20, 4, classes)
    assert loaded.image_shape == (1, 32, 32) and loaded.mean.shape == (1,)
    test = pickle.loads((folder / "test_batch").read_bytes())["data"].reshape(4, 3, 32, 32)
    with tarfile.open(tmp_path / "cifar-10-python.tar.gz", "w:gz") as archive:
        archive.add(folder, arcname=folder.name)
    shutil.rmtree(folder)
    colour = load_dataset(f"cifar10:{tmp_path}")
    assert np.array_equal(colour.val_x, test) and colour.name == "CIFAR-10"
    assert f"unpacked cifar-10-python.tar.gz into {folder}" in colour.notes


def test_offline_messages_say_where_the_files_go(tmp_path):
    with pytest.raises(DatasetError) as err:
        load_dataset(f"mnist:{tmp_path}")
    message = str(err.value)
    assert message.startswith(f"MNIST was not found in {tmp_path}: put the four files "
                              "train-images-idx3-ubyte(.gz), train-labels-idx1-ubyte(.gz)")
    assert f"in {tmp_path / 'MNIST' / 'raw'}, or turn on downloading (--download)" in message
    assert_plain(message)
    with pytest.raises(DatasetError) as err:
        load_dataset(f"cifar10:{tmp_path}")
    message = str(err.value)
    assert message.startswith(f"CIFAR-10 was not found in {tmp_path}")
    assert "cifar-10-batches-py" in message and "cifar-10-python.tar.gz" in message
    assert_plain(message)


def test_download_without_a_network_is_said_plainly(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    for spec, name in (("mnist", "MNIST"), ("cifar10", "CIFAR-10")):
        with pytest.raises(DatasetError) as err:
            load_dataset(f"{spec}:{tmp_path / spec}", download=True)
        message = str(err.value)
        assert message.startswith(f"could not download {name}") and "internet" in message
        assert "name resolution" in message
        assert_plain(message)


# --- specs --------------------------------------------------------------------------------------

def test_parse_spec_and_unknown_kinds(tmp_path):
    assert parse_spec("MNIST-Sample") == DatasetSpec("mnist-sample")
    assert parse_spec(f"Folder:{tmp_path}") == DatasetSpec("folder", (tmp_path,))
    assert parse_spec("idx: a.gz , b.gz").paths == (Path("a.gz"), Path("b.gz"))
    assert str(parse_spec("npz:~/x.npz")) == f"npz:{Path.home() / 'x.npz'}"
    with pytest.raises(DatasetError) as err:
        load_dataset("imagenet:/data")
    assert "unknown dataset 'imagenet:/data'" in str(err.value)
    assert all(kind.form in str(err.value) for kind in SOURCES)
    with pytest.raises(DatasetError, match="idx:IMAGES,LABELS"):
        parse_spec("idx:only-one-file")
    with pytest.raises(DatasetError, match="'folder' needs DIR after the colon"):
        parse_spec("folder:  ")


def test_every_declared_source_has_a_loader_and_nothing_else_does():
    assert set(LOADERS) == set(SOURCE_IDS)
    assert all(callable(loader) for loader in LOADERS.values())


@pytest.mark.parametrize("kind", SOURCE_IDS)
def test_the_loader_of_each_source_is_the_one_asked(kind, tmp_path, monkeypatch):
    """load_dataset dispatches through LOADERS with the parsed, '~'-expanded paths."""
    seen = []
    monkeypatch.setitem(LOADERS, kind, lambda request: seen.append(request) or "loaded")
    source = next(k for k in SOURCES if k.id == kind)
    paths = [str(tmp_path / f"p{i}") for i in range(len(source.arguments))]
    spec = kind + (":" + ",".join(paths) if paths else "")
    assert load_dataset(spec, download=True) == "loaded"
    (request,) = seen
    assert (request.kind, request.text, request.download) == (kind, spec, True)
    assert request.paths == tuple(Path(p) for p in paths)


def test_a_spec_path_starting_with_tilde_reaches_the_loader_expanded():
    assert parse_spec("folder:~/pets").paths == (Path.home() / "pets",)
    assert parse_spec("idx:~/a, ~/b").paths == (Path.home() / "a", Path.home() / "b")


def test_torchvision_and_qt_are_not_imported_at_module_level():
    """torchvision costs seconds to import: only the functions that need it import it."""
    package = Path(__file__).resolve().parents[2] / "cnnstudio" / "train"
    for path in [package / "data.py", *package.glob("datasets_*.py")]:
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [
                    node.module or ""]
                assert not any(n.split(".")[0] in ("torchvision", "PySide6", "pyqtgraph")
                               for n in names), f"{path.name}: {ast.unparse(node)}"
