"""Import a torch module (a torchvision model, your own nn.Module) with torch.fx.

`symbolic_trace` records forward() as a graph of nodes (in eval mode: the network that
predicts), and one run on a zero image gives each node's shape. Every node then becomes a block
(importers.fx_nodes): a layer module a block named after its path ("layer1.0.conv1"), so that
`graph_state_from_module_state` maps the module's state dict onto the graph by name; a function
(F.relu, torch.cat, +) a block named after the module it sits in ("layer1.0.add"); a size
(x.size(0)) no block at all. Every node that no block can stand for is listed and nothing is
imported. The finished graph is analysed and each block's shape compared with the module's own,
so an import is faithful or refused, never half done.
"""

from __future__ import annotations

import traceback
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, fx, nn

from cnnstudio.importers.common import ImportRefused, ImportResult, first_line, lay_out
from cnnstudio.importers.fx_nodes import NodeFailed, NodeMapper, ShapeRecorder
from cnnstudio.nn.module_weights import (
    WEIGHT_SUBMODULE,
    graph_state_from_module_state,
    strip_wrappers,
)
from cnnstudio.nn.torch_files import StateFileError, read_state_dict

ONNX_ADVICE = "or export the module to ONNX (torch.onnx.export) and import the .onnx file"


def _trace_problem(err: BaseException) -> str:
    """Why torch.fx could not trace, with the line of forward() it stopped at."""
    text = first_line(err)
    if "control flow" in text:
        text = ("forward() decides what to do from the values in a tensor (data-dependent "
                "control flow), which a traced graph cannot hold")
    elif "iterate" in text.lower():
        text = "forward() loops over a tensor, which a traced graph cannot hold"
    torch_folder = str(Path(torch.__file__).parent)
    frames = [f for f in traceback.extract_tb(err.__traceback__)
              if not f.filename.startswith(torch_folder) and f.filename != __file__]
    if frames:
        where = frames[-1]
        text += f" (at {Path(where.filename).name}, line {where.lineno}: {where.line})"
    return text


def _trace(module: nn.Module, source: str) -> fx.GraphModule:
    try:
        return fx.symbolic_trace(module)
    except Exception as err:  # TraceError, or whatever forward() raises on a Proxy
        raise ImportRefused(f"torch.fx cannot trace {source}: {_trace_problem(err)}. Make "
                            f"forward() independent of the values in its tensors, "
                            f"{ONNX_ADVICE}") from None


def _checked_shape(input_shape: Any) -> tuple[int, int, int]:
    try:
        shape = tuple(int(v) for v in input_shape)
        exact = all(int(v) == v for v in input_shape)
    except (TypeError, ValueError):
        shape, exact = (), False
    if len(shape) != 3 or not exact or min(shape) < 1:
        raise ImportRefused(f"input_shape must be the image's (channels, height, width), such "
                            f"as (3, 224, 224); got {input_shape!r}")
    return shape  # type: ignore[return-value]


def _named_state(module: nn.Module, mapper: NodeMapper) -> tuple[dict[str, Tensor], list[str]]:
    """The module's tensors with GraphModel keys (matched by block name = module path), and the
    modules with tensors that forward() never used (left out)."""
    module_state = module.state_dict()
    named = graph_state_from_module_state(module_state, mapper.graph)
    state = dict(named.state)
    for block_id in named.unmatched_blocks:  # a path longer than a block name: by the node
        block, path = mapper.graph.block(block_id), str(mapper.node_of[block_id].target)
        for key, tensor in module_state.items():
            owner, _, leaf = strip_wrappers(key).rpartition(".")
            if owner == path:
                state[f"blocks.{block_id}.{WEIGHT_SUBMODULE[block.type]}.{leaf}"] = tensor
    used = {str(node.target) for node in mapper.node_of.values()}
    return state, [path for path in named.unmatched_modules if path and path not in used]


def from_module(module: nn.Module, input_shape: Iterable[int], *,
                name: str | None = None) -> ImportResult:
    """A graph and its weights for a torch module that reads images of `input_shape` (C, H, W).

    Raises ImportRefused, naming every operation without a block, when it cannot be imported
    as a whole.
    """
    if not isinstance(module, nn.Module):
        raise ImportRefused(f"expected a torch.nn.Module, got {type(module).__name__}")
    shape = _checked_shape(input_shape)
    source = name or type(module).__name__
    was_training = module.training
    module.eval()  # the network that predicts: no auxiliary heads, dropout as at prediction
    try:
        traced = _trace(module, source)
        recorder = ShapeRecorder(traced)
        try:
            with torch.no_grad():
                recorder.run(torch.zeros(1, *shape))
        except NodeFailed as failed:
            mapper, where = None, failed.node.name
            if failed.node.op == "call_module":
                layer = traced.get_submodule(str(failed.node.target))
                where = f"{failed.node.target} ({type(layer).__name__})"
            ran = f"at {where}: {first_line(failed.error)}"
        else:
            mapper = NodeMapper(traced, shape, recorder)
            mapper.run()
    finally:
        module.train(was_training)
    if mapper is None:
        raise ImportRefused(f"cannot import {source}: it fails on an image of {shape} {ran}; "
                            "check input_shape (channels, height, width)")
    if mapper.unsupported:
        count = len(mapper.unsupported)
        raise ImportRefused(f"cannot import {source}: {count} operation"
                            f"{'s of forward() have' if count > 1 else ' of forward() has'} no "
                            "CNN Studio block; nothing was imported",
                            mapper.unsupported)
    problems = mapper.problems()
    if problems:
        raise ImportRefused(f"cannot import {source}: the imported network does not check out",
                            problems)
    state, unused = _named_state(module, mapper)
    notes = list(mapper.notes)
    if unused:
        notes.append("not used by forward(), so left out: " + ", ".join(unused[:8])
                     + (f" and {len(unused) - 8} more" if len(unused) > 8 else ""))
    lay_out(mapper.graph)
    return ImportResult(mapper.graph, state, source, notes)


# -- torchvision --------------------------------------------------------------------------------


def torchvision_models() -> list[str]:
    """The names of torchvision's image classification models (resnet18, mobilenet_v2 ...)."""
    import torchvision.models

    return sorted(torchvision.models.list_models(module=torchvision.models))


def from_torchvision(model_name: str, weights_file: str | Path | None = None,
                     input_shape: Iterable[int] = (3, 224, 224)) -> ImportResult:
    """torchvision.models.<model_name>, with the weights of `weights_file` (a state dict saved
    with torch.save, read with weights_only=True) or untrained, imported as from_module does."""
    import torchvision.models

    names = torchvision_models()
    if model_name not in names:
        raise ImportRefused(f"torchvision has no classification model '{model_name}'; choose "
                            f"one of: {', '.join(names)}")
    shape = _checked_shape(input_shape)
    try:
        with warnings.catch_warnings():  # googlenet, inception_v3: notes on their start values
            warnings.simplefilter("ignore", FutureWarning)
            module = torchvision.models.get_model(model_name, weights=None)
    except Exception as err:  # a model that needs settings torchvision cannot default
        raise ImportRefused(f"torchvision cannot build {model_name}: {first_line(err)}") \
            from None
    if weights_file is not None:
        _load_weights(module, model_name, Path(weights_file))
    return from_module(module, shape, name=f"torchvision {model_name}")


def _load_weights(module: nn.Module, model_name: str, path: Path) -> None:
    """Load a state dict for torchvision's model into it, or say why not (never PyTorch's
    advice to load a file with weights_only=False: that runs the code it holds)."""
    summary = f"cannot read the {model_name} weights '{path}'"
    try:
        state = {strip_wrappers(k): v for k, v in
                 read_state_dict(path, f"the {model_name} weights").items()}
    except StateFileError as err:
        raise ImportRefused(str(err)) from None
    expected = module.state_dict()
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    extra = [k for k in state if k not in expected]
    other = [f"{k} ({_size(state[k])} in the file, {_size(expected[k])} here)"
             for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or extra or other:
        parts = [f"{len(found)} {what}: {', '.join(found[:4])}"
                 + (f" and {len(found) - 4} more" if len(found) > 4 else "")
                 for what, found in (("missing", missing), ("not in the model", extra),
                                     ("of another shape", other)) if found]
        raise ImportRefused(f"{summary}: these are not the weights of torchvision's "
                            f"{model_name} ({'; '.join(parts)}); give the file saved from "
                            f"torchvision.models.{model_name}() with model.state_dict()")
    module.load_state_dict(state, strict=False)


def _size(tensor: Tensor) -> str:
    return "×".join(str(d) for d in tensor.shape) or "one value"


__all__ = ["from_module", "from_torchvision", "torchvision_models"]
