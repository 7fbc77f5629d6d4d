"""The layers of the package and which may import which (docs/architecture.md)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "cnnstudio"
HEAVY = ("torch", "torchvision", "PySide6", "pyqtgraph", "onnx", "onnxruntime")
# layer -> layers of cnnstudio it must not import
FORBIDDEN = {
    "core": ("cnnstudio.nn", "cnnstudio.train", "cnnstudio.ui", "cnnstudio.cli"),
    "nn": ("cnnstudio.train", "cnnstudio.ui"),
    "train": ("cnnstudio.ui",),
    "lab": ("cnnstudio.nn", "cnnstudio.train", "cnnstudio.ui", "cnnstudio.cli"),
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_core_imports_no_torch_and_no_qt_anywhere_in_its_source():
    offenders = []
    for path in (PACKAGE / "core").rglob("*.py"):
        for name in imported_modules(path):
            if name.split(".")[0] in HEAVY:
                offenders.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert offenders == []


def test_the_lab_computations_import_neither_torch_nor_qt():
    offenders = [f"{path.relative_to(PACKAGE)} imports {name}"
                 for path in (PACKAGE / "lab").rglob("*.py")
                 for name in imported_modules(path) if name.split(".")[0] in HEAVY]
    assert offenders == []


def test_layers_only_import_downwards():
    offenders = []
    for layer, forbidden in FORBIDDEN.items():
        for path in (PACKAGE / layer).rglob("*.py"):
            for name in imported_modules(path):
                if name.startswith(forbidden):
                    offenders.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert offenders == []


def test_importing_the_package_and_core_loads_neither_torch_nor_qt():
    code = (
        "import sys, cnnstudio, cnnstudio.core, cnnstudio.core.analysis, cnnstudio.core.summary,"
        " cnnstudio.core.templates, cnnstudio.core.project, cnnstudio.cli\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
