"""Property: for random valid networks, torch agrees with analyze() on every block.

The strategy builds graphs structurally while tracking the shape at the end of the chain, so it
can pick windows that fit and keep branch sizes equal; nearly every generated graph is valid.
Run with --hypothesis-show-statistics to see which block types and padding modes were drawn.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from cnnstudio.core.analysis import analyze
from cnnstudio.core.geometry import pool_axis, window_axis
from cnnstudio.core.graph import Graph
from tests.nn.test_build import assert_matches_analysis

MAX_SIDE = 24
MAX_CHANNELS = 8
WINDOWED = ("max", "average", "sum", "l2")
MODERN = ("relu6", "silu", "hardswish", "hardsigmoid")
ACTIVATIONS = ("relu", "leaky_relu", "elu", "selu", "gelu", "tanh", "sigmoid", "softmax", *MODERN)
FUSED = ("none", "relu", "leaky_relu", "elu", "selu", "gelu", "tanh", "sigmoid", *MODERN)

Shape = tuple[int, ...]
Spec = tuple[str, dict[str, Any]]


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def window_out(padding: Any, shape: Shape, kernel, stride, dilation=(1, 1)) -> tuple[int, int]:
    return tuple(  # type: ignore[return-value]
        window_axis(padding, shape[1 + a], kernel[a], stride[a], dilation[a], a)[0]
        for a in (0, 1)
    )


def pool_out(padding: Any, shape: Shape, kernel, stride, ceil_mode: bool) -> tuple[int, int]:
    return tuple(  # type: ignore[return-value]
        pool_axis(padding, shape[1 + a], kernel[a], stride[a], ceil_mode, a)[0] for a in (0, 1)
    )


def fits(size: tuple[int, int]) -> bool:
    return all(1 <= s <= MAX_SIDE for s in size)


class Builder:
    """Appends blocks after a cursor and tracks the cursor's output shape."""

    def __init__(self, draw, graph: Graph, cursor: str, shape: Shape) -> None:
        self.draw, self.graph, self.cursor, self.shape = draw, graph, cursor, shape

    def add(self, type_id: str, params: dict[str, Any], shape: Shape) -> str:
        event(f"{type_id} on {'image' if len(self.shape) == 3 else 'vector'}")
        (block,) = self.graph.chain([(type_id, params)], after=self.cursor)
        self.cursor, self.shape = block.id, shape
        return block.id

    def conv(self, filters: int | None = None, stride: int | None = None) -> None:
        """A Conv2D; with stride given it keeps ⌈size/stride⌉ ('same' or centred explicit)."""
        draw, (c, h, w) = self.draw, self.shape
        depthwise = filters in (None, c) and draw(st.integers(0, 4)) == 0
        if depthwise:
            filters, groups = c, c
        elif filters is None:
            groups = draw(st.sampled_from(divisors(c)))
            filters = groups * draw(st.integers(1, max(1, MAX_CHANNELS // groups)))
        else:
            groups = draw(st.sampled_from([d for d in divisors(c) if filters % d == 0]))
        kernel = [draw(st.integers(1, 5)), draw(st.integers(1, 5))]
        dilation = [draw(st.integers(1, 2)), draw(st.integers(1, 2))]
        if stride is not None:
            strides = [stride, stride]
            centred = all(d * (k - 1) % 2 == 0 for k, d in zip(kernel, dilation))
            padding: Any = "same"
            if stride == 1 and centred and draw(st.booleans()):
                padding = [d * (k - 1) // 2 for k, d in zip(kernel, dilation)]
        else:
            strides = [draw(st.integers(1, 3)), draw(st.integers(1, 3))]
            padding = draw(st.sampled_from(["valid", "same", "full", "explicit"]))
            if padding == "explicit":
                padding = [draw(st.integers(0, 2)), draw(st.integers(0, 2))]
            if not fits(window_out(padding, self.shape, kernel, strides, dilation)):
                padding = "same"
        event(f"Conv2D padding {padding if isinstance(padding, str) else 'explicit'}")
        out = window_out(padding, self.shape, kernel, strides, dilation)
        params = {
            "filters": filters, "kernel": kernel, "stride": strides, "dilation": dilation,
            "padding": padding, "groups": groups, "bias": draw(st.booleans()),
            "activation": draw(st.sampled_from(FUSED)), "trainable": draw(st.booleans()),
        }
        if depthwise:  # the filters and groups given are not used
            event("Conv2D depthwise")
            params.update(depthwise=True, filters=draw(st.integers(1, 9)),
                          groups=draw(st.integers(1, 3)))
        self.add("Conv2D", params, (filters, *out))

    def pool(self, stride: int | None = None) -> None:
        """A windowed Pooling (or, without a stride given, sometimes an adaptive one); with
        stride given it is 'same' and keeps ⌈size/stride⌉."""
        draw = self.draw
        if stride is None and draw(st.integers(0, 4)) == 0:
            mode = draw(st.sampled_from(["adaptive_average", "adaptive_max"]))
            size = [draw(st.integers(1, 6)), draw(st.integers(1, 6))]
            event(f"Pooling {mode}")
            self.add("Pooling", {"mode": mode, "output_size": size}, (self.shape[0], *size))
            return
        mode = draw(st.sampled_from(WINDOWED))
        size = [draw(st.integers(1, 3)), draw(st.integers(1, 3))]
        ceil_mode = False
        if stride is not None:
            strides: list[int] | None = [stride, stride]
            padding: Any = "same"
        else:
            strides = draw(st.one_of(st.none(), st.lists(st.integers(1, 3), min_size=2,
                                                         max_size=2)))
            padding = draw(st.sampled_from(["valid", "same", "explicit", "explicit"]))
            if padding == "explicit":
                padding = [draw(st.integers(0, k // 2)) for k in size]
            ceil_mode = draw(st.booleans())
        effective = strides if strides is not None else size
        if not fits(pool_out(padding, self.shape, size, effective, ceil_mode)):
            padding = "same"
        event(f"Pooling {mode} {padding if isinstance(padding, str) else 'explicit'}"
              f"{' ceil' if ceil_mode and padding != 'same' else ''}")
        out = pool_out(padding, self.shape, size, effective, ceil_mode)
        params = {"mode": mode, "pool_size": size, "stride": strides, "padding": padding,
                  "ceil_mode": ceil_mode, "count_padding": draw(st.booleans())}
        self.add("Pooling", params, (self.shape[0], *out))

    def squeeze_excite(self) -> None:
        """Global pooling → Dense → Dense sigmoid → Multiply with the image (either port), or
        adaptive pooling to 1×1 → Conv2D 1×1 sigmoid → Multiply."""
        draw, graph, image, shape = self.draw, self.graph, self.cursor, self.shape
        gate = draw(st.sampled_from(["sigmoid", "hardsigmoid"]))
        if draw(st.booleans()):
            self.add("Pooling", {"mode": "global_average"}, (shape[0],))
            self.dense(draw(st.integers(1, 4)))
            params = {"units": shape[0], "activation": gate}
            self.add("Dense", params, (shape[0],))
            event("Multiply by a vector")
        else:
            self.add("Pooling", {"mode": "adaptive_average"}, (shape[0], 1, 1))
            self.add("Conv2D", {"filters": shape[0], "kernel": [1, 1], "activation": gate},
                     (shape[0], 1, 1))
            event("Multiply by a 1×1 map")
        multiply = graph.add_block("Multiply")
        ports = [image, self.cursor]
        for source in ports if draw(st.booleans()) else ports[::-1]:
            graph.connect(source, multiply.id)
        self.cursor, self.shape = multiply.id, shape

    def elementwise(self) -> None:
        """A block that keeps the shape: Activation, Dropout, BatchNorm or (images) LRN."""
        draw, image = self.draw, len(self.shape) == 3
        kinds = ["Activation", "Dropout", "BatchNorm"] + (["LocalResponseNorm"] if image else [])
        kind = draw(st.sampled_from(kinds))
        if kind == "Activation":
            params = {"function": draw(st.sampled_from(ACTIVATIONS)),
                      "negative_slope": draw(st.floats(0.0, 1.0)),
                      "alpha": draw(st.floats(0.0, 2.0))}
        elif kind == "Dropout":
            modes = ["element", "channel"] if image else ["element"]
            params = {"rate": draw(st.floats(0.0, 0.9)), "mode": draw(st.sampled_from(modes))}
        elif kind == "BatchNorm":
            params = {"momentum": draw(st.floats(0.0, 1.0)), "trainable": draw(st.booleans())}
        else:
            params = {"size": draw(st.integers(1, 7))}
        self.add(kind, params, self.shape)

    def dense(self, units: int | None = None) -> None:
        units = units if units is not None else self.draw(st.integers(1, 8))
        params = {"units": units, "bias": self.draw(st.booleans()),
                  "activation": self.draw(st.sampled_from(FUSED)),
                  "trainable": self.draw(st.booleans())}
        self.add("Dense", params, (units,))

    def image_merge(self) -> None:
        """2–3 branches from the cursor that keep one spatial size, then Concatenate or Add (or
        Multiply of two)."""
        draw, graph, start, start_shape = self.draw, self.graph, self.cursor, self.shape
        merge = draw(st.sampled_from(["Concatenate", "Add", "Multiply"]))
        stride = draw(st.sampled_from([1, 1, 2]))
        count = 2 if merge == "Multiply" else draw(st.integers(2, 3))
        identity = stride == 1 and draw(st.booleans())
        target = start_shape[0] if identity else draw(st.integers(1, MAX_CHANNELS))
        ends: list[tuple[str, Shape]] = [(start, start_shape)] if identity else []
        for _ in range(count - len(ends)):
            self.cursor, self.shape = start, start_shape
            width = draw(st.integers(1, 3)) if merge == "Concatenate" else target
            if draw(st.booleans()):
                self.conv(filters=width, stride=stride)
            else:
                self.pool(stride=stride)
            for _ in range(draw(st.integers(0, 1))):
                self.elementwise()
            if merge != "Concatenate" and self.shape[0] != target:
                self.conv(filters=target, stride=1)
            ends.append((self.cursor, self.shape))
        self.merge(merge, ends)

    def vector_merge(self) -> None:
        """2–3 Dense branches from the cursor, then Concatenate or Add."""
        draw, start, start_shape = self.draw, self.cursor, self.shape
        merge = draw(st.sampled_from(["Concatenate", "Add"]))
        units = draw(st.integers(1, 8))
        ends: list[tuple[str, Shape]] = []
        for _ in range(draw(st.integers(2, 3))):
            self.cursor, self.shape = start, start_shape
            self.dense(units if merge == "Add" else None)
            ends.append((self.cursor, self.shape))
        self.merge(merge, ends)

    def merge(self, merge: str, ends: list[tuple[str, Shape]]) -> None:
        block = self.graph.add_block(merge)
        for end, _ in ends:
            self.graph.connect(end, block.id)
        first = ends[0][1]
        shape = first if merge != "Concatenate" else (sum(s[0] for _, s in ends), *first[1:])
        event(f"{merge} of {len(ends)} {'images' if len(first) == 3 else 'vectors'}")
        self.cursor, self.shape = block.id, shape

    def head(self, auxiliary: bool) -> None:
        """Flatten or global pooling, optional vector blocks, Dense, Output."""
        draw = self.draw
        if draw(st.booleans()):
            self.add("Flatten", {}, (self.shape[0] * self.shape[1] * self.shape[2],))
        else:
            mode = draw(st.sampled_from(["global_max", "global_average"]))
            event(f"Pooling {mode}")
            self.add("Pooling", {"mode": mode}, (self.shape[0],))
        for _ in range(draw(st.integers(0, 2))):
            draw(st.sampled_from([self.elementwise, self.dense, self.vector_merge]))()
        self.dense()
        self.add("Output", {"auxiliary": auxiliary}, self.shape)


@st.composite
def networks(draw) -> Graph:
    graph = Graph()
    shape = (draw(st.integers(1, 4)), draw(st.integers(1, MAX_SIDE)),
             draw(st.integers(1, MAX_SIDE)))
    (inp,) = graph.chain([("Input", {"channels": shape[0], "height": shape[1],
                                     "width": shape[2]})])
    main = Builder(draw, graph, inp.id, shape)
    for _ in range(draw(st.integers(0, 6))):
        step = draw(st.sampled_from(
            ["conv", "conv", "pool", "elementwise", "merge", "merge", "se", "aux"]
        ))
        if step == "se":
            main.squeeze_excite()
        elif step == "conv":
            main.conv()
        elif step == "pool":
            main.pool()
        elif step == "elementwise":
            main.elementwise()
        elif step == "merge":
            main.image_merge()
        else:
            Builder(draw, graph, main.cursor, main.shape).head(auxiliary=True)
    main.head(auxiliary=False)
    return graph


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny tensors: thread start-up costs more than it saves."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(networks())
def test_torch_model_matches_analysis_for_random_networks(graph: Graph):
    analysis = analyze(graph)
    assume(analysis.ok)
    model, analysis, _ = assert_matches_analysis(graph)
    outputs = model.forward_outputs(torch.zeros(1, *analysis.blocks[model.input_id].output_shape))
    assert set(outputs) == set(model.output_ids)
    for output_id, tensor in outputs.items():
        assert tuple(tensor.shape[1:]) == analysis.blocks[output_id].output_shape
