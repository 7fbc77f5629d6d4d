"""The 'python' export: one readable PyTorch file that needs nothing of CNN Studio.

The network is generated block by block from each block's declaration (its normalised
parameters) and the shapes analyze() infers, resolving padding exactly as build_model() does, so
the file computes what GraphModel computes: plain torch.nn layers where torch has them, small
helper classes (emitted only when used) where it does not. forward() takes images with pixel
values in [0, 1], as the ONNX and TorchScript exports do, normalises them with the training
statistics, then runs straight-line code in topological order over the blocks the main output
needs; auxiliary heads are training aids and are left out. How outputs become probabilities
follows core.outputs, so a network that ends in a softmax gets no second one. The rest (weight
loading, predict(), offline training) is fixed text in codegen_text.py with values filled in.
"""

from __future__ import annotations

import json
import keyword
import re
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from cnnstudio import __version__
from cnnstudio.core import registry
from cnnstudio.core.analysis import Analysis, BlockInfo, analyze
from cnnstudio.core.blocks.conv import conv_groups_filters
from cnnstudio.core.blocks.merge import scale_port
from cnnstudio.core.blocks.pool import ADAPTIVE_MODES, GLOBAL_MODES, pool_plan, pool_stride
from cnnstudio.core.geometry import resolve_padding
from cnnstudio.core.graph import Block, Graph
from cnnstudio.core.outputs import BINARY, PROBABILITIES, output_kind
from cnnstudio.core.project import Project
from cnnstudio.nn.build import ModelBuildError
from cnnstudio.nn.codegen_text import HELPERS, PROBABILITY_CODE, TRAINING_CODE
from cnnstudio.nn.torch_files import NOT_A_TORCH_FILE, NOT_PLAIN_CHECKPOINT, UNSUPPORTED_GLOBAL

MAX_LINE = 99
INDENT = "        "  # the body of a method

# Names a block may not take: they would shadow nn.Module's own attributes, Python keywords and
# builtins, or the names the generated file uses. Such a block gets the suffix _layer.
_RESERVED = set(dir(nn.Module)) | set(keyword.kwlist) | {
    "x", "image", "self", "torch", "nn", "F", "argparse", "Path", "penalty", "input", "type", "id",
    "mean", "std",
    "max", "min", "sum", "abs", "all", "any", "len", "list", "dict", "set", "map", "filter",
    "format", "range", "print", "object", "open", "iter", "next", "round", "zip",
}

_FUSED = {"none": "{}", "relu": "F.relu({})", "leaky_relu": "F.leaky_relu({}, 0.01)",
          "elu": "F.elu({})", "selu": "F.selu({})", "gelu": "F.gelu({})",
          "tanh": "torch.tanh({})", "sigmoid": "torch.sigmoid({})", "relu6": "F.relu6({})",
          "silu": "F.silu({})", "hardswish": "F.hardswish({})",
          "hardsigmoid": "F.hardsigmoid({})"}

_ACTIVATIONS = {"relu": "ReLU", "leaky_relu": "LeakyReLU", "elu": "ELU", "selu": "SELU",
                "gelu": "GELU", "tanh": "Tanh", "sigmoid": "Sigmoid", "softmax": "Softmax",
                "relu6": "ReLU6", "silu": "SiLU", "hardswish": "Hardswish",
                "hardsigmoid": "Hardsigmoid"}

# What the generated forward() returns, per output kind (core.outputs)
_RETURNS = {PROBABILITIES: "class probabilities (the network ends in a softmax)",
            BINARY: "the probability of the second class (one sigmoid unit)"}
_LOGITS_RETURN = "class scores (logits; predict() turns them into probabilities)"


@dataclass
class _Layer:
    """How one block appears in the file: `self.<name> = callee(args)` unless callee is empty."""

    callee: str = ""
    args: list[str] = field(default_factory=list)
    activation: str = "none"  # fused activation applied in forward()
    helpers: tuple[str, ...] = ()  # helper classes the callee needs
    weights: str | None = None  # GraphModel's sub-layer that holds the tensors ('conv')


@dataclass
class _Plan:
    project: Project
    graph: Graph
    analysis: Analysis
    order: list[str]  # the blocks the main output needs, in topological order
    main_id: str
    params: dict[str, dict[str, Any]]
    layers: dict[str, _Layer]
    names: dict[str, str]  # one unique identifier per block (attribute and variable)
    skipped: list[Block]  # auxiliary heads and blocks that feed no output
    class_name: str
    kind: str  # what the main output gives (core.outputs)


def generate_python(
    project: Project,
    *,
    classes: Sequence[str],
    mean: Sequence[float],
    std: Sequence[float],
    input_shape: Sequence[int],
) -> str:
    """The source of a standalone PyTorch file for the project's network.

    Raises ModelBuildError when the graph has analysis errors (there is nothing to generate).
    """
    plan = _plan(project)
    channels = int(input_shape[0])
    mean, std = ([float(v) for v in values] * (channels if len(values) == 1 else 1)
                 for values in (mean, std))
    helpers = [h for h in HELPERS if any(h in layer.helpers for layer in plan.layers.values())]
    head = [
        _header(plan, classes, input_shape),
        ("from __future__ import annotations\n\nimport argparse\nfrom pathlib import Path\n\n"
         "import torch\nimport torch.nn.functional as F\nfrom torch import nn"),
        _constants(classes, mean, std, input_shape),
    ]
    body = [*(HELPERS[h] for h in helpers), _model_class(plan), PROBABILITY_CODE[plan.kind],
            _weight_names(plan), _training(plan)]
    return ("\n\n".join(part.strip("\n") for part in head) + "\n\n\n"
            + "\n\n\n".join(part.strip("\n") for part in body) + "\n")


def class_name_for(project_name: str) -> str:
    """CamelCase class name: 'Keras book MNIST network' -> 'KerasBookMnistNetwork'."""
    words = re.findall(r"[A-Za-z0-9]+", project_name)
    name = "".join(word[:1].upper() + word[1:].lower() for word in words) or "Network"
    if name[0].isdigit():
        name = "Net" + name
    if name in _RESERVED or name in HELPERS or name in ("True", "False", "None"):
        name += "Network"
    return name


def attribute_name(name: str, fallback: str) -> str:
    """A readable snake_case identifier for a block name ('conv1/3x3_s1' -> 'conv1_3x3_s1')."""
    text = re.sub(r"[^0-9A-Za-z]+", "_", name).strip("_").lower()
    if not text:
        return fallback
    if text[0].isdigit():
        text = f"{fallback}_{text}"
    return text + "_layer" if text in _RESERVED else text


# -- planning ------------------------------------------------------------------------------------


def _plan(project: Project) -> _Plan:
    graph = project.graph
    analysis = analyze(graph)
    if not analysis.ok:
        raise ModelBuildError(analysis.errors)
    main = graph.main_output()
    assert main is not None  # the analysis has no error
    seen = graph.ancestors(main.id) | {main.id}  # what the main output needs, as GraphModel
    order = [block_id for block_id in analysis.order if block_id in seen]
    params, layers, names, used = {}, {}, {}, set()
    for block_id in order:
        block = graph.block(block_id)
        block_type = registry.get(block.type)
        params[block_id] = block_type.normalize(block.params)[0]
        emit = _EMITTERS.get(block.type)
        if emit is None:
            raise ValueError(f"{block.label}: the Python export has no code for {block.type!r}")
        layers[block_id] = emit(params[block_id], analysis.blocks[block_id])
        base = attribute_name(block.name, block_type.name_prefix)
        name, n = base, 2
        while name in used:
            name, n = f"{base}_{n}", n + 1
        used.add(name)
        names[block_id] = name
    skipped = [b for b in graph.blocks if b.id not in seen]
    return _Plan(project, graph, analysis, order, main.id, params, layers, names, skipped,
                 class_name_for(project.name), output_kind(graph, main.id, analysis).kind)


def _pair(a: int, b: int) -> str:
    return str(a) if a == b else f"({a}, {b})"


def _conv(params: Mapping[str, Any], info: BlockInfo) -> _Layer:
    c_in, h, w = info.input_shapes[0]
    (kh, kw), (sh, sw), (dh, dw) = params["kernel"], params["stride"], params["dilation"]
    pad_h = resolve_padding(params["padding"], h, kh, sh, dh, 0)
    pad_w = resolve_padding(params["padding"], w, kw, sw, dw, 1)
    symmetric = pad_h[0] == pad_h[1] and pad_w[0] == pad_w[1]
    groups, filters = conv_groups_filters(params, c_in)
    args = [str(c_in), str(filters), f"kernel_size={_pair(kh, kw)}"]
    if (sh, sw) != (1, 1):
        args.append(f"stride={_pair(sh, sw)}")
    if symmetric and (pad_h[0], pad_w[0]) != (0, 0):
        args.append(f"padding={_pair(pad_h[0], pad_w[0])}")
    if (dh, dw) != (1, 1):
        args.append(f"dilation={_pair(dh, dw)}")
    if groups != 1:
        args.append(f"groups={groups}")
    if not params["bias"]:
        args.append("bias=False")
    if symmetric:
        return _Layer("nn.Conv2d", args, params["activation"], weights="conv")
    args.append(f"pads={(pad_w[0], pad_w[1], pad_h[0], pad_h[1])}")
    return _Layer("Conv2dSame", args, params["activation"], ("Conv2dSame",), "conv")


def _dense(params: Mapping[str, Any], info: BlockInfo) -> _Layer:
    args = [str(info.input_shapes[0][0]), str(params["units"])]
    return _Layer("nn.Linear", args + ([] if params["bias"] else ["bias=False"]),
                  params["activation"], weights="linear")


def _activation(params: Mapping[str, Any], info: BlockInfo) -> _Layer:
    function = params["function"]
    args = {"leaky_relu": [repr(params["negative_slope"])], "elu": [f"alpha={params['alpha']!r}"],
            "softmax": ["dim=1"]}.get(function, [])
    return _Layer(f"nn.{_ACTIVATIONS[function]}", args)


def _pool(params: Mapping[str, Any], info: BlockInfo) -> _Layer:
    mode = params["mode"]
    if mode in GLOBAL_MODES:
        helper = "GlobalMaxPool2d" if mode == "global_max" else "GlobalAvgPool2d"
        return _Layer(helper, helpers=(helper,))
    if mode in ADAPTIVE_MODES:
        callee = "nn.AdaptiveMaxPool2d" if mode == "adaptive_max" else "nn.AdaptiveAvgPool2d"
        return _Layer(callee, [_pair(*params["output_size"])])
    (kh, kw), (sh, sw) = params["pool_size"], pool_stride(params)
    plan = pool_plan(params, info.input_shapes[0])
    args = [f"kernel_size={_pair(kh, kw)}"]
    # torch's own pools: PoolLayer pads ceil_mode's partial window itself only for ONNX's sake
    ceil = params["ceil_mode"] and params["padding"] != "same"
    if mode in ("max", "average") and (not plan.pre_padded or ceil):
        if (sh, sw) != (kh, kw):
            args.append(f"stride={_pair(sh, sw)}")
        padding = (plan.pad_h[0], plan.pad_w[0]) if plan.pre_padded else plan.native
        if any(padding):
            args.append(f"padding={_pair(*padding)}")
        if ceil:
            args.append("ceil_mode=True")
        if mode == "average" and not params["count_padding"] and any(padding):
            args.append("count_include_pad=False")  # the real pixels only (Keras, ONNX)
        return _Layer("nn.MaxPool2d" if mode == "max" else "nn.AvgPool2d", args)
    helper = {"max": "MaxPool2dSame", "average": "AvgPool2dSame", "sum": "SumPool2d",
              "l2": "L2Pool2d"}[mode]
    args.append(f"stride={_pair(sh, sw)}")
    args.append(f"pads={(*plan.pad_w, *plan.pad_h)}")
    counted = (*plan.counted_w, *plan.counted_h)
    if mode == "average" and any(counted):
        args.append(f"counted={counted}")
    return _Layer(helper, args, helpers=("WindowPool2d", helper))


def _batchnorm(params: Mapping[str, Any], info: BlockInfo) -> _Layer:
    shape = info.input_shapes[0]
    args = [str(shape[0])]
    if params["eps"] != 1e-5:
        args.append(f"eps={params['eps']!r}")
    if params["momentum"] != 0.1:
        args.append(f"momentum={params['momentum']!r}")
    return _Layer(f"nn.BatchNorm{'2d' if len(shape) == 3 else '1d'}", args, weights="bn")


# one entry per registered block type (tests/test_block_tables.py checks it)
_EMITTERS = {
    "Input": lambda params, info: _Layer(),
    "Output": lambda params, info: _Layer(),
    "Concatenate": lambda params, info: _Layer(),
    "Add": lambda params, info: _Layer(),
    "Multiply": lambda params, info: _Layer(),
    "Flatten": lambda params, info: _Layer("nn.Flatten"),
    "Dropout": lambda params, info: _Layer(
        "nn.Dropout2d" if params["mode"] == "channel" else "nn.Dropout", [f"p={params['rate']!r}"]),
    "LocalResponseNorm": lambda params, info: _Layer("nn.LocalResponseNorm", [
        str(params["size"]), f"alpha={params['alpha']!r}", f"beta={params['beta']!r}",
        f"k={params['k']!r}"]),
    "Conv2D": _conv,
    "Dense": _dense,
    "Activation": _activation,
    "Pooling": _pool,
    "BatchNorm": _batchnorm,
}


# -- rendering -----------------------------------------------------------------------------------


def _header(plan: _Plan, classes: Sequence[str], input_shape: Sequence[int]) -> str:
    project = plan.project
    c, h, w = (int(v) for v in input_shape)
    total = sum(plan.analysis.blocks[b].params for b in plan.order)
    trainable = sum(plan.analysis.blocks[b].trainable for b in plan.order)
    template = f" (template {project.template})" if project.template else ""
    listed = ", ".join(str(name) for name in classes[:20]) + (", ..." if len(classes) > 20 else "")
    paragraphs = [
        [f"{_doc(project.name)}: a convolutional network exported from CNN Studio {__version__}."],
        [(f"The class {plan.class_name} was generated from the blocks of the project "
          f"'{_doc(project.name)}'{template}."),
         f"Classes ({len(classes)}): {_doc(listed)}.",
         f"Parameters: {total:,} ({trainable:,} trainable)."],
        [(f"Input: {c}x{h}x{w} images (channels x height x width) with pixel values in [0, 1]: "
          "divide 8-bit pixels by 255. The model normalises them itself with MEAN and STD "
          "below, as the ONNX and TorchScript exports do: do not normalise them again."),
         (f"model(images) returns {_RETURNS.get(plan.kind, _LOGITS_RETURN)}; "
          "predict(model, images) returns class probabilities (each row sums to 1).")],
        [("It needs only PyTorch (NumPy to read an .npz archive, Pillow to read image files). "
          "Train it offline, nothing is downloaded:")],
        ["    python this_file.py --data DATA --weights model.pt --epochs 5"],
        [("DATA is an .npz archive (arrays x and y, or x_train, y_train, x_test and y_test) or "
          "a folder with one subfolder of images per class; without --data the file trains on "
          "this_file.npz (or the folder this_file_data) next to it. --weights starts from the "
          "weights of a CNN Studio training run (its model.pt); without it training starts from "
          "random weights.")],
    ]
    blocks = ["\n".join(line for text in paragraph
                        for line in textwrap.wrap(text, MAX_LINE - 3, break_on_hyphens=False,
                                                  drop_whitespace=not text.startswith(" ")))
              for paragraph in paragraphs]
    return '"""' + "\n\n".join(blocks) + '\n"""'


def _doc(text: str) -> str:
    """Text safe inside a triple-quoted docstring, on one line."""
    text = "".join(ch if ch.isprintable() else " " for ch in str(text))
    return text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')


def _py_str(text: str) -> str:
    text = str(text)
    if '"' not in text and "\\" not in text and text.isprintable():
        return f'"{text}"'
    return repr(text)


def _constants(classes: Sequence[str], mean: Sequence[float], std: Sequence[float],
               input_shape: Sequence[int]) -> str:
    lines = [
        "# Per-channel mean and standard deviation of the training images (pixel values in [0, 1])",
        *_wrap("MEAN = ", [repr(float(v)) for v in mean], "", "(", ")", tuple_=True),
        *_wrap("STD = ", [repr(float(v)) for v in std], "", "(", ")", tuple_=True),
        f"INPUT_SHAPE = ({', '.join(str(int(v)) for v in input_shape)})  # channels, height, width",
    ]
    names = [_py_str(c) for c in classes]
    one_line = _wrap("CLASSES = ", names, "", "(", ")", tuple_=True)
    if len(one_line) == 1:
        return "\n".join(lines + one_line)
    packed: list[str] = []  # as many names on each line as fit
    for name in names:
        if packed and len(packed[-1]) + len(name) + 2 <= MAX_LINE:
            packed[-1] += f" {name},"
        else:
            packed.append(f"    {name},")
    return "\n".join([*lines, "CLASSES = (", *packed, ")"])


def _wrap(prefix: str, items: Sequence[str], indent: str, opening: str, closing: str,
          tuple_: bool = False, suffix: str = "") -> list[str]:
    """prefix(items)suffix on one line if it fits, else the items on a line of their own, else
    one item per line."""
    body = ", ".join(items) + ("," if tuple_ and len(items) == 1 else "")
    line = f"{indent}{prefix}{opening}{body}{closing}{suffix}"
    if len(line) <= MAX_LINE:
        return [line]
    if len(indent) + 4 + len(body) <= MAX_LINE:
        return [f"{indent}{prefix}{opening}", f"{indent}    {body}", f"{indent}{closing}{suffix}"]
    return [f"{indent}{prefix}{opening}", *(f"{indent}    {item}," for item in items),
            f"{indent}{closing}{suffix}"]


def _model_class(plan: _Plan) -> str:
    returns = _RETURNS.get(plan.kind, _LOGITS_RETURN)
    doc = textwrap.wrap(f"forward() takes images (N, *INPUT_SHAPE) with pixel values in [0, 1] "
                        f"and normalises them itself (MEAN, STD); it returns {returns}.",
                        MAX_LINE - 4, initial_indent="    ", subsequent_indent="    ")
    buffer = (f'{INDENT}self.register_buffer("{{0}}", torch.tensor({{1}}).view(1, -1, 1, 1), '
              "persistent=False)")
    lines = [f"class {plan.class_name}(nn.Module):",
             '    """The network, block by block as in CNN Studio.', "", *doc, '    """', "",
             "    def __init__(self) -> None:", f"{INDENT}super().__init__()",
             f"{INDENT}# the training images' statistics (not weights: not in state_dict())",
             buffer.format("mean", "MEAN"), buffer.format("std", "STD")]
    for block_id in plan.order:
        layer = plan.layers[block_id]
        if layer.callee:
            lines += _wrap(f"self.{plan.names[block_id]} = {layer.callee}", layer.args, INDENT,
                           "(", ")")
    frozen = [f"self.{plan.names[b]}" for b in plan.order
              if plan.layers[b].weights and plan.params[b].get("trainable", True) is False]
    if frozen:
        lines += [f"{INDENT}# Frozen in CNN Studio (trainable off): training keeps them as loaded.",
                  *_wrap("for layer in ", frozen, INDENT, "(", ")", tuple_=True, suffix=":"),
                  f"{INDENT}    layer.requires_grad_(False)"]
    lines += _initial_kernels(plan)
    lines += ["", *_forward(plan)]
    terms = [f"{plan.params[b][kind]!r} * self.{plan.names[b]}.weight{op}.sum()"
             for b in plan.order if plan.layers[b].weights in ("conv", "linear")
             for kind, op in (("l1", ".abs()"), ("l2", ".pow(2)")) if plan.params[b][kind] > 0]
    if terms:
        lines += ["", "    def penalty(self) -> torch.Tensor:",
                  f'{INDENT}"""The L1/L2 weight penalties set in CNN Studio, added to the loss."""',
                  f"{INDENT}return (", f"{INDENT}    {terms[0]}",
                  *(f"{INDENT}    + {term}" for term in terms[1:]), f"{INDENT})"]
    return "\n".join(lines)


def _initial_kernels(plan: _Plan) -> list[str]:
    """Conv2D blocks with a kernel chosen in the convolution lab start from it, bias 0."""
    chosen = [b for b in plan.order if plan.layers[b].weights == "conv"
              and plan.params[b].get("initial_kernel") is not None]
    if not chosen:
        return []
    lines = [f"{INDENT}# Initial kernels chosen in CNN Studio's convolution lab: every filter and",
             f"{INDENT}# input channel starts as the kernel, the bias at 0 (trained weights loaded",
             f"{INDENT}# with load_cnnstudio_weights replace them).",
             f"{INDENT}with torch.no_grad():"]
    inner = INDENT + "    "
    for block_id in chosen:
        layer = f"self.{plan.names[block_id]}"
        rows = ["[" + ", ".join(repr(float(v)) for v in row) + "]"
                for row in plan.params[block_id]["initial_kernel"]]
        lines += _wrap("kernel = torch.tensor", rows, inner, "([", "])")
        lines.append(f"{inner}{layer}.weight.copy_(kernel.expand_as({layer}.weight))")
        if plan.params[block_id]["bias"]:
            lines.append(f"{inner}{layer}.bias.zero_()")
    return lines


def _forward(plan: _Plan) -> list[str]:
    graph = plan.graph
    position = {block_id: i for i, block_id in enumerate(plan.order)}

    def flows(block_id: str) -> bool:
        """The value feeds only the next line, which reads nothing else: it can be x."""
        users = [c for c in graph.outputs_of(block_id) if c in position]
        return (len(users) == 1 and position[users[0]] == position[block_id] + 1
                and len(graph.inputs_of(users[0])) == 1)

    variables: dict[str, str] = {}
    body: list[str] = []
    for block_id in plan.order:
        block = graph.block(block_id)
        if block.type == "Input":
            target = variables[block_id] = "x" if flows(block_id) else "image"
            body.append(f"{INDENT}{target} = (image - self.mean) / self.std  # pixels in [0, 1], "
                        "normalised")
            continue
        inputs = [variables[source] for source in graph.inputs_of(block_id)]
        if block.type == "Output":
            aux = [_doc(b.name) for b in plan.skipped if b.type == "Output"]
            if aux:
                body += [f"{INDENT}# Auxiliary outputs ({', '.join(aux)}) only help training",
                         f"{INDENT}# in CNN Studio; this file leaves them out."]
            body.append(f"{INDENT}return {inputs[0]}  # {_RETURNS.get(plan.kind, 'class scores (logits)')}")
            continue
        target = variables[block_id] = "x" if flows(block_id) else plan.names[block_id]
        if block.type == "Concatenate":
            statement = _wrap(f"{target} = torch.cat", [f"[{', '.join(inputs)}]", "dim=1"],
                              INDENT, "(", ")")
            if len(statement) > 3:
                statement = _wrap(f"{target} = torch.cat(", inputs, INDENT, "[", "]",
                                  suffix=", dim=1)")
        elif block.type == "Multiply":
            shapes = plan.analysis.blocks[block_id].input_shapes
            port = scale_port(shapes)
            factors = [f"{value}[:, :, None, None]" if i == port and len(shapes[i]) == 1
                       else value for i, value in enumerate(inputs)]
            statement = [f"{INDENT}{target} = {factors[0]} * {factors[1]}"]
        elif block.type == "Add":
            statement = [f"{INDENT}{target} = {' + '.join(inputs)}"]
            if len(statement[0]) > MAX_LINE:
                statement = [f"{INDENT}{target} = (", f"{INDENT}    {inputs[0]}",
                             *(f"{INDENT}    + {v}" for v in inputs[1:]), f"{INDENT})"]
        else:
            call = f"self.{plan.names[block_id]}({inputs[0]})"
            statement = [f"{INDENT}{target} = {_FUSED[plan.layers[block_id].activation]}"
                         .format(call)]
        shape = plan.analysis.blocks[block_id].output_shape or ()
        comment = "# (N, " + ", ".join(str(d) for d in shape) + ")"
        if len(statement) == 1 and len(statement[0]) + 2 + len(comment) <= MAX_LINE:
            statement[0] += f"  {comment}"
        else:
            statement.insert(0, f"{INDENT}{comment}")
        body += statement
    return ["    def forward(self, image: torch.Tensor) -> torch.Tensor:", *body]


def _weight_names(plan: _Plan) -> str:
    lines = ["# A CNN Studio model.pt names each tensor blocks.<block id>.<layer>.<tensor>; this",
             "# maps those prefixes to the attributes of the model above."]
    heads = [b.id for b in plan.skipped if registry.get(b.type).has_weights]
    if heads:
        lines += textwrap.wrap(f"Weights of blocks this file leaves out are ignored: "
                               f"{', '.join(heads)}.", MAX_LINE, initial_indent="# ",
                               subsequent_indent="# ", break_on_hyphens=False)
    entries = [f'    "blocks.{b}.{plan.layers[b].weights}.": "{plan.names[b]}.",'
               for b in plan.order if plan.layers[b].weights]
    if not entries:
        return "\n".join([*lines, "CNNSTUDIO_NAMES: dict[str, str] = {}"])
    return "\n".join([*lines, "CNNSTUDIO_NAMES = {", *entries, "}"])


def _training(plan: _Plan) -> str:
    training = plan.project.training
    lr = float(training.get("learning_rate", 1e-3))
    if training.get("optimizer", "adam") not in ("adam", "adamw"):
        lr = 1e-3  # the project's rate suits another optimizer, not Adam
    has_penalty = any(plan.layers[b].weights in ("conv", "linear")
                      and (plan.params[b]["l1"] > 0 or plan.params[b]["l2"] > 0)
                      for b in plan.order)
    file_messages = "\n".join((_string_constant("NOT_PLAIN_CHECKPOINT", NOT_PLAIN_CHECKPOINT),
                               _string_constant("NOT_A_TORCH_FILE", NOT_A_TORCH_FILE)))
    return TRAINING_CODE.format(
        penalty=" + model.penalty()" if has_penalty else "", model=plan.class_name,
        epochs=int(training.get("epochs", 5)), batch_size=int(training.get("batch_size", 64)),
        lr=repr(lr), file_messages=file_messages,
        unsupported_global=json.dumps(UNSUPPORTED_GLOBAL),
    )


def _string_constant(name: str, text: str) -> str:
    """NAME = "..." on one line, or NAME = ("..." "...") split at spaces so that each line fits;
    the pieces join to `text`. json.dumps writes a valid double-quoted Python literal."""
    one_line = f"{name} = {json.dumps(text)}"
    if len(one_line) <= MAX_LINE:
        return one_line
    pieces, piece = [], ""
    for word in text.split(" "):
        if piece and len(f"    {json.dumps(piece + word)}") > MAX_LINE:
            pieces.append(piece)
            piece = ""
        piece += word + " "
    pieces.append(piece[:-1])
    return "\n".join([f"{name} = (", *(f"    {json.dumps(p)}" for p in pieces), ")"])


__all__ = ["attribute_name", "class_name_for", "generate_python"]
