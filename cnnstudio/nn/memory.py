"""Measure the activations a model keeps for its backward pass, to check the estimate.

`Analysis.memory()` estimates the saved activations from the block declarations
(`cnnstudio/core/memory.py`); this runs one training-mode forward pass of the real model under
`torch.autograd.graph.saved_tensors_hooks` and adds up the storages autograd keeps, each once.
Weights and running statistics are left out unless asked for: the estimate counts them as
weights (convolutions and Dense layers keep theirs for backward, so a measurement with them is
larger by about the size of the weights).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from cnnstudio.nn.build import GraphModel


@dataclass
class SavedMeasurement:
    """Bytes of the unique storages saved for backward, in total and by the block saving first."""

    total: int = 0
    per_block: dict[str, int] = field(default_factory=dict)


def measure_saved_activations(model: GraphModel, x: Tensor,
                               include_weights: bool = False) -> SavedMeasurement:
    """One forward pass of every output (as training runs it) in train mode, with gradients.

    The model is left in the mode it was in; its BatchNorm running statistics take one update.
    """
    state = set() if include_weights else {
        t.untyped_storage().data_ptr() for t in (*model.parameters(), *model.buffers())}
    seen: set[int] = set()
    measurement = SavedMeasurement()
    current = [""]
    hooks = [layer.register_forward_pre_hook(lambda _m, _i, b=block_id: current.__setitem__(0, b))
             for block_id, layer in model.blocks.items()]

    def pack(tensor: Tensor) -> Tensor:
        storage = tensor.untyped_storage()
        key = storage.data_ptr()
        if key not in state and key not in seen:
            seen.add(key)
            measurement.total += storage.nbytes()
            block = current[0]
            measurement.per_block[block] = measurement.per_block.get(block, 0) + storage.nbytes()
        return tensor

    was_training = model.training
    model.train()
    try:
        with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            model.forward_outputs(x)
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return measurement
