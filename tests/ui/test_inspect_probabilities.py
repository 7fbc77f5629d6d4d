"""The inspection tabs of a network that ends in its own softmax show its probabilities (no second
softmax), and Predict reads an image file of any mode, depth and size into the network's [0, 1]
range, channels and size.

The weights are random with a scaled-up last layer, so the network is confident (a second
softmax would be plain to see: no class above 23 %); no training is needed.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnstudio.core.project import Project
from cnnstudio.core.templates import build_template
from cnnstudio.nn.build import build_model
from cnnstudio.nn.export import export_onnx, load_run
from cnnstudio.train.data import load_dataset
from cnnstudio.train.inspect import confusion_matrix
from cnnstudio.ui.document import Document
from cnnstudio.ui.training.export_dialog import describe_report
from cnnstudio.ui.training.inspect.views import (
    ConfusionView,
    FeatureMapView,
    InspectionContext,
    PredictView,
)
from cnnstudio.ui.training.session import TrainingSession
from tests.nn.test_export import make_run
from tests.torch_threads import one_torch_thread_then_wait  # noqa: F401 (autouse fixture)
from tests.train.conftest import mnist_slice
from tests.train.test_probabilities import by_hand, course_network
from tests.ui.views import shown

TOLERANCE = 1e-5


def confident(graph, seed: int = 0) -> torch.nn.Module:
    """Random weights, the last Dense layer's scaled so that the scores spread widely."""
    torch.manual_seed(seed)
    model = build_model(graph).eval()
    dense = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        dense.weight.mul_(40.0)
    return model


def context_for(project: Project, model: torch.nn.Module, data=None) -> InspectionContext:
    """A context fed as a running session feeds it (data, then the weights of epoch 1)."""
    session = TrainingSession()
    session.project = project
    context = InspectionContext(session, Document())
    if data is not None:
        session.data_ready.emit(data)
    session.weights_ready.emit(model.state_dict(), 1)
    return context


@pytest.fixture(scope="module")
def digits():
    return mnist_slice(load_dataset("mnist-sample", (1, 28, 28)), 64, 96)


def test_the_tabs_show_the_probabilities_of_a_network_ending_in_softmax(qtbot, digits):
    graph = course_network(softmax=True)
    model = confident(graph)
    expected = by_hand(model, digits, softmax=True)
    assert expected.max(axis=1).mean() > 0.5  # what a second softmax would flatten
    context = context_for(Project.new(graph, name="Course"), model, digits)

    predict = shown(qtbot, PredictView(context))  # validation image 0
    np.testing.assert_allclose(predict.probabilities, expected[0], atol=TOLERANCE)
    np.testing.assert_allclose(predict.bars.values(), np.sort(expected[0])[::-1][:5],
                               atol=TOLERANCE)
    assert f"({expected[0].max():.1%})" in predict.verdict_label.text()

    confusion = shown(qtbot, ConfusionView(context))
    qtbot.waitUntil(lambda: confusion.matrix is not None and not confusion.busy,
                    timeout=30_000)
    np.testing.assert_allclose(confusion.probabilities, expected, atol=TOLERANCE)
    np.testing.assert_array_equal(
        confusion.matrix, confusion_matrix(digits.val_y, expected.argmax(1), 10))
    captions = confusion.mistakes_grid.captions()
    wrong = expected.argmax(1) != digits.val_y
    if captions:
        top = np.sort(expected[wrong].max(axis=1))[::-1][0]
        assert captions[0].endswith(f"{top:.0%}")

    maps = shown(qtbot, FeatureMapView(context))
    best = int(expected[0].argmax())
    assert f"predicted: {best} ({expected[0, best]:.0%})" in maps.input_caption.text()
    softmax_id = next(b.id for b in graph.blocks if b.name == "softmax")
    maps.block_combo.setCurrentIndex(maps.block_combo.findData(softmax_id))
    left = maps.vector_plot.getPlotItem().getAxis("left").labelText
    assert left == "probability"
    np.testing.assert_allclose(maps.vector_plot.values(), expected[0], atol=TOLERANCE)
    dense_id = next(b.id for b in graph.blocks if b.name == "FC4")
    maps.block_combo.setCurrentIndex(maps.block_combo.findData(dense_id))
    assert maps.vector_plot.getPlotItem().getAxis("left").labelText == "score (before softmax)"


# -- Predict reads any image file into the network's input -----------------------------------

GREY = (np.add.outer(np.arange(28), np.arange(28)) * 4 % 256).astype(np.uint8)


def save_as(folder: Path, kind: str) -> Path:
    """GREY (28×28) saved in another mode or depth: what it holds is GREY / 255 in [0, 1]."""
    wide = GREY.astype(np.uint16) * 257
    images = {
        "grey.png": Image.fromarray(GREY),
        "grey16.png": Image.fromarray(wide),  # Pillow's I;16
        "grey32.tif": Image.fromarray(wide.astype(np.int32)),  # mode I
        "float.tif": Image.fromarray(GREY.astype(np.float32) / 255),  # mode F in [0, 1]
        "rgb.png": Image.fromarray(np.stack([GREY] * 3, axis=-1)),
        "rgba.png": Image.fromarray(np.stack([GREY] * 3 + [np.full_like(GREY, 255)], axis=-1)),
        "grey-alpha.png": Image.merge("LA", [Image.fromarray(GREY),
                                             Image.fromarray(np.full_like(GREY, 255))]),
        "palette.png": _grey_palette(),
    }
    path = folder / kind
    if kind == "rgb16.png":
        _write_png16_rgb(path, np.stack([wide] * 3, axis=-1))
    else:
        images[kind].save(path)
    return path


def _write_png16_rgb(path: Path, pixels: np.ndarray) -> None:
    """A 48-bit (16 bits per channel) RGB PNG, which Pillow reads but does not write."""
    height, width, _ = pixels.shape
    rows = b"".join(b"\x00" + pixels[y].astype(">u2").tobytes() for y in range(height))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + tag + data
                + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def _grey_palette() -> Image.Image:
    image = Image.fromarray(GREY, "P")
    image.putpalette([v for level in range(256) for v in (level, level, level)])
    return image


@pytest.mark.parametrize("kind", ["grey.png", "grey16.png", "grey32.tif", "float.tif", "rgb.png",
                                  "rgb16.png", "rgba.png", "grey-alpha.png", "palette.png"])
@pytest.mark.parametrize("channels", [1, 3])
def test_predict_reads_any_mode_and_depth_into_the_networks_range(qtbot, tmp_path, kind,
                                                                  channels):
    graph = build_template("course-example", (channels, 28, 28), 10)
    model = confident(graph)
    context = context_for(Project.new(graph, name="Course"), model)
    view = shown(qtbot, PredictView(context))
    assert view.open_path(save_as(tmp_path, kind)), view.note_label.text()
    assert view.chooser.image.shape == (channels, 28, 28)
    pixels = torch.from_numpy(GREY).float().div(255).expand(1, channels, 28, 28)
    with torch.no_grad():  # the mean and std of a session without data: 0 and 1
        expected = torch.softmax(model(pixels), dim=1)[0].numpy()
    np.testing.assert_allclose(view.probabilities, expected, atol=TOLERANCE)


def test_predict_resizes_a_large_colour_photo(qtbot, tmp_path):
    graph = course_network(softmax=True)
    context = context_for(Project.new(graph, name="Course"), confident(graph))
    view = shown(qtbot, PredictView(context))
    photo = np.random.default_rng(0).integers(0, 256, (300, 200, 3), dtype=np.uint8)
    path = tmp_path / "photo.jpg"
    Image.fromarray(photo).convert("CMYK").save(path)  # a print-ready JPEG
    assert view.open_path(path)
    assert view.chooser.image.shape == (1, 28, 28)
    assert "as 28×28 grey" in view.image_caption.text()
    assert view.probabilities.sum() == pytest.approx(1.0, abs=1e-5)


def test_the_export_dialog_states_the_input_range(tmp_path):
    run = load_run(make_run(tmp_path / "run", "lenet5"))
    lines = describe_report(export_onnx(run, tmp_path / "m.onnx", benchmark_runs=0))
    assert any("pixel values in [0, 1]: divide 8-bit pixels by 255" in line for line in lines)
    assert any("(limit 1e-4)" in line for line in lines)


def test_the_export_dialog_says_when_the_older_onnx_exporter_wrote_the_file(tmp_path,
                                                                            monkeypatch):
    from cnnstudio.nn import onnx_export

    def refuse(*_args, **_kwargs):
        raise RuntimeError("Could not guard on data-dependent expression")

    monkeypatch.setattr(onnx_export, "dynamo_proto", refuse)
    run = load_run(make_run(tmp_path / "run", "lenet5"))
    lines = describe_report(export_onnx(run, tmp_path / "m.onnx", benchmark_runs=0))
    assert any("older TorchScript-based ONNX exporter" in line for line in lines)
