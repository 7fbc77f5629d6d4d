"""The computations behind the inspection views, each checked against plain torch or NumPy."""

from __future__ import annotations

import contextlib
import os
import threading

import numpy as np
import pytest
import torch
from PIL import Image

from cnnstudio.core.graph import Graph
from cnnstudio.core.outputs import BINARY, PROBABILITIES
from cnnstudio.core.templates import build_template
from cnnstudio.nn.build import build_model
from cnnstudio.train.inspect import (
    ImageFileError,
    InspectionError,
    activations,
    confusion_matrix,
    conv_filters,
    iter_predictions,
    load_image_file,
    most_confident_mistakes,
    normalise,
    output_probabilities,
    predictions,
    read_run,
    top_k,
    validation_images,
    validation_labels,
)
from tests.torch_threads import one_torch_thread  # noqa: F401 (autouse fixture)

MEAN, STD = np.array([0.13], np.float32), np.array([0.31], np.float32)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model(build_template("keras-mnist", (1, 28, 28), 10)).eval()


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (20, 1, 28, 28), dtype=np.uint8)


def test_normalise_is_the_engines_arithmetic():
    x = np.random.default_rng(1).integers(0, 256, (4, 3, 5, 6), dtype=np.uint8)
    mean, std = [0.5, 0.4, 0.3], [0.2, 0.25, 0.3]
    expected = (torch.from_numpy(x).float().div(255.0)
                - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    assert torch.equal(normalise(x, mean, std), expected)
    one = normalise(x[0], [0.5], [0.2])  # one image, one value for every channel
    assert one.shape == (1, 3, 5, 6)
    assert torch.allclose(one[0, 2], (torch.from_numpy(x[0, 2]).float() / 255 - 0.5) / 0.2)
    with pytest.raises(ValueError, match="2 normalisation values for 3 channels"):
        normalise(x, [0.1, 0.2], std)


def test_activations_equal_the_models_own(model, images):
    ids = ["conv1", "pool2", "fc1", "output"]
    got = activations(model, images[3], ids, MEAN, STD)
    with torch.no_grad():
        want = model.activations(normalise(images[3], MEAN, STD), ids)
    for block_id in ids:
        assert isinstance(got[block_id], np.ndarray)
        np.testing.assert_array_equal(got[block_id], want[block_id][0].numpy())
    assert got["conv1"].shape == (32, 26, 26) and got["fc1"].shape == (64,)
    assert got["conv1"].min() >= 0  # raw values after the ReLU, not rescaled


def test_activations_leave_the_model_mode_as_found(images):
    graph = Graph()
    blocks = graph.chain([("Input", {"channels": 1, "height": 28, "width": 28}),
                          ("Conv2D", {"filters": 4, "kernel": 3}), ("Dropout", {"rate": 0.5}),
                          ("Flatten", {}), ("Dense", {"units": 3}), ("Output", {})])
    training = build_model(graph).train()
    drop = blocks[2].id
    first = activations(training, images[0], [drop], MEAN, STD)[drop]
    again = activations(training, images[0], [drop], MEAN, STD)[drop]
    np.testing.assert_array_equal(first, again)  # evaluation mode: no dropout
    assert training.training


def test_conv_filters_are_the_conv_weights(model):
    filters = conv_filters(model, "conv1")
    assert filters.shape == (32, 1, 3, 3)
    np.testing.assert_array_equal(filters, model.blocks["conv1"].conv.weight.detach().numpy())
    filters[:] = 0  # a copy: the model is untouched
    assert model.blocks["conv1"].conv.weight.abs().sum() > 0
    assert conv_filters(model, "conv2").shape == (64, 32, 3, 3)
    with pytest.raises(ValueError, match="not a convolution"):
        conv_filters(model, "pool1")
    with pytest.raises(KeyError, match="nope"):
        conv_filters(model, "nope")


def test_conv_filters_of_a_grouped_convolution():
    graph = Graph()
    blocks = graph.chain([("Input", {"channels": 4, "height": 8, "width": 8}),
                          ("Conv2D", {"filters": 6, "kernel": 3, "groups": 2}),
                          ("Flatten", {}), ("Dense", {"units": 2}), ("Output", {})])
    assert conv_filters(build_model(graph), blocks[1].id).shape == (6, 2, 3, 3)


def test_predictions_are_the_softmax_of_the_logits_in_batches(model, images):
    got = predictions(model, images, MEAN, STD, batch=7)
    with torch.no_grad():
        want = torch.softmax(model(normalise(images, MEAN, STD)), dim=1).numpy()
    assert got.shape == (20, 10) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-5)
    chunks = list(iter_predictions(model, images, MEAN, STD, batch=8))
    assert [len(c) for c in chunks] == [8, 8, 4]
    assert predictions(model, images[:0], MEAN, STD).shape == (0, 10)


def test_predictions_of_a_network_ending_in_softmax_get_no_second_softmax(images):
    graph = build_template("keras-mnist", (1, 28, 28), 10)
    graph.chain([("Activation", {"function": "softmax"})], after="fc2")
    output = next(b.id for b in graph.blocks if b.type == "Output")
    graph.disconnect(graph.input_edges(output)[0])
    graph.connect(graph.blocks[-1].id, output)
    model = build_model(graph).eval()
    with torch.no_grad():
        expected = model(normalise(images, MEAN, STD)).numpy()  # its softmax, once
    got = predictions(model, images, MEAN, STD, batch=7, kind=PROBABILITIES)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    main = model.main_output_id
    values = activations(model, images[0], [main], MEAN, STD)[main]
    np.testing.assert_allclose(output_probabilities(values, PROBABILITIES), expected[0])


def test_one_sigmoid_unit_gives_two_class_probabilities():
    scores = np.array([[0.25], [0.75]], np.float32)
    np.testing.assert_allclose(output_probabilities(scores, BINARY), [[0.75, 0.25],
                                                                       [0.25, 0.75]])
    graph = build_template("keras-mnist", (1, 28, 28), 1)
    graph.set_params("fc2", {"activation": "sigmoid"})
    empty = predictions(build_model(graph), np.zeros((0, 1, 28, 28), np.uint8), MEAN, STD,
                        kind=BINARY)
    assert empty.shape == (0, 2)


def test_confusion_matrix_against_a_hand_count():
    labels = [0, 0, 1, 2, 2, 2, 1]
    predicted = [0, 1, 1, 2, 0, 2, 1]
    matrix = confusion_matrix(labels, predicted, 3)
    assert matrix.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 2]]  # row: true, column: predicted
    assert matrix.sum() == 7 and np.trace(matrix) == 5
    assert confusion_matrix([], [], 4).tolist() == [[0] * 4] * 4
    with pytest.raises(ValueError, match="outside the 3 classes"):
        confusion_matrix([0, 3], [0, 0], 3)
    with pytest.raises(ValueError, match="2 labels but 1 predictions"):
        confusion_matrix([0, 1], [0], 3)


def test_most_confident_mistakes_come_first():
    probabilities = np.array([
        [0.9, 0.1, 0.0],  # right
        [0.2, 0.7, 0.1],  # wrong (true 0), 0.7
        [0.05, 0.05, 0.9],  # wrong (true 1), 0.9
        [0.6, 0.3, 0.1],  # wrong (true 2), 0.6
        [0.1, 0.2, 0.7],  # wrong (true 0), 0.7: a tie keeps the dataset order
        [0.1, 0.8, 0.1],  # right
    ])
    labels = [0, 0, 1, 2, 0, 1]
    assert most_confident_mistakes(probabilities, labels, 10).tolist() == [2, 1, 4, 3]
    assert most_confident_mistakes(probabilities, labels, 2).tolist() == [2, 1]
    assert most_confident_mistakes(probabilities[[0, 5]], [0, 1], 5).tolist() == []
    assert most_confident_mistakes(np.zeros((0, 3)), [], 5).tolist() == []


def test_top_k():
    indices, values = top_k([0.1, 0.4, 0.05, 0.4, 0.05], k=3)
    assert indices.tolist() == [1, 3, 0]  # ties: the lower class first
    np.testing.assert_allclose(values, [0.4, 0.4, 0.1])
    assert top_k([0.3, 0.7], k=5)[0].tolist() == [1, 0]  # capped at the class count


def test_load_image_file_converts_and_resizes_like_the_folder_loader(tmp_path):
    rng = np.random.default_rng(2)
    colour = rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)
    Image.fromarray(colour).save(tmp_path / "colour.png")
    grey_small = load_image_file(tmp_path / "colour.png", (1, 28, 28))
    expected = np.asarray(Image.fromarray(colour).convert("L").resize(
        (28, 28), Image.Resampling.BILINEAR))
    assert grey_small.shape == (1, 28, 28) and grey_small.dtype == np.uint8
    np.testing.assert_array_equal(grey_small[0], expected)
    same_size = load_image_file(tmp_path / "colour.png", (3, 40, 30))
    np.testing.assert_array_equal(same_size, colour.transpose(2, 0, 1))

    grey = rng.integers(0, 256, (28, 28), dtype=np.uint8)
    Image.fromarray(grey).save(tmp_path / "grey.png")
    as_colour = load_image_file(tmp_path / "grey.png", (3, 28, 28))
    assert as_colour.shape == (3, 28, 28)
    for channel in as_colour:
        np.testing.assert_array_equal(channel, grey)
    np.testing.assert_array_equal(load_image_file(tmp_path / "grey.png", (1, 28, 28))[0], grey)


def test_load_image_file_errors_say_what_is_wrong(tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n this is not really an image")
    with pytest.raises(ImageFileError, match=r"cannot read 'broken.png' as an image.*PNG, JPEG"):
        load_image_file(broken, (1, 28, 28))
    with pytest.raises(ImageFileError, match="does not exist"):
        load_image_file(tmp_path / "missing.png", (1, 28, 28))
    with pytest.raises(ImageFileError, match="it is a folder"):
        load_image_file(tmp_path, (1, 28, 28))
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "ok.png")
    with pytest.raises(ImageFileError, match="2-channel"):
        load_image_file(tmp_path / "ok.png", (2, 8, 8))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need a POSIX system")
def test_load_image_file_refuses_a_named_pipe_at_once(tmp_path):
    """Opening a FIFO waits for a writer: it is refused from its file type, never opened. The
    load runs in a thread so that a regression fails here instead of hanging the suite."""
    fifo = tmp_path / "photo.png"
    os.mkfifo(fifo)
    outcome: list[BaseException | np.ndarray] = []

    def load() -> None:
        try:
            outcome.append(load_image_file(fifo, (1, 28, 28)))
        except BaseException as err:  # noqa: BLE001 (handed to the test thread)
            outcome.append(err)

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    worker.join(timeout=5)
    stuck = worker.is_alive()
    if stuck:  # release the reader the old code left waiting: a writer opens and closes
        with contextlib.suppress(OSError):
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        worker.join(timeout=5)
    assert not stuck, "load_image_file opened the named pipe and waited for a writer"
    (error,) = outcome
    assert isinstance(error, ImageFileError)
    assert str(error) == (f"cannot open '{fifo}': it is a named pipe (FIFO), not a regular "
                          "file; choose an image file saved on disk (PNG, JPEG or BMP)")


def test_read_run_refuses_weights_holding_python_objects_without_running_them(tmp_path):
    """Predict and the feature maps read a run as export does: the same clear refusal."""
    from cnnstudio.nn.torch_files import NOT_PLAIN_CHECKPOINT
    from tests.nn.test_export import make_run, save_weights_with_code

    run_dir = make_run(tmp_path / "run", "keras-mnist")
    marker = tmp_path / "the-file-ran-code"
    save_weights_with_code(run_dir / "model.pt", marker)
    with pytest.raises(InspectionError) as caught:
        read_run(run_dir, load_data=False)
    assert f"cannot read {run_dir / 'model.pt'}: {NOT_PLAIN_CHECKPOINT}" in str(caught.value)
    assert "weights_only" not in str(caught.value) and not marker.exists()


def test_read_run_gives_the_trained_model_and_its_data(tmp_path, mnist_sample):
    from cnnstudio.core.project import Project
    from cnnstudio.train.data import load_dataset
    from cnnstudio.train.engine import TrainOptions, train
    from tests.train.conftest import tiny_graph

    npz = tmp_path / "digits.npz"
    np.savez(npz, x=mnist_sample.train_x[:160, 0], y=mnist_sample.train_y[:160])
    project = Project.new(tiny_graph(), dataset={"spec": f"npz:{npz}"})
    data = load_dataset(f"npz:{npz}", (1, 28, 28))
    run_dir = tmp_path / "run"
    finished = train(project, data, run_dir, options=TrainOptions(epochs=1, batch_size=32))
    assert finished.status == "completed", finished.message

    contents = read_run(run_dir)
    assert not contents.model.training and contents.classes == data.classes
    np.testing.assert_allclose(contents.mean, data.mean, rtol=1e-6)
    assert contents.input_shape == (1, 28, 28) and contents.data_problem == ""
    np.testing.assert_array_equal(contents.data.val_x, data.val_x)  # the same split
    np.testing.assert_array_equal(validation_labels(contents.data), data.val_y)
    np.testing.assert_array_equal(validation_images(contents.data, [3, 1]), data.val_x[[3, 1]])
    saved = torch.load(run_dir / "model.pt", weights_only=True)
    assert all(torch.equal(contents.model.state_dict()[k], v) for k, v in saved.items())

    npz.unlink()  # the dataset is gone: the model still comes back
    gone = read_run(run_dir)
    assert gone.data is None and "digits.npz" in gone.data_problem
    (run_dir / "model.pt").unlink()
    with pytest.raises(InspectionError, match=r"model\.pt"):
        read_run(run_dir)
