"""INT8 quantisation of a run's ONNX export (train/quantize.py), on a real trained network.

One Keras-book network (the keras-mnist template) is trained for one epoch on the bundled MNIST
sample (8,000 training images, 2,000 validation) per module, so that its accuracy means
something (about 95 %), and quantised once; every figure of the report is measured again here
by another route (the file's size on disk, onnxruntime run by hand, PyTorch's own accuracy)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from cnnstudio.core.templates import new_project
from cnnstudio.nn.export import ExportError, export_onnx, load_run, project_run
from cnnstudio.train.data import load_dataset
from cnnstudio.train.engine import TrainOptions, train
from cnnstudio.train.inspect import predictions
from cnnstudio.train.quantize import (
    QuantizeError,
    QuantizeReport,
    _output_tail,
    quantize_run,
)
from tests.train.conftest import MNIST_SHAPE, mnist_slice


@pytest.fixture(scope="module")
def keras_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder of the Keras-book network after one epoch on the MNIST sample."""
    project = new_project("keras-mnist", MNIST_SHAPE, 10, dataset={"spec": "mnist-sample"})
    data = load_dataset("mnist-sample", MNIST_SHAPE)
    folder = tmp_path_factory.mktemp("quantize") / "run"
    finished = train(project, data, folder, options=TrainOptions(epochs=1, batch_size=64,
                                                                 seed=0))
    assert finished.status == "completed", finished.message
    return folder


@pytest.fixture(scope="module")
def quantized(keras_run: Path, tmp_path_factory: pytest.TempPathFactory) -> QuantizeReport:
    out = tmp_path_factory.mktemp("int8") / "digits.int8.onnx"
    return quantize_run(keras_run, out, latency_runs=20)


def session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def probabilities(path: Path, images: np.ndarray) -> np.ndarray:
    model = session(path)
    x = images.astype(np.float32) / 255
    return np.concatenate([model.run(None, {"image": x[i:i + 500]})[0]
                           for i in range(0, len(x), 500)])


def test_int8_keras_network_is_under_a_third_of_the_size_and_as_accurate(quantized, keras_run,
                                                                         tmp_path):
    float_file = tmp_path / "float.onnx"
    export_onnx(load_run(keras_run), float_file, benchmark_runs=0)
    assert quantized.float.size_bytes == float_file.stat().st_size
    assert quantized.int8.size_bytes == quantized.path.stat().st_size
    assert quantized.path.stat().st_size <= 0.3 * float_file.stat().st_size
    assert quantized.float.accuracy > 0.9  # the network learned: the comparison means something
    assert abs(quantized.int8.accuracy - quantized.float.accuracy) <= 0.01
    assert quantized.validation_images == quantized.validation_total == 2000
    assert quantized.calibration_images == 300
    assert quantized.float.latency_ms > 0 and quantized.int8.latency_ms > 0
    assert quantized.latency_runs == 20


def test_the_int8_file_runs_in_onnxruntime_and_the_accuracies_are_measured(quantized,
                                                                           keras_run):
    data = load_dataset("mnist-sample", MNIST_SHAPE)
    int8 = probabilities(quantized.path, data.val_x)
    assert int8.shape == (2000, 10) and np.allclose(int8.sum(1), 1, atol=1e-5)
    assert np.mean(int8.argmax(1) == data.val_y) == pytest.approx(quantized.int8.accuracy)
    run = load_run(keras_run)  # the float figure by another route: PyTorch on the same images
    torch_p = predictions(run.model, data.val_x, run.mean, run.std, kind=run.output_kind)
    torch_accuracy = np.mean(torch_p.argmax(1) == data.val_y)
    assert abs(torch_accuracy - quantized.float.accuracy) <= 1 / 2000  # a tie at most
    assert quantized.max_probability_diff == pytest.approx(np.abs(int8 - torch_p).max(),
                                                           abs=1e-4)
    assert quantized.agreement == pytest.approx(np.mean(int8.argmax(1) == torch_p.argmax(1)),
                                                abs=1 / 2000)


def test_the_file_holds_int8_weights_and_float_probabilities(quantized):
    model = onnx.load(str(quantized.path))
    ops = [node.op_type for node in model.graph.node]
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    weights = [i for i in model.graph.initializer  # zero points and scales are vectors
               if i.data_type == onnx.TensorProto.INT8 and len(i.dims) >= 2]
    biases = 32 + 64 + 64 + 64 + 10
    assert sum(int(np.prod(i.dims)) for i in weights) == 93_322 - biases  # every weight
    last = next(node for node in model.graph.node if "probabilities" in node.output)
    assert last.op_type == "Softmax"  # not rounded to 1/256 by a QuantizeLinear
    props = {p.key: p.value for p in model.metadata_props}
    assert json.loads(props["classes"]) == [str(i) for i in range(10)]
    assert "calibrated on 300 training images" in props["quantization"]


def test_the_table_shows_the_measured_figures(quantized):
    table = quantized.table()
    ratio = quantized.path.stat().st_size / quantized.float.size_bytes
    assert f"{ratio:.2f}×" in table
    assert f"{quantized.float.accuracy:.2%}" in table and f"{quantized.int8.accuracy:.2%}" in table
    assert "all 2,000 validation images" in table and "300 training images" in table
    assert "[0, 1]" in table  # the pixel range the file takes
    assert [row[0] for row in quantized.rows()] == ["Validation accuracy", "File size",
                                                    "Time for one image"]


def test_an_existing_file_is_replaced_only_when_allowed(keras_run, tmp_path):
    out = tmp_path / "mine.onnx"
    out.write_bytes(b"the user's own file")
    with pytest.raises(ExportError, match="already exists"):
        quantize_run(keras_run, out)
    assert out.read_bytes() == b"the user's own file"
    report = quantize_run(keras_run, out, overwrite=True, calibration=40, validation_cap=500,
                          latency_runs=0)
    assert out.read_bytes() != b"the user's own file" and report.int8.latency_ms is None
    assert report.validation_images == 500 and report.validation_total == 2000
    assert report.calibration_images == 40
    assert "500 (evenly spread) of the 2,000 validation images" in report.table()
    assert "Time for one image" not in report.table()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.onnx"]  # no temporary file


def test_a_file_inside_the_run_folder_is_refused(keras_run):
    with pytest.raises(ExportError, match="inside the run folder"):
        quantize_run(keras_run, keras_run / "model.int8.onnx")
    assert not (keras_run / "model.int8.onnx").exists()


def test_a_run_whose_dataset_is_gone_says_so(keras_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(keras_run, copy)
    data_file = copy / "data.json"
    data = json.loads(data_file.read_text(encoding="utf-8"))
    data["spec"] = f"npz:{tmp_path / 'gone.npz'}"
    data_file.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(QuantizeError, match="dataset cannot be loaded.*calibrates") as caught:
        quantize_run(copy, tmp_path / "m.onnx")
    assert "gone.npz" in str(caught.value)
    assert not (tmp_path / "m.onnx").exists()


def test_a_dataset_with_other_classes_or_no_validation_images_is_refused(keras_run, tmp_path):
    sample = load_dataset("mnist-sample", MNIST_SHAPE)
    other = mnist_slice(sample, 64, 16)
    other.classes = [f"digit {i}" for i in range(10)]
    with pytest.raises(QuantizeError, match="other classes"):
        quantize_run(keras_run, tmp_path / "m.onnx", data=other)
    empty = mnist_slice(sample, 64, 0)
    with pytest.raises(QuantizeError, match="no validation images.*validation fraction"):
        quantize_run(keras_run, tmp_path / "m.onnx", data=empty)


def test_a_project_without_a_run_or_a_bad_count_is_refused(keras_run, tmp_path):
    untrained = project_run(new_project("keras-mnist", MNIST_SHAPE, 10))
    with pytest.raises(QuantizeError, match="needs a trained run folder"):
        quantize_run(untrained, tmp_path / "m.onnx")
    with pytest.raises(QuantizeError, match="from 1 to 10,000"):
        quantize_run(keras_run, tmp_path / "m.onnx", calibration=0)


def test_the_nodes_after_the_last_weighted_layer_stay_float():
    """A binary output: Gemm -> Sigmoid -> [1 - p, p]; only the nodes after the Gemm stay."""
    helper = onnx.helper
    nodes = [
        helper.make_node("Relu", ["image"], ["r"], name="relu"),
        helper.make_node("Gemm", ["r", "w"], ["score"], name="dense"),
        helper.make_node("Sigmoid", ["score"], ["p"], name="sigmoid"),
        helper.make_node("Sub", ["one", "p"], ["q"], name="one_minus"),
        helper.make_node("Concat", ["q", "p"], ["probabilities"], name="both", axis=1),
    ]
    graph = helper.make_graph(
        nodes, "binary", [helper.make_tensor_value_info("image", onnx.TensorProto.FLOAT,
                                                        [1, 4])],
        [helper.make_tensor_value_info("probabilities", onnx.TensorProto.FLOAT, [1, 2])])
    assert sorted(_output_tail(helper.make_model(graph))) == ["both", "one_minus", "sigmoid"]
