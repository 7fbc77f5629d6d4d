"""The Template record and a small builder that lays templates out on the canvas.

Layout: the main chain runs top to bottom at x = 0 with a `layout.STEP_Y` step; parallel
branches sit side by side `layout.STEP_X` apart, centred on x = 0, and merge in a Concatenate
below the longest branch; side heads (auxiliary classifiers) run in their own column.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cnnstudio.core.analysis import analyze
from cnnstudio.core.blocks.base import Shape
from cnnstudio.core.graph import Graph
from cnnstudio.core.layout import STEP_X, STEP_Y
from cnnstudio.core.module_layout import lay_out

InputShape = tuple[int, int, int]
Spec = tuple[str, Mapping[str, Any], str]  # (block type, params, display name)


@dataclass(frozen=True)
class Template:
    """A ready-made network: what the start page shows and how to build it at any size."""

    id: str
    title: str
    description: str
    default_input: InputShape
    default_classes: int
    build: Callable[[InputShape, int], Graph]
    # training settings that suit this network better than the project defaults
    training: Mapping[str, Any] = field(default_factory=dict)


# -- block specs ------------------------------------------------------------------------------


def conv(
    name: str,
    filters: int,
    kernel: int | Sequence[int],
    *,
    stride: int = 1,
    padding: str | Sequence[int] = "valid",
    activation: str = "relu",
) -> Spec:
    params: dict[str, Any] = {
        "filters": filters,
        "kernel": _pair(kernel),
        "stride": _pair(stride),
        "padding": padding if isinstance(padding, str) else list(padding),
        "activation": activation,
    }
    return ("Conv2D", params, name)


def pool(
    name: str,
    size: int | Sequence[int] = 2,
    *,
    stride: int | None = None,
    mode: str = "max",
    padding: str = "valid",
) -> Spec:
    params: dict[str, Any] = {
        "mode": mode,
        "pool_size": _pair(size),
        "stride": None if stride is None else _pair(stride),
        "padding": padding,
    }
    return ("Pooling", params, name)


def global_pool(name: str, mode: str = "global_average") -> Spec:
    return ("Pooling", {"mode": mode}, name)


def dense(name: str, units: int, activation: str = "none") -> Spec:
    return ("Dense", {"units": units, "activation": activation}, name)


def dropout(name: str, rate: float) -> Spec:
    return ("Dropout", {"rate": rate}, name)


def flatten(name: str = "flatten") -> Spec:
    return ("Flatten", {}, name)


def lrn(name: str) -> Spec:
    return ("LocalResponseNorm", {}, name)


def concat(name: str) -> Spec:
    return ("Concatenate", {}, name)


def output(name: str = "output", *, loss_weight: float = 1.0, auxiliary: bool = False) -> Spec:
    return ("Output", {"loss_weight": loss_weight, "auxiliary": auxiliary}, name)


def _pair(value: int | Sequence[int]) -> list[int]:
    if isinstance(value, int):
        return [value, value]
    first, second = value
    return [int(first), int(second)]


# -- the builder ------------------------------------------------------------------------------


class Builder:
    """Adds blocks to a new graph with readable ids and canvas positions.

    `last` is the block at the bottom of the main chain; `then` appends below it at x = 0.
    """

    def __init__(self, input_shape: InputShape, name: str = "input") -> None:
        self.graph = Graph()
        channels, height, width = (int(v) for v in input_shape)
        self.y = 0.0
        self.last = self._place(
            ("Input", {"channels": channels, "height": height, "width": width}, name), 0.0, 0.0
        )

    def _block_id(self, name: str) -> str:
        base = re.sub(r"[^A-Za-z0-9_]+", "_", name.lower()).strip("_") or "block"
        if not (base[0].isalpha() or base[0] == "_"):
            base = "b_" + base
        base = base[:56]
        candidate, n = base, 2
        while candidate in self.graph:
            candidate, n = f"{base}_{n}", n + 1
        return candidate

    def _place(self, spec: Spec, x: float, y: float, after: str | None = None) -> str:
        type_id, params, name = spec
        block = self.graph.add_block(
            type_id, params, name=name, position=(x, y), block_id=self._block_id(name)
        )
        if after is not None:
            self.graph.connect(after, block.id)
        return block.id

    def then(self, *specs: Spec) -> str:
        """Append blocks to the main chain, one below the other; returns the last id."""
        for spec in specs:
            self.y += STEP_Y
            self.last = self._place(spec, 0.0, self.y, self.last)
        return self.last

    def branches(self, branches: Sequence[Sequence[Spec]], merge: Spec) -> str:
        """Parallel branches fed by `last`, side by side, joined by `merge` in branch order."""
        count = len(branches)
        tops = self.y
        ends: list[str] = []
        for index, branch in enumerate(branches):
            x = (index - (count - 1) / 2) * STEP_X
            previous = self.last
            for row, spec in enumerate(branch, start=1):
                previous = self._place(spec, x, tops + row * STEP_Y, previous)
            ends.append(previous)
        self.y = tops + (max(len(b) for b in branches) + 1) * STEP_Y
        merged = self._place(merge, 0.0, self.y)
        for port, end in enumerate(ends):
            self.graph.connect(end, merged, port)
        self.last = merged
        return merged

    def side(self, source: str, specs: Sequence[Spec], x: float) -> str:
        """A head fed by `source`, in its own column at `x`, starting one row below it."""
        previous = source
        y = self.graph.block(source).y
        for spec in specs:
            y += STEP_Y
            previous = self._place(spec, x, y, previous)
        return previous

    def compact(self) -> Graph:
        """The graph, laid out with each of its collapsed modules as one card (their blocks
        keep their places inside), so that a network of modules opens compact."""
        lay_out(self.graph)
        return self.graph

    def shape(self, block_id: str | None = None) -> Shape:
        """The output shape of a block (default: `last`) as analysis infers it."""
        block_id = block_id or self.last
        info = analyze(self.graph).blocks.get(block_id)
        if info is None or info.output_shape is None:
            raise ValueError(f"cannot infer the shape of block {block_id!r}")
        return info.output_shape
