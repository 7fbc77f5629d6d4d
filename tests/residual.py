"""ResNet-style graphs for tests and benchmarks: residual blocks with BatchNorm.

`resnet_graph()` at its defaults is ResNet-18 as torchvision builds it: 11,689,512 learnable
values (PyTorch's count) and 9,600 BatchNorm running statistics.
"""

from __future__ import annotations

from collections.abc import Sequence

from cnnstudio.core.graph import Graph

RESNET18_LEARNABLE = 11_689_512
RESNET18_RUNNING_STATISTICS = 9_600


def _conv_bn(graph: Graph, after: str, filters: int, kernel: int, stride: int,
             relu: bool) -> str:
    padding = [kernel // 2, kernel // 2]
    specs: list[tuple[str, dict]] = [
        ("Conv2D", {"filters": filters, "kernel": [kernel, kernel], "stride": [stride, stride],
                    "padding": padding, "bias": False}),
        ("BatchNorm", {}),
    ]
    if relu:
        specs.append(("Activation", {"function": "relu"}))
    return graph.chain(specs, after=after)[-1].id


def basic_block(graph: Graph, after: str, channels_in: int, filters: int, stride: int) -> str:
    """conv-bn-relu-conv-bn, plus the input (or a strided 1×1 conv-bn of it), then ReLU."""
    body = _conv_bn(graph, after, filters, 3, stride, relu=True)
    body = _conv_bn(graph, body, filters, 3, 1, relu=False)
    shortcut = after
    if stride != 1 or channels_in != filters:
        shortcut = _conv_bn(graph, after, filters, 1, stride, relu=False)
    add = graph.add_block("Add")
    graph.connect(body, add.id)
    graph.connect(shortcut, add.id)
    return graph.chain([("Activation", {"function": "relu"})], after=add.id)[-1].id


def resnet_graph(input_shape: tuple[int, int, int] = (3, 224, 224), classes: int = 1000,
                 blocks: Sequence[int] = (2, 2, 2, 2),
                 widths: Sequence[int] = (64, 128, 256, 512)) -> Graph:
    """Stem (7×7/2 conv-bn-relu, 3×3/2 max pool), stages of basic blocks, global average,
    Dense, Output."""
    channels, height, width = input_shape
    graph = Graph()
    cursor = graph.add_block("Input", {"channels": channels, "height": height,
                                       "width": width}).id
    cursor = _conv_bn(graph, cursor, widths[0], 7, 2, relu=True)
    cursor = graph.chain([("Pooling", {"mode": "max", "pool_size": [3, 3], "stride": [2, 2],
                                       "padding": "same"})], after=cursor)[-1].id
    channels_in = widths[0]
    for stage, (count, filters) in enumerate(zip(blocks, widths)):
        for index in range(count):
            stride = 2 if stage > 0 and index == 0 else 1
            cursor = basic_block(graph, cursor, channels_in, filters, stride)
            channels_in = filters
    graph.chain([("Pooling", {"mode": "global_average"}), ("Dense", {"units": classes}),
                 ("Output", {})], after=cursor)
    return graph
