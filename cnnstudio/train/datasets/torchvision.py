"""MNIST, Fashion-MNIST, CIFAR-10 and CIFAR-100 in torchvision's folder layout.

The official training set trains, the official test set validates. MNIST and Fashion-MNIST are
read from DIR/MNIST/raw (or DIR/FashionMNIST/raw) with the IDX reader: torchvision itself only
accepts the decompressed files there, while people who fetch MNIST by hand usually have the
.gz files; the IDX reader takes both and reports truncated files precisely. torchvision
downloads them when asked. CIFAR is read by torchvision (pickled batches, checked by md5).
torchvision is imported only here and only when one of these datasets is asked for, because
importing it costs seconds.
"""

from __future__ import annotations

import pickle
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from urllib.error import URLError

import numpy as np

from cnnstudio.train.datasets.common import (
    DatasetError,
    LoadedDataset,
    Shape,
    build,
    check_decoded_size,
    plural,
)
from cnnstudio.train.datasets.idx import read_idx_pair

DOWNLOAD_HINT = "or turn on downloading (--download) on a machine with internet access"
MAX_ARCHIVE_MEMBERS = 1000  # a CIFAR archive holds 8 files and a folder
MNIST_FILES = (
    "train-images-idx3-ubyte", "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
)


@dataclass(frozen=True)
class Known:
    name: str  # display name
    torchvision_class: str
    folder: str  # MNIST: DIR/<folder>/raw; CIFAR: DIR/<folder> (the unpacked archive)
    archive: str = ""  # CIFAR: the archive that unpacks into DIR/<folder>


KNOWN = {
    "mnist": Known("MNIST", "MNIST", "MNIST"),
    "fashion-mnist": Known("Fashion-MNIST", "FashionMNIST", "FashionMNIST"),
    "cifar10": Known("CIFAR-10", "CIFAR10", "cifar-10-batches-py", "cifar-10-python.tar.gz"),
    "cifar100": Known("CIFAR-100", "CIFAR100", "cifar-100-python", "cifar-100-python.tar.gz"),
}


def _torchvision_datasets() -> ModuleType:
    try:
        import torchvision.datasets
    except ImportError as err:
        raise DatasetError(
            f"torchvision is needed for this dataset but cannot be imported ({err}); "
            "reinstall CNN Studio"
        ) from None
    return torchvision.datasets


def _one_line(text: str) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[-1] if lines else "no reason given"


def _download(known: Known, root: Path, where: str) -> None:
    """torchvision's download into root, with its network and disk errors put plainly."""
    datasets = _torchvision_datasets()
    try:
        getattr(datasets, known.torchvision_class)(str(root), train=True, download=True)
    except URLError as err:
        reason = _one_line(str(getattr(err, "reason", err)))
    except RuntimeError as err:
        text = str(err)
        if "download" not in text.lower() and "urlopen" not in text.lower():
            raise DatasetError(
                f"{known.name} was downloaded into {root} but is damaged ({_one_line(text)}); "
                "delete the downloaded files and try again"
            ) from None
        reason = _one_line(text)
    except OSError as err:
        raise DatasetError(
            f"could not save {known.name} in {root}: {err.strerror or err}; choose a folder "
            "you can write to"
        ) from None
    else:
        return
    raise DatasetError(
        f"could not download {known.name}: the download server cannot be reached, so this "
        f"machine seems to have no internet connection ({reason}); download {known.name} on a "
        f"machine with internet access and put {where}"
    )


def _find_mnist_files(root: Path, known: Known) -> tuple[list[Path] | None, Path, list[str]]:
    """(the four files or None, the folder they belong in, the files missing from it)."""
    best: tuple[int, Path, list[str]] = (-1, root / known.folder / "raw", list(MNIST_FILES))
    for folder in (root / known.folder / "raw", root / "raw", root):
        found, missing = [], []
        for name in MNIST_FILES:
            plain, packed = folder / name, folder / f"{name}.gz"
            if plain.is_file() or packed.is_file():
                found.append(plain if plain.is_file() else packed)
            else:
                missing.append(name)
        if not missing:
            return found, folder, []
        if len(found) > best[0]:
            best = (len(found), folder, missing)
    return None, best[1], best[2]


def load_mnist_like(
    kind: str, spec: str, root: Path, input_shape: Shape | None, download: bool
) -> LoadedDataset:
    known = KNOWN[kind]
    raw = root / known.folder / "raw"
    listed = ", ".join(f"{n}(.gz)" for n in MNIST_FILES[:-1]) + f" and {MNIST_FILES[-1]}(.gz)"
    where = f"the four files {listed} in {raw}"
    files, folder, missing = _find_mnist_files(root, known)
    notes: list[str] = []
    if files is None and download:
        _download(known, root, where)
        notes.append(f"downloaded {known.name} into {raw}")
        files, folder, missing = _find_mnist_files(root, known)
    if files is None:
        if len(missing) < len(MNIST_FILES):
            raise DatasetError(
                f"{known.name} in {folder} is incomplete: {', '.join(missing)} (or .gz) "
                f"{'is' if len(missing) == 1 else 'are'} missing; put all four files {listed} "
                f"there, {DOWNLOAD_HINT}"
            )
        raise DatasetError(f"{known.name} was not found in {root}: put {where}, {DOWNLOAD_HINT}")
    train_x, train_y, train_notes = read_idx_pair(files[0], files[1])
    val_x, val_y, val_notes = read_idx_pair(files[2], files[3])
    if kind == "mnist":
        classes = [str(k) for k in range(10)]
    else:
        classes = list(getattr(_torchvision_datasets(), known.torchvision_class).classes)
    high = int(max(train_y.max(), val_y.max()))
    if high >= len(classes):
        raise DatasetError(
            f"the labels in {folder} go up to {high}, but {known.name} has {len(classes)} "
            f"classes; these are not the {known.name} files"
        )
    notes += train_notes + val_notes + [_official_note(known, len(train_y), len(val_y))]
    return build(known.name, spec, (train_x, train_y), (val_x, val_y), classes, input_shape,
                 known.name, notes)


def _official_note(known: Known, n_train: int, n_val: int) -> str:
    return (
        f"{known.name} comes with its own split: the {plural(n_train, 'training image')} train, "
        f"the {plural(n_val, 'test image')} validate (the validation fraction and split seed are "
        "not used)"
    )


def _checked_members(tar: tarfile.TarFile, archive: Path, known: Known) -> list[tarfile.TarInfo]:
    """The members of a CIFAR archive, each a plain file or folder inside known.folder, their
    sizes within MAX_DECODED_BYTES in all; DatasetError for anything else (a tar bomb, a path
    that climbs out of the folder, a link or device)."""
    members, total = [], 0
    for member in tar:
        parts = Path(member.name).parts
        inside = bool(parts) and parts[0] == known.folder and ".." not in parts
        if not inside or not (member.isfile() or member.isdir()):
            kind = "file" if member.isfile() else "folder" if member.isdir() else "link or device"
            raise DatasetError(
                f"{archive} holds the {kind} {member.name!r}, which is not part of "
                f"{known.name} (its archive holds only files in {known.folder}/); download "
                f"{known.archive} again"
            )
        total += member.size
        members.append(member)
        if len(members) > MAX_ARCHIVE_MEMBERS:
            raise DatasetError(
                f"{archive} holds more than {MAX_ARCHIVE_MEMBERS:,} files, where {known.name}'s "
                f"archive holds a few; download {known.archive} again"
            )
        check_decoded_size(total, f"{archive} holds {plural(len(members), 'file')} or more")
    return members


def _unpack(archive: Path, root: Path, known: Known) -> None:
    """Unpack a CIFAR archive into root after checking every member (see _checked_members)."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = _checked_members(tar, archive, known)
            if hasattr(tarfile, "data_filter"):  # Python 3.11.4 and later
                tar.extractall(root, members=members, filter="data")
            else:
                tar.extractall(root, members=members)
    except (tarfile.TarError, EOFError, OSError, zlib.error) as err:
        raise DatasetError(
            f"cannot unpack {archive} ({_one_line(str(err))}); the archive is damaged: download "
            f"{known.name} again"
        ) from None


def load_cifar(
    kind: str, spec: str, root: Path, input_shape: Shape | None, download: bool
) -> LoadedDataset:
    known = KNOWN[kind]
    folder, archive = root / known.folder, root / known.archive
    where = f"the folder {known.folder} or the archive {known.archive} in {root}"
    notes: list[str] = []
    if download:
        _download(known, root, where)
    elif not folder.is_dir() and archive.is_file():
        _unpack(archive, root, known)
        notes.append(f"unpacked {known.archive} into {folder}")
    cls = getattr(_torchvision_datasets(), known.torchvision_class)
    try:
        train, test = cls(str(root), train=True), cls(str(root), train=False)
    except RuntimeError:
        if folder.is_dir():
            raise DatasetError(
                f"{known.name} in {folder} is incomplete or damaged (a file is missing or its "
                f"checksum is wrong); download {known.archive} again and unpack it in {root}"
            ) from None
        raise DatasetError(f"{known.name} was not found in {root}: put {where}, "
                           f"{DOWNLOAD_HINT}") from None
    except (pickle.UnpicklingError, EOFError, OSError, KeyError, ValueError) as err:
        raise DatasetError(
            f"{known.name} in {folder} cannot be read ({_one_line(str(err))}); download "
            f"{known.archive} again and unpack it in {root}"
        ) from None
    notes.append(_official_note(known, len(train.targets), len(test.targets)))
    parts = [(np.asarray(d.data).transpose(0, 3, 1, 2), np.asarray(d.targets, np.int64))
             for d in (train, test)]
    return build(known.name, spec, parts[0], parts[1], list(train.classes), input_shape,
                 known.name, notes)
