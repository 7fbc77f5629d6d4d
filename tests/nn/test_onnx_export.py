"""The ONNX graph as torch.onnx's current exporter writes it: clean, named after the blocks,
any batch size; the older exporter as the fall-back; onnxslim optional."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort
import onnxslim
import pytest

from cnnstudio.core.graph import Graph
from cnnstudio.nn import onnx_export
from cnnstudio.nn.export import ExportError, export_onnx, load_run
from cnnstudio.nn.onnx_export import NORMALISE, PROBABILITIES, block_labels, node_counts
from tests.nn.test_export import (  # noqa: F401 (one_torch_thread: an autouse fixture)
    direct_probabilities,
    images,
    make_run,
    one_torch_thread,
    zoo_graph,
)


def owner(node: onnx.NodeProto) -> str:
    """The block label of a node name `<label>/<op>` (labels may hold '/': GoogLeNet's)."""
    return node.name.rsplit("/", 1)[0]


def log(probabilities: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(probabilities.astype(np.float64), 1e-30))


@pytest.mark.parametrize("source", [
    "keras-mnist", "zoo",
    pytest.param("googlenet", marks=pytest.mark.slow),  # 10-15 s each on 2 cores
    pytest.param("resnet18", marks=pytest.mark.slow),
])
def test_the_graph_is_clean_named_after_the_blocks_and_takes_any_batch(source, tmp_path):
    run = load_run(make_run(tmp_path / "run", zoo_graph() if source == "zoo" else source))
    out = tmp_path / "net.onnx"
    report = export_onnx(run, out, benchmark_runs=0)
    assert report.max_abs_diff <= 1e-4 and report.notes == ()
    proto = onnx.load(str(out))
    counts = node_counts(proto)
    assert counts["If"] == 0  # LocalResponseNorm wrote two with the older exporter
    assert counts["Constant"] == 0  # constants are initializers, no shape arithmetic left

    labels = block_labels(run.project.graph)
    names = [node.name for node in proto.graph.node]
    assert len(set(names)) == len(names)
    assert not any(node.metadata_props for node in proto.graph.node)  # no source paths of ours
    known = set(labels.values()) | {NORMALISE, PROBABILITIES}
    strangers = [name for name, node in zip(names, proto.graph.node, strict=True)
                 if not set(owner(node).split("+")) <= known
                 or not name.rsplit("/", 1)[1].startswith(node.op_type)]
    assert strangers == []
    assert names[:2] == ["normalise/Sub", "normalise/Div"]
    assert names[-1] == "probabilities/Softmax"
    if source == "resnet18":  # a BatchNorm folded into the convolution before it
        assert names[2] == f"{labels['conv1']}+{labels['bn1']}/Conv"
    if source == "googlenet":  # bench/export_graph.py's figures, kept from sliding back
        assert counts["Conv"] == 57 and sum(counts.values()) <= 170  # before: 318 (79 Constant)
    main = set(run.model.main_path)
    for block in run.project.graph.blocks:  # every convolution is found by its block's label
        if block.type == "Conv2D" and block.id in main:
            assert any(node.op_type == "Conv" and owner(node).split("+")[0] == labels[block.id]
                       for node in proto.graph.node), block.name
    pads = Counter(owner(node) for node in proto.graph.node if node.op_type == "Pad")
    assert all(count == 1 for count in pads.values()), pads  # one Pad per padded block at most

    (image,) = proto.graph.input
    assert image.type.tensor_type.shape.dim[0].dim_param == "batch"
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    for n in (1, 5):
        x = images(run, n, seed=11)
        got = session.run(None, {"image": x.numpy()})[0]
        assert got.shape == (n, len(run.classes))
        assert np.abs(log(got) - log(direct_probabilities(run, x))).max() <= 1e-4


def test_blocks_sharing_a_name_are_told_apart_by_their_ids():
    graph = Graph()
    graph.add_block("Input", {"channels": 1, "height": 8, "width": 8}, name="image",
                    block_id="input")
    first = graph.add_block("Conv2D", {"filters": 2}, name="conv")
    second = graph.add_block("Conv2D", {"filters": 2}, name="conv")
    labels = block_labels(graph)
    assert labels == {"input": "image", first.id: first.id, second.id: second.id}


@pytest.fixture(scope="module")
def keras_run(tmp_path_factory: pytest.TempPathFactory):
    return load_run(make_run(tmp_path_factory.mktemp("keras") / "run", "keras-mnist"))


def test_when_the_current_exporter_fails_the_older_one_writes_the_file(keras_run, tmp_path,
                                                                        monkeypatch):
    def refuse(*_args, **_kwargs):
        raise RuntimeError("Could not guard on data-dependent expression\nlong trace")

    monkeypatch.setattr(onnx_export, "dynamo_proto", refuse)
    out = tmp_path / "m.onnx"
    report = export_onnx(keras_run, out, benchmark_runs=0)
    assert report.max_abs_diff <= 1e-4
    (note,) = report.notes
    assert "older TorchScript-based ONNX exporter" in note and "data-dependent" in note
    assert note in report.summary()
    proto = onnx.load(str(out))
    assert {"conv1/Conv", "conv1/Relu", "fc2/Gemm"} <= {node.name for node in proto.graph.node}
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    x = images(keras_run, 3)
    np.testing.assert_allclose(session.run(None, {"image": x.numpy()})[0],
                               direct_probabilities(keras_run, x), atol=1e-4)


def test_when_both_exporters_fail_the_first_reason_is_given(keras_run, tmp_path, monkeypatch):
    def refuse(*_args, **_kwargs):
        raise RuntimeError("Unsupported operator aten::frobnicate")

    monkeypatch.setattr(onnx_export, "dynamo_proto", refuse)
    monkeypatch.setattr(onnx_export, "legacy_proto", lambda *_: 1 / 0)
    with pytest.raises(ExportError, match="cannot convert this network to ONNX .*frobnicate.*"
                                          "ExportedProgram"):
        export_onnx(keras_run, tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_a_failing_simplification_keeps_the_graph_as_exported(keras_run, tmp_path, monkeypatch):
    def broken(*_args, **_kwargs):
        raise ValueError("onnxslim cannot handle this graph")

    monkeypatch.setattr(onnxslim, "slim", broken)
    report = export_onnx(keras_run, tmp_path / "m.onnx", benchmark_runs=0)
    assert report.max_abs_diff <= 1e-4 and report.notes == ()
    names = [node.name for node in onnx.load(str(report.path)).graph.node]
    assert "conv2/Conv" in names and "probabilities/Softmax" in names
