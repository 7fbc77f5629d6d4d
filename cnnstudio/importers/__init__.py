"""Bring your own model: ONNX files and torch modules into CNN Studio graphs.

`from_onnx(path)` (importers.onnx_graph) and `from_module(module, input_shape)`
(importers.torch_fx) return an ImportResult; `write_import` saves it as a project with its
weights. Both refuse a network they cannot map as a whole, naming every node that has no block.
"""

from __future__ import annotations

from typing import Any

from cnnstudio.importers.common import ImportRefused, ImportResult, write_import


def from_onnx(path: Any, **options: Any) -> ImportResult:
    from cnnstudio.importers.onnx_graph import from_onnx as read

    return read(path, **options)


def from_module(module: Any, input_shape: Any, **options: Any) -> ImportResult:
    from cnnstudio.importers.torch_fx import from_module as trace

    return trace(module, input_shape, **options)


__all__ = ["ImportRefused", "ImportResult", "from_module", "from_onnx", "write_import"]
