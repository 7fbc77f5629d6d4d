"""What every importer shares: the result, the refusal, block ids from names, and writing.

An importer turns someone else's network (an ONNX file, a torch module) into a Graph whose
blocks carry the source's names, and a state dict with GraphModel keys
(`blocks.<id>.<submodule>.<leaf>`) holding the source's weights. `write_import` saves both:
NET.cnnproj and NET.weights.pt beside it, the project pointing at the weights
(Project.weights), so training in the window or the command line starts from them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from cnnstudio.core.files import replace_refusal, staged_write
from cnnstudio.core.graph import Graph
from cnnstudio.core.layout import layered_layout
from cnnstudio.core.project import Project, save_project

WEIGHTS_SUFFIX = ".weights.pt"
_LISTED = 12  # unsupported nodes named in a refusal before "and n more"


class ImportRefused(Exception):
    """A network that cannot be imported as a whole; nothing is half-imported.

    `unsupported` lists (node name, op type, what to do) for every node that has no block.
    """

    def __init__(self, summary: str, unsupported: Sequence[tuple[str, str, str]] = ()) -> None:
        self.summary = summary
        self.unsupported = list(unsupported)
        lines = [summary]
        for name, op, advice in self.unsupported[:_LISTED]:
            lines.append(f"- {name} ({op}): {advice}" if advice else f"- {name} ({op})")
        if len(self.unsupported) > _LISTED:
            lines.append(f"- and {len(self.unsupported) - _LISTED} more")
        super().__init__("\n".join(lines))


@dataclass
class ImportResult:
    """An imported network: the graph (laid out), its weights with GraphModel keys, notes."""

    graph: Graph
    state: dict[str, Tensor]
    source: str  # "resnet18.onnx", "torchvision resnet18"
    notes: list[str] = field(default_factory=list)

    def project(self, name: str | None = None) -> Project:
        """A new project holding the imported graph (weights are attached by write_import)."""
        return Project.new(self.graph, name=name or self.source,
                           description=f"Imported from {self.source}.")


_NOT_ID = re.compile(r"[^A-Za-z0-9_]+")


def block_id_for(name: str, taken: set[str]) -> str:
    """A block id from a module path or node name ("layer1.0.conv1" -> "layer1_0_conv1"),
    unique among `taken` (which it joins)."""
    base = _NOT_ID.sub("_", name).strip("_") or "block"
    if not base[0].isalpha():
        base = f"b_{base}"
    base = base[:60]
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}_{n}", n + 1
    taken.add(candidate)
    return candidate


def block_name_for(name: str) -> str:
    """A block name (1 to 64 characters) from a module path or node name."""
    name = name.strip() or "block"
    return name if len(name) <= 64 else "…" + name[-63:]


def first_line(err: BaseException) -> str:
    """The first line of an error's message (its type when it has none), for a refusal."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


_OP_SEGMENT = re.compile(r"^[A-Z][A-Za-z0-9]*(_\d+)?$")
# ops torch writes for a function call inside a module's forward (`x + y`, `torch.cat`), so the
# node's path names the enclosing module: the op is added to the name
_FUNCTIONAL_OPS = frozenset({"add", "mul", "concat", "flatten", "reshape", "sub", "div"})


def module_path_name(node_name: str) -> str:
    """A readable block name from a node name that torch's ONNX exporter wrote.

    "/layer1/layer1.0/conv1/Conv" -> "layer1.0.conv1" (the module path, as the torch importer
    and the torchvision templates name blocks); "/layer1/layer1.0/Add" -> "layer1.0.add";
    "/Flatten" -> "flatten". Names written otherwise are returned unchanged.
    """
    if not node_name.startswith("/"):
        return node_name
    segments = [s for s in node_name.strip("/").split("/") if s]
    if not segments:
        return node_name
    op = ""
    if len(segments) > 1 or _OP_SEGMENT.match(segments[0]):
        if _OP_SEGMENT.match(segments[-1]):
            op = segments.pop().split("_")[0].lower()
    # each segment is a module's name inside its parent, and a child of a container repeats
    # the container's name ("downsample", "downsample.0"): it replaces that name in the path
    path = last = ""
    for segment in segments:
        if last and segment.startswith(last + "."):
            path = path[: len(path) - len(last)] + segment
        else:
            path = f"{path}.{segment}" if path else segment
        last = segment
    if not path:
        return op or node_name
    return f"{path}.{op}" if op in _FUNCTIONAL_OPS else path


def lay_out(graph: Graph) -> None:
    """Place every block with the canvas's layered layout (top to bottom)."""
    for block_id, (x, y) in layered_layout(graph).items():
        graph.move(block_id, x, y)


def weights_path_for(project_path: Path) -> Path:
    """NET.cnnproj -> NET.weights.pt beside it."""
    stem = project_path.name[: -len(project_path.suffix)] if project_path.suffix else \
        project_path.name
    return project_path.with_name(stem + WEIGHTS_SUFFIX)


def write_refusal(paths: Iterable[Path], force: bool) -> str | None:
    """Why the import may not write these files, or None. Without `force`, an existing file is
    never replaced; with it, only a regular file is."""
    for path in paths:
        refusal = replace_refusal(path)
        if refusal is not None:
            return f"cannot write '{path}': {refusal}"
        if path.exists() and not force:
            return f"'{path}' already exists; choose another name (or add --force to replace it)"
    return None


def write_import(result: ImportResult, project_path: str | os.PathLike[str], *,
                 name: str | None = None, force: bool = False) -> tuple[Path, Path]:
    """Save the imported project and its weights; returns (project path, weights path).

    The weights are written first, so a project never points at a weights file that is missing.
    Raises FileExistsError (message says what to do) instead of replacing an existing file
    unless `force`, and OSError for a write that fails (nothing half-written is left).
    """
    project_path = Path(project_path)
    weights_path = weights_path_for(project_path)
    refusal = write_refusal((project_path, weights_path), force)
    if refusal is not None:
        raise FileExistsError(refusal)
    project = result.project(name)
    project.weights = weights_path.name
    size = sum(t.numel() * t.element_size() for t in result.state.values())
    with staged_write(weights_path, needed_bytes=size) as temp:
        torch.save({k: v.detach().cpu().contiguous() for k, v in result.state.items()}, temp)
    save_project(project, project_path)
    return project_path, weights_path


__all__ = ["module_path_name", "ImportRefused", "ImportResult", "WEIGHTS_SUFFIX", "block_id_for", "block_name_for",
           "first_line", "lay_out", "weights_path_for", "write_import", "write_refusal"]
