"""The layers of the package and which may import which (docs/architecture.md).

The rules themselves live in tests/architecture_rules.py; these tests run them on the real tree
and show, on planted breaches in a copy of the package, that they catch what they must.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.architecture_rules import (CLI, CORE, NN, TRAIN, check_layers, find_import_cycle,
                                      find_imports, unit_of)

PACKAGE = Path(__file__).resolve().parents[1] / "cnnstudio"
HEAVY = ("torch", "torchvision", "PySide6", "pyqtgraph", "onnx", "onnxruntime", "numpy")


def test_every_module_of_the_real_package_keeps_to_its_layer():
    assert [str(v) for v in check_layers(PACKAGE)] == []


@pytest.fixture
def copy_of_package(tmp_path) -> Path:
    copy = tmp_path / "cnnstudio"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def plant(path: Path, text: str) -> int:
    """Append `text` to a module; the line number its first line gets."""
    source = path.read_text(encoding="utf-8")
    if not source.endswith("\n"):
        source += "\n"
    path.write_text(source + text, encoding="utf-8")
    return source.count("\n") + 1


BREACHES = [
    # (file, planted text, line of the import within the text, module, rule)
    ("train/run_folder.py", "import PySide6\n", 0, "PySide6", TRAIN),
    ("nn/layers.py", "def _planted():\n    from PySide6 import QtCore\n", 1, "PySide6", NN),
    ("core/adapt.py", "from ..lab import ops\n", 0, "cnnstudio.lab", CORE),
    ("core/geometry.py", "import numpy\n", 0, "numpy", CORE),
]


@pytest.mark.parametrize("relative, text, offset, module, rule", BREACHES,
                         ids=[b[0] + ":" + b[3] for b in BREACHES])
def test_a_planted_breach_is_reported_with_file_line_and_rule(copy_of_package, relative, text,
                                                              offset, module, rule):
    line = plant(copy_of_package / relative, text) + offset
    messages = [str(v) for v in check_layers(copy_of_package)]
    assert len(messages) == 1, messages
    assert messages[0].startswith(f"cnnstudio/{relative}:{line}: imports {module}")
    assert rule.name in messages[0]


def test_all_planted_breaches_are_reported_together(copy_of_package):
    for relative, text, *_ in BREACHES:
        plant(copy_of_package / relative, text)
    reported = {(v.path.as_posix(), v.module) for v in check_layers(copy_of_package)}
    assert reported == {(f"cnnstudio/{relative}", module) for relative, _, _, module, _ in BREACHES}


def test_a_lazy_only_import_at_module_level_is_reported(copy_of_package):
    line = plant(copy_of_package / "cli.py", "from cnnstudio.train import engine\n")
    (violation,) = check_layers(copy_of_package)
    assert violation.rule == CLI.name and violation.line == line
    assert "allowed only inside a function" in str(violation)
    plant(copy_of_package / "nn/export.py", "import onnxruntime\n")
    assert {v.module for v in check_layers(copy_of_package)} == {"cnnstudio.train", "onnxruntime"}


def test_a_package_no_rule_covers_is_reported(copy_of_package):
    (copy_of_package / "extras").mkdir()
    (copy_of_package / "extras" / "__init__.py").write_text("", encoding="utf-8")
    (violation,) = check_layers(copy_of_package)
    assert violation.path.as_posix() == "cnnstudio/extras/__init__.py"
    assert "no layering rule covers this file" in str(violation)


def test_relative_imports_resolve_to_absolute_names(tmp_path):
    package = tmp_path / "cnnstudio"
    (package / "core").mkdir(parents=True)
    module = package / "core" / "adapt.py"
    module.write_text("from . import graph\nfrom .graph import Graph\nfrom .. import lab\n"
                      "from ..nn.build import build_model\n", encoding="utf-8")
    init = package / "core" / "__init__.py"
    init.write_text("from .graph import Graph\nfrom . import analysis\n", encoding="utf-8")
    found = [i.module for i in find_imports(module, Path("core/adapt.py"), "cnnstudio")]
    assert found == ["cnnstudio.core", "cnnstudio.core.graph", "cnnstudio.lab",
                     "cnnstudio.nn.build"]
    found = [i.module for i in find_imports(init, Path("core/__init__.py"), "cnnstudio")]
    assert found == ["cnnstudio.core.graph", "cnnstudio.core"]


def test_the_standard_library_is_always_allowed_and_third_party_is_named_by_its_top_level():
    assert unit_of("collections.abc", "cnnstudio", PACKAGE) is None
    assert unit_of("torch.nn.functional", "cnnstudio", PACKAGE) == "torch"
    assert unit_of("cnnstudio.core.graph", "cnnstudio", PACKAGE) == "cnnstudio.core"
    assert unit_of("cnnstudio.__version__", "cnnstudio", PACKAGE) == "cnnstudio"


def test_importing_the_package_core_and_command_line_loads_no_heavy_library():
    code = (
        "import sys, cnnstudio, cnnstudio.core, cnnstudio.core.analysis, cnnstudio.core.summary,"
        " cnnstudio.core.templates, cnnstudio.core.project, cnnstudio.cli, cnnstudio.cli_train\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_no_import_cycle_among_the_modules_at_module_level():
    """What a module imports when it is imported (type-only imports included) lies below it;
    only an import inside a function may point back up."""
    cycle = find_import_cycle(PACKAGE)
    assert cycle == [], "import cycle at module level: " + "; ".join(cycle)


def test_a_planted_cycle_is_reported_step_by_step_but_not_through_a_function(copy_of_package):
    graph_module = copy_of_package / "core" / "graph.py"
    plant(graph_module, "def _planted():\n    from cnnstudio.core import layout\n")
    assert find_import_cycle(copy_of_package) == []
    line = plant(graph_module, "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n"
                               "    from cnnstudio.core import layout\n") + 3
    layout_source = (copy_of_package / "core" / "layout.py").read_text(encoding="utf-8")
    back = layout_source.splitlines().index("from cnnstudio.core.graph import Graph") + 1
    assert set(find_import_cycle(copy_of_package)) == {
        f"cnnstudio/core/graph.py:{line} imports cnnstudio.core.layout",
        f"cnnstudio/core/layout.py:{back} imports cnnstudio.core.graph",
    }
