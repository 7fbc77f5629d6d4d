"""Why did the network predict that: Grad-CAM and gradient saliency maps, computed with captum.

    maps = explain(model, images, mean, std, method=GRADCAM)   # one Explanation per image
    maps[0].heat                                               # H×W float32 in [0, 1]
    rgb = overlay(images[0], maps[0].heat, opacity=0.5)        # H×W×3 uint8 for a PNG or view

Grad-CAM (captum's LayerGradCam) weighs a convolution block's output channels by the mean
gradient of the class score and sums them; the map is upsampled to the input size
(LayerAttribution.interpolate, bilinear), ReLU'd (only evidence *for* the class) and divided by
its maximum. Saliency (captum's Saliency) is the absolute gradient of the class score with
respect to each input pixel, the largest over the colour channels, divided by its maximum.

The class score is what the network gives before its softmax: the logit for a network that ends
in class scores, the log-probability when a softmax (or one sigmoid unit) ends it, so that the
explanation does not fade where the network is sure. Images are uint8 C×H×W or N×C×H×W as the
datasets hold them; they are normalised exactly as for prediction (train.inspect.normalise).
The model's mode is restored afterwards and no parameter's `.grad` is touched.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from cnnstudio.core.files import output_refusal, staged_write
from cnnstudio.core.outputs import LOGITS
from cnnstudio.nn.layers import ConvLayer
from cnnstudio.nn.probabilities import class_probabilities, log_class_probabilities
from cnnstudio.train.inspect import normalise

__all__ = [
    "GRADCAM",
    "HEAT_LUT",
    "METHODS",
    "METHOD_NAMES",
    "SALIENCY",
    "AttributionError",
    "Explanation",
    "coarsest_useful",
    "conv_blocks",
    "default_block",
    "enlarged",
    "explain",
    "heat_colours",
    "overlay",
    "png_destination",
    "top_share",
    "write_png",
]

GRADCAM = "gradcam"
SALIENCY = "saliency"
METHODS = (GRADCAM, SALIENCY)
METHOD_NAMES = {GRADCAM: "Grad-CAM", SALIENCY: "Saliency"}
MIN_MAP_SIDE = 7  # the default Grad-CAM block's map is at least this wide (see coarsest_useful)
BATCH = 16  # images explained at a time: gradients keep every activation of the batch alive

# The heat colour scale, low to high: dark blue, blue, cyan, green, yellow, orange, dark red
# (a "jet"-like scale, so a faint map still reads against a grey or black image).
_HEAT_ANCHORS = np.array([
    (0.00, 0, 0, 131), (0.125, 0, 60, 170), (0.375, 5, 255, 255), (0.5, 60, 220, 90),
    (0.625, 255, 255, 0), (0.875, 250, 0, 0), (1.00, 128, 0, 0)], np.float64)
HEAT_LUT = np.stack([np.interp(np.linspace(0.0, 1.0, 256), _HEAT_ANCHORS[:, 0],
                               _HEAT_ANCHORS[:, channel]) for channel in (1, 2, 3)],
                    axis=1).round().astype(np.uint8)


class AttributionError(Exception):
    """A method or block that cannot explain this network; the message says what to choose."""


@dataclass(frozen=True, eq=False)
class Explanation:
    """One image's map: `heat` H×W float32 in [0, 1] (input size), the class it explains,
    the predicted class and the class probabilities. `empty` is True when no pixel speaks for
    the class (Grad-CAM gives only negative evidence): `heat` is all zeros then."""

    heat: np.ndarray
    target: int
    predicted: int
    probabilities: np.ndarray
    method: str
    block_id: str | None

    @property
    def empty(self) -> bool:
        return not bool(self.heat.any())


def conv_blocks(model: nn.Module) -> list[str]:
    """The Conv2D blocks on the way to the main output, in the order the network runs them."""
    blocks = getattr(model, "blocks", {})
    path = getattr(model, "main_path", list(blocks))
    return [block_id for block_id in path if isinstance(blocks[block_id], ConvLayer)]


def coarsest_useful(convs: Sequence[str], map_sizes: Mapping[str, tuple[int, int]]) -> str | None:
    """Of `convs` (in running order), the last one whose map is at least MIN_MAP_SIDE on each
    side, else the last one: Grad-CAM can point no finer than its block's map, and a 3×3 map
    (the Keras-book network's conv3 at 28×28) mostly says "the middle" (measured on 100 digits:
    the digit beat the background 72 times with conv3's 3×3 map, 79 with conv2's 11×11)."""
    for block_id in reversed(convs):
        height, width = map_sizes.get(block_id, (0, 0))
        if min(height, width) >= MIN_MAP_SIDE:
            return block_id
    return convs[-1] if convs else None


def default_block(model: nn.Module, input_shape: Sequence[int] | None = None) -> str | None:
    """The Grad-CAM block when none is chosen: the last convolution before the classifier whose
    map is at least MIN_MAP_SIDE wide for images of `input_shape` (C, H, W), else the last one
    (None without a convolution)."""
    convs = conv_blocks(model)
    if not convs or input_shape is None:
        return convs[-1] if convs else None
    sizes: dict[str, tuple[int, int]] = {}
    hooks = [model.blocks[b].register_forward_hook(  # type: ignore[index, union-attr]
        lambda _m, _i, out, b=b: sizes.__setitem__(b, tuple(out.shape[-2:]))) for b in convs]
    try:
        with _explaining(model), torch.no_grad():  # eval mode, restored after
            model(torch.zeros(1, *input_shape))
    finally:
        for hook in hooks:
            hook.remove()
    return coarsest_useful(convs, sizes)


@contextlib.contextmanager
def _explaining(model: nn.Module) -> Iterator[None]:
    """Evaluation mode with gradients on; the model's mode is restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            yield
    finally:
        model.train(was_training)


class _ClassScores(nn.Module):
    """The model as captum calls it: N×K class scores (the logits, else log-probabilities)."""

    def __init__(self, model: nn.Module, kind: str) -> None:
        super().__init__()
        self.model = model
        self.kind = kind

    def forward(self, x: Tensor) -> Tensor:
        values = self.model(x)
        return values if self.kind == LOGITS else log_class_probabilities(values, self.kind)


def _check(model: nn.Module, method: str, block_id: str | None,
           input_shape: Sequence[int] | None = None) -> str | None:
    if method not in METHODS:
        raise AttributionError(f"unknown method {method!r}; choose "
                               + " or ".join(METHODS))
    if method == SALIENCY:
        return None
    convs = conv_blocks(model)
    if not convs:
        raise AttributionError("this network has no convolution on the way to its output, so "
                               "Grad-CAM has nothing to look at; use saliency instead")
    chosen = block_id if block_id is not None else default_block(model, input_shape)
    if chosen not in convs:
        raise AttributionError(f"{chosen!r} is not a convolution block on the way to the "
                               f"output; choose one of {', '.join(convs)}")
    return chosen


def _normalised_maps(maps: Tensor) -> np.ndarray:
    """N×H×W maps with negatives dropped, each divided by its maximum (an all-zero map stays
    zero)."""
    values = maps.detach().float().clamp_min(0.0)
    peak = values.flatten(1).amax(dim=1).clamp_min(torch.finfo(torch.float32).tiny)
    return (values / peak.view(-1, 1, 1)).cpu().numpy().astype(np.float32)


def _maps(model: nn.Module, x: Tensor, targets: list[int], method: str,
          block_id: str | None, kind: str) -> np.ndarray:
    from captum.attr import LayerAttribution, LayerGradCam, Saliency

    scores = _ClassScores(model, kind)
    if method == GRADCAM:
        assert block_id is not None
        layer = model.blocks[block_id]  # type: ignore[index]
        cam = LayerGradCam(scores, layer).attribute(x.requires_grad_(), target=targets,
                                                    relu_attributions=True)
        upsampled = LayerAttribution.interpolate(cam, tuple(x.shape[2:]), "bilinear")
        return _normalised_maps(upsampled[:, 0])
    gradients = Saliency(scores).attribute(x.requires_grad_(), target=targets, abs=True)
    return _normalised_maps(gradients.amax(dim=1))


def explain(model: nn.Module, images: np.ndarray, mean: Sequence[float] | np.ndarray,
            std: Sequence[float] | np.ndarray, *, method: str = GRADCAM,
            block_id: str | None = None, targets: Sequence[int] | int | None = None,
            kind: str | None = None) -> list[Explanation]:
    """A map per uint8 image (C×H×W or N×C×H×W) for `targets` (one class for all, one per
    image, or None: each image's predicted class). `block_id`: the Conv2D block of Grad-CAM
    (default_block when None); ignored by saliency. `kind` as for train.inspect.predictions.

    Raises AttributionError for an unknown method, a block that is not a convolution on the
    main path, or a class the network does not have."""
    batch = np.asarray(images)
    if batch.ndim == 3:
        batch = batch[None]
    chosen = _check(model, method, block_id, batch.shape[1:])
    if kind is None:
        kind = str(getattr(model, "output_kind", LOGITS))
    explanations: list[Explanation] = []
    with _explaining(model):
        for start in range(0, len(batch), BATCH):
            x = normalise(batch[start:start + BATCH], mean, std)
            with torch.no_grad():
                probabilities = class_probabilities(model(x), kind).cpu().numpy()
            predicted = probabilities.argmax(axis=1)
            wanted = _targets(targets, start, len(x), predicted, probabilities.shape[1])
            heat = _maps(model, x, wanted, method, chosen, kind)
            explanations.extend(
                Explanation(heat[i], wanted[i], int(predicted[i]), probabilities[i], method,
                            chosen) for i in range(len(x)))
    return explanations


def _targets(targets: Sequence[int] | int | None, start: int, count: int,
             predicted: np.ndarray, classes: int) -> list[int]:
    if targets is None:
        wanted = [int(k) for k in predicted]
    elif isinstance(targets, (int, np.integer)):
        wanted = [int(targets)] * count
    else:
        wanted = [int(k) for k in list(targets)[start:start + count]]
        if len(wanted) != count:
            raise AttributionError(f"{len(list(targets))} classes given for more images; give "
                                   "one class per image or a single class")
    bad = [k for k in wanted if not 0 <= k < classes]
    if bad:
        raise AttributionError(f"class {bad[0]} does not exist: the network has {classes} "
                               f"classes, numbered 0 to {classes - 1}")
    return wanted


def top_share(heat: np.ndarray, fraction: float = 0.2) -> float:
    """The share of the map's mass in its brightest `fraction` of pixels (1.0: all of it in
    that many pixels; about `fraction` for a flat map; 0.0 for an empty map)."""
    values = np.sort(np.asarray(heat, np.float64).reshape(-1))[::-1]
    total = float(values.sum())
    if total <= 0.0 or values.size == 0:
        return 0.0
    count = max(1, int(round(fraction * values.size)))
    return float(values[:count].sum() / total)


def heat_colours(heat: np.ndarray) -> np.ndarray:
    """H×W values in [0, 1] as H×W×3 uint8 colours of HEAT_LUT."""
    index = np.clip(np.rint(np.asarray(heat, np.float32) * 255.0), 0, 255).astype(np.uint8)
    return HEAT_LUT[index]


def overlay(image: np.ndarray, heat: np.ndarray, opacity: float = 0.5) -> np.ndarray:
    """The image (uint8 C×H×W: grey, RGB or RGBA) with the coloured map over it: H×W×3 uint8,
    `opacity` 0 (the image alone) to 1 (the map alone)."""
    chw = np.asarray(image)
    rgb = np.repeat(chw[:1], 3, axis=0) if chw.shape[0] < 3 else chw[:3]
    base = np.moveaxis(rgb, 0, -1).astype(np.float32)
    if base.shape[:2] != np.asarray(heat).shape:
        raise ValueError(f"the map is {np.asarray(heat).shape}, the image {base.shape[:2]}")
    alpha = float(np.clip(opacity, 0.0, 1.0))
    mixed = (1.0 - alpha) * base + alpha * heat_colours(heat).astype(np.float32)
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


def enlarged(rgb: np.ndarray, minimum: int = 224) -> np.ndarray:
    """An H×W×3 image repeated by a whole factor until its longer side is at least `minimum`
    pixels (a 28×28 digit becomes 224×224 with sharp pixels); larger images stay as they are."""
    side = max(rgb.shape[0], rgb.shape[1], 1)
    factor = max(1, -(-int(minimum) // side))
    return np.repeat(np.repeat(rgb, factor, axis=0), factor, axis=1)


def png_destination(path: str | Path, *, force: bool = False,
                    protected: Path | None = None) -> Path:
    """The PNG file to write, refused early (AttributionError, saying what to do): a folder or
    special file, a read-only file, a missing folder, a path inside `protected` (a run folder,
    whose files stay as training wrote them) and, without `force`, any existing file."""
    target = Path(path).expanduser()
    refusal = output_refusal(target, overwrite=force, protected=protected,
                             force_hint="add --force")
    if refusal is not None:
        raise AttributionError(refusal)
    return target


def write_png(rgb: np.ndarray, path: str | Path, *, force: bool = False,
              protected: Path | None = None) -> Path:
    """Write an H×W×3 uint8 image as a PNG file, refused as png_destination says; the file
    appears whole or not at all."""
    from PIL import Image

    target = png_destination(path, force=force, protected=protected)
    with staged_write(target) as temp:
        Image.fromarray(np.ascontiguousarray(rgb, np.uint8), "RGB").save(temp, format="PNG")
    return target
