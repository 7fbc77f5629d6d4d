"""Batched, per-sample data augmentation on the training device.

torchvision's v2 transforms, given a batch, draw ONE random parameter set for the whole
batch. Here every image gets its own draw, and the whole batch is transformed with a handful
of tensor operations: one affine_grid + grid_sample for flip, rotation, translation and scale
together, a gather for channel permutation, a where for grey-scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor

AUGMENTATIONS = ("flip", "translate", "rotate", "scale", "channel_permute", "grayscale")
LUMA = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class AugmentConfig:
    flip: float = 0.0  # probability of a horizontal flip
    rotate: float = 0.0  # maximum rotation, degrees either way
    translate: float = 0.0  # maximum shift, as a fraction of the side either way
    scale: tuple[float, float] = (1.0, 1.0)
    channel_permute: bool = False
    grayscale: float = 0.0  # probability of converting a colour image to grey

    @classmethod
    def from_names(cls, names: Iterable[str]) -> AugmentConfig:
        """The defaults behind each name: flip ½, rotate ±10°, translate ±10 %, scale 0.9–1.1."""
        chosen = set(names)
        unknown = chosen.difference(AUGMENTATIONS)
        if unknown:
            raise ValueError(
                f"unknown augmentation {sorted(unknown)[0]!r}; use {', '.join(AUGMENTATIONS)}"
            )
        return cls(
            flip=0.5 if "flip" in chosen else 0.0,
            rotate=10.0 if "rotate" in chosen else 0.0,
            translate=0.1 if "translate" in chosen else 0.0,
            scale=(0.9, 1.1) if "scale" in chosen else (1.0, 1.0),
            channel_permute="channel_permute" in chosen,
            grayscale=0.2 if "grayscale" in chosen else 0.0,
        )

    @property
    def geometric(self) -> bool:
        return bool(self.rotate or self.translate or self.scale != (1.0, 1.0))

    @property
    def active(self) -> bool:
        return bool(self.flip or self.geometric or self.channel_permute or self.grayscale)


def _uniform(n: int, low: float, high: float, generator: torch.Generator, device) -> Tensor:
    return torch.rand(n, generator=generator, device=device) * (high - low) + low


def augment_batch(x: Tensor, config: AugmentConfig, generator: torch.Generator) -> Tensor:
    """Augment a float batch (B, C, H, W) of values in [0, 1]; each image its own draw."""
    if not config.active:
        return x
    n, channels = x.shape[0], x.shape[1]
    device = x.device
    if config.geometric:
        x = _affine(x, config, generator)
    elif config.flip:
        flip = torch.rand(n, generator=generator, device=device) < config.flip
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    if config.channel_permute and channels > 1:
        order = torch.rand(n, channels, generator=generator, device=device).argsort(dim=1)
        x = x.gather(1, order[:, :, None, None].expand_as(x))
    if config.grayscale and channels == 3:
        weights = torch.tensor(LUMA, device=device, dtype=x.dtype)[None, :, None, None]
        grey = (x * weights).sum(dim=1, keepdim=True).expand_as(x)
        pick = torch.rand(n, generator=generator, device=device) < config.grayscale
        x = torch.where(pick[:, None, None, None], grey, x)
    return x


def _affine(x: Tensor, config: AugmentConfig, generator: torch.Generator) -> Tensor:
    """Flip, rotation, translation and scale in one resampling; zeros fill the corners."""
    n, device = x.shape[0], x.device
    angle = _uniform(n, -config.rotate, config.rotate, generator, device) * (math.pi / 180)
    scale = _uniform(n, config.scale[0], config.scale[1], generator, device)
    # affine_grid coordinates span [-1, 1]: a shift of fraction f of the side is 2f
    shift = _uniform(2 * n, -2 * config.translate, 2 * config.translate, generator, device)
    mirror = torch.ones(n, device=device)
    if config.flip:
        flips = torch.rand(n, generator=generator, device=device) < config.flip
        mirror = torch.where(flips, -mirror, mirror)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [
            torch.stack([cos * mirror, -sin, shift[:n]], dim=1),
            torch.stack([sin * mirror, cos, shift[n:]], dim=1),
        ],
        dim=1,
    ).to(x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
