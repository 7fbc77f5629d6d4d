"""The lab on a trained network: a run's Conv2D blocks as LearnedConv (cnnstudio.lab.learned)
and the real input of each, computed with the run's own model.

    network = open_run("runs/2026-05-01_14-03-07")
    conv = learned_conv(network, block_id)                 # weights, bias, settings (NumPy)
    x = block_input(network, block_id, image)              # what the block reads for this image
    maps = learned.filter_output(conv, x, f)               # == the model's channel f

`image` is uint8 C×H×W in the network's input shape (network_image reads a file that way, as the
datasets read theirs). Used by the lab page and by `cnnstudio kernels`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import nn

from cnnstudio.core.analysis import analyze
from cnnstudio.core.graph import Graph
from cnnstudio.core.registry import get as block_type
from cnnstudio.lab.learned import LearnedConv
from cnnstudio.nn.build import GraphModel
from cnnstudio.train.inspect import (
    InspectionError,
    activations,
    conv_filters,
    load_image_file,
    read_run,
)

__all__ = ["TrainedNetwork", "block_input", "block_output", "conv_blocks",
           "learned_conv", "maps_picture", "write_maps_png",
           "network_image", "open_run", "sample_digits"]


@dataclass(eq=False)
class TrainedNetwork:
    """A trained model with what the lab needs around it. `name` names it ('run
    2026-05-01_14-03-07'); `weights` says where the weights come from, after the word
    'Weights' ('from run 2026-05-01_14-03-07', 'after epoch 3 of the current run')."""

    model: GraphModel
    graph: Graph
    mean: np.ndarray
    std: np.ndarray
    input_shape: tuple[int, int, int]
    name: str
    weights: str
    run_dir: Path | None = None


def open_run(run_dir: str | Path) -> TrainedNetwork:
    """A finished (or stopped) run folder's network and weights; InspectionError says what is
    missing and what to do."""
    folder = Path(run_dir).expanduser()
    if not folder.is_dir():
        why = "it is a file" if folder.exists() else "it does not exist"
        raise InspectionError(f"cannot open the run '{folder}': {why}; choose the folder of a "
                              "training run (it holds project.cnnproj, data.json and model.pt)")
    contents = read_run(folder, load_data=False)
    return TrainedNetwork(contents.model, contents.project.graph,
                          np.asarray(contents.mean, np.float32),
                          np.asarray(contents.std, np.float32),
                          tuple(int(v) for v in contents.input_shape),  # type: ignore[arg-type]
                          f"run {folder.name}", f"from run {folder.name}", folder)


def conv_blocks(network: TrainedNetwork) -> list[tuple[str, str]]:
    """(block id, 'conv2d_1 · 32 filters 3×3') of every Conv2D, in the network's order."""
    analysis = analyze(network.graph)
    shown = []
    for block_id in analysis.order:
        block = network.graph.block(block_id)
        if block.type != "Conv2D" or block_id not in network.model.blocks:
            continue
        conv = network.model.blocks[block_id].conv
        kh, kw = conv.kernel_size
        shown.append((block_id, f"{block.name} · {conv.out_channels} filters {kh}×{kw}"))
    return shown


def learned_conv(network: TrainedNetwork, block_id: str) -> LearnedConv:
    """The block's learned kernels and bias (float64) with its stride, padding, dilation,
    groups and fused activation, as the model uses them."""
    weights = conv_filters(network.model, block_id).astype(np.float64)
    layer = network.model.blocks[block_id]
    conv: nn.Conv2d = layer.conv
    block = network.graph.block(block_id)
    params = block_type(block.type).normalize(block.params)[0]
    bias = (conv.bias.detach().cpu().double().numpy().copy() if conv.bias is not None
            else np.zeros(conv.out_channels))
    padding = params["padding"]
    return LearnedConv(
        block_id=block_id,
        name=block.name,
        weights=weights,
        bias=bias,
        has_bias=conv.bias is not None,
        stride=(int(conv.stride[0]), int(conv.stride[1])),
        padding=padding if isinstance(padding, str) else (int(padding[0]), int(padding[1])),
        dilation=(int(conv.dilation[0]), int(conv.dilation[1])),
        groups=int(conv.groups),
        activation=str(params["activation"]),
        in_channels=int(conv.in_channels),
    )


def network_image(network: TrainedNetwork, path: str | Path) -> np.ndarray:
    """An image file as this network takes it (uint8 C×H×W); ImageFileError otherwise."""
    return load_image_file(path, network.input_shape)


def sample_digits(network: TrainedNetwork, count: int = 20) -> tuple[np.ndarray, list[str]]:
    """The first `count` validation images of the bundled MNIST sample in the network's input
    shape (uint8 N×C×H×W) and their classes, for networks that read digits."""
    from cnnstudio.train.data import load_dataset

    data = load_dataset("mnist-sample", network.input_shape)
    labels = [data.classes[int(y)] for y in data.val_y[:count]]
    return np.ascontiguousarray(data.val_x[:count]), labels


def _source_of(network: TrainedNetwork, block_id: str) -> str:
    sources = network.model.sources.get(block_id)
    if not sources:
        raise KeyError(f"no block with id {block_id!r} in this model")
    return sources[0]


def block_input(network: TrainedNetwork, block_id: str, image: np.ndarray) -> np.ndarray:
    """What the block reads for this image (float64 C×H×W): the normalised image for a first
    convolution, else the output of the block feeding it, from the run's own model."""
    source = _source_of(network, block_id)
    values = activations(network.model, image, [source], network.mean, network.std)
    return values[source].astype(np.float64)


def block_output(network: TrainedNetwork, block_id: str, image: np.ndarray) -> np.ndarray:
    """The model's own output of the block for this image (float32 C×H×W)."""
    return activations(network.model, image, [block_id], network.mean, network.std)[block_id]


MAP_TILE = 64  # the PNG shows each map at least this many pixels wide (whole multiples)
MAP_GAP = 4


def maps_picture(maps: np.ndarray) -> np.ndarray:
    """C×H×W maps as one uint8 grey grid picture: each map stretched from its own minimum
    (black) to its maximum (white), enlarged by a whole factor, gaps between them."""
    channels, height, width = maps.shape
    columns = int(np.ceil(np.sqrt(channels)))
    rows = -(-channels // columns)
    zoom = max(1, MAP_TILE // max(height, width))
    th, tw = height * zoom, width * zoom
    picture = np.full((rows * (th + MAP_GAP) + MAP_GAP, columns * (tw + MAP_GAP) + MAP_GAP),
                      128, np.uint8)
    for k in range(channels):
        values = np.nan_to_num(np.asarray(maps[k], np.float64))
        low, high = float(values.min()), float(values.max())
        scaled = (values - low) / (high - low) if high > low else np.zeros_like(values)
        tile = np.kron(np.rint(scaled * 255).astype(np.uint8), np.ones((zoom, zoom), np.uint8))
        top = MAP_GAP + (k // columns) * (th + MAP_GAP)
        left = MAP_GAP + (k % columns) * (tw + MAP_GAP)
        picture[top:top + th, left:left + tw] = tile
    return picture


def write_maps_png(maps: np.ndarray, path: str | Path) -> tuple[int, int]:
    """Write maps_picture(maps) as a PNG (atomically); returns its (width, height)."""
    from PIL import Image

    from cnnstudio.core.files import staged_write

    picture = Image.fromarray(maps_picture(maps), mode="L")
    with staged_write(path, mode=0o644) as temp:
        picture.save(temp, format="PNG")
    return picture.size
