"""Inception networks: GoogLeNet (v1), a small GoogLeNet for CIFAR and one Inception v3 module.

Each Inception block is a collapsed module ("inception (3a)") with a definition of its own,
as each has its own filter counts (core/modules.py); the graph itself stays flat. Built, a
network is laid out with each module as one card (`Builder.compact`), its blocks inside as
the builder placed them.
"""

from __future__ import annotations

from cnnstudio.core.graph import Graph
from cnnstudio.core.modules import make_module
from cnnstudio.core.templates.base import (
    STEP_X,
    Builder,
    InputShape,
    Spec,
    Template,
    concat,
    conv,
    dense,
    dropout,
    flatten,
    global_pool,
    lrn,
    output,
    pool,
)

GOOGLENET_SMALL_SIDE = 96  # below this GoogLeNet gets a stride-1 stem without its first pooling
AUX_COLUMN = 3 * STEP_X  # auxiliary heads run in a column right of the widest module
AUX_WINDOW = 5
AUX_STRIDE = 3

# Table 1 of Szegedy et al. (2014): #1×1, #3×3 reduce, #3×3, #5×5 reduce, #5×5, pool proj.
GOOGLENET_MODULES: dict[str, tuple[int, int, int, int, int, int]] = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}

SMALL_MODULES: dict[str, tuple[int, int, int, int, int, int]] = {
    "3a": (32, 48, 64, 8, 16, 16),
    "3b": (64, 64, 96, 16, 32, 32),
    "4a": (96, 64, 128, 16, 32, 32),
    "4b": (128, 96, 160, 24, 48, 48),
}


def _as_module(b: Builder, first: int, name: str) -> str:
    """The blocks added since the graph had `first` blocks become one collapsed module with a
    definition of its own; returns the last block's id."""
    make_module(b.graph, [block.id for block in b.graph.blocks[first:]], name, collapsed=True)
    return b.last


def inception_v1(b: Builder, module: str, sizes: tuple[int, int, int, int, int, int]) -> str:
    """Inception module `module` ("3a"): four branches (1×1; 1×1 → 3×3; 1×1 → 5×5; 3×3 max
    pool → 1×1), concatenated; blocks "inception_3a/…", grouped as module "inception (3a)"."""
    n1, r3, n3, r5, n5, proj = sizes
    name, first = f"inception_{module}", len(b.graph)
    b.branches(
        [
            [conv(f"{name}/1x1", n1, 1)],
            [conv(f"{name}/3x3_reduce", r3, 1), conv(f"{name}/3x3", n3, 3, padding="same")],
            [conv(f"{name}/5x5_reduce", r5, 1), conv(f"{name}/5x5", n5, 5, padding="same")],
            [
                pool(f"{name}/pool", 3, stride=1, padding="same"),
                conv(f"{name}/pool_proj", proj, 1),
            ],
        ],
        concat(f"{name}/output"),
    )
    return _as_module(b, first, f"inception ({module})")


def aux_head(
    b: Builder, source: str, name: str, classes: int, *, filters: int, units: int
) -> str:
    """Auxiliary classifier: 5×5/3 average pool, 1×1 conv, Dense, dropout 0.7, class scores.

    On maps smaller than 5×5 the pooling window shrinks to the map so that the head still fits.
    """
    _, height, width = b.shape(source)
    window = [min(AUX_WINDOW, height), min(AUX_WINDOW, width)]
    specs: list[Spec] = [
        pool(f"{name}/ave_pool", window, stride=AUX_STRIDE, mode="average"),
        conv(f"{name}/conv", filters, 1),
        flatten(f"{name}/flatten"),
        dense(f"{name}/fc", units, "relu"),
        dropout(f"{name}/drop_fc", 0.7),
        dense(f"{name}/classifier", classes),
        output(f"{name}/output", loss_weight=0.3, auxiliary=True),
    ]
    return b.side(source, specs, AUX_COLUMN)


def build_googlenet(input_shape: InputShape, classes: int) -> Graph:
    b = Builder(input_shape)
    if min(input_shape[1], input_shape[2]) >= GOOGLENET_SMALL_SIDE:
        b.then(
            conv("conv1/7x7_s2", 64, 7, stride=2, padding="same"),
            pool("pool1/3x3_s2", 3, stride=2, padding="same"),
            lrn("pool1/norm1"),
        )
    else:
        b.then(conv("conv1/3x3_s1", 64, 3, padding="same"), lrn("conv1/norm1"))
    b.then(
        conv("conv2/3x3_reduce", 64, 1),
        conv("conv2/3x3", 192, 3, padding="same"),
        lrn("conv2/norm2"),
        pool("pool2/3x3_s2", 3, stride=2, padding="same"),
    )
    for module in ("3a", "3b"):
        inception_v1(b, module, GOOGLENET_MODULES[module])
    b.then(pool("pool3/3x3_s2", 3, stride=2, padding="same"))
    for module in ("4a", "4b", "4c", "4d", "4e"):
        end = inception_v1(b, module, GOOGLENET_MODULES[module])
        if module in ("4a", "4d"):
            head = "loss1" if module == "4a" else "loss2"
            aux_head(b, end, head, classes, filters=128, units=1024)
    b.then(pool("pool4/3x3_s2", 3, stride=2, padding="same"))
    for module in ("5a", "5b"):
        inception_v1(b, module, GOOGLENET_MODULES[module])
    b.then(
        global_pool("pool5/global_avg"),
        dropout("pool5/drop", 0.4),
        dense("loss3/classifier", classes),
        output("output", loss_weight=1.0),
    )
    return b.compact()


def build_inception_small(input_shape: InputShape, classes: int) -> Graph:
    b = Builder(input_shape)
    b.then(
        conv("conv1/3x3", 32, 3, padding="same"),
        conv("conv2/3x3", 64, 3, padding="same"),
        pool("pool1/3x3_s2", 3, stride=2, padding="same"),
    )
    for module in ("3a", "3b"):
        inception_v1(b, module, SMALL_MODULES[module])
    b.then(pool("pool2/3x3_s2", 3, stride=2, padding="same"))
    end = inception_v1(b, "4a", SMALL_MODULES["4a"])
    aux_head(b, end, "aux", classes, filters=64, units=256)
    inception_v1(b, "4b", SMALL_MODULES["4b"])
    b.then(
        global_pool("global_avg"),
        dropout("drop", 0.4),
        dense("classifier", classes),
        output("output", loss_weight=0.7),
    )
    return b.compact()


def inception_v3_module(b: Builder, name: str, mid: int = 128, out: int = 192) -> str:
    """Figure 6 of Szegedy et al. (2015) with n = 7: 7×7 convolutions factorised as 1×7, 7×1;
    grouped as the module "<name> (v3)"."""
    same = "same"
    first = len(b.graph)
    b.branches(
        [
            [conv(f"{name}/1x1", out, 1)],
            [
                conv(f"{name}/7x7_reduce", mid, 1),
                conv(f"{name}/7x7_1x7", mid, (1, 7), padding=same),
                conv(f"{name}/7x7_7x1", out, (7, 1), padding=same),
            ],
            [
                conv(f"{name}/7x7dbl_reduce", mid, 1),
                conv(f"{name}/7x7dbl_7x1a", mid, (7, 1), padding=same),
                conv(f"{name}/7x7dbl_1x7a", mid, (1, 7), padding=same),
                conv(f"{name}/7x7dbl_7x1b", mid, (7, 1), padding=same),
                conv(f"{name}/7x7dbl_1x7b", out, (1, 7), padding=same),
            ],
            [
                pool(f"{name}/pool", 3, stride=1, mode="average", padding=same),
                conv(f"{name}/pool_proj", out, 1),
            ],
        ],
        concat(f"{name}/output"),
    )
    return _as_module(b, first, f"{name} (v3)")


def build_inception_v3_module(input_shape: InputShape, classes: int) -> Graph:
    b = Builder(input_shape)
    b.then(
        conv("conv1/3x3", 64, 3, padding="same"),
        pool("pool1/3x3_s2", 3, stride=2, padding="same"),
        conv("conv2/3x3", 192, 3, padding="same"),
        pool("pool2/3x3_s2", 3, stride=2, padding="same"),
    )
    inception_v3_module(b, "inception")
    b.then(
        global_pool("global_avg"),
        dense("classifier", classes),
        output("output"),
    )
    return b.compact()


GOOGLENET = Template(
    id="googlenet",
    title="GoogLeNet (Inception v1)",
    description=(
        "GoogLeNet, the Inception v1 network of Szegedy et al. (2014), 'Going deeper with "
        "convolutions', winner of ImageNet 2014, built as table 1 of the paper: a stem of "
        "convolutions, max pooling and local response normalisation, nine Inception modules "
        "(3a to 5b) and global average pooling instead of large Dense layers. Each module runs "
        "1×1, 3×3 and 5×5 convolutions and a 3×3 max pooling side by side and concatenates "
        "them; 1×1 'reduce' convolutions shrink the channels first so that the 5×5 stays "
        "cheap. Two auxiliary classifiers after 4a and 4d feed the loss with weight 0.3 each "
        "during training to help gradients reach the early layers; they are dropped for "
        "prediction. 13,378,280 parameters at 3×224×224 with 1000 classes, of which 6,998,552 "
        "in the main network (the paper's '12 times fewer than AlexNet') and 6,379,728 in the "
        "two auxiliary heads. Below 96 px the stem is a 3×3 stride-1 convolution without the "
        "first pooling, and auxiliary pooling windows shrink to the map where it is under 5×5."
    ),
    default_input=(3, 224, 224),
    default_classes=1000,
    build=build_googlenet,
)

INCEPTION_SMALL = Template(
    id="inception-small",
    title="Small Inception (CIFAR)",
    description=(
        "A small GoogLeNet for 32×32 colour images such as CIFAR-10: a stem of two 3×3 "
        "convolutions and a max pooling, four Inception modules (3a, 3b, 4a, 4b) with 1×1 "
        "reductions before the 3×3 and 5×5 convolutions, one auxiliary classifier after 4a, "
        "global average pooling and the class scores. It trains in minutes and shows the ideas "
        "of Inception v1 at a size a laptop can handle. The training loss follows the course "
        "notes: Loss = 0.7·Loss_end + 0.3·Loss_aux (main Output weight 0.7, auxiliary Output "
        "weight 0.3); the auxiliary head only helps training and is dropped for prediction. "
        "624,996 parameters at 3×32×32 with 10 classes (86,858 of them in the auxiliary head)."
    ),
    default_input=(3, 32, 32),
    default_classes=10,
    build=build_inception_small,
)

INCEPTION_V3_MODULE = Template(
    id="inception-v3-module",
    title="Inception v3 module (factorised 7×7)",
    description=(
        "One Inception v3 module (Szegedy et al. 2015, 'Rethinking the Inception architecture', "
        "figure 6 with n = 7), wrapped in a small trainable network: a stem of two 3×3 "
        "convolutions with max pooling, the module, global average pooling and the class "
        "scores. The module factorises 7×7 convolutions into a 1×7 followed by a 7×1: both "
        "together see a 7×7 window but need 7 + 7 = 14 weights per input-output channel pair "
        "instead of 7·7 = 49, i.e. 14/49 ≈ 29 % of the cost, with an extra non-linearity in "
        "between. Its four branches (1×1; 1×1 → 1×7 → 7×1; 1×1 → 7×1 → 1×7 → 7×1 → 1×7; 3×3 "
        "average pooling → 1×1) give 4 × 192 = 768 channels. 1,047,498 parameters at 3×32×32 "
        "with 10 classes."
    ),
    default_input=(3, 32, 32),
    default_classes=10,
    build=build_inception_v3_module,
)

TEMPLATES = (GOOGLENET, INCEPTION_SMALL, INCEPTION_V3_MODULE)
