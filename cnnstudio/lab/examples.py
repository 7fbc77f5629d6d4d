"""The course's worked examples, as data: each must come out exactly as in the notes."""

from __future__ import annotations

from dataclasses import dataclass

Matrix = tuple[tuple[float, ...], ...]


@dataclass(frozen=True)
class Example:
    key: str
    title: str
    kind: str  # 'convolution' or 'pooling'
    x: Matrix
    w: Matrix = ()  # the kernel (convolution)
    mode: str = ""  # the pooling mode (pooling)
    size: int = 2  # pool size (pooling)
    stride: int = 1
    expected: Matrix = ()
    note: str = ""

    @property
    def one_d(self) -> bool:
        return self.kind == "convolution" and len(self.x) == 1 and len(self.w) == 1


def _m(*rows: list[float]) -> Matrix:
    return tuple(tuple(float(v) for v in row) for row in rows)


BINARY_5X5 = _m([1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 1, 1, 0],
                [0, 1, 1, 0, 0])
X_KERNEL = _m([1, 0, 1], [0, 1, 0], [1, 0, 1])
POOL_INPUT = _m([1, 2, 0, 2], [1, 4, 2, 0], [4, 3, 1, 0], [1, 2, 2, 1])

EXAMPLES: tuple[Example, ...] = (
    Example("conv1d", "1-D: x = [0 … 6], w = [1, 2]", "convolution",
            _m([0, 1, 2, 3, 4, 5, 6]), _m([1, 2]),
            expected=_m([2, 5, 8, 11, 14, 17]),
            note="Slide w along x: each output is x[i]·w[0] + x[i+1]·w[1]. "
                 "Output size o = (i − k + 2p)/s + 1 = (7 − 2 + 0)/1 + 1 = 6."),
    Example("conv2d", "2-D: 3×3 input, 2×2 kernel", "convolution",
            _m([0, 1, 2], [3, 4, 5], [6, 7, 8]), _m([0, 1], [2, 3]),
            expected=_m([19, 25], [37, 43]),
            note="No kernel flip (cross-correlation, as in deep learning): the top-left "
                 "output is 0·0 + 1·1 + 3·2 + 4·3 = 19."),
    Example("binary_x", "5×5 binary image, 3×3 X kernel", "convolution", BINARY_5X5, X_KERNEL,
            expected=_m([4, 3, 4], [2, 4, 3], [2, 3, 4]),
            note="The X-shaped kernel counts the 1s on the window's diagonals: the first "
                 "outputs are 4 and 3."),
    Example("max_pool", "Max pooling 2×2, stride 2", "pooling", POOL_INPUT, mode="max", size=2,
            stride=2, expected=_m([4, 2], [4, 2]),
            note="Each 2×2 block keeps its largest value."),
    Example("average_pool", "Average pooling 2×2, stride 2", "pooling", POOL_INPUT,
            mode="average", size=2, stride=2, expected=_m([2, 1], [2.5, 1]),
            note="Each 2×2 block becomes its mean: (4 + 3 + 1 + 2)/4 = 2.5 at the bottom left."),
    Example("sum_pool", "Sum pooling 2×2, stride 2", "pooling", POOL_INPUT, mode="sum", size=2,
            stride=2, expected=_m([8, 4], [10, 4]),
            note="Each 2×2 block becomes its sum."),
)

BY_KEY = {example.key: example for example in EXAMPLES}
