"""Reading an ONNX file for the importer: the checked model, its input, every tensor's shape at
a fixed input size, and the value of every tensor that does not depend on the image.

Exporters compute many tensors from constants alone: a flatten's target shape from
Shape → Gather → Unsqueeze → Concat, a Pad's pads from ConstantOfShape and Reshape, a weight
behind an Identity. `fold_constants` evaluates all of them at once with onnx's reference
evaluator, with the input's size fixed (a dynamic batch counts as 1), so the importer only ever
sees the nodes that work on images.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference

from cnnstudio.core.blocks.io import MAX_IMAGE_SIDE
from cnnstudio.importers.common import ImportRefused, first_line

MIN_OPSET, MAX_OPSET = 11, 21
STANDARD_DOMAINS = ("", "ai.onnx")
_NOT_FOLDED = frozenset({"RandomNormal", "RandomNormalLike", "RandomUniform",
                         "RandomUniformLike", "Multinomial", "Bernoulli"})
_INLINE_LIMIT = 1024  # initializers up to this size stay in the copy that shape inference reads
Shape = tuple[int | None, ...]


@dataclass
class OnnxInput:
    """The image the network reads: its tensor name and (batch, C, H, W) as imported."""

    name: str
    dims: tuple[int, int, int, int]


def attrs(node: onnx.NodeProto) -> dict[str, Any]:
    """A node's attributes as Python values (bytes decoded to text)."""
    values = {}
    for attribute in node.attribute:
        value = onnx.helper.get_attribute_value(attribute)
        values[attribute.name] = value.decode() if isinstance(value, bytes) else value
    return values


def node_label(node: onnx.NodeProto) -> str:
    """How messages and block names call a node: its name, else its first output's name."""
    return node.name or next((o for o in node.output if o), node.op_type)


def read_model(path: Path) -> onnx.ModelProto:
    """The model in the file, checked by onnx.checker; ImportRefused says what is wrong."""
    if not path.exists():
        raise ImportRefused(f"cannot read '{path}': the file does not exist")
    if path.is_dir():
        raise ImportRefused(f"cannot read '{path}': it is a folder; give an .onnx file")
    fix = "export the network to ONNX again (torch.onnx.export, tf2onnx, ...)"
    try:
        model = onnx.load(str(path))
    except MemoryError:
        raise ImportRefused(f"cannot read '{path}': out of memory") from None
    except OSError as err:
        raise ImportRefused(f"cannot read '{path}': {err.strerror or err}") from None
    except Exception:  # protobuf raises DecodeError and others for a text or truncated file
        raise ImportRefused(f"cannot read '{path}': it is not an ONNX model, or it is damaged "
                            f"(truncated or changed); {fix}") from None
    opset = standard_opset(model)
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ImportRefused(
            f"cannot import '{path.name}': it uses ONNX opset {opset}; CNN Studio reads opsets "
            f"{MIN_OPSET} to {MAX_OPSET}: export it again with opset_version=17, or convert it "
            "with onnx.version_converter.convert_version(model, 17)"
        )
    try:
        onnx.checker.check_model(model)
    except Exception as err:
        raise ImportRefused(f"cannot read '{path}': it is not a valid ONNX model "
                            f"({first_line(err)[:300]}); {fix}") from None
    return model


def standard_opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in STANDARD_DOMAINS), 0)


def network_input(model: onnx.ModelProto, file_name: str,
                  input_shape: Sequence[int] | None) -> OnnxInput:
    """The one image input, its (C, H, W) static or given by `input_shape`; refuses others."""
    stored = {init.name for init in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in stored]
    if len(inputs) != 1:
        names = ", ".join(i.name for i in inputs) or "none"
        raise ImportRefused(f"cannot import '{file_name}': a CNN Studio network reads one image, "
                            f"this model has {len(inputs)} inputs ({names})")
    tensor = inputs[0]
    dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
            for d in tensor.type.tensor_type.shape.dim]
    if len(dims) != 4:
        raise ImportRefused(
            f"cannot import '{file_name}': its input '{tensor.name}' has {len(dims)} axes; CNN "
            "Studio networks read images of shape (N, C, H, W)")
    given = None
    if input_shape is not None:
        given = [int(v) for v in input_shape]
        if len(given) != 3 or any(v <= 0 for v in given):
            raise ImportRefused(f"input_shape must be three positive numbers (C, H, W), got "
                                f"{tuple(input_shape)}")
        fixed = [(axis, have, want) for axis, have, want in zip("CHW", dims[1:], given)
                 if have is not None and have != want]
        if fixed:
            axis, have, want = fixed[0]
            raise ImportRefused(f"cannot import '{file_name}' at input_shape {tuple(given)}: its "
                                f"input has a fixed {axis} of {have}, not {want}")
    channels, height, width = (given or dims[1:])
    if channels is None or height is None or width is None:
        raise ImportRefused(
            f"cannot import '{file_name}': its input '{tensor.name}' has no fixed image size "
            f"(shape {_show(dims)}); export it with a fixed size (torch.onnx.export with "
            "dynamic axes on the batch only), or give the size: from_onnx(path, "
            "input_shape=(C, H, W)) or `cnnstudio import --input C,H,W`")
    if height > MAX_IMAGE_SIDE or width > MAX_IMAGE_SIDE:
        raise ImportRefused(f"cannot import '{file_name}': its {height}×{width} input is larger "
                            f"than CNN Studio's {MAX_IMAGE_SIDE}×{MAX_IMAGE_SIDE}")
    return OnnxInput(tensor.name, (dims[0] or 1, channels, height, width))


def _show(dims: Sequence[int | None]) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in dims) + ")"


def shapes_and_constants(model: onnx.ModelProto,
                         source: OnnxInput) -> tuple[dict[str, Shape], dict[str, np.ndarray]]:
    """Every tensor's shape and every constant tensor's value, with the input's size fixed.

    Shape inference stops at a tensor whose shape comes from a computed one (a Pad whose pads
    a Reshape makes); folding computes those, so the two run in turn until nothing new
    turns up."""
    consts: dict[str, np.ndarray] = {}
    shapes: dict[str, Shape] = {}
    stored = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    for _ in range(4):
        shapes = fixed_shapes(model, source, consts)
        folded = fold_constants(model, shapes, stored)
        if folded.keys() == consts.keys():
            break
        consts = folded
    return shapes, consts


def fixed_shapes(model: onnx.ModelProto, source: OnnxInput,
                 known: dict[str, np.ndarray] | None = None) -> dict[str, Shape]:
    """Every tensor's shape (batch included) with the input fixed at `source.dims`, by onnx's
    shape inference on a light copy: large initializers become inputs that only state their
    shape, and the small `known` constants replace the nodes that compute them."""
    graph = model.graph
    stored = {init.name for init in graph.initializer}
    injected = {name: value for name, value in (known or {}).items()
                if name not in stored and value.size <= _INLINE_LIMIT}
    nodes = [node for node in graph.node
             if not all(name in injected for name in node.output if name)]
    light = onnx.helper.make_graph(nodes, graph.name or "imported", [], [])
    light.input.append(onnx.helper.make_tensor_value_info(
        source.name, _elem_type(graph, source.name), list(source.dims)))
    for init in graph.initializer:
        if int(np.prod(init.dims)) <= _INLINE_LIMIT:
            light.initializer.append(init)
        else:
            light.input.append(onnx.helper.make_tensor_value_info(init.name, init.data_type,
                                                                  list(init.dims)))
    for name, value in injected.items():
        light.initializer.append(numpy_helper.from_array(np.asarray(value), name))
    for output in graph.output:
        light.output.append(onnx.helper.make_empty_tensor_value_info(output.name))
    copy = onnx.helper.make_model(light, opset_imports=list(model.opset_import))
    copy.ir_version = model.ir_version
    try:
        inferred = shape_inference.infer_shapes(copy, check_type=False, strict_mode=False,
                                                data_prop=True)
    except Exception:  # inference is a help: without it the importer asks for fewer shapes
        inferred = copy
    shapes: dict[str, Shape] = {}
    for info in (*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output):
        tensor_type = info.type.tensor_type
        if tensor_type.HasField("shape"):
            shapes[info.name] = tuple(d.dim_value if d.HasField("dim_value") else None
                                      for d in tensor_type.shape.dim)
    for init in (*graph.initializer, *light.initializer):
        shapes[init.name] = tuple(init.dims)
    return shapes


def _elem_type(graph: onnx.GraphProto, name: str) -> int:
    for info in graph.input:
        if info.name == name:
            return info.type.tensor_type.elem_type or onnx.TensorProto.FLOAT
    return onnx.TensorProto.FLOAT


def fold_constants(model: onnx.ModelProto, shapes: dict[str, Shape],
                   stored: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """The value of every tensor that does not depend on the image: initializers (`stored`,
    when already read), Constant nodes, Shape of a tensor whose shape is known, and every node
    fed by those alone."""
    values = dict(stored) if stored is not None else {
        init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    foldable: list[onnx.NodeProto] = []
    known = set(values)
    for node in model.graph.node:
        inputs = [name for name in node.input if name]
        if node.op_type == "Shape" and node.domain in STANDARD_DOMAINS:
            shape = shapes.get(node.input[0])
            if shape is not None and all(d is not None for d in shape):
                options = attrs(node)
                dims = list(shape)[options.get("start", 0):options.get("end", len(shape))]
                values[node.output[0]] = np.array(dims, dtype=np.int64)
                known.add(node.output[0])
            continue
        if (node.domain in STANDARD_DOMAINS and node.op_type not in _NOT_FOLDED
                and all(name in known for name in inputs)
                and not any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
                            for a in node.attribute)):
            foldable.append(node)
            known.update(name for name in node.output if name)
    if foldable:
        values.update(_evaluate(model, foldable, values))
    return values


def _evaluate(model: onnx.ModelProto, nodes: list[onnx.NodeProto],
              values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run the constant nodes with onnx's reference evaluator: all together, else one by one
    (a node it cannot run, or whose inputs failed, stays out: the importer refuses it if the
    network needs it)."""
    try:
        return _run(model, nodes, values)
    except Exception:
        pass
    results: dict[str, np.ndarray] = {}
    for node in nodes:
        if all(name in values or name in results for name in node.input if name):
            try:
                results.update(_run(model, [node], {**values, **results}))
            except Exception:
                continue
    return results


def _run(model: onnx.ModelProto, nodes: list[onnx.NodeProto],
         values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    from onnx.reference import ReferenceEvaluator

    produced = {name for node in nodes for name in node.output if name}
    needed = sorted({name for node in nodes for name in node.input
                     if name and name not in produced})
    outputs = sorted(produced)
    graph = onnx.helper.make_graph(
        nodes, "constants",
        [onnx.helper.make_tensor_value_info(name, onnx.helper.np_dtype_to_tensor_dtype(
            values[name].dtype), None) for name in needed],
        [onnx.helper.make_empty_tensor_value_info(name) for name in outputs])
    evaluator = ReferenceEvaluator(onnx.helper.make_model(
        graph, opset_imports=list(model.opset_import)))
    results = evaluator.run(None, {name: values[name] for name in needed})
    return {name: np.asarray(value) for name, value in zip(outputs, results)}


def const_attr(node: onnx.NodeProto, consts: dict[str, np.ndarray], index: int, name: str,
               default: Any = None) -> Any:
    """An operand given as input `index` (newer opsets) or as attribute `name` (older ones);
    None when the input is there but not constant."""
    if len(node.input) > index and node.input[index]:
        value = consts.get(node.input[index])
        return None if value is None else value
    return attrs(node).get(name, default)


def as_float(value: Any) -> float:
    """A float32 attribute as the decimal it was written as (0.1 stays 0.1)."""
    number = float(np.asarray(value).reshape(-1)[0])
    return number if not math.isfinite(number) or number == 0 else float(f"{number:.7g}")


__all__ = ["MAX_OPSET", "MIN_OPSET", "OnnxInput", "Shape", "as_float", "attrs", "const_attr",
           "fixed_shapes", "fold_constants", "network_input",
           "shapes_and_constants", "node_label", "read_model",
           "standard_opset"]
