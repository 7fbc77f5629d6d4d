"""Batched augmentation: every image its own random draw, shapes and value range kept."""

from __future__ import annotations

import pytest
import torch

from cnnstudio.train.augment import AUGMENTATIONS, AugmentConfig, augment_batch


def seeded(seed: int = 0) -> torch.Generator:
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


def asymmetric(n: int, channels: int = 1, side: int = 8) -> torch.Tensor:
    """n copies of an image that differs from its mirror image: a ramp from left to right."""
    ramp = torch.linspace(0.05, 0.95, side).expand(side, side)
    return ramp.expand(n, channels, side, side).clone()


def colour_batch(n: int, side: int = 6) -> torch.Tensor:
    """n copies of an image whose three channels are clearly different constants."""
    x = torch.empty(n, 3, side, side)
    x[:, 0], x[:, 1], x[:, 2] = 0.9, 0.5, 0.1
    return x


def test_no_augmentation_is_the_identity():
    x = torch.rand(4, 3, 10, 10, generator=seeded())
    config = AugmentConfig.from_names([])
    assert not config.active
    out = augment_batch(x, config, seeded())
    assert torch.equal(out, x)


@pytest.mark.parametrize("names", [["rotate"], ["translate"], ["scale"],
                                   ["rotate", "translate", "scale", "flip"]])
def test_each_image_gets_its_own_draw(names):
    x = torch.rand(1, 1, 16, 16, generator=seeded(3)).expand(8, 1, 16, 16).clone()
    out = augment_batch(x, AugmentConfig.from_names(names), seeded())
    assert out.shape == x.shape
    different = {(i, j) for i in range(8) for j in range(i + 1, 8)
                 if not torch.allclose(out[i], out[j])}
    assert len(different) == 8 * 7 // 2  # no two images transformed alike


def test_flip_only_mirrors_about_half_the_batch_exactly():
    n = 200
    x = asymmetric(n)
    out = augment_batch(x, AugmentConfig.from_names(["flip"]), seeded())
    flipped = torch.tensor([torch.equal(out[i], x[i].flip(-1)) for i in range(n)])
    kept = torch.tensor([torch.equal(out[i], x[i]) for i in range(n)])
    assert bool((flipped ^ kept).all())  # each image exactly mirrored or exactly unchanged
    assert 0.35 * n <= int(flipped.sum()) <= 0.65 * n


def test_flip_with_a_geometric_change_mirrors_too():
    x = asymmetric(200, side=16)
    config = AugmentConfig(flip=0.5, rotate=1.0)
    out = augment_batch(x, config, seeded())
    # the ramp rises left to right; mirrored images fall: the sign of the slope shows the flip
    slope = (out[..., 4:12, 12] - out[..., 4:12, 3]).mean(dim=(1, 2))
    falling = int((slope < 0).sum())
    assert 0.35 * 200 <= falling <= 0.65 * 200


@pytest.mark.parametrize("names", [["flip"], ["rotate"], ["translate"], ["scale"],
                                   ["channel_permute"], ["grayscale"], list(AUGMENTATIONS)])
def test_shape_and_value_range_are_kept(names):
    x = torch.rand(16, 3, 12, 12, generator=seeded(1))
    out = augment_batch(x, AugmentConfig.from_names(names), seeded())
    assert out.shape == x.shape and out.dtype == x.dtype
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def test_geometric_changes_keep_the_picture():
    # a small rotation keeps most of a smooth image close to the original
    x = asymmetric(32, side=28)
    out = augment_batch(x, AugmentConfig.from_names(["rotate"]), seeded())
    centre = (slice(None), slice(None), slice(8, 20), slice(8, 20))
    assert float((out[centre] - x[centre]).abs().max()) < 0.2


def test_channel_permute_permutes_per_sample():
    n = 60
    x = colour_batch(n)
    out = augment_batch(x, AugmentConfig.from_names(["channel_permute"]), seeded())
    orders = set()
    for i in range(n):
        values = tuple(round(float(out[i, c, 0, 0]), 3) for c in range(3))
        assert sorted(values) == [0.1, 0.5, 0.9]  # a permutation of the channels
        for c in range(3):  # each channel stays a whole channel
            assert torch.all(out[i, c] == out[i, c, 0, 0])
        orders.add(values)
    assert len(orders) == 6  # all six orders occur in 60 draws


def test_channel_permute_leaves_grey_images_alone():
    x = torch.rand(5, 1, 6, 6, generator=seeded())
    out = augment_batch(x, AugmentConfig.from_names(["channel_permute"]), seeded())
    assert torch.equal(out, x)


def test_grayscale_turns_about_a_fifth_grey():
    n = 400
    x = colour_batch(n)
    out = augment_batch(x, AugmentConfig.from_names(["grayscale"]), seeded())
    grey = torch.tensor([torch.allclose(out[i, 0], out[i, 1]) and torch.allclose(out[i, 1],
                                                                               out[i, 2])
                        for i in range(n)])
    untouched = torch.tensor([torch.equal(out[i], x[i]) for i in range(n)])
    assert bool((grey ^ untouched).all())
    assert 0.12 * n <= int(grey.sum()) <= 0.28 * n
    luma = 0.299 * 0.9 + 0.587 * 0.5 + 0.114 * 0.1
    assert float(out[grey][:, 0].mean()) == pytest.approx(luma, rel=1e-5)


def test_the_same_seed_gives_the_same_batch_and_another_seed_does_not():
    x = torch.rand(8, 3, 12, 12, generator=seeded(5))
    config = AugmentConfig.from_names(list(AUGMENTATIONS))
    first = augment_batch(x, config, seeded(7))
    assert torch.equal(first, augment_batch(x, config, seeded(7)))
    assert not torch.equal(first, augment_batch(x, config, seeded(8)))


def test_the_input_batch_is_not_modified():
    x = torch.rand(8, 3, 12, 12, generator=seeded(5))
    copy = x.clone()
    augment_batch(x, AugmentConfig.from_names(list(AUGMENTATIONS)), seeded())
    assert torch.equal(x, copy)


def test_from_names_defaults_and_unknown_names():
    config = AugmentConfig.from_names(["flip", "rotate", "translate", "scale",
                                       "channel_permute", "grayscale"])
    assert config == AugmentConfig(flip=0.5, rotate=10.0, translate=0.1, scale=(0.9, 1.1),
                                   channel_permute=True, grayscale=0.2)
    assert config.geometric and config.active
    assert not AugmentConfig.from_names(["flip"]).geometric
    with pytest.raises(ValueError, match="unknown augmentation 'blur'.*flip"):
        AugmentConfig.from_names(["flip", "blur"])
