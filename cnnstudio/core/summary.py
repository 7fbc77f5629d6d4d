"""The course-style summary: collect rows from an Analysis, then render them as text or JSON.

Collecting, totalling and rendering are separate steps, so the window's summary table, the
CLI's text table and its JSON all show the same numbers.

Parameters are counted as the Keras book the course follows counts them: a layer's count is
trainable + non-trainable, where non-trainable holds the BatchNorm running mean and variance and
the weights of frozen blocks; the total is the sum of the layers. PyTorch's
sum(p.numel() for p in model.parameters()) leaves the running statistics out: that number is
`learnable_params` in the JSON.
"""

from __future__ import annotations

from typing import Any

from cnnstudio.core import registry
from cnnstudio.core.analysis import OPTIMIZER_STATE_SLOTS, Analysis, BlockInfo, TrainingMemory
from cnnstudio.core.blocks.base import format_shape
from cnnstudio.core.graph import Graph

COLUMNS = ("No", "Layer", "Output shape", "Activation size", "Parameters", "MACs",
           "Receptive field")
NUMERIC_COLUMNS = frozenset({0, 3, 4, 5})  # right-aligned in the text table and the window


def layer_rows(graph: Graph, analysis: Analysis) -> list[dict[str, Any]]:
    """One JSON-ready row per block, in execution order."""
    rows = []
    for block_id in analysis.order:
        info = analysis.blocks[block_id]
        rows.append({
            "id": info.id,
            "name": info.name,
            "type": info.type,
            "output_shape": list(info.output_shape) if info.output_shape is not None else None,
            "activation_size": info.activation_size,
            "params": info.total_params,
            "non_trainable": info.non_trainable,
            "macs": info.macs,
            "receptive_field": list(info.receptive_field) if info.receptive_field else None,
        })
    return rows


def summary_dict(graph: Graph, analysis: Analysis, batch_size: int = 64,
                 optimizer: str = "adam") -> dict[str, Any]:
    memory = analysis.memory(batch_size, optimizer)
    return {
        "layers": layer_rows(graph, analysis),
        "total_params": analysis.total_params,
        "trainable_params": analysis.trainable_params,
        "non_trainable": analysis.non_trainable,
        "learnable_params": analysis.learnable_params,
        "macs": analysis.macs,
        "training_memory": {
            "batch_size": batch_size,
            "optimizer": optimizer,
            "bytes": memory.total,
            "weights": memory.weights,
            "gradients": memory.gradients,
            "optimizer_state": memory.optimizer_state,
            "activations": memory.activations,
        },
        "shape_order": "C,H,W",
        "diagnostics": [d.to_dict() for d in analysis.diagnostics],
    }


PARAMETERS_TIP = ("Total = trainable + non-trainable, as the Keras book counts them. "
                  "Non-trainable: BatchNorm running mean and variance, and the weights of frozen "
                  "blocks. PyTorch's model.parameters() leaves the running statistics out.")


def memory_parts(memory: TrainingMemory) -> list[tuple[str, int]]:
    """The parts of the training-memory figure, named as every view names them."""
    return [
        ("weights", memory.weights),
        ("gradients", memory.gradients),
        ("optimiser state", memory.optimizer_state),
        ("saved activations", memory.activations),
    ]


def memory_summary(memory: TrainingMemory, optimizer: str) -> str:
    """One line: the figure, the batch size, the optimiser and each part."""
    parts = ", ".join(f"{name} {format_bytes(size)}" for name, size in memory_parts(memory))
    return (f"{format_bytes(memory.total)} at batch {memory.batch_size} with {optimizer} "
            f"({parts})")


def memory_breakdown(memory: TrainingMemory, optimizer: str) -> str:
    """Several lines saying what the training-memory figure includes, part by part."""
    slots = OPTIMIZER_STATE_SLOTS.get(optimizer, 2)
    meaning = {
        "weights": "parameters and BatchNorm running statistics, float32",
        "gradients": "one per trainable parameter",
        "optimiser state": f"{optimizer} keeps {slots} value{'s' * (slots != 1)} "
                           "per trainable parameter",
        "saved activations": "tensors autograd keeps for the backward pass, each once, for "
                             f"{memory.batch_size} image{'s' * (memory.batch_size != 1)}",
    }
    lines = [f"Training memory at batch {memory.batch_size} with {optimizer}: "
             f"{format_bytes(memory.total)}"]
    lines += [f"  {name} {format_bytes(size)}: {meaning[name]}"
              for name, size in memory_parts(memory)]
    lines.append("Not included: PyTorch's workspace and temporary tensors, the data loader.")
    return "\n".join(lines)


def format_bytes(count: int) -> str:
    """'12.7 MiB': binary units (1024), labelled as such (KiB, MiB, GiB), as PyTorch's memory
    figures are. Decimal sizes (disk space, core.files) are labelled MB."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def row_cells(number: int, info: BlockInfo) -> tuple[str, ...]:
    """One block's cells under COLUMNS, as the text table and the window's Summary show them."""
    display = registry.get(info.type).display_name
    rf = info.receptive_field
    return (
        str(number),
        f"{info.name} ({display})" if info.name != display else display,
        format_shape(info.output_shape),
        f"{info.activation_size:,}" if info.output_shape is not None else "?",
        f"{info.total_params:,}",
        f"{info.macs:,}",
        f"{rf[0]}×{rf[1]}" if rf else "-",
    )


def render_table(graph: Graph, analysis: Analysis, batch_size: int = 64,
                 optimizer: str = "adam", title: str = "") -> str:
    """The course-style table with totals and diagnostics, as plain text."""
    rows = [COLUMNS, *(row_cells(number, analysis.blocks[block_id])
                       for number, block_id in enumerate(analysis.order, start=1))]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]

    def line(row: tuple[str, ...]) -> str:
        return "  ".join(
            cell.rjust(widths[i]) if i in NUMERIC_COLUMNS else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ).rstrip()

    rule = "─" * len(line(rows[0]))
    out = []
    if title:
        out.append(title)
    out += [rule, line(rows[0]), rule, *(line(r) for r in rows[1:]), rule]
    memory = analysis.memory(batch_size, optimizer)
    out += [
        f"Total parameters:      {analysis.total_params:,}",
        f"  trainable:           {analysis.trainable_params:,}",
        f"  non-trainable:       {analysis.non_trainable:,}"
        + ("  (BatchNorm running statistics and frozen blocks)" if analysis.non_trainable else ""),
        *([f"  PyTorch parameters(): {analysis.learnable_params:,}  (running statistics are "
           "buffers there)"] if analysis.learnable_params != analysis.total_params else []),
        f"Multiply-accumulates:  {analysis.macs:,} per image",
        f"Training memory:       {memory_summary(memory, optimizer)}",
        "Output shapes are (height,width,channels); vectors are (values).",
    ]
    if analysis.diagnostics:
        out.append("")
        for diagnostic in analysis.diagnostics:
            out.append(f"{diagnostic.severity}: {diagnostic.message}")
            if diagnostic.fix:
                out.append(f"    fix: {diagnostic.fix}")
    return "\n".join(out)
