"""The block registry: every block type by id. Registering an id twice is an error."""

from __future__ import annotations

from cnnstudio.core.blocks import FAMILIES
from cnnstudio.core.blocks.base import CATEGORIES, BlockType


class UnknownBlockType(KeyError):
    def __init__(self, type_id: str):
        known = ", ".join(sorted(_REGISTRY))
        super().__init__(f"unknown block type {type_id!r}; known types: {known}")
        self.type_id = type_id

    def __str__(self) -> str:
        return self.args[0]


_REGISTRY: dict[str, BlockType] = {}


def register(block_type: BlockType) -> BlockType:
    if block_type.type_id in _REGISTRY:
        raise ValueError(f"block type {block_type.type_id!r} is already registered")
    _REGISTRY[block_type.type_id] = block_type
    return block_type


def unregister(type_id: str) -> BlockType:
    """Take a block type out again (tests register throwaway types); unknown ids raise."""
    try:
        return _REGISTRY.pop(type_id)
    except KeyError:
        raise UnknownBlockType(type_id) from None


def get(type_id: str) -> BlockType:
    try:
        return _REGISTRY[type_id]
    except KeyError:
        raise UnknownBlockType(type_id) from None


def is_known(type_id: str) -> bool:
    return type_id in _REGISTRY


def all_types() -> list[BlockType]:
    return list(_REGISTRY.values())


def by_category() -> dict[str, list[BlockType]]:
    """Block types grouped by palette category, in palette order."""
    groups: dict[str, list[BlockType]] = {c: [] for c in CATEGORIES}
    for block_type in _REGISTRY.values():
        groups[block_type.category].append(block_type)
    return groups


for _family in FAMILIES:
    for _block_type in _family.BLOCKS:
        register(_block_type)
