"""The lab's arithmetic: the course's worked examples exactly, every kernel against a direct
convolution (and torch), padding, stride, dilation, pooling, activations and traces."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnstudio.core.geometry import window_axis
from cnnstudio.lab import ops
from cnnstudio.lab.examples import BINARY_5X5, BY_KEY, EXAMPLES, POOL_INPUT, X_KERNEL

RNG = np.random.default_rng(7)


def direct(x: np.ndarray, w: np.ndarray, stride=(1, 1), pads=((0, 0), (0, 0)),
           dilation=(1, 1)) -> np.ndarray:
    """The definition, one output cell and one tap at a time."""
    xp = np.pad(np.asarray(x, float), pads)
    kh, kw = w.shape
    (sh, sw), (dh, dw) = stride, dilation
    oh = (xp.shape[0] - (dh * (kh - 1) + 1)) // sh + 1
    ow = (xp.shape[1] - (dw * (kw - 1) + 1)) // sw + 1
    out = np.zeros((oh, ow))
    for r in range(oh):
        for c in range(ow):
            total = 0.0
            for i in range(kh):
                for j in range(kw):
                    total += xp[r * sh + i * dh, c * sw + j * dw] * w[i, j]
            out[r, c] = total
    return out


# -- the course's worked examples, exactly ---------------------------------------------------


def test_1d_example():
    out = ops.correlate1d([0, 1, 2, 3, 4, 5, 6], [1, 2])
    assert out.tolist() == [2, 5, 8, 11, 14, 17]
    assert len(out) == 6
    assert ops.explain_output_size(7, 2, 1, 0) == "⌊(7 − 2 + 2·0)/1⌋ + 1 = 6"
    trace = ops.conv_trace([[0, 1, 2, 3, 4, 5, 6]], [[1, 2]])
    assert trace.size_lines == ("o = ⌊(7 − 2 + 2·0)/1⌋ + 1 = 6",)
    assert [s.text for s in trace.steps][:2] == ["0·1 + 1·2 = 2", "1·1 + 2·2 = 5"]


def test_2d_example_is_a_cross_correlation():
    x = [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    out = ops.correlate2d(x, np.array([[0, 1], [2, 3]]))
    assert out.tolist() == [[19, 25], [37, 43]]
    trace = ops.conv_trace(x, [[0, 1], [2, 3]])
    assert [s.text for s in trace.steps] == [
        "0·0 + 1·1 + 3·2 + 4·3 = 19", "1·0 + 2·1 + 4·2 + 5·3 = 25",
        "3·0 + 4·1 + 6·2 + 7·3 = 37", "4·0 + 5·1 + 7·2 + 8·3 = 43"]
    assert trace.steps[0].cells == ((0, 0), (0, 1), (1, 0), (1, 1))
    assert trace.steps[3].cells == ((1, 1), (1, 2), (2, 1), (2, 2))


def test_binary_image_with_the_x_kernel():
    out = ops.correlate2d(np.array(BINARY_5X5), np.array(X_KERNEL))
    assert out[0, 0] == 4 and out[0, 1] == 3
    assert out.tolist() == [[4, 3, 4], [2, 4, 3], [2, 3, 4]]


@pytest.mark.parametrize("mode, expected", [
    ("max", [[4, 2], [4, 2]]), ("average", [[2, 1], [2.5, 1]]), ("sum", [[8, 4], [10, 4]]),
])
def test_pooling_examples(mode, expected):
    assert ops.pool2d(np.array(POOL_INPUT), mode, 2, 2).tolist() == expected
    assert ops.pool_trace(POOL_INPUT, mode, 2, 2).output.tolist() == expected


def test_every_example_in_the_data_comes_out_as_expected():
    for example in EXAMPLES:
        if example.kind == "convolution":
            out = ops.conv_trace(example.x, example.w, example.stride).output
        else:
            out = ops.pool_trace(example.x, example.mode, example.size, example.stride).output
        assert out.tolist() == [list(row) for row in example.expected], example.key
    assert BY_KEY["conv1d"].one_d and not BY_KEY["conv2d"].one_d


def test_pool_texts():
    texts = {m: ops.pool_trace(POOL_INPUT, m, 2, 2).steps[2].text for m in ops.POOL_MODES}
    assert texts["max"] == "max(4, 3, 1, 2) = 4"
    assert texts["average"] == "(4 + 3 + 1 + 2)/4 = 2.5"
    assert texts["sum"] == "4 + 3 + 1 + 2 = 10"
    assert texts["l2"] == "√(4² + 3² + 1² + 2²) = 5.477"


# -- the kernel library against a direct convolution and torch -------------------------------


@pytest.mark.parametrize("key", list(ops.KERNELS))
def test_each_classic_kernel_matches_a_direct_convolution(key):
    image = RNG.uniform(0, 255, (13, 11))
    w = ops.kernel(key, size=5, sigma=1.2)
    for padding in ("valid", "same", "full", (1, 2)):
        pads = ops.pads(image.shape, w.shape, 1, padding)
        np.testing.assert_allclose(ops.correlate2d(image, w, 1, padding),
                                   direct(image, w, pads=pads), atol=1e-9)


def test_kernel_library_values():
    assert ops.kernel("vertical_edges").tolist() == [[1, 0, -1]] * 3
    assert ops.kernel("horizontal_edges").tolist() == [[1, 1, 1], [0, 0, 0], [-1, -1, -1]]
    assert ops.kernel("edges").tolist() == [[1, 1, 1], [1, -7, 1], [1, 1, 1]]
    assert ops.kernel("laplacian").tolist() == [[1, 1, 1], [1, -8, 1], [1, 1, 1]]
    assert ops.kernel("sharpen").tolist() == [[0, -1, 0], [-1, 5, -1], [0, -1, 0]]
    assert ops.kernel("emboss").tolist() == [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]]
    assert ops.kernel("sobel_x").tolist() == [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]
    assert (ops.kernel("sobel_y") == ops.kernel("sobel_x").T).all()
    gauss = ops.kernel("gaussian_blur", size=5, sigma=1.0)
    assert gauss.shape == (5, 5) and gauss.sum() == pytest.approx(1.0)
    assert gauss[2, 2] == gauss.max() and (gauss == gauss.T).all()
    assert ops.kernel("box_blur", size=3).tolist() == [[1 / 9] * 3] * 3
    image = RNG.uniform(0, 1, (6, 6))
    np.testing.assert_allclose(ops.correlate2d(image, ops.kernel("identity"), 1, "same"), image)
    with pytest.raises(ops.LabError, match="unknown kernel"):
        ops.kernel("nope")


@pytest.mark.parametrize("key, stride, padding, dilation", [
    ("sobel_x", (1, 1), (1, 1), (1, 1)), ("emboss", (2, 1), (0, 2), (1, 1)),
    ("laplacian", (1, 2), (2, 2), (2, 1)), ("gaussian_blur", (3, 3), (2, 0), (1, 1)),
])
def test_against_torch_conv2d(key, stride, padding, dilation):
    image = RNG.normal(size=(3, 17, 19))
    w = ops.kernel(key, size=5, sigma=1.0)
    ours = ops.correlate2d(image, w, stride, padding, dilation)
    weight = torch.tensor(w).expand(3, 1, *w.shape)
    theirs = F.conv2d(torch.tensor(image)[None], weight, stride=stride, padding=padding,
                      dilation=dilation, groups=3)[0].numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-9)


# -- padding, stride, dilation and output sizes ----------------------------------------------


@pytest.mark.parametrize("padding", ["valid", "same", "full", (0, 0), (1, 3)])
@pytest.mark.parametrize("stride", [(1, 1), (2, 3), (3, 2)])
@pytest.mark.parametrize("dilation", [(1, 1), (2, 1)])
@pytest.mark.parametrize("kernel", [(3, 3), (2, 4), (1, 5)])
def test_sizes_agree_with_the_canvas_geometry(padding, stride, dilation, kernel):
    image = RNG.normal(size=(12, 15))
    w = RNG.normal(size=kernel)
    out = ops.correlate2d(image, w, stride, padding, dilation)
    mode = padding if isinstance(padding, str) else list(padding)
    expected = tuple(window_axis(mode, image.shape[a], kernel[a], stride[a], dilation[a], a)[0]
                     for a in (0, 1))
    assert out.shape == expected == ops.output_shape(image.shape, kernel, stride, padding,
                                                     dilation)
    pads = ops.pads(image.shape, kernel, stride, padding, dilation)
    np.testing.assert_allclose(out, direct(image, w, stride, pads, dilation), atol=1e-9)


def test_same_keeps_the_size_and_full_grows_it():
    image = RNG.normal(size=(8, 8))
    assert ops.correlate2d(image, np.ones((3, 3)), 1, "same").shape == (8, 8)
    assert ops.correlate2d(image, np.ones((3, 3)), 2, "same").shape == (4, 4)
    assert ops.correlate2d(image, np.ones((3, 3)), 1, "full").shape == (10, 10)
    assert ops.pads((8, 8), (4, 4), 1, "same") == ((1, 2), (1, 2))  # odd pixel bottom/right


def test_kernel_that_does_not_fit_and_bad_arguments():
    with pytest.raises(ops.LabError, match="does not fit the 2×2 input"):
        ops.correlate2d(np.ones((2, 2)), np.ones((3, 3)))
    with pytest.raises(ops.LabError, match="at least 1"):
        ops.correlate2d(np.ones((4, 4)), np.ones((3, 3)), stride=0)
    with pytest.raises(ops.LabError, match="unknown padding"):
        ops.correlate2d(np.ones((4, 4)), np.ones((3, 3)), padding="half")
    with pytest.raises(ops.LabError, match="negative"):
        ops.correlate2d(np.ones((4, 4)), np.ones((3, 3)), padding=-1)


def test_explanations():
    assert ops.explain_output_size(512, 3, 1, 1, axis="height") == \
        "height: ⌊(512 − 3 + 2·1)/1⌋ + 1 = 512"
    assert ops.explain_output_size(512, 4, 1, 1, 2, axis="width") == \
        "width: ⌊(512 − 4 + 1 + 2)/1⌋ + 1 = 512"
    assert ops.explain_output_size(28, 3, 1, 0, dilation=2) == \
        "⌊(28 − 5 + 2·0)/1⌋ + 1 = 24  (k′ = 2·(3 − 1) + 1 = 5)"
    assert ops.explain_output_size(7, 3, 2, 0) == "⌊(7 − 3 + 2·0)/2⌋ + 1 = 3"


def test_trace_with_padding_stride_and_negative_numbers():
    trace = ops.conv_trace([[1, 2], [3, 4]], [[1, -1]], stride=1, padding=1)
    assert trace.offset == (1, 1) and trace.padded.shape == (4, 4)
    assert trace.output.shape == (4, 3)
    assert trace.steps[0].text == "0·1 + 0·(−1) = 0"
    assert trace.steps[4].text == "1·1 + 2·(−1) = −1"
    strided = ops.conv_trace(np.arange(25).reshape(5, 5), np.ones((3, 3)), stride=2)
    assert [s.cells[0] for s in strided.steps] == [(0, 0), (0, 2), (2, 0), (2, 2)]
    dilated = ops.conv_trace(np.arange(25).reshape(5, 5), np.ones((2, 2)), dilation=2)
    assert dilated.steps[0].cells == ((0, 0), (0, 2), (2, 0), (2, 2))


def test_each_channel_separately():
    image = RNG.normal(size=(3, 9, 9))
    w = ops.kernel("sobel_y")
    out = ops.correlate2d(image, w, 1, "same")
    for c in range(3):
        np.testing.assert_allclose(out[c], ops.correlate2d(image[c], w, 1, "same"))


# -- pooling ---------------------------------------------------------------------------------


def test_pooling_modes_size_and_stride():
    x = RNG.normal(size=(7, 9))
    for mode, reduce in (("max", np.max), ("average", np.mean), ("sum", np.sum),
                         ("l2", lambda a: np.sqrt((a * a).sum()))):
        out = ops.pool2d(x, mode, (3, 2), (2, 3))
        assert out.shape == ((7 - 3) // 2 + 1, (9 - 2) // 3 + 1)
        for r in range(out.shape[0]):
            for c in range(out.shape[1]):
                window = x[r * 2:r * 2 + 3, c * 3:c * 3 + 2]
                assert out[r, c] == pytest.approx(reduce(window))
    assert ops.pool2d(np.ones((2, 4, 4)), "sum", 2).shape == (2, 2, 2)
    stack = RNG.normal(size=(3, 7, 9))  # windows side by side, the last row and column left out
    windows = np.lib.stride_tricks.sliding_window_view(stack, (2, 2), axis=(-2, -1))[..., ::2, ::2,
                                                                                    :, :]
    np.testing.assert_allclose(ops.pool2d(stack, "max", 2), windows.max(axis=(-2, -1)))
    np.testing.assert_allclose(ops.pool2d(stack, "l2", 2),
                               np.sqrt((windows ** 2).sum(axis=(-2, -1))))
    with pytest.raises(ops.LabError, match="does not fit"):
        ops.pool2d(np.ones((2, 2)), "max", 3)
    with pytest.raises(ops.LabError, match="unknown pooling"):
        ops.pool2d(np.ones((2, 2)), "median", 2)


# -- activations -----------------------------------------------------------------------------


def test_activation_values():
    x = np.array([-2.0, -0.5, 0.0, 0.5, 2.0])
    assert ops.relu(x).tolist() == [0, 0, 0, 0.5, 2]
    assert ops.leaky_relu(x, 0.1).tolist() == pytest.approx([-0.2, -0.05, 0, 0.5, 2])
    assert ops.elu(x, 2.0).tolist() == pytest.approx([2 * np.expm1(-2), 2 * np.expm1(-0.5), 0,
                                                      0.5, 2])
    np.testing.assert_allclose(ops.sigmoid(x), 1 / (1 + np.exp(-x)))
    np.testing.assert_allclose(ops.tanh(x), np.tanh(x))
    assert ops.sigmoid(np.array([-1000.0, 1000.0])).tolist() == [0.0, 1.0]  # no overflow
    assert ops.activate(x, "none").tolist() == x.tolist()
    assert ops.activate(x, "leaky_relu", eps=0.2)[0] == pytest.approx(-0.4)
    np.testing.assert_allclose(ops.activate(x, "relu"), torch.relu(torch.tensor(x)).numpy())
    np.testing.assert_allclose(ops.activate(x, "elu", alpha=1.5),
                               F.elu(torch.tensor(x), 1.5).numpy())


@pytest.mark.parametrize("key", list(ops.ACTIVATIONS))
def test_derivatives_match_a_numerical_derivative(key):
    activation = ops.ACTIVATIONS[key]
    kwargs = {"eps": 0.2} if key == "leaky_relu" else {"alpha": 1.7} if key == "elu" else {}
    x = np.linspace(-4, 4, 81)
    x = x[np.abs(x) > 1e-3]  # ReLU and Leaky ReLU have no derivative at 0
    h = 1e-6
    numerical = (activation.function(x + h, **kwargs) - activation.function(x - h, **kwargs)) / (2 * h)
    np.testing.assert_allclose(activation.derivative(x, **kwargs), numerical, atol=1e-6)


def test_softmax_sums_to_one_and_its_jacobian():
    z = np.array([2.0, 1.0, 0.1])
    p = ops.softmax(z)
    assert p.sum() == pytest.approx(1.0)
    assert p.tolist() == pytest.approx([0.659, 0.242, 0.099], abs=1e-3)
    assert ops.softmax([1000.0, 1000.0]).tolist() == [0.5, 0.5]  # shifted: no overflow
    np.testing.assert_allclose(p, torch.softmax(torch.tensor(z), 0).numpy())
    h = 1e-6
    numerical = np.stack([(ops.softmax(z + h * e) - ops.softmax(z - h * e)) / (2 * h)
                          for e in np.eye(3)], axis=1)
    np.testing.assert_allclose(ops.softmax_jacobian(z), numerical, atol=1e-8)


def test_numbers_as_the_course_writes_them():
    assert [ops.fmt(v) for v in (19.0, 2.5, -1.0, 1 / 3, 0.0, -0.0001)] == \
        ["19", "2.5", "−1", "0.333", "0", "0"]
    assert ops.factor(-2) == "(−2)"


def test_grey_conversion():
    rgb = np.zeros((2, 2, 3))
    rgb[..., 0] = 100
    np.testing.assert_allclose(ops.to_grey(rgb), np.full((2, 2), 29.9))


def test_ops_is_pure_numpy():
    """No Qt and no torch in the lab's computations (the architecture's purity rule)."""
    package = Path(ops.__file__).parent
    for path in package.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert name.split(".")[0] not in ("torch", "PySide6", "pyqtgraph"), path
                assert not name.startswith(("cnnstudio.ui", "cnnstudio.nn", "cnnstudio.train"))


def test_a_512_photo_convolves_quickly():
    import time

    image = RNG.uniform(0, 255, (3, 512, 512))
    w = ops.kernel("gaussian_blur", size=7, sigma=1.5)
    ops.correlate2d(image, w, 1, "same")
    start = time.perf_counter()
    ops.correlate2d(image, w, 1, "same")
    assert (time.perf_counter() - start) / 3 < 0.1  # per channel, with a 7×7 kernel
