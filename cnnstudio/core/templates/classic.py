"""Small classic networks: LeNet-5, the Keras book's MNIST network and the course example."""

from __future__ import annotations

import math

from cnnstudio.core.graph import Graph
from cnnstudio.core.templates.base import (
    Builder,
    InputShape,
    Template,
    conv,
    dense,
    flatten,
    output,
    pool,
)

LENET_SIDE = 32  # C1 sees 32×32 in the paper, so that C5 sees exactly 5×5


def lenet_padding(height: int, width: int) -> str | list[int]:
    """Padding of C1 that makes the map entering C5 5×5 where possible ('same' at 28×28)."""
    ph = max(0, math.ceil((LENET_SIDE - height) / 2))
    pw = max(0, math.ceil((LENET_SIDE - width) / 2))
    if ph == pw == 0:
        return "valid"
    if ph == pw == 2:
        return "same"
    return [ph, pw]


def build_lenet5(input_shape: InputShape, classes: int) -> Graph:
    b = Builder(input_shape)
    _, height, width = input_shape
    b.then(
        conv("C1", 6, 5, padding=lenet_padding(height, width), activation="tanh"),
        pool("S2", 2, mode="average"),
        conv("C3", 16, 5, activation="tanh"),
        pool("S4", 2, mode="average"),
        conv("C5", 120, 5, activation="tanh"),
        flatten(),
        dense("F6", 84, "tanh"),
        dense("F7", classes),
        output(),
    )
    return b.graph


def build_keras_mnist(input_shape: InputShape, classes: int) -> Graph:
    b = Builder(input_shape)
    b.then(
        conv("conv1", 32, 3),
        pool("pool1", 2),
        conv("conv2", 64, 3),
        pool("pool2", 2),
        conv("conv3", 64, 3),
        flatten(),
        dense("fc1", 64, "relu"),
        dense("fc2", classes),
        output(),
    )
    return b.graph


def build_course_example(input_shape: InputShape, classes: int) -> Graph:
    b = Builder(input_shape)
    b.then(
        conv("CONV1", 16, 5, padding="same"),
        pool("POOL1", 2),
        conv("CONV2", 32, 5, padding="same"),
        pool("POOL2", 2),
        flatten("FLATTEN"),
        dense("FC3", 100, "relu"),
        dense("FC4", classes),
        output(),
    )
    return b.graph


LENET5 = Template(
    id="lenet5",
    title="LeNet-5",
    description=(
        "LeNet-5 (LeCun, Bottou, Bengio and Haffner, 1998), the network that read handwritten "
        "digits and bank cheques: convolution C1 (6 filters 5×5), average-pooling subsampling "
        "S2, convolution C3 (16 filters 5×5), subsampling S4, convolution C5 (120 filters 5×5, "
        "which sees a 5×5 map and so acts as a fully connected layer), F6 with 84 units and the "
        "class scores; every hidden layer uses tanh. It teaches the pattern that every later CNN "
        "repeats: convolution and pooling shrink the image while adding channels, then dense "
        "layers classify. The paper feeds 32×32 images; for 28×28 MNIST digits C1 pads by 2 "
        "('same') so that the rest of the network is unchanged. 61,706 parameters at 1×32×32 "
        "with 10 classes (the same at 28×28)."
    ),
    default_input=(1, 32, 32),
    default_classes=10,
    build=build_lenet5,
    # tanh and average pooling learn slowly at a constant rate: one-cycle reaches ~98 % in 5 epochs
    training={"schedule": "one_cycle", "learning_rate": 0.005},
)

KERAS_MNIST = Template(
    id="keras-mnist",
    title="Keras MNIST CNN",
    description=(
        "The first convolutional network of François Chollet's book Deep Learning with Python "
        "(2017): three 3×3 convolutions with ReLU (32, 64 and 64 filters) with 2×2 max pooling "
        "between them, then Flatten, a Dense layer of 64 units and one score per digit. It "
        "shows how a 28×28 digit becomes a 3×3×64 feature map of 576 values, and that most "
        "parameters of a small CNN sit in its first Dense layer. It reaches about 99 % test "
        "accuracy on MNIST after a few epochs. 93,322 parameters at 1×28×28 with 10 classes."
    ),
    default_input=(1, 28, 28),
    default_classes=10,
    build=build_keras_mnist,
)

COURSE_EXAMPLE = Template(
    id="course-example",
    title="Course example",
    description=(
        "The worked example of the course notes, layer by layer: CONV1 (16 filters 5×5, 'same' "
        "padding, ReLU) gives 28×28×16 with 416 parameters, POOL1 (max 2×2) 14×14×16, CONV2 "
        "(32 filters 5×5, 'same', ReLU) 14×14×32 with 12,832 parameters, POOL2 7×7×32 = 1,568 "
        "values, FC3 (100 units, ReLU) 156,900 parameters and FC4 (10 units) 1,010. Use it to "
        "check by hand how output sizes and parameter counts are computed, and to see that the "
        "first fully connected layer holds over 90 % of the weights. 171,158 parameters at "
        "1×28×28 with 10 classes."
    ),
    default_input=(1, 28, 28),
    default_classes=10,
    build=build_course_example,
)

TEMPLATES = (LENET5, KERAS_MNIST, COURSE_EXAMPLE)
