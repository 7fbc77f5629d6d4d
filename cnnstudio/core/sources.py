"""The dataset sources: every kind of dataset spec, declared once, and its one parser.

A dataset spec is text such as `mnist-sample`, `folder:~/pets` or `idx:IMAGES,LABELS`: a kind,
then (for most kinds) a colon and the paths the kind takes, separated by commas where it takes
more than one. Every reader of specs asks this module:

- `cnnstudio.train.data` registers one loader per kind id (`LOADERS`, checked complete by a
  test) and turns a `SourceSpec` into arrays;
- `cnnstudio.core.settings` checks the project's dataset spec with `parse_spec`;
- the Training page's Dataset tab builds its source list and its path rows from `SOURCES`;
- `cnnstudio train --dataset` takes its help text and its check from here.

The kind is matched without regard to case; paths are kept as written (stripped, '~' not
expanded): whether they exist is the loader's business.
"""

from __future__ import annotations

from dataclasses import dataclass

SAMPLE_SOURCE = "mnist-sample"
ALL_FILES = "All files (*)"
_COUNT_WORDS = ("no", "one", "two", "three", "four")


class SpecError(ValueError):
    """A dataset spec that names no source or gives it the wrong paths; the message says which
    forms are accepted."""


@dataclass(frozen=True)
class SourceArgument:
    """One path a source takes.

    name: its placeholder in the spec syntax (DIR, FILE, IMAGES, LABELS).
    label: the form row's label; noun: what to choose ("folder", ".npz file"), also the
    row's placeholder; title: the file dialog's title; filters: the file dialog's filters
    (files only).
    """

    name: str
    label: str
    is_folder: bool
    noun: str
    title: str
    filters: str = ALL_FILES


@dataclass(frozen=True)
class SourceKind:
    """A kind of dataset spec.

    id: the spec's prefix; name: what the dataset is called in sentences; label: its entry in
    the Dataset tab's source list; note: the short remark after its syntax in the list of
    accepted forms ("" for none); help: one sentence on what the source reads;
    can_download: torchvision can fetch it into its folder; fixed_split: it brings its own
    training and validation split (the validation fraction and split seed do not apply).
    """

    id: str
    name: str
    label: str
    arguments: tuple[SourceArgument, ...]
    note: str
    help: str
    can_download: bool = False
    fixed_split: bool = False

    @property
    def syntax(self) -> str:
        """The spec's form: 'mnist-sample', 'folder:DIR', 'idx:IMAGES,LABELS'."""
        if not self.arguments:
            return self.id
        return f"{self.id}:{','.join(a.name for a in self.arguments)}"

    @property
    def form(self) -> str:
        """The syntax with its note, as listed in messages and help texts."""
        return f"{self.syntax} ({self.note})" if self.note else self.syntax


@dataclass(frozen=True)
class SourceSpec:
    """A parsed spec: the source's id and its paths as written (none for the sample)."""

    kind: str
    paths: tuple[str, ...] = ()

    @property
    def source(self) -> SourceKind:
        return source(self.kind)

    def __str__(self) -> str:
        return format_spec(self)


def _folder_of(name: str) -> SourceArgument:
    return SourceArgument("DIR", "Folder", True, "folder", f"Folder of {name}")


def _torchvision(kind: str, name: str, layout: str) -> SourceKind:
    return SourceKind(
        kind, name, f"{name} (folder)", (_folder_of(name),), "",
        f"{name} in torchvision's layout ({layout}); the official test set validates.",
        can_download=True, fixed_split=True)


SOURCES: tuple[SourceKind, ...] = (
    SourceKind(SAMPLE_SOURCE, "MNIST sample", "MNIST sample (ships with CNN Studio)", (),
               "the MNIST sample that ships with CNN Studio",
               "10,000 MNIST digits that ship with CNN Studio, split 8,000 / 2,000.",
               fixed_split=True),
    _torchvision("mnist", "MNIST", "DIR/MNIST/raw"),
    _torchvision("fashion-mnist", "Fashion-MNIST", "DIR/FashionMNIST/raw"),
    _torchvision("cifar10", "CIFAR-10", "DIR/cifar-10-batches-py"),
    _torchvision("cifar100", "CIFAR-100", "DIR/cifar-100-python"),
    SourceKind("folder", "Image folder", "Image folder (one sub-folder per class)",
               (_folder_of("the images"),), "one subfolder per class",
               "Image files in one sub-folder per class, named after the class."),
    SourceKind("idx", "IDX files", "IDX files (images and labels)",
               (SourceArgument("IMAGES", "Images", False, "IDX images file", "IDX images file"),
                SourceArgument("LABELS", "Labels", False, "IDX labels file", "IDX labels file")),
               "two IDX files",
               "An IDX images file and its labels file, as MNIST is published (.gz or not)."),
    SourceKind("npz", "NPZ file", "NPZ file (arrays x and y)",
               (SourceArgument("FILE", "File", False, ".npz file", "NumPy archive",
                               f"NumPy archives (*.npz);;{ALL_FILES}"),),
               "arrays x and y",
               "A NumPy archive with the images in array x and their labels in array y."),
)
SOURCE_IDS: tuple[str, ...] = tuple(kind.id for kind in SOURCES)
_BY_ID = {kind.id: kind for kind in SOURCES}


def source(kind_id: str) -> SourceKind:
    """The declaration of a source id (exact, lower case); SpecError for an unknown id."""
    try:
        return _BY_ID[kind_id]
    except KeyError:
        raise SpecError(f"unknown dataset source {kind_id!r}; {accepted_forms()}") from None


def forms_text() -> str:
    """Every accepted form, for help texts: mnist-sample (…), mnist:DIR, … or npz:FILE (…)."""
    forms = [kind.form for kind in SOURCES]
    return ", ".join(forms[:-1]) + " or " + forms[-1]


def accepted_forms() -> str:
    """The end of every message about a bad spec."""
    return "the accepted forms are " + ", ".join(kind.form for kind in SOURCES)


def _shown(value: object) -> str:
    """repr of a value, shortened: a user's spec may be a whole pasted paragraph."""
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:57] + "...")
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _count(n: int) -> str:
    return _COUNT_WORDS[n] if n < len(_COUNT_WORDS) else str(n)


def _needs(kind: SourceKind, got: str) -> SpecError:
    names = ",".join(a.name for a in kind.arguments)
    return SpecError(f"{kind.id!r} needs {names} after the colon, as in {kind.form}; "
                     f"got {_shown(got)}")


def parse_spec(text: object) -> SourceSpec:
    """The SourceSpec of 'kind' or 'kind:PATH[,PATH]'; SpecError saying what is wrong and
    listing the accepted forms.

    A source with one path takes everything after the first colon (commas and colons
    included: 'folder:C:\\data' is the folder C:\\data); one with several splits it at commas.
    """
    if not isinstance(text, str):
        raise SpecError(f"expected a dataset spec such as {SAMPLE_SOURCE!r} or 'folder:DIR', "
                        f"got {_shown(text)}; {accepted_forms()}")
    stripped = text.strip()
    if not stripped:
        raise SpecError(f"no dataset given; {accepted_forms()}")
    head, colon, argument = stripped.partition(":")
    kind = _BY_ID.get(head.strip().lower())
    if kind is None:
        raise SpecError(f"unknown dataset {_shown(stripped)}; {accepted_forms()}")
    if not kind.arguments:
        if colon:
            raise SpecError(f"{kind.id!r} takes no path: write just {kind.id} "
                            f"(got {_shown(stripped)})")
        return SourceSpec(kind.id)
    if not colon or not argument.strip():
        raise _needs(kind, stripped)
    if len(kind.arguments) == 1:
        return SourceSpec(kind.id, (argument.strip(),))
    paths = tuple(part.strip() for part in argument.split(","))
    if len(paths) != len(kind.arguments) or not all(paths):
        names = ", ".join(a.name for a in kind.arguments)
        raise SpecError(
            f"{kind.id!r} needs {_count(len(kind.arguments))} paths separated by one comma "
            f"({names}, in that order), as in {kind.form}; got {_shown(argument.strip())}")
    return SourceSpec(kind.id, paths)


def format_spec(spec: SourceSpec) -> str:
    """The text of a spec, which `parse_spec` reads back as the same spec.

    SpecError when no text could: an unknown source, the wrong number of paths, an empty path,
    a path with spaces around it, or a comma inside one of several paths.
    """
    kind = source(spec.kind)
    if len(spec.paths) != len(kind.arguments):
        raise SpecError(f"{kind.id!r} takes {_count(len(kind.arguments))} "
                        f"path{'s' if len(kind.arguments) != 1 else ''} ({kind.syntax}), "
                        f"got {len(spec.paths)}")
    for path in spec.paths:
        if not isinstance(path, str) or not path or path != path.strip():
            raise SpecError(f"{kind.id!r}: a path must be non-empty text without spaces around "
                            f"it, got {path!r}")
        if len(spec.paths) > 1 and "," in path:
            raise SpecError(f"{kind.id!r}: its paths are separated by commas, so none may "
                            f"contain one: {path!r}")
    return kind.id if not spec.paths else f"{kind.id}:{','.join(spec.paths)}"
