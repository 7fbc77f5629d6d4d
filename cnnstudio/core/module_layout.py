"""Automatic layout of a network with modules (core/modules.py), and the boxes modules take.

A collapsed module is laid out as one node the size of its card (a block's size), an expanded
one as one node the size of its frame; either way its blocks keep their places relative to
one another (`layout.Group`), so expanding a collapsed module shows its blocks as they were.
The canvas (View → Auto Layout) and the templates that build collapsed modules lay networks
out with `tidy_layout`, which makes GoogLeNet or a ResNet compact while their modules are
collapsed. Expanding a module whose frame would cover its neighbours calls for a new layout
(`frame_overlaps`); `layout_direction` tells which way a network was laid out.

The frame's margins are here (`FRAME_PAD`, `TITLE_H`): the canvas draws the frame with them.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Iterable

from cnnstudio.core.graph import Graph
from cnnstudio.core.grid import BLOCK_H, BLOCK_W, GRID
from cnnstudio.core.layout import DOWN, RIGHT, Group, layered_layout
from cnnstudio.core.module_types import ModuleInstance

FRAME_PAD = 10.0  # room between an expanded module's blocks and its frame
TITLE_H = 26.0  # the frame's title strip, above its blocks (and their wires' labels)

Box = tuple[float, float, float, float]  # left, top, right, bottom


def members_box(graph: Graph, block_ids: Iterable[str]) -> Box:
    """The rectangle the blocks take on the canvas (each a BLOCK_W × BLOCK_H card)."""
    blocks = [graph.block(i) for i in block_ids if i in graph]
    if not blocks:
        return (0.0, 0.0, 0.0, 0.0)
    return (min(b.x for b in blocks) - BLOCK_W / 2, min(b.y for b in blocks),
            max(b.x for b in blocks) + BLOCK_W / 2, max(b.y for b in blocks) + BLOCK_H)


def module_box(graph: Graph, module: ModuleInstance) -> Box:
    """What a module takes on the canvas: its card, centred on its blocks (collapsed), or its
    frame around them (expanded)."""
    left, top, right, bottom = members_box(graph, module.members.values())
    if not module.collapsed:
        return (left - FRAME_PAD, top - FRAME_PAD - TITLE_H, right + FRAME_PAD,
                bottom + FRAME_PAD)
    x, y = _snap((left + right) / 2), _snap((top + bottom - BLOCK_H) / 2)  # on the grid
    return (x - BLOCK_W / 2, y, x + BLOCK_W / 2, y + BLOCK_H)


def module_group(graph: Graph, module: ModuleInstance) -> Group:
    """A module as one node of the layout: its box, and its blocks' offsets from the box's top
    centre as they stand now."""
    left, top, right, bottom = module_box(graph, module)
    centre = (left + right) / 2
    offsets = {block_id: (graph.block(block_id).x - centre, graph.block(block_id).y - top)
               for block_id in module.members.values() if block_id in graph}
    return Group(offsets, (right - left, bottom - top))


def tidy_layout(graph: Graph, direction: str = DOWN) -> dict[str, tuple[float, float]]:
    """Block id -> (x centre, y top): the layered layout with every module as one node."""
    groups = [module_group(graph, module) for module in graph.modules]
    return layered_layout(graph, direction=direction, groups=groups)


def lay_out(graph: Graph, direction: str = DOWN) -> None:
    """Move every block to its place in `tidy_layout` (inside one edit: one undo step)."""
    for block_id, (x, y) in tidy_layout(graph, direction).items():
        block = graph.block(block_id)
        if (block.x, block.y) != (x, y):
            graph.move(block_id, x, y)


def frame_overlaps(graph: Graph, module_id: str) -> bool:
    """Whether the module's frame, expanded, covers a block or a card outside it."""
    module = graph.module(module_id)
    frame = module_box(graph, replace(module, collapsed=False))
    return any(_overlap(frame, box) for box in _other_boxes(graph, module))


def layout_direction(graph: Graph) -> str:
    """RIGHT when most wires between blocks outside modules run sideways, else DOWN."""
    grouped = {b for module in graph.modules for b in module.members.values()}
    sideways = downwards = 0
    for edge in graph.edges:
        if edge.src in grouped or edge.dst in grouped:
            continue
        src, dst = graph.block(edge.src), graph.block(edge.dst)
        if abs(dst.x - src.x) > abs(dst.y - src.y):
            sideways += 1
        else:
            downwards += 1
    return RIGHT if sideways > downwards else DOWN


def _other_boxes(graph: Graph, module: ModuleInstance) -> list[Box]:
    """The boxes of every block shown outside `module`, and of every other collapsed card."""
    hidden = {b for m in graph.modules if m.collapsed or m.id == module.id
              for b in m.members.values()}
    boxes = [members_box(graph, [b.id]) for b in graph.blocks if b.id not in hidden]
    boxes += [module_box(graph, m) for m in graph.modules if m.collapsed and m.id != module.id]
    return boxes


def _overlap(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _snap(value: float) -> float:
    """To the grid, halves up: a box moved by whole grid steps snaps to the same place moved
    by as many (Python's round sends halves to even, which alternates)."""
    return math.floor(value / GRID + 0.5) * GRID
