"""Weights of a plain torch module (torchvision's, or an imported one) for a GraphModel.

The templates built after torchvision and every imported network name each block after the
torch module it stands for ("layer1.0.conv1"), so a module's state dict maps onto the graph by
name: key `<module path>.<leaf>` goes to `blocks.<id of the block named module path>.<the
layer's submodule>.<leaf>`. Nothing is matched by position, and the mapping can be reported.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from torch import Tensor

from cnnstudio.core.graph import Graph

# Where each block type's layer keeps its torch module (cnnstudio.nn.layers);
# tests/test_block_tables.py builds the blocks and checks the names.
WEIGHT_SUBMODULE = {"Conv2D": "conv", "Dense": "linear", "BatchNorm": "bn"}
_WRAPPERS = ("module.", "_orig_mod.")  # prefixes added by DataParallel and torch.compile


def strip_wrappers(key: str) -> str:
    changed = True
    while changed:
        changed = False
        for prefix in _WRAPPERS:
            if key.startswith(prefix):
                key, changed = key[len(prefix):], True
    return key


@dataclass
class NamedWeights:
    """GraphModel keys for a module's tensors, and what matched and what did not."""

    state: dict[str, Tensor] = field(default_factory=dict)
    mapped: list[tuple[str, str]] = field(default_factory=list)  # (module path, block id)
    unmatched_modules: list[str] = field(default_factory=list)  # module paths with tensors
    unmatched_blocks: list[str] = field(default_factory=list)  # weighted blocks left out

    def summary(self) -> str:
        line = f"{len(self.mapped)} module{'' if len(self.mapped) == 1 else 's'} mapped by name"
        if self.unmatched_modules:
            line += f"; no block for {', '.join(self.unmatched_modules[:6])}"
            if len(self.unmatched_modules) > 6:
                line += f" and {len(self.unmatched_modules) - 6} more"
        if self.unmatched_blocks:
            line += f"; no weights for {', '.join(self.unmatched_blocks[:6])}"
            if len(self.unmatched_blocks) > 6:
                line += f" and {len(self.unmatched_blocks) - 6} more"
        return line


def graph_state_from_module_state(
    module_state: Mapping[str, Tensor], graph: Graph
) -> NamedWeights:
    """Map `<module path>.<leaf>` keys to GraphModel keys through the block named module path.

    Only weighted blocks (WEIGHT_SUBMODULE) receive tensors; shapes are not checked here (the
    loader, transfer.load_matching_weights, compares them and reports what does not fit).
    """
    modules: dict[str, dict[str, Tensor]] = {}
    for key, value in module_state.items():
        if isinstance(key, str) and isinstance(value, Tensor):
            path, _, leaf = strip_wrappers(key).rpartition(".")
            modules.setdefault(path, {})[leaf] = value
    weighted = {b.name: b for b in graph.blocks if b.type in WEIGHT_SUBMODULE}
    result = NamedWeights()
    for path, tensors in modules.items():
        block = weighted.get(path)
        if block is None:
            result.unmatched_modules.append(path)
            continue
        for leaf, tensor in tensors.items():
            result.state[f"blocks.{block.id}.{WEIGHT_SUBMODULE[block.type]}.{leaf}"] = tensor
        result.mapped.append((path, block.id))
    result.unmatched_blocks = [b.id for name, b in weighted.items() if name not in modules]
    return result


__all__ = ["NamedWeights", "WEIGHT_SUBMODULE", "graph_state_from_module_state",
           "strip_wrappers"]
