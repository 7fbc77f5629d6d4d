"""Softmax is applied exactly once: a network that ends in its own softmax (the course writes
Dense 10 → Activation softmax → Output) is trained, inspected and exported with the same class
probabilities as the same network without it.

The course network is trained twice on the same slice of the bundled MNIST sample (float32, CPU,
seed 0): once ending in plain scores, once in a softmax. Each run's "engine probabilities" are
computed here by hand from the trained model (softmax of the scores, or the softmax output as it
is); every view and every export must give them within 1e-5, and the two runs must agree too.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from cnnstudio.core.graph import Graph
from cnnstudio.core.outputs import BINARY, LOGITS, PROBABILITIES
from cnnstudio.core.project import Project
from cnnstudio.core.templates import build_template
from cnnstudio.nn.codegen import class_name_for
from cnnstudio.nn.export import (
    export_onnx,
    export_python,
    export_state_dict,
    export_torchscript,
    load_run,
)
from cnnstudio.train.datasets.common import LoadedDataset, channel_stats
from cnnstudio.train.inspect import (
    activations,
    confusion_matrix,
    iter_predictions,
    most_confident_mistakes,
    output_probabilities,
    predictions,
    read_run,
    top_k,
)
from tests.train.conftest import mnist_slice, options, run, tiny_graph, tiny_project

TOLERANCE = 1e-5


def course_network(softmax: bool) -> Graph:
    """The course example; with `softmax` it ends Dense 10 → Activation softmax → Output."""
    graph = build_template("course-example")
    if softmax:
        output = next(b for b in graph.blocks if b.type == "Output")
        dense = graph.inputs_of(output.id)[0]
        graph.disconnect(graph.input_edges(output.id)[0])
        act = graph.add_block("Activation", {"function": "softmax"}, name="softmax")
        graph.connect(dense, act.id)
        graph.connect(act.id, output.id)
    return graph


def pixels(images: np.ndarray) -> torch.Tensor:
    """uint8 images as an exported model takes them: float32 in [0, 1]."""
    return torch.from_numpy(images).float() / 255


def by_hand(model: torch.nn.Module, data: LoadedDataset, softmax: bool) -> np.ndarray:
    """The engine's probabilities of the validation images, without any CNN Studio helper."""
    mean = torch.tensor(data.mean, dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(data.std, dtype=torch.float32).view(1, -1, 1, 1)
    model.eval()
    with torch.no_grad():
        values = model((pixels(data.val_x) - mean) / std)
    return (values if softmax else torch.softmax(values, dim=1)).numpy()


@dataclass
class Trained:
    run_dir: Path
    data: LoadedDataset
    expected: np.ndarray  # N×10, by hand
    val_loss: float
    val_acc: float


@pytest.fixture(scope="module")
def twins(tmp_path_factory, mnist_sample) -> dict[bool, Trained]:
    data = mnist_slice(mnist_sample, 2048, 256)
    trained = {}
    for softmax in (False, True):
        folder = tmp_path_factory.mktemp("softmax" if softmax else "scores") / "run"
        result = run(Project.new(course_network(softmax), name="Course"), data, folder,
                     options=options(device="cpu"))
        assert result.finished.status == "completed", result.finished.message
        trained[softmax] = Trained(folder, data, by_hand(result.trainer.model, data, softmax),
                                   result.finished.val_loss, result.finished.val_acc)
    return trained


def test_with_or_without_a_final_softmax_the_network_trains_the_same(twins):
    scores, softmax = twins[False], twins[True]
    # log_softmax(z) and log(softmax(z)) differ only by rounding, which Adam's steps carry
    # forward: measured 1.4e-6 here after 32 steps (2.5e-5 after the 125 of the whole sample)
    np.testing.assert_allclose(softmax.expected, scores.expected, atol=TOLERANCE, rtol=0)
    assert softmax.val_loss == pytest.approx(scores.val_loss, abs=TOLERANCE)
    assert softmax.val_acc == scores.val_acc
    for trained in (scores, softmax):
        np.testing.assert_allclose(trained.expected.sum(axis=1), 1.0, atol=1e-6)
        labels = trained.data.val_y
        nll = -np.log(trained.expected[np.arange(len(labels)), labels]).mean()
        assert trained.val_loss == pytest.approx(nll, rel=1e-4)  # the loss sees them too
    assert softmax.expected.max(axis=1).mean() > 0.5  # confident, not flattened to 23 %


@pytest.mark.parametrize("softmax", [False, True], ids=["scores", "softmax"])
def test_every_view_gives_the_engine_probabilities(twins, softmax):
    trained = twins[softmax]
    contents = read_run(trained.run_dir, load_data=False)
    assert contents.output_kind == (PROBABILITIES if softmax else LOGITS)
    data, expected = trained.data, trained.expected
    shown = predictions(contents.model, data.val_x, contents.mean, contents.std,
                        kind=contents.output_kind)
    np.testing.assert_allclose(shown, expected, atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(shown.sum(axis=1), 1.0, atol=1e-6)
    parts = list(iter_predictions(contents.model, data.val_x, contents.mean, contents.std,
                                  batch=100, kind=contents.output_kind))
    np.testing.assert_array_equal(np.concatenate(parts), shown)
    # the confusion matrix counts the predictions' argmax
    np.testing.assert_array_equal(confusion_matrix(data.val_y, shown.argmax(1), 10),
                                  confusion_matrix(data.val_y, expected.argmax(1), 10))
    # Predict's top 5 of one image
    classes, values = top_k(shown[0], 5)
    np.testing.assert_allclose(values, np.sort(expected[0])[::-1][:5], atol=TOLERANCE)
    assert classes[0] == expected[0].argmax()
    # the most confident mistakes and their confidences
    mistakes = most_confident_mistakes(shown, data.val_y, 10)
    wrong = expected.argmax(1) != data.val_y
    confidences = np.sort(expected[wrong].max(axis=1))[::-1][:10]
    np.testing.assert_allclose(shown[mistakes].max(axis=1), confidences, atol=TOLERANCE)
    # the caption of the feature-map view, from the main output's activations
    main = contents.model.main_output_id
    values = activations(contents.model, data.val_x[0], [main], contents.mean, contents.std)
    np.testing.assert_allclose(output_probabilities(values[main], contents.output_kind),
                               expected[0], atol=TOLERANCE)


def load_module(path: Path):
    spec = importlib.util.spec_from_file_location(f"generated_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.filterwarnings(r"ignore:`torch\.jit\.load` is deprecated")
@pytest.mark.parametrize("softmax", [False, True], ids=["scores", "softmax"])
def test_every_export_gives_the_engine_probabilities(twins, softmax, tmp_path):
    trained = twins[softmax]
    loaded = load_run(trained.run_dir)
    images, expected = pixels(trained.data.val_x[:64]), trained.expected[:64]
    outputs = {}

    report = export_onnx(loaded, tmp_path / "m.onnx", benchmark_runs=0)
    assert "pixel values in [0, 1]" in report.input_note
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    outputs["onnx"] = session.run(["probabilities"], {"image": images.numpy()})[0]

    export_torchscript(loaded, tmp_path / "m.ts")
    with torch.no_grad():
        outputs["torchscript"] = torch.jit.load(str(tmp_path / "m.ts"))(images).numpy()

    export_state_dict(loaded, tmp_path / "weights.pt")
    export_python(loaded, tmp_path / "net.py")
    module = load_module(tmp_path / "net.py")
    model = getattr(module, class_name_for("Course"))()
    state = torch.load(tmp_path / "weights.pt", weights_only=True)
    model.load_state_dict(module.convert_cnnstudio_state_dict(state))
    outputs["python"] = module.predict(model, images).numpy()

    for fmt, got in outputs.items():
        np.testing.assert_allclose(got, expected, atol=TOLERANCE, rtol=0, err_msg=fmt)
        np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5, err_msg=fmt)


def two_digits(sample: LoadedDataset, train: int, val: int) -> LoadedDataset:
    """The 0s and 1s of the sample: a two-class dataset."""
    keep = np.flatnonzero(sample.train_y < 2)[:train]
    keep_val = np.flatnonzero(sample.val_y < 2)[:val]
    train_x = np.ascontiguousarray(sample.train_x[keep])
    mean, std = channel_stats(train_x)
    return LoadedDataset("zeros and ones", train_x, sample.train_y[keep],
                         np.ascontiguousarray(sample.val_x[keep_val]), sample.val_y[keep_val],
                         ["0", "1"], mean, std)


def test_one_sigmoid_unit_trains_and_predicts_two_classes(mnist_sample, tmp_path):
    data = two_digits(mnist_sample, 1024, 128)
    project = tiny_project(tiny_graph(1, dense={"activation": "sigmoid"}))
    result = run(project, data, tmp_path / "run", options=options(device="cpu"))
    assert result.finished.status == "completed", result.finished.message
    assert result.finished.val_acc > 0.9  # the accuracy reads p > 0.5, not argmax of one column
    model = result.trainer.model.eval()
    mean = torch.tensor(data.mean).view(1, -1, 1, 1)
    std = torch.tensor(data.std).view(1, -1, 1, 1)
    with torch.no_grad():
        p = model((pixels(data.val_x) - mean) / std).numpy()[:, 0]
    expected = np.stack([1 - p, p], axis=1)
    nll = -np.log(np.clip(expected[np.arange(len(p)), data.val_y], 1e-12, None)).mean()
    assert result.finished.val_loss == pytest.approx(nll, rel=1e-4)
    contents = read_run(tmp_path / "run", load_data=False)
    assert contents.output_kind == BINARY
    shown = predictions(contents.model, data.val_x, contents.mean, contents.std,
                        kind=contents.output_kind)
    np.testing.assert_allclose(shown, expected, atol=TOLERANCE)
    loaded = load_run(tmp_path / "run")
    export_onnx(loaded, tmp_path / "m.onnx", benchmark_runs=0)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {"image": pixels(data.val_x[:8]).numpy()})[0]
    np.testing.assert_allclose(got, expected[:8], atol=TOLERANCE)


@pytest.mark.parametrize("units, dense, after, message", [
    (10, {}, [("Activation", {"function": "softmax"}), ("Dropout", {"rate": 0.5})],
     "comes after the softmax"),
    (1, {}, [], "softmax over one value is always 1"),
])
def test_an_output_that_cannot_be_trained_soundly_is_refused_before_training(
        small_data, units, dense, after, message):
    data = small_data if units == 10 else two_digits(small_data, 64, 32)
    result = run(tiny_project(tiny_graph(units, dense=dense, before_output=after)), data,
                 options=options(device="cpu"))
    assert result.finished.status == "failed" and message in result.finished.message
    assert result.finished.epochs_completed == 0


def test_a_built_model_knows_its_output_kind_so_predictions_never_softmax_twice():
    from cnnstudio.nn.build import build_model

    torch.manual_seed(0)
    model = build_model(course_network(softmax=True))
    assert model.output_kind == PROBABILITIES
    assert build_model(course_network(softmax=False)).output_kind == LOGITS
    images = np.random.default_rng(0).integers(0, 256, (4, 1, 28, 28), dtype=np.uint8)
    shown = predictions(model, images, [0.5], [0.5])  # no kind given: the model's own
    model.eval()
    with torch.no_grad():
        direct = model((torch.from_numpy(images).float() / 255 - 0.5) / 0.5).numpy()
    np.testing.assert_allclose(shown, direct, atol=1e-6)
    np.testing.assert_allclose(shown.sum(axis=1), 1.0, atol=1e-5)
