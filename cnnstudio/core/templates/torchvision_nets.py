"""Five torchvision networks block for block: ResNet-18/50, MobileNetV2, SqueezeNet 1.1, VGG-11-BN.

Every block is named after the torchvision module it stands for ("layer1.0.conv1",
"features.1.conv.0.0", "classifier.1"), so torchvision's ImageNet weights map onto the graph by
name (cnnstudio.nn.module_weights); blocks without a torch module (an Add for "+", a ReLU
applied again, Flatten for torch.flatten) get descriptive names ("layer1.0.add",
"layer1.0.relu_2"). Layers, order, padding, bias and BatchNorm settings are torchvision's, so a
graph at 3×224×224 with 1000 classes computes what torchvision's model computes. Positions come
from the automatic layered layout. Each BasicBlock, Bottleneck and InvertedResidual is a
collapsed module ("layer1.0", "features.3"); blocks that are the same (types, parameters and
wires) share one definition ("BasicBlock 64→64"), so a shared edit changes all of them. The
network is then laid out again with each module as one card (`Builder.compact`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cnnstudio.core.graph import Graph
from cnnstudio.core.layout import layered_layout
from cnnstudio.core.modules import make_module
from cnnstudio.core.templates.base import Builder, InputShape, Spec, Template
from cnnstudio.core.templates.imagenet import VGG_CONFIGS, vgg_pool_padding

BN_MOMENTUM, BN_EPS = 0.1, 1e-5  # torch.nn.BatchNorm2d's defaults, which torchvision keeps
RESNET_WIDTHS = (64, 128, 256, 512)
RESNET_STAGES = {"resnet18": ("basic", (2, 2, 2, 2)), "resnet50": ("bottleneck", (3, 4, 6, 3))}
BOTTLENECK_EXPANSION = 4
# MobileNetV2 (Sandler et al. 2018, table 2): expansion t, channels c, repeats n, stride s.
MOBILENET_V2_SETTING = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                        (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
MOBILENET_V2_STEM, MOBILENET_V2_LAST = 32, 1280
# SqueezeNet 1.1's features: "M" a 3×3 stride-2 max pooling (ceil mode), else a Fire module
# (squeeze, expand 1×1, expand 3×3).
SQUEEZENET_1_1 = ("M", (16, 64, 64), (16, 64, 64), "M", (32, 128, 128), (32, 128, 128), "M",
                  (48, 192, 192), (48, 192, 192), (64, 256, 256), (64, 256, 256))
SQUEEZENET_MIN_SIDE = 17  # smaller images leave nothing for the third pooling
VGG_POOLED = (7, 7)  # torchvision's adaptive average pooling in front of the classifier


# -- block specs ------------------------------------------------------------------------------


def _pair(value: int | Sequence[int]) -> list[int]:
    if isinstance(value, int):
        return [value, value]
    first, second = value
    return [int(first), int(second)]


def conv(
    name: str,
    filters: int,
    kernel: int,
    *,
    stride: int = 1,
    padding: int = 0,
    bias: bool = True,
    activation: str = "none",
    depthwise: bool = False,
) -> Spec:
    """nn.Conv2d(…, kernel, stride, padding, bias); `depthwise`: groups = channels."""
    params: dict[str, Any] = {
        "filters": filters,
        "kernel": _pair(kernel),
        "stride": _pair(stride),
        "padding": _pair(padding) if padding else "valid",
        "bias": bias,
        "activation": activation,
    }
    if depthwise:
        params["depthwise"] = True
    return ("Conv2D", params, name)


def batchnorm(name: str) -> Spec:
    return ("BatchNorm", {"momentum": BN_MOMENTUM, "eps": BN_EPS}, name)


def activation(name: str, function: str = "relu") -> Spec:
    return ("Activation", {"function": function}, name)


def max_pool(name: str, size: int, stride: int, *, padding: int = 0,
             ceil_mode: bool = False) -> Spec:
    """nn.MaxPool2d(size, stride, padding, ceil_mode=…)."""
    params: dict[str, Any] = {
        "mode": "max",
        "pool_size": _pair(size),
        "stride": _pair(stride),
        "padding": _pair(padding) if padding else "valid",
        "ceil_mode": ceil_mode,
    }
    return ("Pooling", params, name)


def adaptive_average(name: str, size: Sequence[int]) -> Spec:
    """nn.AdaptiveAvgPool2d(size): the output stays an image (C, h, w)."""
    return ("Pooling", {"mode": "adaptive_average", "output_size": _pair(size)}, name)


def dense(name: str, units: int, activation_name: str = "none") -> Spec:
    return ("Dense", {"units": units, "activation": activation_name}, name)


def dropout(name: str, rate: float) -> Spec:
    return ("Dropout", {"rate": rate}, name)


def merge(type_id: str, name: str) -> Spec:
    return (type_id, {}, name)


FLATTEN: Spec = ("Flatten", {}, "flatten")
OUTPUT: Spec = ("Output", {}, "output")


class _Net(Builder):
    """Blocks wired by hand (residuals, Fire modules), laid out at the end, when the blocks
    marked with `group` become modules."""

    def __init__(self, input_shape: InputShape) -> None:
        super().__init__(input_shape)
        self._groups: list[tuple[str, list[str], str]] = []

    def group(self, name: str, first: int, definition_name: str) -> None:
        """The blocks added since the graph had `first` blocks, all named "<name>.<role>",
        become module `name` (made after the layout, sharing definitions of equal blocks)."""
        self._groups.append((name, [b.id for b in self.graph.blocks[first:]], definition_name))

    def add(self, spec: Spec, *sources: str) -> str:
        """A block fed by `sources`, in port order."""
        block_id = self._place(spec, 0.0, 0.0)
        for port, source in enumerate(sources):
            self.graph.connect(source, block_id, port if len(sources) > 1 else None)
        return block_id

    def chain(self, source: str, *specs: Spec) -> str:
        """Blocks one after the other, the first fed by `source`; returns the last id."""
        for spec in specs:
            source = self.add(spec, source)
        return source

    def laid_out(self) -> Graph:
        for block_id, (x, y) in layered_layout(self.graph).items():
            self.graph.move(block_id, x, y)
        for name, ids, definition_name in self._groups:
            roles = {i: self.graph.block(i).name.removeprefix(f"{name}.") for i in ids}
            make_module(self.graph, ids, name, roles=roles, definition_name=definition_name,
                        collapsed=True, share=True)
        return self.compact()


def _classifier(net: _Net, source: str, *specs: Spec) -> Graph:
    net.chain(source, *specs, OUTPUT)
    return net.laid_out()


# -- ResNet -----------------------------------------------------------------------------------


def _residual(net: _Net, name: str, x: str, inplanes: int, planes: int, stride: int,
              kind: str) -> tuple[str, int]:
    """torchvision's BasicBlock or Bottleneck (stride on the 3×3, 'ResNet v1.5'), a module."""
    first = len(net.graph)
    if kind == "basic":
        out = planes
        y = net.chain(
            x,
            conv(f"{name}.conv1", planes, 3, stride=stride, padding=1, bias=False),
            batchnorm(f"{name}.bn1"), activation(f"{name}.relu"),
            conv(f"{name}.conv2", planes, 3, padding=1, bias=False), batchnorm(f"{name}.bn2"),
        )
        last_relu = f"{name}.relu_2"
    else:
        out = planes * BOTTLENECK_EXPANSION
        y = net.chain(
            x,
            conv(f"{name}.conv1", planes, 1, bias=False), batchnorm(f"{name}.bn1"),
            activation(f"{name}.relu"),
            conv(f"{name}.conv2", planes, 3, stride=stride, padding=1, bias=False),
            batchnorm(f"{name}.bn2"), activation(f"{name}.relu_2"),
            conv(f"{name}.conv3", out, 1, bias=False), batchnorm(f"{name}.bn3"),
        )
        last_relu = f"{name}.relu_3"
    identity = x
    if stride != 1 or inplanes != out:
        identity = net.chain(
            x, conv(f"{name}.downsample.0", out, 1, stride=stride, bias=False),
            batchnorm(f"{name}.downsample.1"),
        )
    added = net.add(merge("Add", f"{name}.add"), y, identity)
    end = net.chain(added, activation(last_relu))
    net.group(name, first, f"{'BasicBlock' if kind == 'basic' else 'Bottleneck'} "
                           f"{inplanes}→{out}{f', stride {stride}' if stride != 1 else ''}")
    return end, out


def build_resnet(model: str, input_shape: InputShape, classes: int) -> Graph:
    kind, repeats = RESNET_STAGES[model]
    net = _Net(input_shape)
    x = net.chain(
        net.last,
        conv("conv1", 64, 7, stride=2, padding=3, bias=False), batchnorm("bn1"),
        activation("relu"), max_pool("maxpool", 3, 2, padding=1),
    )
    inplanes = RESNET_WIDTHS[0]
    for stage, (planes, count) in enumerate(zip(RESNET_WIDTHS, repeats), start=1):
        for index in range(count):
            stride = 2 if stage > 1 and index == 0 else 1
            x, inplanes = _residual(net, f"layer{stage}.{index}", x, inplanes, planes, stride,
                                    kind)
    return _classifier(net, x, adaptive_average("avgpool", (1, 1)), FLATTEN,
                       dense("fc", classes))


def build_resnet18(input_shape: InputShape, classes: int) -> Graph:
    return build_resnet("resnet18", input_shape, classes)


def build_resnet50(input_shape: InputShape, classes: int) -> Graph:
    return build_resnet("resnet50", input_shape, classes)


# -- MobileNetV2 ------------------------------------------------------------------------------


def _conv_bn_relu6(name: str, filters: int, kernel: int, stride: int = 1,
                   depthwise: bool = False) -> list[Spec]:
    """torchvision's Conv2dNormActivation: conv (no bias) '.0', BatchNorm '.1', ReLU6 '.2'."""
    return [
        conv(f"{name}.0", filters, kernel, stride=stride, padding=(kernel - 1) // 2, bias=False,
             depthwise=depthwise),
        batchnorm(f"{name}.1"),
        activation(f"{name}.2", "relu6"),
    ]


def _inverted_residual(net: _Net, name: str, x: str, inp: int, oup: int, stride: int,
                       expansion: int) -> str:
    """Expand 1×1 (when t > 1), depthwise 3×3, project 1×1 without activation; x + … when
    the stride is 1 and the channels stay. A module."""
    first = len(net.graph)
    hidden = inp * expansion
    layers: list[Spec] = []
    index = 0
    if expansion != 1:
        layers += _conv_bn_relu6(f"{name}.conv.0", hidden, 1)
        index = 1
    layers += _conv_bn_relu6(f"{name}.conv.{index}", hidden, 3, stride, depthwise=True)
    layers += [conv(f"{name}.conv.{index + 1}", oup, 1, bias=False),
               batchnorm(f"{name}.conv.{index + 2}")]
    y = net.chain(x, *layers)
    if stride == 1 and inp == oup:
        y = net.add(merge("Add", f"{name}.add"), x, y)
    net.group(name, first, f"InvertedResidual {inp}→{oup}"
                           f"{f', stride {stride}' if stride != 1 else ''}")
    return y


def build_mobilenet_v2(input_shape: InputShape, classes: int) -> Graph:
    net = _Net(input_shape)
    x = net.chain(net.last, *_conv_bn_relu6("features.0", MOBILENET_V2_STEM, 3, 2))
    channels, feature = MOBILENET_V2_STEM, 1
    for expansion, out, repeats, first_stride in MOBILENET_V2_SETTING:
        for index in range(repeats):
            x = _inverted_residual(net, f"features.{feature}", x, channels, out,
                                   first_stride if index == 0 else 1, expansion)
            channels, feature = out, feature + 1
    x = net.chain(x, *_conv_bn_relu6(f"features.{feature}", MOBILENET_V2_LAST, 1))
    return _classifier(net, x, adaptive_average("avgpool", (1, 1)), FLATTEN,
                       dropout("classifier.0", 0.2), dense("classifier.1", classes))


# -- SqueezeNet 1.1 ---------------------------------------------------------------------------


def _fire(net: _Net, name: str, x: str, squeeze: int, expand1: int, expand3: int) -> str:
    """Squeeze 1×1 + ReLU, then expand 1×1 + ReLU and expand 3×3 + ReLU side by side,
    concatenated (1×1 first). ReLU follows each convolution directly, so it is fused."""
    s = net.chain(x, conv(f"{name}.squeeze", squeeze, 1, activation="relu"))
    e1 = net.add(conv(f"{name}.expand1x1", expand1, 1, activation="relu"), s)
    e3 = net.add(conv(f"{name}.expand3x3", expand3, 3, padding=1, activation="relu"), s)
    return net.add(merge("Concatenate", f"{name}.cat"), e1, e3)


def build_squeezenet1_1(input_shape: InputShape, classes: int) -> Graph:
    net = _Net(input_shape)
    x = net.chain(net.last, conv("features.0", 64, 3, stride=2, activation="relu"))
    for index, item in enumerate(SQUEEZENET_1_1, start=2):
        if item == "M":
            x = net.chain(x, max_pool(f"features.{index}", 3, 2, ceil_mode=True))
        else:
            x = _fire(net, f"features.{index}", x, *item)
    return _classifier(
        net, x, dropout("classifier.0", 0.5),
        conv("classifier.1", classes, 1, activation="relu"),
        adaptive_average("classifier.3", (1, 1)), FLATTEN,
    )


# -- VGG-11 with batch normalisation ----------------------------------------------------------


def build_vgg11_bn(input_shape: InputShape, classes: int) -> Graph:
    net = _Net(input_shape)
    x, index = net.last, 0
    pool_padding = vgg_pool_padding(input_shape)
    for item in VGG_CONFIGS["vgg11"]:
        if item == "M":
            pool: Spec = ("Pooling", {"mode": "max", "pool_size": [2, 2], "stride": [2, 2],
                                      "padding": pool_padding}, f"features.{index}")
            x, index = net.chain(x, pool), index + 1
        else:
            x = net.chain(
                x, conv(f"features.{index}", int(item), 3, padding=1),
                batchnorm(f"features.{index + 1}"), activation(f"features.{index + 2}"),
            )
            index += 3
    return _classifier(
        net, x, adaptive_average("avgpool", VGG_POOLED), FLATTEN,
        dense("classifier.0", 4096, "relu"), dropout("classifier.2", 0.5),
        dense("classifier.3", 4096, "relu"), dropout("classifier.5", 0.5),
        dense("classifier.6", classes),
    )


# -- the templates ----------------------------------------------------------------------------

_NAMING = (
    "Every block carries the name of its torchvision module (layer1.0.conv1, "
    "features.3.squeeze, classifier.1), so torchvision's ImageNet weights load block by block "
    "by name (cnnstudio train --weights FILE); at other sizes and class "
    "counts the blocks whose shapes still fit load and the rest start fresh."
)
_FINE_TUNING = {"optimizer": "sgd", "momentum": 0.9, "schedule": "cosine"}

RESNET18 = Template(
    id="resnet18",
    title="ResNet-18",
    description=(
        "ResNet-18 (He, Zhang, Ren and Sun, 2015, 'Deep residual learning for image "
        "recognition'), as torchvision.models.resnet18 builds it: a 7×7 stride-2 convolution, "
        "batch norm, ReLU and 3×3 stride-2 max pooling, then four stages of two basic blocks "
        "(two 3×3 convolutions with batch norm) with 64, 128, 256 and 512 filters, global "
        "average pooling and one Dense layer. Each block adds its input back to its output "
        "(Add): the layers learn a residual, and gradients reach early layers through the "
        "shortcuts, which is what lets very deep networks train. Where a stage halves the "
        "image, a 1×1 stride-2 convolution (downsample) makes the shortcut fit. 11,689,512 "
        "trainable parameters at 3×224×224 with 1000 classes, as torchvision counts them; "
        "11,699,112 with the batch-norm running statistics. " + _NAMING
    ),
    default_input=(3, 224, 224),
    default_classes=1000,
    build=build_resnet18,
    training={**_FINE_TUNING, "learning_rate": 0.025, "weight_decay": 1e-4},
)

RESNET50 = Template(
    id="resnet50",
    title="ResNet-50",
    description=(
        "ResNet-50 (He et al. 2015) as torchvision.models.resnet50 builds it: the ResNet stem, "
        "then 3, 4, 6 and 3 bottleneck blocks. A bottleneck shrinks the channels with a 1×1 "
        "convolution, runs the 3×3 convolution on the few channels and widens them 4 times "
        "with another 1×1, so a deeper network costs less than stacking 3×3 convolutions; "
        "torchvision puts the stride on the 3×3 ('ResNet v1.5'). The shortcut adds each "
        "block's input back (Add), through a 1×1 convolution where the shape changes. "
        "25,557,032 trainable parameters at 3×224×224 with 1000 classes, as torchvision counts "
        "them; 25,610,152 with the batch-norm running statistics. " + _NAMING
    ),
    default_input=(3, 224, 224),
    default_classes=1000,
    build=build_resnet50,
    training={**_FINE_TUNING, "learning_rate": 0.025, "weight_decay": 1e-4},
)

MOBILENET_V2 = Template(
    id="mobilenet-v2",
    title="MobileNetV2",
    description=(
        "MobileNetV2 (Sandler et al. 2018, 'Inverted residuals and linear bottlenecks') as "
        "torchvision.models.mobilenet_v2 builds it, for phones: 17 inverted residual blocks "
        "widen the channels 6 times with a 1×1 convolution, filter each channel on its own "
        "with a 3×3 depthwise convolution (one kernel per channel: 9 weights a channel instead "
        "of 9·C) and project back with a 1×1 convolution that has no activation (the linear "
        "bottleneck: ReLU6 there would destroy information in few channels). Blocks that keep "
        "size and channels add their input back. Batch norm and ReLU6 follow every other "
        "convolution; dropout 0.2 and one Dense layer classify. 3,504,872 trainable "
        "parameters at 3×224×224 with 1000 classes, as torchvision counts them; 3,538,984 "
        "with the batch-norm running statistics. " + _NAMING
    ),
    default_input=(3, 224, 224),
    default_classes=1000,
    build=build_mobilenet_v2,
    training={**_FINE_TUNING, "learning_rate": 0.01, "weight_decay": 4e-5},
)

SQUEEZENET1_1 = Template(
    id="squeezenet1.1",
    title="SqueezeNet 1.1",
    description=(
        "SqueezeNet 1.1 (Iandola et al. 2016, 'AlexNet-level accuracy with 50x fewer "
        "parameters'), as torchvision.models.squeezenet1_1 builds it: a 3×3 stride-2 "
        "convolution, then eight Fire modules between 3×3 stride-2 max poolings that round up "
        "(ceil mode). A Fire module squeezes the channels with 1×1 convolutions, then expands "
        "them with 1×1 and 3×3 convolutions side by side and concatenates both. There is no "
        "Dense layer: dropout 0.5, a 1×1 convolution with one filter per class, ReLU and "
        "global average pooling give the class scores, so changing the classes changes the "
        "filters of that last convolution. 1,235,496 parameters at 3×224×224 with 1000 "
        "classes, as torchvision. It needs images of at least "
        f"{SQUEEZENET_MIN_SIDE}×{SQUEEZENET_MIN_SIDE} pixels. " + _NAMING
    ),
    default_input=(3, 224, 224),
    default_classes=1000,
    build=build_squeezenet1_1,
    training={**_FINE_TUNING, "learning_rate": 0.01, "weight_decay": 2e-4},
)

VGG11_BN = Template(
    id="vgg11-bn",
    title="VGG-11 with batch norm",
    description=(
        "VGG-11 with batch normalisation, as torchvision.models.vgg11_bn builds it: the eight "
        "3×3 convolutions of VGG configuration A (Simonyan and Zisserman 2014), each followed "
        "by batch norm and ReLU, 2×2 max pooling after each of the five stages, torchvision's "
        "adaptive average pooling to 7×7, then Dense 4096, Dense 4096 (ReLU and dropout 0.5 "
        "after each) and the class scores. Batch norm lets this deep plain network train "
        "with larger learning rates and no careful initialisation. The adaptive pooling makes "
        "the classifier the same at every image size, so all ImageNet weights but the last "
        "layer's fit any input (at 32×32 the 1×1 map is repeated 7×7 times; the network keeps "
        "its 128 million parameters). When a side does not divide by 32 the poolings use "
        "'same' padding, as in the VGG-11 template. 132,868,840 trainable parameters at "
        "3×224×224 with 1000 classes, as torchvision counts them; 132,874,344 with the "
        "batch-norm running statistics. " + _NAMING
    ),
    default_input=(3, 224, 224),
    default_classes=1000,
    build=build_vgg11_bn,
    training={**_FINE_TUNING, "learning_rate": 0.01, "weight_decay": 1e-4},
)

TEMPLATES = (RESNET18, RESNET50, MOBILENET_V2, SQUEEZENET1_1, VGG11_BN)
