"""Every registered block type has its entry in every table that is keyed by block type.

A block type is declared once (core/blocks); what can be derived from the declaration is (the
palette lists the registry, an icon's glyph is `BlockType.glyph`). The facts that cannot live in
the core are tables in other layers: the torch layer that runs a block (nn/build.py), the code
the Python export writes (nn/codegen.py), the arithmetic of its tooltip (core/explain.py). A
missing entry there would fail only when a user builds, exports or hovers such a block; here it
fails at once, and `throwaway_type` shows it does for a new type registered without entries.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator, Sequence

import pytest
from torch import nn

from cnnstudio.core import blocks as block_modules
from cnnstudio.core import explain, registry
from cnnstudio.core.blocks import FAMILIES
from cnnstudio.core.blocks.base import CATEGORIES, BlockType, Params, Shape
from cnnstudio.core.graph import Graph
from cnnstudio.nn import build, codegen
from cnnstudio.nn.build import build_model
from cnnstudio.train import transfer
from cnnstudio.ui import icons, theme
from cnnstudio.ui.panels.palette import PRESETS, palette_entries

THROWAWAY = "ThrowawayBlock"


def _same_shape(params: Params, inputs: Sequence[Shape]) -> Shape:
    return inputs[0]


@pytest.fixture
def throwaway_type() -> Iterator[BlockType]:
    """A new block type registered with no entry anywhere, taken out again afterwards."""
    block_type = registry.register(BlockType(
        type_id=THROWAWAY, version=1, display_name="Throwaway", category="Regularisation",
        help="A block type that exists only in this test.", params=(), infer=_same_shape))
    yield block_type
    registry.unregister(THROWAWAY)


def table_gaps() -> dict[str, list[str]]:
    """Table -> the registered block types it has no entry for."""
    tables = {
        "nn/build.py _BUILDERS": set(build._BUILDERS),
        "nn/codegen.py _EMITTERS": set(codegen._EMITTERS),
        "core/explain.py EXPLAINERS or NO_ARITHMETIC": set(explain.EXPLAINERS)
        | explain.NO_ARITHMETIC,
    }
    types = [t.type_id for t in registry.all_types()]
    return {name: [t for t in types if t not in keys] for name, keys in tables.items()}


def test_every_block_type_has_an_entry_in_every_table():
    assert table_gaps() == {name: [] for name in table_gaps()}


def test_a_new_block_type_without_entries_fails_the_check(throwaway_type):
    assert table_gaps() == {name: [THROWAWAY] for name in table_gaps()}


def test_what_is_derived_from_the_declaration_follows_a_new_type_by_itself(throwaway_type):
    assert throwaway_type.glyph == "T"  # the first letter when the declaration names none
    entries = palette_entries()["Regularisation"]
    assert [e.title for e in entries if e.type_id == THROWAWAY] == ["Throwaway"]


def test_unregister_takes_the_type_out_and_refuses_an_unknown_id(throwaway_type):
    assert registry.unregister(THROWAWAY) is throwaway_type
    assert not registry.is_known(THROWAWAY)
    with pytest.raises(registry.UnknownBlockType, match=THROWAWAY):
        registry.unregister(THROWAWAY)
    registry.register(throwaway_type)  # the fixture takes it out again


def test_tables_name_only_registered_types():
    known = {t.type_id for t in registry.all_types()}
    for keys in (build._BUILDERS, codegen._EMITTERS, explain.EXPLAINERS, explain.NO_ARITHMETIC,
                 transfer._SUBMODULE, PRESETS):
        assert set(keys) <= known
    assert not set(explain.EXPLAINERS) & explain.NO_ARITHMETIC


def test_every_block_type_declared_in_the_core_is_registered():
    """A new family module must be in blocks.FAMILIES, or its types never reach the registry."""
    declared = []
    for module_info in pkgutil.iter_modules(block_modules.__path__):
        module = importlib.import_module(f"{block_modules.__name__}.{module_info.name}")
        declared += [v for v in vars(module).values() if isinstance(v, BlockType)]
        if any(isinstance(v, BlockType) for v in vars(module).values()):
            assert module in FAMILIES, f"{module.__name__} is not in core.blocks.FAMILIES"
    assert declared and all(registry.get(t.type_id) is t for t in declared)


def test_every_category_has_an_icon_colour_and_glyph():
    assert set(CATEGORIES) == set(theme.CATEGORY_HUES) == set(icons.CATEGORY_GLYPHS)


def test_every_palette_preset_is_a_valid_block_of_its_type():
    for type_id, presets in PRESETS.items():
        for entry in presets:
            assert entry.type_id == type_id, entry.title
            assert registry.get(type_id).normalize(entry.params)[1] == [], entry.title


def test_transfer_names_the_submodule_that_holds_each_blocks_weights():
    graph = Graph()
    image = graph.add_block("Input", {"channels": 1, "height": 4, "width": 4})
    conv, _, dense, _ = graph.chain([("Conv2D", {"filters": 2}), ("Flatten", {}),
                                     ("Dense", {"units": 2}), ("Output", {})], after=image.id)
    model = build_model(graph)
    kinds = {"Conv2D": nn.Conv2d, "Dense": nn.Linear}
    for block in (conv, dense):
        layer = getattr(model.blocks[block.id], transfer._SUBMODULE[block.type])
        assert isinstance(layer, kinds[block.type])
