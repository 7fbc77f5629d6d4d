"""The activations a training step keeps for its backward pass, from the block declarations.

Each block type declares which tensors its backward pass keeps (`BlockType.saved`: its input,
its output, or tensors of its own such as pooling indices). This module adds them up over a
graph the way PyTorch autograd stores them:

- a block records nothing when none of its inputs needs a gradient and it has no trainable
  weights (the frozen start of a fine-tuned network keeps nothing), and a tensor kept only for
  one input's gradient (`Saved.for_port`) is not kept when that input needs none;
- a tensor is stored once however many blocks keep it (a ReLU's output that the next
  convolution and a residual branch both read), and a view or pass-through (Flatten, Output)
  shares its input's storage;
- only blocks an Output depends on run in training.

`bench/memory_estimate.py` and `tests/nn/test_memory_estimate.py` compare the result with what
`torch.autograd.graph.saved_tensors_hooks` sees in the real model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cnnstudio.core.blocks.base import Saved, Shape, prod


@dataclass(frozen=True)
class BlockMemory:
    """What one block declares, as the analysis found it for the block's shapes."""

    type_id: str
    sources: Sequence[str]
    input_shapes: Sequence[Shape]
    output_shape: Shape
    saved: Sequence[Saved]
    aliases_input: bool
    trainable: bool  # has weights that get gradients


@dataclass(frozen=True)
class SavedBytes:
    """Bytes a block adds to the saved activations: per sample, and once per batch."""

    per_sample: int = 0
    per_batch: int = 0

    def at(self, batch_size: int) -> int:
        return batch_size * self.per_sample + self.per_batch


def saved_bytes(order: Sequence[str], blocks: Mapping[str, BlockMemory],
                outputs: Sequence[str]) -> dict[str, SavedBytes]:
    """Each block's share of the saved activations; a tensor kept twice counts at the first.

    Without an Output block (a network being drawn) every block counts.
    """
    running = _blocks_that_run(outputs, blocks) if outputs else set(blocks)
    storage: dict[str, str] = {}  # block id -> the block whose output tensor it shares
    needs_grad: dict[str, bool] = {}
    counted: set[tuple[str, ...]] = set()
    result: dict[str, SavedBytes] = {}
    for block_id in order:
        block = blocks.get(block_id)
        if block is None or block_id not in running:
            continue
        sources = block.sources
        storage[block_id] = (storage.get(sources[0], sources[0])
                             if block.aliases_input and sources else block_id)
        records = block.trainable or any(needs_grad.get(s, False) for s in sources)
        needs_grad[block_id] = records
        if not records:
            continue
        per_sample = per_batch = 0
        for index, item in enumerate(block.saved):
            if item.for_port is not None and not needs_grad.get(sources[item.for_port], False):
                continue
            key, values = _tensor(block_id, block, item, index, storage)
            if key in counted:
                continue
            counted.add(key)
            size = values * item.itemsize
            if item.per_sample:
                per_sample += size
            else:
                per_batch += size
        result[block_id] = SavedBytes(per_sample, per_batch)
    return result


def _tensor(block_id: str, block: BlockMemory, item: Saved, index: int,
            storage: Mapping[str, str]) -> tuple[tuple[str, ...], int]:
    """The storage a saved tensor lives in (for counting it once) and its values per sample."""
    if item.tensor == "input":
        source = block.sources[item.port]
        return ("activation", storage.get(source, source)), prod(block.input_shapes[item.port])
    if item.tensor == "output":
        return ("activation", storage[block_id]), prod(block.output_shape)
    return ("own", block_id, str(index)), item.values


def _blocks_that_run(outputs: Sequence[str], blocks: Mapping[str, BlockMemory]) -> set[str]:
    seen: set[str] = set()
    stack = list(outputs)
    while stack:
        current = stack.pop()
        if current not in seen and current in blocks:
            seen.add(current)
            stack.extend(blocks[current].sources)
    return seen
