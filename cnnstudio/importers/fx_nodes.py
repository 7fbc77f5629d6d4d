"""Blocks for the nodes of a torch.fx graph: the mapping behind importers.torch_fx.

`ShapeRecorder` runs the traced module once and keeps each node's shape (or plain value, for a
size). `NodeMapper` then walks the nodes in order and adds one block per node: a layer module a
block named after its path ("layer1.0.conv1"), a function (F.relu, torch.cat, +) a block named
after the module it sits in ("layer1.0.add"), a size or an nn.Identity none. An operation that
writes into its input (nn.ReLU(inplace=True), x.relu_()) feeds the later readers of that input.
What has no block is collected in `unsupported` (name, operation, what to do), never skipped;
`problems()` then checks the finished graph against the module's own shapes.
"""

from __future__ import annotations

import inspect
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, fx, nn

from cnnstudio.core.analysis import analyze
from cnnstudio.core.graph import Graph, GraphError
from cnnstudio.importers.common import block_id_for, block_name_for

NO_BLOCK = ("no CNN Studio block does this: rewrite this step with layers that have one (Conv2d, "
            "Linear, BatchNorm, pooling, activations, dropout, flatten, cat, +, *) or leave it out")

# Activations by module class, by function and by tensor method: the block's function name
# ("hardtanh" becomes relu6 when it clips to [0, 6]; other ranges have no block).
MODULE_ACTIVATIONS: dict[type, str] = {
    nn.ReLU: "relu", nn.ReLU6: "relu6", nn.SiLU: "silu", nn.Hardswish: "hardswish",
    nn.Hardsigmoid: "hardsigmoid", nn.Sigmoid: "sigmoid", nn.Tanh: "tanh", nn.SELU: "selu",
    nn.ELU: "elu", nn.LeakyReLU: "leaky_relu", nn.GELU: "gelu", nn.Hardtanh: "hardtanh",
    nn.Softmax: "softmax",
}
FUNCTION_ACTIVATIONS: dict[Any, str] = {
    F.relu: "relu", torch.relu: "relu", torch.relu_: "relu", F.relu_: "relu", F.relu6: "relu6",
    F.silu: "silu", F.hardswish: "hardswish", F.hardsigmoid: "hardsigmoid",
    torch.sigmoid: "sigmoid", F.sigmoid: "sigmoid", torch.tanh: "tanh", F.tanh: "tanh",
    F.selu: "selu", torch.selu: "selu", F.elu: "elu", F.leaky_relu: "leaky_relu",
    F.gelu: "gelu", F.hardtanh: "hardtanh", F.softmax: "softmax", torch.softmax: "softmax",
}
METHOD_ACTIVATIONS = {"relu": "relu", "relu_": "relu", "sigmoid": "sigmoid",
                      "sigmoid_": "sigmoid", "tanh": "tanh", "tanh_": "tanh",
                      "softmax": "softmax"}
ADDS = (operator.add, operator.iadd, torch.add)
MULTIPLIES = (operator.mul, operator.imul, torch.mul)
FLATTENS = (torch.flatten,)
CONCATENATES = (torch.cat, torch.concat, torch.concatenate)
RESHAPES = (torch.reshape,)
MEANS = (torch.mean,)
PASS_THROUGH_METHODS = ("contiguous", "clone")  # the same values: no block
_IN_PLACE_FUNCTIONS = (torch.relu_, F.relu_, operator.iadd, operator.imul)


def _arg(node: fx.Node, index: int, name: str, default: Any = None) -> Any:
    """An argument of a call, given by keyword or at its position."""
    if name in node.kwargs:
        return node.kwargs[name]
    return node.args[index] if len(node.args) > index else default


def _pair(value: Any) -> list[int]:
    return [int(v) for v in value] if isinstance(value, (tuple, list)) else [int(value)] * 2


def _op_text(target: Any) -> str:
    """How a refusal names an operation: torch.cat, F.dropout, operator.getitem."""
    name = getattr(target, "__name__", None) or repr(target)
    module = getattr(target, "__module__", None) or ""
    if module == "_operator" or module == "operator":
        return f"operator.{name}"
    if module.startswith("torch.nn.functional"):
        return f"F.{name}"
    return f"torch.{name}" if module.split(".")[0] == "torch" else f"{module}.{name}".strip(".")


def _in_place(node: fx.Node, module: nn.Module | None) -> bool:
    """An operation that overwrites its input: later uses of that input see the result."""
    if module is not None:
        return bool(getattr(module, "inplace", False))
    if node.op == "call_method":
        return str(node.target).endswith("_") and not str(node.target).startswith("_")
    if node.target in _IN_PLACE_FUNCTIONS:
        return True
    try:
        names = list(inspect.signature(node.target).parameters)
    except (TypeError, ValueError):
        return bool(node.kwargs.get("inplace", False))
    return "inplace" in names and bool(_arg(node, names.index("inplace"), "inplace", False))


def _enclosing_path(node: fx.Node) -> str:
    """The module a function call sits in ("layer1.0"), from the tracer's module stack."""
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return ""
    last = list(stack.values())[-1]
    return str(last[0] if isinstance(last, tuple) else last)


def _holds_tensor(value: Any) -> bool:
    if isinstance(value, Tensor):
        return True
    if isinstance(value, (tuple, list)):
        return any(_holds_tensor(v) for v in value)
    if isinstance(value, Mapping):
        return any(_holds_tensor(v) for v in value.values())
    return False


class NodeFailed(Exception):
    def __init__(self, node: fx.Node, error: BaseException) -> None:
        super().__init__(str(error))
        self.node, self.error = node, error


class ShapeRecorder(fx.Interpreter):
    """Shape propagation that keeps what each node gave: the shape of a tensor, or a plain
    value (a size). torch.fx's ShapeProp does the same but prints a traceback when a node
    fails; here the failure is raised with its node, for a message without one."""

    def __init__(self, module: fx.GraphModule) -> None:
        super().__init__(module)
        self.shapes: dict[fx.Node, tuple[int, ...]] = {}
        self.values: dict[fx.Node, Any] = {}

    def run_node(self, n: fx.Node) -> Any:
        try:
            result = super().run_node(n)
        except Exception as err:
            raise NodeFailed(n, err) from None
        if isinstance(result, Tensor):
            self.shapes[n] = tuple(result.shape)
        elif not _holds_tensor(result):
            self.values[n] = result
        return result


class NodeMapper:
    """Walks the traced nodes in order, adding one block per node that has one."""

    def __init__(self, traced: fx.GraphModule, input_shape: tuple[int, int, int],
                 recorder: ShapeRecorder) -> None:
        self.traced = traced
        self.input_shape = input_shape
        self.shapes = recorder.shapes
        self.values = recorder.values
        self.graph = Graph()
        self.block_of: dict[fx.Node, str] = {}  # the block whose output a node's tensor is
        self.node_of: dict[str, fx.Node] = {}  # block id -> the node it stands for
        self.unsupported: list[tuple[str, str, str]] = []
        self.notes: list[str] = []
        self._ids: set[str] = set()
        self._names: set[str] = set()
        self._modules = {str(n.target) for n in traced.graph.nodes if n.op == "call_module"}
        self._called: set[str] = set()
        self._has_input = False
        self._left_out: list[str] = []  # stochastic depth: no block, as at prediction

    # -- blocks -------------------------------------------------------------------------------

    def _unique_name(self, base: str, module_path: bool = False) -> str:
        """`base`, or base_2, base_3 ... A module's own path is kept for that module (the first
        call); other blocks never take a name that is some module's path."""
        name, n = block_name_for(base), 2
        while name in self._names or (name in self._modules and not (module_path and
                                                                     name == base)):
            name, n = block_name_for(f"{base}_{n}"), n + 1
        self._names.add(name)
        return name

    def _name_for(self, node: fx.Node) -> str:
        if node.op == "call_module":
            return self._unique_name(str(node.target), module_path=True)
        path = _enclosing_path(node)
        operation = re.sub(r"_\d+$", "", node.name) or node.name
        return self._unique_name(f"{path}.{operation}" if path else node.name)

    def refuse(self, node: fx.Node, advice: str) -> None:
        if node.op == "call_module":
            label, op = str(node.target), type(self.traced.get_submodule(node.target)).__name__
        elif node.op == "call_method":
            label, op = node.name, f"Tensor.{node.target}()"
        elif node.op == "call_function":
            label, op = node.name, _op_text(node.target)
        else:
            label, op = node.name, node.op
        self.unsupported.append((label, op, advice))

    def add(self, node: fx.Node, type_id: str, params: Mapping[str, Any],
            inputs: Sequence[Any] | None = None, *, name: str | None = None,
            in_place: bool = False) -> str | None:
        """A block for `node`, fed by the blocks of `inputs` (default: its first argument) in
        port order; None, with the node listed, when the block refuses these settings."""
        inputs = [node.args[0]] if inputs is None else list(inputs)
        for source in inputs:
            if not isinstance(source, fx.Node) or source in self.values:
                self.refuse(node, f"takes the constant {source!r} where CNN Studio needs the "
                                  "output of another layer")
                return None
        name = name or self._name_for(node)
        try:
            block = self.graph.add_block(type_id, params, name=name,
                                         block_id=block_id_for(name, self._ids))
            for source in inputs:
                if source in self.block_of:  # else a node already listed as unsupported
                    self.graph.connect(self.block_of[source], block.id)
        except GraphError as err:
            self.refuse(node, f"the {type_id} block refuses it: {err}")
            return None
        self.block_of[node] = block.id
        self.node_of[block.id] = node
        if in_place and inputs:
            self.block_of[inputs[0]] = block.id
        return block.id

    def alias(self, node: fx.Node, source: Any) -> None:
        """A node that passes its input through (nn.Identity): no block."""
        if isinstance(source, fx.Node) and source in self.block_of:
            self.block_of[node] = self.block_of[source]

    # -- walking ------------------------------------------------------------------------------

    def run(self) -> None:
        for node in self.traced.graph.nodes:
            if node.op == "placeholder":
                self._placeholder(node)
            elif node.op == "output":
                self._output(node)
            elif node.op == "get_attr":
                self.refuse(node, f"reads the tensor '{node.target}' directly; CNN Studio keeps "
                                  "learned values inside layers only (Conv2d, Linear, BatchNorm)")
            elif node in self.values:
                continue  # a size or another plain value: an argument, not a block
            elif node.op == "call_module":
                self._module(node, self.traced.get_submodule(node.target))
            else:
                self._function(node)
        if self._left_out:
            count = len(self._left_out)
            self.notes.append(f"stochastic depth (torchvision.ops, {count} place"
                              f"{'s' if count > 1 else ''}) has no block: it is left out, as at "
                              "prediction, so training does not drop residual branches")

    def _placeholder(self, node: fx.Node) -> None:
        if self._has_input:
            if node.users:
                self.refuse(node, "a second input: a CNN Studio network reads one image")
            return
        self._has_input = True
        channels, height, width = self.input_shape
        self.add(node, "Input", {"channels": channels, "height": height, "width": width}, [],
                 name=self._unique_name("input"))

    def _output(self, node: fx.Node) -> None:
        result = node.args[0]
        if not isinstance(result, fx.Node) or result not in self.shapes:
            count = len(result) if isinstance(result, (tuple, list, dict)) else "several"
            self.refuse(node, f"forward() returns {count} values; a CNN Studio network gives "
                              "one tensor of class scores: wrap the module in one whose "
                              "forward returns only the scores")
            return
        self.add(node, "Output", {}, [result], name=self._unique_name("output"))

    # -- layer modules ------------------------------------------------------------------------

    def _module(self, node: fx.Node, module: nn.Module) -> None:
        path = str(node.target)
        owns_tensors = any(True for _ in module.parameters(recurse=False)) or \
            any(True for _ in module.buffers(recurse=False))
        if owns_tensors and path in self._called:
            self.refuse(node, "is called again, sharing its weights; every CNN Studio block "
                              "has weights of its own: use a separate module for each call")
            return
        self._called.add(path)
        kind = type(module)
        if kind in MODULE_ACTIVATIONS:
            self.activation(node, MODULE_ACTIVATIONS[kind],
                            lambda attr, index, default: getattr(module, attr, default), module)
        elif kind is nn.Conv2d:
            self._conv(node, module)
        elif kind is nn.Linear:
            self.add(node, "Dense", {"units": module.out_features,
                                     "bias": module.bias is not None,
                                     "trainable": _trainable(module)})
        elif kind in (nn.BatchNorm2d, nn.BatchNorm1d):
            self._batchnorm(node, module)
        elif kind is nn.MaxPool2d:
            if module.return_indices:
                self.refuse(node, "returns the indices too: set return_indices=False")
                return
            self.pool(node, "max", module.kernel_size, module.stride, module.padding,
                      module.ceil_mode, dilation=module.dilation)
        elif kind is nn.AvgPool2d:
            if module.divisor_override is not None:
                self.refuse(node, "divisor_override has no CNN Studio setting: leave it None")
                return
            self.pool(node, "average", module.kernel_size, module.stride, module.padding,
                      module.ceil_mode, count_padding=module.count_include_pad)
        elif kind in (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d):
            if getattr(module, "return_indices", False):
                self.refuse(node, "returns the indices too: set return_indices=False")
                return
            self.adaptive(node, "adaptive_average" if kind is nn.AdaptiveAvgPool2d
                          else "adaptive_max")
        elif kind is nn.Flatten:
            self.flatten(node, module.start_dim, module.end_dim)
        elif kind in (nn.Dropout, nn.Dropout2d):
            mode = "channel" if kind is nn.Dropout2d else "element"
            self.add(node, "Dropout", {"rate": module.p, "mode": mode},
                     in_place=module.inplace)
        elif kind is nn.Identity:
            self.alias(node, node.args[0])
        elif kind is nn.LocalResponseNorm:
            self.add(node, "LocalResponseNorm", {"size": module.size, "alpha": module.alpha,
                                                 "beta": module.beta, "k": module.k})
        else:
            self.refuse(node, NO_BLOCK)

    def _conv(self, node: fx.Node, conv: nn.Conv2d) -> None:
        if conv.padding_mode != "zeros":
            self.refuse(node, f"padding_mode='{conv.padding_mode}': CNN Studio pads with zeros "
                              "only; use padding_mode='zeros'")
            return
        params: dict[str, Any] = {
            "filters": conv.out_channels, "kernel": _pair(conv.kernel_size),
            "stride": _pair(conv.stride), "padding": _padding(conv.padding),
            "dilation": _pair(conv.dilation), "groups": conv.groups,
            "bias": conv.bias is not None, "trainable": _trainable(conv),
        }
        if conv.groups > 1 and conv.groups == conv.in_channels == conv.out_channels:
            params["depthwise"] = True
        self.add(node, "Conv2D", params)

    def _batchnorm(self, node: fx.Node, norm: nn.modules.batchnorm._BatchNorm) -> None:
        if not norm.affine or not norm.track_running_stats:
            setting = "affine=False" if not norm.affine else "track_running_stats=False"
            self.refuse(node, f"{setting}: CNN Studio's BatchNorm learns a scale and a shift "
                              "and keeps running statistics; use the defaults")
            return
        momentum = norm.momentum
        if momentum is None:
            momentum = 0.1
            self.notes.append(f"{node.target}: momentum=None (a cumulative average) has no "
                              "CNN Studio setting; it trains with momentum 0.1")
        self.add(node, "BatchNorm", {"momentum": momentum, "eps": norm.eps,
                                     "trainable": _trainable(norm)})

    # -- shared mappings ----------------------------------------------------------------------

    def activation(self, node: fx.Node, function: str,
                   setting: Callable[[str, int, Any], Any], module: nn.Module | None) -> None:
        """An Activation block; `setting(attribute, position, default)` reads the module's
        attribute or the function's argument."""
        params: dict[str, Any] = {"function": function}
        if function == "leaky_relu":
            params["negative_slope"] = float(setting("negative_slope", 1, 0.01))
        elif function == "elu":
            params["alpha"] = float(setting("alpha", 1, 1.0))
        elif function == "gelu" and setting("approximate", 99, "none") != "none":
            self.refuse(node, "the tanh approximation of GELU has no block: use "
                              "approximate='none'")
            return
        elif function == "hardtanh":
            low, high = setting("min_val", 1, -1.0), setting("max_val", 2, 1.0)
            if (low, high) != (0, 6):
                self.refuse(node, f"clips to [{low}, {high}]; only [0, 6] (ReLU6) has a block")
                return
            params["function"] = "relu6"
        elif function == "softmax":
            dim = setting("dim", 1, None)
            rank = len(self.shapes.get(node, ())) or 1
            if (dim is None and rank not in (2, 4)) or (dim is not None and dim % rank != 1):
                self.refuse(node, f"softmax over axis {dim}: CNN Studio's softmax runs across "
                                  "the channels or features (dim=1)")
                return
        self.add(node, "Activation", params, in_place=_in_place(node, module))

    def pool(self, node: fx.Node, mode: str, kernel: Any, stride: Any, padding: Any,
             ceil_mode: bool, *, count_padding: bool | None = None, dilation: Any = 1) -> None:
        if _pair(dilation) != [1, 1]:
            self.refuse(node, "pooling with dilation has no block: use dilation=1")
            return
        size = _pair(kernel)
        params: dict[str, Any] = {"mode": mode, "pool_size": size,
                                  "stride": _pair(stride) if stride not in (None, (), []) else size,
                                  "padding": _padding(padding)}
        if ceil_mode:
            params["ceil_mode"] = True
        if count_padding is not None and params["padding"] != "valid":
            params["count_padding"] = bool(count_padding)
        self.add(node, "Pooling", params)

    def adaptive(self, node: fx.Node, mode: str) -> None:
        height, width = self.shapes[node][2:]
        self.add(node, "Pooling", {"mode": mode, "output_size": [height, width]})

    def flatten(self, node: fx.Node, start: int, end: int) -> None:
        rank = len(self.shapes.get(node.args[0], ()))
        if rank < 2 or start % rank != 1 or end % rank != rank - 1:
            self.refuse(node, f"flattens axes {start} to {end}; CNN Studio's Flatten keeps the "
                              "batch axis and joins all the others: torch.flatten(x, 1)")
            return
        self.add(node, "Flatten", {})

    def reshape(self, node: fx.Node, dims: Sequence[Any]) -> None:
        """x.view(x.size(0), -1), x.reshape(n, -1) with n = x.shape[0], x.view(-1, features):
        a Flatten. Any other new shape has no block."""
        source = self.shapes.get(node.args[0], ())
        features = 1
        for d in source[1:]:
            features *= d
        batch_ok = len(dims) == 2 and (dims[0] == -1 or _is_batch_size(dims[0]))
        width = self.values.get(dims[1], dims[1]) if len(dims) == 2 else None
        if batch_ok and width in (-1, features) and not (dims[0] == -1 and width == -1):
            self.add(node, "Flatten", {})
            return
        self.refuse(node, "reshapes to another shape than (batch, features); only flattening "
                          "has a block: x.view(x.size(0), -1)")

    def merge(self, node: fx.Node, type_id: str, operands: Sequence[Any]) -> None:
        if not all(isinstance(v, fx.Node) and v in self.shapes for v in operands):
            constant = next(v for v in operands if not (isinstance(v, fx.Node)
                                                         and v in self.shapes))
            shown = self.values.get(constant, constant)
            self.refuse(node, f"combines a tensor with the constant {shown!r}; {type_id} "
                              "blocks combine the outputs of two layers")
            return
        self.add(node, type_id, {}, operands, in_place=_in_place(node, None))

    # -- functions and tensor methods ---------------------------------------------------------

    def _function(self, node: fx.Node) -> None:
        target = node.target
        method = node.op == "call_method"
        if (not method and target in FUNCTION_ACTIVATIONS) or \
                (method and target in METHOD_ACTIVATIONS):
            function = METHOD_ACTIVATIONS[target] if method else FUNCTION_ACTIVATIONS[target]
            self.activation(node, function,
                            lambda attr, index, default: _arg(node, index, attr, default), None)
        elif (method and target in ("add", "add_")) or (not method and target in ADDS):
            if _arg(node, 2, "alpha", 1) != 1:
                self.refuse(node, "adds with a factor (alpha); Add sums its inputs as they are")
            else:
                self.merge(node, "Add", [node.args[0], _arg(node, 1, "other")])
        elif (method and target in ("mul", "mul_")) or (not method and target in MULTIPLIES):
            self.merge(node, "Multiply", [node.args[0], _arg(node, 1, "other")])
        elif not method and target in CONCATENATES:
            self._concatenate(node)
        elif (method and target == "flatten") or (not method and target in FLATTENS):
            self.flatten(node, _arg(node, 1, "start_dim", 0), _arg(node, 2, "end_dim", -1))
        elif method and target in ("view", "reshape"):
            dims = node.args[1:]
            self.reshape(node, dims[0] if len(dims) == 1 and isinstance(dims[0], (tuple, list))
                         else dims)
        elif not method and target in RESHAPES:
            self.reshape(node, _arg(node, 1, "shape", ()))
        elif (method and target == "mean") or (not method and target in MEANS):
            self._mean(node)
        elif method and target in PASS_THROUGH_METHODS:
            self.alias(node, node.args[0])
        elif method:
            self.refuse(node, NO_BLOCK)
        else:
            self._function_layer(node, target)

    def _function_layer(self, node: fx.Node, target: Any) -> None:
        """Pooling and dropout written as functions."""
        if target is F.max_pool2d:
            if _arg(node, 6, "return_indices", False):
                self.refuse(node, "returns the indices too: set return_indices=False")
                return
            self.pool(node, "max", _arg(node, 1, "kernel_size"), _arg(node, 2, "stride"),
                      _arg(node, 3, "padding", 0), bool(_arg(node, 5, "ceil_mode", False)),
                      dilation=_arg(node, 4, "dilation", 1))
        elif target is F.avg_pool2d:
            if _arg(node, 6, "divisor_override") is not None:
                self.refuse(node, "divisor_override has no CNN Studio setting: leave it None")
                return
            self.pool(node, "average", _arg(node, 1, "kernel_size"), _arg(node, 2, "stride"),
                      _arg(node, 3, "padding", 0), bool(_arg(node, 4, "ceil_mode", False)),
                      count_padding=bool(_arg(node, 5, "count_include_pad", True)))
        elif target is F.adaptive_avg_pool2d:
            self.adaptive(node, "adaptive_average")
        elif target is F.adaptive_max_pool2d:
            if _arg(node, 2, "return_indices", False):
                self.refuse(node, "returns the indices too: set return_indices=False")
                return
            self.adaptive(node, "adaptive_max")
        elif _is_stochastic_depth(target):
            self._left_out.append(node.name)
            self.alias(node, node.args[0])
        elif target in (F.dropout, F.dropout2d):
            self.add(node, "Dropout", {"rate": float(_arg(node, 1, "p", 0.5)),
                                       "mode": "channel" if target is F.dropout2d else "element"},
                     in_place=_in_place(node, None))
        else:
            self.refuse(node, NO_BLOCK)

    def _concatenate(self, node: fx.Node) -> None:
        tensors, dim = node.args[0], _arg(node, 1, "dim", 0)
        if isinstance(tensors, (tuple, list)) and len(tensors) == 1:
            self.alias(node, tensors[0])  # a concatenation of one tensor is that tensor
            return
        rank = len(self.shapes.get(node, ()))
        if rank not in (2, 4) or dim % rank != 1:
            self.refuse(node, f"joins along axis {dim}; Concatenate joins channels or features "
                              "(dim=1)")
            return
        self.add(node, "Concatenate", {}, list(tensors))

    def _mean(self, node: fx.Node) -> None:
        """x.mean((2, 3)): global average pooling (keepdim: an adaptive one to 1×1)."""
        dims = _arg(node, 1, "dim", None)
        keep = bool(_arg(node, 2, "keepdim", False))
        rank = len(self.shapes.get(node.args[0], ()))
        axes = {d % rank for d in (dims if isinstance(dims, (tuple, list)) else [dims])} \
            if dims is not None and rank else set()
        if rank != 4 or axes != {2, 3}:
            self.refuse(node, "a mean over other axes than height and width; only that is "
                              "pooling: x.mean((2, 3))")
            return
        if keep:
            self.add(node, "Pooling", {"mode": "adaptive_average", "output_size": [1, 1]})
        else:
            self.add(node, "Pooling", {"mode": "global_average"})

    # -- the finished graph -------------------------------------------------------------------

    def problems(self) -> list[tuple[str, str, str]]:
        """What the analysis finds wrong, and every block whose shape is not the module's."""
        analysis = analyze(self.graph)
        found = []
        for diagnostic in analysis.errors:
            block = self.graph.block(diagnostic.block_id) if diagnostic.block_id in \
                self.graph else None
            label, op = (block.name, block.type) if block else ("network", "graph")
            fix = f" ({diagnostic.fix})" if diagnostic.fix else ""
            found.append((label, op, diagnostic.message + fix))
        if found:
            return found
        for block_id, node in self.node_of.items():
            block = self.graph.block(block_id)
            expected = self.shapes.get(node.args[0] if node.op == "output" else node)
            if node.op == "placeholder" or expected is None:
                continue
            ours = analysis.blocks[block_id].output_shape
            if ours != tuple(expected[1:]):
                found.append((block.name, block.type,
                              f"CNN Studio computes {ours} here but the module gives "
                              f"{tuple(expected[1:])}; please report this network"))
        return found


def _padding(value: Any) -> str | list[int]:
    if isinstance(value, str):
        return value
    pad = _pair(value)
    return "valid" if pad == [0, 0] else pad


def _is_stochastic_depth(target: Any) -> bool:
    """torchvision.ops.stochastic_depth: drops whole residual branches in training only."""
    return getattr(target, "__name__", "") == "stochastic_depth" and \
        getattr(target, "__module__", "").startswith("torchvision.ops")


def _trainable(module: nn.Module) -> bool:
    return all(p.requires_grad for p in module.parameters())


def _is_batch_size(value: Any) -> bool:
    """x.size(0), x.size()[0] or x.shape[0]: the batch size, whatever it is at run time."""
    if not isinstance(value, fx.Node):
        return False
    if value.op == "call_method" and value.target == "size":
        return _arg(value, 1, "dim") == 0
    if value.op == "call_function" and value.target is operator.getitem and \
            value.args[1] == 0 and isinstance(value.args[0], fx.Node):
        whole = value.args[0]
        return (whole.op == "call_method" and whole.target == "size" and len(whole.args) == 1) \
            or (whole.op == "call_function" and whole.target is getattr
                and whole.args[1] == "shape")
    return False


__all__ = ["NodeFailed", "NodeMapper", "ShapeRecorder"]
