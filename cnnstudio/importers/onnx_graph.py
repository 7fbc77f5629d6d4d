"""Import an ONNX network as a CNN Studio graph with its weights: `from_onnx(path)`.

The file is read and checked, every tensor that does not depend on the image is folded away
(onnx_read), and the remaining nodes are walked in order. Each tensor gets a value: the output
of a block, or a step that only the next node can place (onnx_values: a Pad that a Conv folds
in, an average pooling that a Div turns into Keras' 'same' average, the normalisation in front
of the network). Exporters spell some layers as several nodes (LocalResponseNorm, GELU, SiLU,
L2 pooling); those are recognised whole. A node without a block becomes a refusal that counts
only if an output needs it, so a pattern's inner nodes never refuse an import. The finished
graph is analysed, and each block's shape compared with the ONNX model's, so an import is
faithful or refused (every unmappable node named), never half done.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
import torch

from cnnstudio.core.analysis import analyze
from cnnstudio.core.graph import Graph, GraphError
from cnnstudio.importers import onnx_ops
from cnnstudio.importers.common import (
    ImportRefused,
    ImportResult,
    block_name_for,
    first_line,
    lay_out,
)
from cnnstudio.importers.onnx_read import STANDARD_DOMAINS, network_input, read_model
from cnnstudio.importers.onnx_values import (
    FUSABLE,
    ImporterState,
    NoBlock,
    Spec,
    advice_for,
    shown,
)
from cnnstudio.nn.module_weights import WEIGHT_SUBMODULE


def from_onnx(path: str | os.PathLike[str], *,
              input_shape: tuple[int, int, int] | None = None) -> ImportResult:
    """The network in an ONNX file as a laid-out graph and its weights (GraphModel keys).

    `input_shape` (C, H, W) fixes an input whose height or width the file leaves open. Raises
    ImportRefused, whose message says what is wrong and what to do, for a file that cannot be
    read and for a network with any node that no block stands for.
    """
    file = Path(path)
    model = read_model(file)
    source = network_input(model, file.name, input_shape)
    try:
        return OnnxImporter(model, file.name, source).run()
    except ImportRefused:
        raise
    except MemoryError:
        raise ImportRefused(f"cannot import '{file.name}': out of memory; close other programs "
                            "and try again") from None
    except Exception as err:  # a file no test foresaw: a message, never a traceback
        raise ImportRefused(f"cannot import '{file.name}': the import failed unexpectedly "
                            f"({type(err).__name__}: {first_line(err)[:200]}); please report "
                            "this file") from err


class OnnxImporter(ImporterState):
    """One import: walks the nodes, then checks and builds the graph."""

    # -- the walk ---------------------------------------------------------------------------

    def run(self) -> ImportResult:
        for node in self.model.graph.node:
            outputs = [name for name in node.output if name]
            if all(name in self.consts for name in outputs):
                continue
            handler: Callable | None = None
            if node.domain in STANDARD_DOMAINS:
                handler = onnx_ops.HANDLERS.get(node.op_type)
            try:
                if handler is None:
                    raise NoBlock(advice_for(node.op_type, node.domain))
                results = handler(self, node)
            except NoBlock as refusal:
                results = [self.refuse(node, str(refusal))]
            except (ValueError, KeyError, IndexError, TypeError, ArithmeticError) as err:
                results = [self.refuse(node, f"cannot be read ({type(err).__name__}: {err})")]
            if not isinstance(results, (list, tuple)):
                results = [results]
            for index, name in enumerate(node.output):
                if name and name not in self.consts:
                    self.values[name] = (results[index] if index < len(results)
                                         else self.refuse(node, "its extra output has no block"))
        outputs = self.outputs()
        return self.finish(outputs)

    def outputs(self) -> list[str]:
        ids = []
        for index, output in enumerate(self.model.graph.output):
            shape = self.shape(output.name)
            stand_in = onnx.helper.make_node("Output", [output.name], [], name=output.name)
            if output.name in self.consts or output.name not in self.values:
                source = self.refuse(stand_in, "the output does not depend on the image").spec
            elif shape is not None and len(shape) != 2:
                source = self.refuse(stand_in, f"the output is {shown(shape)}: a CNN Studio "
                                     "output is one score per class (end with Flatten and Dense)"
                                     ).spec
            else:
                try:
                    source = self.source(output.name)
                except NoBlock as refusal:
                    source = self.refuse(stand_in, str(refusal)).spec
            ids.append(self.add("Output", output.name, {"auxiliary": index > 0},
                                [source]).spec)
        return ids

    # -- finishing --------------------------------------------------------------------------

    def finish(self, output_ids: list[str]) -> ImportResult:
        needed = self.needed(output_ids)
        refusals = [spec.refusal for spec in self.specs.values()
                    if spec.id in needed and spec.refusal is not None]
        if refusals:
            nodes = "1 node of the network has" if len(refusals) == 1 else \
                f"{len(refusals)} nodes of the network have"
            raise ImportRefused(f"cannot import '{self.file_name}': {nodes} no CNN Studio block "
                                "(nothing was imported)", refusals)
        specs = fuse_activations([s for s in self.specs.values() if s.id in needed])
        graph = self.build(specs)
        analysis = analyze(graph)
        problems = [(graph.block(d.block_id).name if d.block_id in graph else "network",
                     graph.block(d.block_id).type if d.block_id in graph else "graph",
                     d.message + (f" (fix: {d.fix})" if d.fix else ""))
                    for d in analysis.errors]
        for spec in specs:
            info = analysis.blocks.get(spec.id)
            got = info.output_shape if info is not None else None
            if spec.shape is not None and got is not None and tuple(got) != spec.shape:
                problems.append((spec.name, spec.type or "", f"CNN Studio computes shape {got}"
                                 f" where the ONNX model has {spec.shape}"))
        if problems:
            raise ImportRefused(f"cannot import '{self.file_name}': the network CNN Studio "
                                "would build does not match it", problems)
        state = weights_state(specs)
        check_weights(graph, state, self.file_name)
        lay_out(graph)
        return ImportResult(graph, state, self.file_name, self.notes(graph))

    def needed(self, output_ids: list[str]) -> set[str]:
        seen: set[str] = set()
        stack = list(output_ids)
        while stack:
            current = stack.pop()
            if current not in seen:
                seen.add(current)
                stack.extend(self.specs[current].sources)
        return seen

    def build(self, specs: list[Spec]) -> Graph:
        graph = Graph()
        try:
            for spec in specs:
                graph.add_block(spec.type, spec.params, name=block_name_for(spec.name),
                                block_id=spec.id)
            for spec in specs:
                for port, source in enumerate(spec.sources):
                    graph.connect(source, spec.id, port)
        except GraphError as err:
            raise ImportRefused(f"cannot import '{self.file_name}': {err}") from None
        return graph

    def notes(self, graph: Graph) -> list[str]:
        producer = self.model.producer_name or "an unknown exporter"
        notes = [f"{len(graph)} blocks from {self.file_name} (ONNX opset {self.opset}, written "
                 f"by {producer})"]
        affine = self.normalisation
        if affine is not None and not affine.is_identity():
            mean, std = affine.mean_std()
            notes.append(
                "the file normalised its input itself, (x − mean) / std with mean "
                f"{_numbers(mean)} and std {_numbers(std)}; the imported network starts after "
                "that step, so it takes normalised images as CNN Studio's training gives them")
        props = {p.key: p.value for p in self.model.metadata_props}
        if "input_range" in props:
            notes.append(f"the file took pixel values in {props['input_range']}")
        return notes


def _numbers(values: np.ndarray) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in values) + ")"


def fuse_activations(specs: list[Spec]) -> list[Spec]:
    """An activation that alone reads a Conv2D or Dense becomes that block's `activation`."""
    readers: dict[str, int] = {}
    for spec in specs:
        for source in spec.sources:
            readers[source] = readers.get(source, 0) + 1
    by_id = {spec.id: spec for spec in specs}
    replaced: dict[str, str] = {}
    for spec in specs:
        if spec.type != "Activation" or spec.params.get("function") not in FUSABLE:
            continue
        params = spec.params
        if params.get("negative_slope", 0.01) != 0.01 or params.get("alpha", 1.0) != 1.0:
            continue
        target = by_id[spec.sources[0]]
        if (target.type in ("Conv2D", "Dense") and readers[target.id] == 1
                and target.params.get("activation", "none") == "none"):
            target.params["activation"] = params["function"]
            target.shape = spec.shape
            replaced[spec.id] = target.id
    kept = [spec for spec in specs if spec.id not in replaced]
    for spec in kept:
        spec.sources = [replaced.get(source, source) for source in spec.sources]
    return kept


def weights_state(specs: list[Spec]) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = {}
    for spec in specs:
        if spec.type not in WEIGHT_SUBMODULE:
            continue
        prefix = f"blocks.{spec.id}.{WEIGHT_SUBMODULE[spec.type]}"
        for leaf, array in spec.weights.items():
            state[f"{prefix}.{leaf}"] = torch.from_numpy(np.array(array, dtype=np.float32))
        if spec.type == "BatchNorm":
            state[f"{prefix}.num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
    return state


def check_weights(graph: Graph, state: dict[str, torch.Tensor], file_name: str) -> None:
    """The weights fit the model CNN Studio builds (on the meta device: no memory used)."""
    from cnnstudio.nn.build import build_model

    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in build_model(graph).state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.items()}
    if expected != got:
        wrong = sorted(set(expected) ^ set(got)) or sorted(
            k for k in expected if expected[k] != got[k])
        raise ImportRefused(f"cannot import '{file_name}': its weights do not fit the network "
                            f"({', '.join(wrong[:4])}); please report this file")


__all__ = ["OnnxImporter", "from_onnx"]
