"""Block names and ids the importers give: torch's module paths, read back from ONNX node names."""

from __future__ import annotations

import pytest

from cnnstudio.importers.common import block_id_for, module_path_name


@pytest.mark.parametrize("node, name", [
    ("/layer1/layer1.0/conv1/Conv", "layer1.0.conv1"),
    ("/layer2/layer2.0/downsample/downsample.0/Conv", "layer2.0.downsample.0"),
    ("/features/features.16/conv/conv.1/conv.1.0/Conv", "features.16.conv.1.0"),
    ("/layer1/layer1.0/relu_1/Relu", "layer1.0.relu_1"),
    ("/layer1/layer1.0/Add", "layer1.0.add"),
    ("/fc/Gemm", "fc"),
    ("/Flatten", "flatten"),
    ("conv1", "conv1"),  # a name written by another tool stays as it is
    ("Conv_0", "Conv_0"),
])
def test_torch_node_names_become_module_paths(node, name):
    assert module_path_name(node) == name


def test_block_ids_are_identifiers_and_unique():
    taken: set[str] = set()
    ids = [block_id_for(n, taken) for n in ("layer1.0.conv1", "layer1.0.conv1", "0.weird", "")]
    assert ids == ["layer1_0_conv1", "layer1_0_conv1_2", "b_0_weird", "block"]
