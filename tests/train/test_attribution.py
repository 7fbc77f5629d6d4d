"""Grad-CAM and saliency (train/attribution.py) on a briefly trained Keras-book network: the maps
land on the digits, Grad-CAM is the textbook computation, and the overlay and PNG rules hold."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from cnnstudio.core.templates import build_template
from cnnstudio.nn import build_model
from cnnstudio.train.attribution import (
    GRADCAM,
    HEAT_LUT,
    SALIENCY,
    AttributionError,
    conv_blocks,
    coarsest_useful,
    default_block,
    explain,
    overlay,
    png_destination,
    top_share,
    write_png,
)
from cnnstudio.train.inspect import RunContents, normalise, read_run, validation_images
from tests.explain_run import train_keras_run

DIGITS = 100  # validation digits measured
INK = 0.3 * 255  # a pixel brighter than this belongs to the digit


@pytest.fixture(scope="module")
def keras(tmp_path_factory: pytest.TempPathFactory) -> RunContents:
    return read_run(train_keras_run(tmp_path_factory.mktemp("keras")))


@pytest.fixture(scope="module")
def digits(keras: RunContents) -> np.ndarray:
    return validation_images(keras.data, np.arange(DIGITS))


def digit_vs_background(images: np.ndarray, heats: list[np.ndarray]) -> tuple[int, float]:
    """(how many maps have a higher mean on the digit's pixels than on the background, the
    median of mean-on-digit / mean-on-background)."""
    wins, ratios = 0, []
    for image, heat in zip(images, heats):
        ink = image[0] > INK
        on, off = float(heat[ink].mean()), float(heat[~ink].mean())
        wins += on > off
        ratios.append(on / max(off, 1e-9))
    return wins, float(np.median(ratios))


def maps(keras: RunContents, images: np.ndarray, **options) -> list[np.ndarray]:
    found = explain(keras.model, images, keras.mean, keras.std, kind=keras.output_kind, **options)
    return [e.heat for e in found]


def test_the_default_block_is_the_last_convolution_with_a_map_of_at_least_7x7(keras):
    assert conv_blocks(keras.model) == ["conv1", "conv2", "conv3"]
    assert default_block(keras.model) == "conv3"  # no input size given: the last one
    # at 28×28: conv1 26×26, conv2 11×11, conv3 3×3 (too coarse to point at a digit)
    assert default_block(keras.model, (1, 28, 28)) == "conv2"
    assert coarsest_useful(["a", "b"], {"a": (9, 9), "b": (6, 6)}) == "a"
    assert coarsest_useful(["a", "b"], {"a": (5, 5), "b": (3, 3)}) == "b"
    assert default_block(build_model(build_template("lenet5", (1, 28, 28), 10))) is not None


def test_gradcam_of_the_last_convolution_puts_more_heat_on_the_digit(keras, digits):
    heats = maps(keras, digits, method=GRADCAM, block_id="conv3")
    wins, ratio = digit_vs_background(digits, heats)
    # Measured: 72 of 100 (median ratio 1.13); conv3's map is 3×3, so it is coarse
    assert wins > DIGITS // 2 and ratio > 1.0
    assert all(h.shape == (28, 28) and h.min() >= 0 and h.max() <= 1 for h in heats)


def test_gradcam_of_the_default_block_follows_this_digit_not_just_the_centre(keras, digits):
    found = explain(keras.model, digits, keras.mean, keras.std, kind=keras.output_kind)
    assert {e.block_id for e in found} == {"conv2"}  # the default at 28×28: conv2, 11×11
    heats = [e.heat for e in found]
    wins, ratio = digit_vs_background(digits, heats)
    # another digit's map, laid over this one: only the bias for the image centre is left
    _, other_ratio = digit_vs_background(digits, heats[1:] + heats[:1])
    assert wins >= 0.7 * DIGITS  # measured 79 of 100
    assert ratio > other_ratio + 0.2  # measured 1.76 against 1.34


def test_saliency_puts_more_heat_on_the_digit(keras, digits):
    heats = maps(keras, digits, method=SALIENCY)
    wins, ratio = digit_vs_background(digits, heats)
    _, other_ratio = digit_vs_background(digits, heats[1:] + heats[:1])
    assert wins >= 0.9 * DIGITS  # measured 100 of 100
    assert ratio > 1.3 * other_ratio  # measured 5.1 against 3.2
    assert np.mean([top_share(h) for h in heats]) > 0.5  # measured 0.79


def test_gradcam_is_the_textbook_computation(keras, digits):
    """Channel weights = mean gradient of the class score over the block's map; map = ReLU of
    the weighted sum, bilinear to the input size, over its maximum."""
    model, images = keras.model, digits[:4]
    x = normalise(images, keras.mean, keras.std)
    found = explain(model, images, keras.mean, keras.std, block_id="conv2")
    kept: dict[str, torch.Tensor] = {}
    handle = model.blocks["conv2"].register_forward_hook(
        lambda _module, _inputs, output: kept.setdefault("map", output))
    try:
        scores = model(x)
    finally:
        handle.remove()
    targets = [e.predicted for e in found]
    chosen = scores[torch.arange(len(targets)), targets].sum()
    (gradient,) = torch.autograd.grad(chosen, kept["map"])
    weights = gradient.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * kept["map"]).sum(dim=1, keepdim=True))
    cam = F.interpolate(cam, size=(28, 28), mode="bilinear")[:, 0].detach()
    expected = (cam / cam.flatten(1).amax(1).view(-1, 1, 1)).numpy()
    assert [e.target for e in found] == targets
    np.testing.assert_allclose(np.stack([e.heat for e in found]), expected, atol=1e-5)
    assert not model.training and all(p.grad is None for p in model.parameters())


def test_a_chosen_class_is_explained_and_bad_choices_are_refused(keras, digits):
    image = digits[0]
    (predicted,) = explain(keras.model, image, keras.mean, keras.std)
    other = (predicted.predicted + 1) % 10
    (chosen,) = explain(keras.model, image, keras.mean, keras.std, targets=other)
    assert chosen.target == other and chosen.predicted == predicted.predicted
    assert not np.allclose(chosen.heat, predicted.heat)
    with pytest.raises(AttributionError, match="class 10 does not exist.*0 to 9"):
        explain(keras.model, image, keras.mean, keras.std, targets=10)
    with pytest.raises(AttributionError, match="'fc1' is not a convolution.*conv1, conv2"):
        explain(keras.model, image, keras.mean, keras.std, block_id="fc1")
    with pytest.raises(AttributionError, match="unknown method 'lime'"):
        explain(keras.model, image, keras.mean, keras.std, method="lime")


def test_a_network_without_convolution_has_saliency_but_no_gradcam():
    from cnnstudio.core.graph import Graph

    graph = Graph()
    source = graph.add_block("Input", {"channels": 1, "height": 8, "width": 8})
    flat = graph.add_block("Flatten")
    dense = graph.add_block("Dense", {"units": 3})
    out = graph.add_block("Output")
    for a, b in ((source, flat), (flat, dense), (dense, out)):
        graph.connect(a.id, b.id)
    model = build_model(graph)
    image = np.random.default_rng(0).integers(0, 256, (1, 8, 8), dtype=np.uint8)
    assert default_block(model) is None
    with pytest.raises(AttributionError, match="no convolution.*use saliency"):
        explain(model, image, [0.5], [0.25])
    (found,) = explain(model, image, [0.5], [0.25], method=SALIENCY)
    assert found.heat.shape == (8, 8) and found.heat.max() == pytest.approx(1.0)


def test_top_share_measures_how_concentrated_a_map_is():
    flat = np.ones((10, 10), np.float32)
    spot = np.zeros((10, 10), np.float32)
    spot[4:6, 4:6] = 1.0
    assert top_share(flat) == pytest.approx(0.2)
    assert top_share(spot) == pytest.approx(1.0)
    assert top_share(np.zeros((4, 4))) == 0.0


def test_overlay_mixes_image_and_colours_by_opacity():
    image = np.full((1, 2, 3), 200, np.uint8)
    heat = np.array([[0.0, 0.5, 1.0], [1.0, 0.5, 0.0]], np.float32)
    assert (overlay(image, heat, 0.0) == 200).all()
    np.testing.assert_array_equal(overlay(image, heat, 1.0)[0, 2], HEAT_LUT[255])
    np.testing.assert_array_equal(overlay(image, heat, 1.0)[0, 0], HEAT_LUT[0])
    half = overlay(image, heat, 0.5).astype(int)
    assert np.abs(half[0, 2] - (200 + HEAT_LUT[255].astype(int)) / 2).max() <= 1


def test_png_is_written_whole_and_never_replaced_without_force(tmp_path):
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[..., 0] = 255
    target = write_png(rgb, tmp_path / "a.png")
    assert np.asarray(Image.open(target)).shape == (4, 5, 3)
    with pytest.raises(AttributionError, match="already exists.*--force"):
        write_png(rgb, target)
    write_png(rgb[:2], target, force=True)
    assert np.asarray(Image.open(target)).shape == (2, 5, 3)
    with pytest.raises(AttributionError, match="is a folder"):
        png_destination(tmp_path)
    with pytest.raises(AttributionError, match="does not exist; create it"):
        png_destination(tmp_path / "missing" / "a.png")
    run = tmp_path / "run"
    run.mkdir()
    with pytest.raises(AttributionError, match="inside the run folder"):
        png_destination(run / "a.png", protected=run)
    os.chmod(target, 0o444)
    with pytest.raises(AttributionError, match="read-only"):
        png_destination(target, force=True)
    assert sorted(p.name for p in Path(tmp_path).iterdir()) == ["a.png", "run"]
