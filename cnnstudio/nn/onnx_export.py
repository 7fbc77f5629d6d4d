"""The ONNX export: torch.onnx's current exporter (torch.export + onnxscript), simplified by
onnxslim, every node named after the user's block, then checked by onnx.checker and against
onnxruntime.

The current exporter records the graph with torch.export and writes each aten operator as the
one ONNX operator it is: a `same` pooling becomes one Pad and its pool (the TorchScript-based
exporter wrote about eleven shape-computing nodes for it) and LocalResponseNorm no `If` nodes.
Should it fail for some network, the older TorchScript-based exporter is tried, and the report
says so (ExportReport.notes).
"""

from __future__ import annotations

import ast
import io
import json
import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from cnnstudio import __version__
from cnnstudio.core.graph import Graph
from cnnstudio.nn.export_common import (
    BENCHMARK_RUNS,
    INPUT_NAME,
    OUTPUT_NAME,
    ExportError,
    ExportReport,
    LoadedRun,
    StrPath,
    _compare,
    _deployment_export,
    _first_line,
    _metadata,
    _quiet_torch,
    _references,
    _report,
    _torch_outputs,
    _weights_bytes,
    guarded,
    median_ms,
    staged,
)

# onnx.ModelProto and onnx.NodeProto: onnx is imported inside the functions only (the layering
# rule keeps it off the import of nn), so the annotations name them by these aliases
OnnxModel = Any
OnnxNode = Any

OPSET = 18  # the current exporter's own opset (the importer reads 11..21)
LEGACY_OPSET = 17
BATCH = "batch"  # the name of the dynamic first dimension
NORMALISE = "normalise"  # the label of the nodes before the first block (mean and std)
PROBABILITIES = "probabilities"  # ... and after the last one (softmax)
_SCOPES_KEY = "pkg.torch.onnx.name_scopes"
_BLOCK_SCOPE = re.compile(r"^model\.blocks\.([^.]+)$")  # NormalizedModel.model.blocks[<id>]
_LEGACY_SCOPE = re.compile(r"^/model/(?:blocks\.)?([^/]+)/")  # /model/conv1/conv/Conv
_WEIGHT = re.compile(r"^model\.blocks\.([^.]+)\.")  # a block's parameter, as an initializer


@guarded("the ONNX export")
def export_onnx(run: LoadedRun, out_path: StrPath, *, samples: Tensor | None = None,
                tolerance: float = 1e-4, benchmark_runs: int = BENCHMARK_RUNS,
                overwrite: bool = False) -> ExportReport:
    """ONNX (opset 18, dynamic batch), checked by onnx.checker and against onnxruntime.

    Only the main output's blocks are exported (main_path_model): auxiliary heads of training
    would travel unused."""
    import onnx
    import onnxruntime as ort

    job = _deployment_export(run, out_path, samples, overwrite)
    target, wrapper, batches = job.target, job.reference, job.batches
    with staged(target, _weights_bytes(run)) as temp:
        proto, notes = convert(job.deployed, batches[0][:2], block_labels(run.project.graph))
        proto.producer_name, proto.producer_version = "CNN Studio", __version__
        proto.doc_string = (f"{run.project.name}: images (N, C, H, W) with pixel values in "
                            "[0, 1] -> class probabilities")
        props = {k: v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
                 for k, v in _metadata(run).items()}
        props["input_shape"] = ",".join(map(str, run.input_shape))
        onnx.helper.set_model_props(proto, props)
        try:
            onnx.checker.check_model(proto, full_check=True)
        except Exception as err:
            raise ExportError(f"the ONNX model fails onnx.checker ({_first_line(err)}), so "
                              f"'{target.name}' was not written; please report this network") \
                from None
        onnx.save(proto, str(temp))
        # PyTorch runs before onnxruntime starts: the threads of an onnxruntime session spin
        # for a while after each run and, on a machine with few cores, slow PyTorch down.
        expected = _references(wrapper, batches)
        one = batches[0][:1]
        torch_ms = median_ms(lambda: _torch_outputs(wrapper, one), benchmark_runs)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        # from the bytes as written, so that no handle keeps the file open while it moves
        session = ort.InferenceSession(temp.read_bytes(), options,
                                       providers=["CPUExecutionProvider"])

        def run_ort(batch: Tensor) -> np.ndarray:
            return session.run([OUTPUT_NAME], {INPUT_NAME: batch.numpy()})[0]

        diff = _compare(target, "ONNX", batches, expected, run_ort, tolerance)
        ort_ms = median_ms(lambda: run_ort(one), benchmark_runs)
    report = _report(target, "onnx", job.started, diff, batches, ort_ms, torch_ms, run=run,
                     tolerance=tolerance)
    report.notes = notes
    return report


def convert(model: nn.Module, example: Tensor,
            labels: Mapping[str, str]) -> tuple[OnnxModel, tuple[str, ...]]:
    """The ONNX graph of `model` (a NormalizedModel) with its nodes named after the blocks, and
    the notes a user should read (the fall-back exporter, when the current one failed)."""
    notes: tuple[str, ...] = ()
    try:
        proto = dynamo_proto(model, example)
    except Exception as err:
        why = f"{type(err).__name__}: {_first_line(err)}"
        try:
            proto = legacy_proto(model, example)
        except Exception:
            raise ExportError(f"PyTorch cannot convert this network to ONNX ({why}); export it "
                              "as an ExportedProgram, TorchScript or Python instead") from None
        notes = (f"written with PyTorch's older TorchScript-based ONNX exporter: the current "
                 f"one failed for this network ({why})",)
    name_nodes(proto, labels)
    return slim(proto), notes


def dynamo_proto(model: nn.Module, example: Tensor) -> OnnxModel:
    """torch.onnx's current exporter (dynamo=True), any batch size, optimised by onnxscript."""
    with _quiet_torch(), torch.no_grad():
        program = torch.onnx.export(
            model, (example,), dynamo=True, opset_version=OPSET, input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME], dynamic_shapes=({0: torch.export.Dim(BATCH)},),
            optimize=True, verbose=False, report=False,
        )
    return program.model_proto


def legacy_proto(model: nn.Module, example: Tensor) -> OnnxModel:
    """The TorchScript-based exporter, deprecated in torch: the fall-back, and the 'before' of
    bench/export_graph.py."""
    import onnx

    buffer = io.BytesIO()
    with _quiet_torch(), torch.no_grad():
        torch.onnx.export(
            model, (example,), buffer, dynamo=False, opset_version=LEGACY_OPSET,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: BATCH}, OUTPUT_NAME: {0: BATCH}},
        )
    return onnx.load_from_string(buffer.getvalue())


def block_labels(graph: Graph) -> dict[str, str]:
    """Block id -> the label its nodes carry: the block's name where no other block has it,
    else its id (ids are unique)."""
    names = Counter(block.name for block in graph.blocks)
    return {block.id: block.name if block.name and names[block.name] == 1 else block.id
            for block in graph.blocks}


def name_nodes(proto: OnnxModel, labels: Mapping[str, str]) -> None:
    """Name every node `<block label>/<op>` (`conv2/Conv`, `conv2/Relu`; a second one of an op in
    a block `conv2/Relu_1`), like the names of the older exporter but after the user's blocks.

    The block is read from the exporter's metadata (the module scopes of the node), or from the
    older exporter's node names; a node that fuses two blocks (a BatchNorm folded into the
    convolution before it) is named after both, `conv1+bn1/Conv`, the block of its weights
    first. Nodes outside every block are the normalisation before the network and the softmax
    after it. The metadata (with source paths of this machine) is dropped."""
    used: Counter[str] = Counter()
    seen_block = False
    for node in proto.graph.node:
        scope = _scope_block(node)
        weights = next((found.group(1) for found in map(_WEIGHT.match, node.input) if found),
                       None)
        owners = list(dict.fromkeys(block for block in (weights, scope) if block is not None))
        if owners:
            seen_block = True
            label = "+".join(labels.get(block, block) for block in owners)
        else:
            label = PROBABILITIES if seen_block else NORMALISE
        base = f"{label}/{node.op_type}"
        node.name = base if not used[base] else f"{base}_{used[base]}"
        used[base] += 1
        del node.metadata_props[:]


def _scope_block(node: OnnxNode) -> str | None:
    for prop in node.metadata_props:
        if prop.key == _SCOPES_KEY:
            try:
                scopes = ast.literal_eval(prop.value)
            except (ValueError, SyntaxError):
                break
            for scope in scopes if isinstance(scopes, list) else ():
                found = _BLOCK_SCOPE.match(str(scope))
                if found:
                    return found.group(1)
            return None
    found = _LEGACY_SCOPE.match(node.name)
    return found.group(1) if found else None


def slim(proto: OnnxModel) -> OnnxModel:
    """onnxslim's simplification (constant folding, dead nodes, fused patterns); the graph as
    exported when onnxslim cannot handle it (the export is checked either way)."""
    import onnxslim

    try:
        slimmed = onnxslim.slim(proto)
    except Exception:  # a simplification is optional; the unsimplified graph is correct
        return proto
    return slimmed if slimmed is not None else proto


def node_counts(proto: OnnxModel) -> Counter[str]:
    """How many nodes of each operator the main graph holds (bench/export_graph.py, tests)."""
    return Counter(node.op_type for node in proto.graph.node)


__all__ = ["OPSET", "block_labels", "convert", "dynamo_proto", "export_onnx", "legacy_proto",
           "name_nodes", "node_counts", "slim"]
