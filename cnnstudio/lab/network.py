"""From the lab to the network: a Conv2D started from the lab's kernel, right after the Input.

A function of the graph, run inside one Document.edit, so one undo takes it all back.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from cnnstudio.core.graph import Block, Graph
from cnnstudio.core.layout import STEP_Y
from cnnstudio.core.edits import add_block, insert_on_edge


def first_layer_params(kernel: Sequence[Sequence[float]], trainable: bool) -> dict:
    rows, cols = len(kernel), len(kernel[0])
    return {"filters": 1, "kernel": [rows, cols], "padding": "same",
            "initial_kernel": [[float(v) for v in row] for row in kernel],
            "trainable": bool(trainable)}


def _name_for(graph: Graph, kernel_name: str) -> str:
    base = "lab_" + (re.sub(r"[^a-z0-9]+", "_", kernel_name.lower()).strip("_") or "kernel")
    name, n = base, 2
    while graph.find(name) is not None:
        name, n = f"{base}_{n}", n + 1
    return name


def add_first_layer(graph: Graph, kernel: Sequence[Sequence[float]], trainable: bool,
                    kernel_name: str = "kernel") -> Block:
    """A Conv2D (1 filter, 'same' padding, the kernel as its fixed start) fed by the Input.

    When the Input already feeds blocks, the new block goes in between: Input → new → each
    block the Input fed (same ports), so the network keeps its shapes and analyses as before.
    """
    params = first_layer_params(kernel, trainable)
    source = graph.input_block()
    if source is None:
        lowest = max((b.y for b in graph.blocks), default=-STEP_Y)
        block = graph.add_block("Conv2D", params, position=(0.0, lowest + STEP_Y))
    else:
        edges = graph.output_edges(source.id)
        if edges:
            block = insert_on_edge(graph, edges[0], "Conv2D", params)
            for edge in edges[1:]:
                graph.disconnect(edge)
                graph.connect(block.id, edge.dst, edge.port)
        else:
            block = add_block(graph, "Conv2D", params, (source.x, source.y + STEP_Y), source.id)
    graph.rename(block.id, _name_for(graph, kernel_name))
    return block
