"""ImageNet classics laid out as torchvision builds them: AlexNet, VGG-11 and VGG-16."""

from __future__ import annotations

from collections.abc import Sequence

from cnnstudio.core.graph import Graph
from cnnstudio.core.templates.base import (
    Builder,
    InputShape,
    Spec,
    Template,
    conv,
    dense,
    dropout,
    flatten,
    output,
    pool,
)

SMALL_SIDE = 64  # below this, AlexNet and VGG switch to their small-image variants
SMALL_ALEXNET_UNITS = 1024
SMALL_VGG_UNITS = 512
VGG_REDUCTION = 32  # five 2×2 poolings

# torchvision's configurations: numbers are 3×3 convolutions, "M" a 2×2 max pooling.
VGG_CONFIGS: dict[str, tuple[int | str, ...]] = {
    "vgg11": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "vgg16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
              512, 512, 512, "M"),
}


def is_small(input_shape: InputShape) -> bool:
    return min(input_shape[1], input_shape[2]) < SMALL_SIDE


def build_alexnet(input_shape: InputShape, classes: int) -> Graph:
    small = is_small(input_shape)
    b = Builder(input_shape)
    if small:
        first = conv("conv1", 64, 3, padding=[1, 1])
    else:
        first = conv("conv1", 64, 11, stride=4, padding=[2, 2])
    units = SMALL_ALEXNET_UNITS if small else 4096
    b.then(
        first,
        pool("pool1", 3, stride=2),
        conv("conv2", 192, 5, padding=[2, 2]),
        pool("pool2", 3, stride=2),
        conv("conv3", 384, 3, padding=[1, 1]),
        conv("conv4", 256, 3, padding=[1, 1]),
        conv("conv5", 256, 3, padding=[1, 1]),
        pool("pool5", 3, stride=2),
        flatten(),
        dropout("drop6", 0.5),
        dense("fc6", units, "relu"),
        dropout("drop7", 0.5),
        dense("fc7", units, "relu"),
        dense("fc8", classes),
        output(),
    )
    return b.graph


def vgg_features(config: Sequence[int | str], pool_padding: str) -> list[Spec]:
    """conv1_1, conv1_2, pool1, conv2_1, ... as the VGG paper numbers them."""
    specs: list[Spec] = []
    stage, index = 1, 1
    for item in config:
        if item == "M":
            specs.append(pool(f"pool{stage}", 2, padding=pool_padding))
            stage, index = stage + 1, 1
        else:
            specs.append(conv(f"conv{stage}_{index}", int(item), 3, padding="same"))
            index += 1
    return specs


def vgg_pool_padding(input_shape: InputShape) -> str:
    """'valid' as torchvision when both sides divide by 32, else 'same' (⌈side/2⌉ per pool)."""
    _, height, width = input_shape
    return "valid" if height % VGG_REDUCTION == 0 and width % VGG_REDUCTION == 0 else "same"


def build_vgg(config_id: str, input_shape: InputShape, classes: int) -> Graph:
    b = Builder(input_shape)
    units = SMALL_VGG_UNITS if is_small(input_shape) else 4096
    b.then(*vgg_features(VGG_CONFIGS[config_id], vgg_pool_padding(input_shape)))
    b.then(
        flatten(),
        dense("fc6", units, "relu"),
        dropout("drop6", 0.5),
        dense("fc7", units, "relu"),
        dropout("drop7", 0.5),
        dense("fc8", classes),
        output(),
    )
    return b.graph


def build_vgg11(input_shape: InputShape, classes: int) -> Graph:
    return build_vgg("vgg11", input_shape, classes)


def build_vgg16(input_shape: InputShape, classes: int) -> Graph:
    return build_vgg("vgg16", input_shape, classes)


_VGG_SMALL = (
    "For small images the classifier shrinks: at 32×32 (CIFAR) five poolings leave a 1×1×512 "
    "map, so below 64 px the two hidden Dense layers have 512 units instead of 4096; when a "
    "side does not divide by 32 (28×28) the poolings use 'same' padding (⌈side/2⌉) so that "
    "the last map is still at least 1×1. torchvision's adaptive 7×7 average pooling is left "
    "out: it is the identity at 224×224, elsewhere the Dense input follows the map size."
)

ALEXNET = Template(
    id="alexnet",
    title="AlexNet",
    description=(
        "AlexNet (Krizhevsky, Sutskever and Hinton, 2012) won the ImageNet challenge by a wide "
        "margin and started the deep-learning era: five convolutions (11×11 stride 4, 5×5, then "
        "three 3×3) with ReLU and overlapping 3×3 stride-2 max pooling, then two Dense layers "
        "of 4096 units with dropout 0.5 and 1000 class scores. It teaches ReLU, dropout, "
        "overlapping pooling and how a large first stride shrinks the image fast. The layout is "
        "torchvision's single-GPU version; 61,100,840 parameters at 3×224×224 with 1000 "
        "classes, exactly as torchvision.models.alexnet. For images under 64 px (MNIST, CIFAR) "
        "a small variant is built instead: a 3×3 stride-1 first convolution with padding 1 and "
        "1024-unit Dense layers (it needs at least 15×15 pixels); at 224×224 torchvision's "
        "adaptive 6×6 average pooling is the identity and is left out."
    ),
    default_input=(3, 224, 224),
    default_classes=1000,
    build=build_alexnet,
)

VGG11 = Template(
    id="vgg11",
    title="VGG-11",
    description=(
        "VGG-11, configuration A of Simonyan and Zisserman (2014), 'Very deep convolutional "
        "networks for large-scale image recognition': eight 3×3 'same' convolutions with ReLU "
        "in five stages of 64, 128, 256, 512 and 512 filters, each stage ending in 2×2 max "
        "pooling, then Dense 4096, Dense 4096 (dropout 0.5 after each) and the class scores. "
        "It teaches that stacked small kernels replace large ones: two 3×3 convolutions see "
        "5×5 with fewer weights and an extra non-linearity. 132,863,336 parameters at "
        "3×224×224 with 1000 classes, as torchvision.models.vgg11 (without batch norm). "
        + _VGG_SMALL
    ),
    default_input=(3, 224, 224),
    default_classes=1000,
    build=build_vgg11,
)

VGG16 = Template(
    id="vgg16",
    title="VGG-16",
    description=(
        "VGG-16, configuration D of Simonyan and Zisserman (2014), runner-up of ImageNet 2014: "
        "thirteen 3×3 'same' convolutions with ReLU (two stages of 2 and three stages of 3, "
        "with 64, 128, 256, 512 and 512 filters), 2×2 max pooling after each stage, then Dense "
        "4096, Dense 4096 (dropout 0.5) and the class scores. Deep, uniform and simple, it is "
        "still a common backbone for transfer learning; note that the first Dense layer alone "
        "holds 102.8 million of its weights. 138,357,544 parameters at 3×224×224 with 1000 "
        "classes, as torchvision.models.vgg16 (without batch norm). " + _VGG_SMALL
    ),
    default_input=(3, 224, 224),
    default_classes=1000,
    build=build_vgg16,
)

TEMPLATES = (ALEXNET, VGG11, VGG16)
