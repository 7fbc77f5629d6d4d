"""Which modules each part of the package may import: the table of docs/architecture.md as code.

`check_layers(package_root)` parses every `.py` file under the package with `ast`, walking every
node, so an import inside a function (lazy), a class body or an `if` block counts, and a
relative import (`from ..lab import ops`) is resolved to its absolute name first. An import is
allowed when it names the standard library (`sys.stdlib_module_names`) or a unit on the file's
allow-list: a package of cnnstudio (`cnnstudio.core`) or the top-level name of a third-party
distribution (`torch`). Each file is covered by exactly one rule; a file no rule covers is
itself a violation, so a new package has to be placed in the layering before it passes.
"""

from __future__ import annotations

import ast
import functools
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# The package root (`cnnstudio/__init__.py`: the version) and `cnnstudio.resources` (where the
# bundled files live) are standard library only; nn, train, ui and the command line may use them.
FOUNDATION = frozenset({"cnnstudio", "cnnstudio.resources"})


@dataclass(frozen=True)
class Rule:
    """What the files of one part may import: `at_import` anywhere in the module, `lazily`
    in addition inside a function (loaded only when the function runs)."""

    name: str
    at_import: frozenset[str]
    lazily: frozenset[str] = frozenset()

    def allows(self, unit: str, inside_function: bool) -> bool:
        return unit in self.at_import or (inside_function and unit in self.lazily)

    def describe(self, inside_function: bool) -> str:
        allowed = self.at_import | self.lazily if inside_function else self.at_import
        return "standard library, " + ", ".join(sorted(allowed)) if allowed else "standard library"


CORE = Rule("core may import the standard library only", frozenset({"cnnstudio.core"}))
LAB = Rule("lab may import core and numpy", frozenset({"cnnstudio.core", "cnnstudio.lab",
                                                     "numpy"}))
NN = Rule(
    # numpy: export compares the PyTorch outputs with onnxruntime's, which are numpy arrays;
    # onnx and onnxruntime check an exported file, loaded only when an ONNX export runs;
    # onnxscript (torch's current ONNX exporter) and onnxslim (the graph simplifier) likewise.
    "nn may import core and torch (numpy for export; onnx, onnxruntime, onnxscript, onnxslim "
    "lazily)",
    FOUNDATION | {"cnnstudio.core", "cnnstudio.nn", "torch", "numpy"},
    frozenset({"onnx", "onnxruntime", "onnxscript", "onnxslim"}),
)
TRAIN = Rule(
    # PIL reads image-folder datasets and renders inspection images; torchvision's datasets
    # load only when a torchvision dataset is chosen.
    # Lazily: captum (Grad-CAM and saliency), onnx and onnxruntime (INT8 quantisation of an
    # export, calibrated and scored on the run's data), tensorboard (optional run logging).
    "train may import core, nn, torch, torchvision, numpy and PIL (captum, onnx, onnxruntime, "
    "tensorboard lazily)",
    # lab: the convolution lab's pure arithmetic, applied to a trained run's learned kernels
    FOUNDATION | {"cnnstudio.core", "cnnstudio.lab", "cnnstudio.nn", "cnnstudio.train", "torch",
                  "torchvision", "numpy", "PIL"},
    frozenset({"captum", "onnx", "onnxruntime", "tensorboard"}),
)
# Importers read other tools' networks: ONNX files (onnx, numpy) and torch modules (torch.fx,
# torchvision's models for `--torchvision`); they write projects through core.
IMPORTERS = Rule(
    "importers may import core, nn, torch, torchvision, onnx and numpy",
    FOUNDATION | {"cnnstudio.core", "cnnstudio.nn", "cnnstudio.importers", "torch", "torchvision",
                  "onnx", "numpy"},
)
UI = Rule(
    "ui may import every layer below it and the application's dependencies",
    FOUNDATION | {"cnnstudio.core", "cnnstudio.lab", "cnnstudio.nn", "cnnstudio.train",
                  "cnnstudio.ui", "cnnstudio.importers", "PySide6", "pyqtgraph", "torch",
                  "torchvision", "numpy",
                  "onnx", "onnxruntime", "PIL"},
)
FOUNDATION_RULE = Rule("the package root and resources may import the standard library only",
                       frozenset())
# The command line starts instantly: at import time only core; each command imports the
# layers it needs when it runs. What cli.py and cli_train.py share is in cli_common.py, so
# cli_train.py never imports cli.py back.
# The command modules cli.py loads inside its commands (one file per group of commands).
CLI_COMMAND_MODULES = ("cnnstudio.cli_train", "cnnstudio.cli_explain", "cnnstudio.cli_kernels",
                       "cnnstudio.cli_quantize", "cnnstudio.cli_profile", "cnnstudio.cli_lr_find")
CLI = Rule(
    "cli may import core at import time; nn, train and ui inside the commands",
    FOUNDATION | {"cnnstudio.core", "cnnstudio.cli_common"},
    frozenset({*CLI_COMMAND_MODULES, "cnnstudio.lab", "cnnstudio.nn", "cnnstudio.train",
               "cnnstudio.ui",
               "cnnstudio.importers",
               "cnnstudio.tour"}),  # `cnnstudio tour`: the built application has no -m
)
MAIN = Rule("__main__ may import the command line only", frozenset({"cnnstudio.cli"}))
# The tour drives the real window: it is a ui program started from the command line.
TOUR = Rule("the tour may import ui at import time and Qt inside its steps",
            frozenset({"cnnstudio.ui"}), frozenset({"PySide6"}))

PACKAGE_RULES = {"core": CORE, "lab": LAB, "nn": NN, "train": TRAIN, "ui": UI,
                 "importers": IMPORTERS,
                 "resources": FOUNDATION_RULE}
MODULE_RULES = {"__init__.py": FOUNDATION_RULE, "__main__.py": MAIN,
                "cli_common.py": CLI, "tour.py": TOUR,
                **{name.split(".")[1] + ".py": CLI for name in CLI_COMMAND_MODULES},
                "cli.py": CLI}


@dataclass(frozen=True)
class Violation:
    path: Path  # relative to the folder holding the package
    line: int
    module: str
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"{self.path.as_posix()}:{self.line}: {self.detail}"


@dataclass(frozen=True)
class FoundImport:
    line: int
    module: str  # absolute, dotted
    inside_function: bool


def rule_for(relative: Path) -> Rule | None:
    """The rule of a file, by its path inside the package (`core/adapt.py`, `cli.py`)."""
    if len(relative.parts) == 1:
        return MODULE_RULES.get(relative.name)
    return PACKAGE_RULES.get(relative.parts[0])


def _package_of(relative: Path, package: str) -> list[str]:
    """The dotted package a file belongs to, as parts: what `from . import` is relative to."""
    parts = [package, *relative.with_suffix("").parts]
    return parts[:-1]


def _resolve(node: ast.ImportFrom, here: list[str]) -> str | None:
    """The absolute module of a `from ... import`, or None when the dots climb out of the
    package."""
    if node.level == 0:
        return node.module
    if node.level > len(here):
        return None
    base = here[: len(here) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def find_imports(path: Path, relative: Path, package: str) -> list[FoundImport]:
    """Every import in a file, wherever it sits, with relative names made absolute. For
    `from pkg import name` the module is `pkg.name` when `name` is a module of this package."""
    here = tuple(_package_of(relative, package))
    return list(_imports_in(path.read_text(encoding="utf-8"), here, package))


def _nodes(node: ast.AST, inside_function: bool = False) -> Iterator[tuple[ast.AST, bool]]:
    """Every node below `node`, with whether it sits inside a function (or lambda) body."""
    for child in ast.iter_child_nodes(node):
        yield child, inside_function
        nested = isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        yield from _nodes(child, inside_function or nested)


@functools.lru_cache(maxsize=None)
def _imports_in(source: str, here: tuple[str, ...], package: str) -> tuple[FoundImport, ...]:
    """Cached on the text: the tests check many copies of the package that differ in one file."""
    found = []
    for node, lazy in _nodes(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend(FoundImport(node.lineno, alias.name, lazy) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = _resolve(node, list(here))
            if module is None:
                found.append(FoundImport(node.lineno, "." * node.level + (node.module or ""),
                                         lazy))
            elif module == package:  # `from cnnstudio import ui` names a subpackage
                found.extend(FoundImport(node.lineno, f"{package}.{alias.name}", lazy)
                             for alias in node.names)
            else:
                found.append(FoundImport(node.lineno, module, lazy))
    return tuple(found)


def unit_of(module: str, package: str, package_root: Path) -> str | None:
    """What an allow-list names for a module: None for the standard library, `cnnstudio.core`
    for any module of that package, `torch` for `torch.nn.functional`."""
    parts = module.split(".")
    if parts[0] == package:
        if len(parts) == 1:
            return package
        inside = package_root / parts[1]
        if inside.is_dir() or inside.with_suffix(".py").is_file():
            return f"{package}.{parts[1]}"
        return package  # an attribute of the package root, such as __version__
    if parts[0] in sys.stdlib_module_names:
        return None
    return parts[0]


def check_layers(package_root: Path) -> list[Violation]:
    """Every import under `package_root` that its file's rule does not allow, in file order."""
    package = package_root.name
    violations = []
    for path in sorted(package_root.rglob("*.py")):
        relative = path.relative_to(package_root)
        shown = Path(package) / relative
        rule = rule_for(relative)
        if rule is None:
            violations.append(Violation(shown, 1, "", "no rule",
                                        "no layering rule covers this file: add its package "
                                        "to tests/architecture_rules.py and docs/architecture.md"))
            continue
        for found in find_imports(path, relative, package):
            if found.module.startswith("."):
                violations.append(Violation(shown, found.line, found.module, rule.name,
                                            f"relative import {found.module} climbs out of "
                                            f"{package}"))
                continue
            unit = unit_of(found.module, package, package_root)
            if unit is None or rule.allows(unit, found.inside_function):
                continue
            where = " inside a function" if found.inside_function else ""
            lazy_only = not found.inside_function and unit in rule.lazily
            hint = f"; {unit} is allowed only inside a function" if lazy_only else ""
            violations.append(Violation(
                shown, found.line, found.module, rule.name,
                f"imports {found.module}{where}, which breaks the rule \"{rule.name}\"; "
                f"allowed here: {rule.describe(found.inside_function)}{hint}"))
    return violations



def _module_files(package_root: Path) -> dict[str, Path]:
    """Each module of the package by dotted name (`core/__init__.py` is cnnstudio.core), with
    its file relative to the package root."""
    package = package_root.name
    files = {}
    for path in sorted(package_root.rglob("*.py")):
        relative = path.relative_to(package_root)
        parts = [package, *relative.with_suffix("").parts]
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = relative
    return files


def module_level_import_graph(package_root: Path) -> dict[str, dict[str, int]]:
    """For each module of the package, the modules of the package it imports outside functions
    (what runs when it is imported; `if TYPE_CHECKING:` blocks count too, as they fix a
    direction as much as a real import), each with the first line that imports it.
    `from pkg import name` points at `pkg.name` when that is a module, else at `pkg`."""
    package = package_root.name
    files = _module_files(package_root)
    graph: dict[str, dict[str, int]] = {}
    for name, relative in files.items():
        here = _package_of(relative, package)
        edges: dict[str, int] = {}
        source = (package_root / relative).read_text(encoding="utf-8")
        for node, inside_function in _nodes(ast.parse(source)):
            if inside_function or not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                module = _resolve(node, here) or ""
                targets = [f"{module}.{alias.name}" if f"{module}.{alias.name}" in files
                           else module for alias in node.names]
            for target in targets:
                if target in files and target != name:
                    edges.setdefault(target, node.lineno)
        graph[name] = edges
    return graph


def find_import_cycle(package_root: Path) -> list[str]:
    """One cycle of module-level imports, as its steps ('cnnstudio/a.py:12 imports
    cnnstudio.b', ... back to the first module), or [] when the imports form none."""
    graph = module_level_import_graph(package_root)
    files = _module_files(package_root)
    finished: set[str] = set()
    trail: list[str] = []  # the modules being visited, each importing the next

    def visit(module: str) -> list[str]:
        if module in trail:
            return trail[trail.index(module):] + [module]
        if module in finished:
            return []
        trail.append(module)
        for target in sorted(graph[module]):
            cycle = visit(target)
            if cycle:
                return cycle
        trail.pop()
        finished.add(module)
        return []

    for start in sorted(graph):
        cycle = visit(start)
        if cycle:
            return [f"{(Path(package_root.name) / files[source]).as_posix()}:"
                    f"{graph[source][target]} imports {target}"
                    for source, target in zip(cycle, cycle[1:])]
    return []
