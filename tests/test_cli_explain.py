"""`cnnstudio explain RUN_DIR IMAGE --out overlay.png`: the overlay file, what it prints, and
clear refusals, on a small real run (tests/faults/small_runs.py)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cnnstudio.cli_explain import METHOD_CHOICES
from cnnstudio.train.attribution import METHODS, enlarged, explain, overlay, top_share
from cnnstudio.train.inspect import load_image_file, read_run
from tests.faults.small_runs import (  # noqa: F401 (fixtures used by name)
    cli,
    small_files,
    trained_run,
)


@pytest.fixture(scope="module")
def digit(small_files, tmp_path_factory):
    """A digit of the training data as a PNG file, and its pixels."""
    with np.load(small_files["data"]) as data:
        pixels = data["x"][3]
    path = tmp_path_factory.mktemp("digit") / "digit.png"
    Image.fromarray(pixels).save(path)
    return path


def test_explain_writes_the_overlay_and_prints_what_it_shows(capsys, trained_run, digit,
                                                             tmp_path):
    out = tmp_path / "overlay.png"
    code, stdout, stderr = cli(capsys, "explain", trained_run, digit, "--out", out)
    assert code == 0, stderr
    run = read_run(trained_run, load_data=False)
    image = load_image_file(digit, run.input_shape)
    (expected,) = explain(run.model, image, run.mean, run.std)
    written = np.asarray(Image.open(out).convert("RGB"))
    assert written.shape == (224, 224, 3)  # 28×28 enlarged 8 times, sharp pixels
    np.testing.assert_array_equal(written, enlarged(overlay(image, expected.heat, 0.5)))
    lines = stdout.splitlines()
    p = expected.probabilities[expected.predicted]
    assert lines[0] == f"Predicted class: {run.classes[expected.predicted]} ({p:.1%})"
    assert lines[1] == "Block: conv (Grad-CAM)"
    assert lines[2] == ("Share of the map's mass in its brightest 20% of pixels: "
                        f"{top_share(expected.heat):.1%}")
    assert lines[3].startswith(f"Wrote {out} (224×224")


def test_explain_a_chosen_class_by_saliency(capsys, trained_run, digit, tmp_path):
    out = tmp_path / "saliency.png"
    code, stdout, stderr = cli(capsys, "explain", trained_run, digit, "--out", out,
                               "--method", "saliency", "--class", "7", "--opacity", "1")
    assert code == 0, stderr
    run = read_run(trained_run, load_data=False)
    image = load_image_file(digit, run.input_shape)
    (expected,) = explain(run.model, image, run.mean, run.std, method="saliency", targets=7)
    written = np.asarray(Image.open(out).convert("RGB"))
    np.testing.assert_array_equal(written, enlarged(overlay(image, expected.heat, 1.0)))
    assert "Method: Saliency" in stdout
    if expected.predicted != 7:
        assert f"Explained class: {run.classes[7]}" in stdout


def test_the_method_choices_are_the_methods_attribution_knows():
    assert METHOD_CHOICES == METHODS


@pytest.mark.parametrize(("extra", "message"), [
    (["--block", "fc"], "--block 'fc' is not a Conv2D block on the way to the output; choose "
                        "one of conv (conv2d_1)"),
    (["--class", "12"], "--class '12' is not a class of this network; give a number from 0 to 9"),
    (["--opacity", "2"], "expected an opacity from 0 to 1, got '2'"),
    (["--method", "lime"], "invalid choice: 'lime'"),
])
def test_bad_choices_are_refused_with_a_clear_message(capsys, trained_run, digit, tmp_path,
                                                      extra, message):
    out = tmp_path / "x.png"
    code, stdout, stderr = cli(capsys, "explain", trained_run, digit, "--out", out, *extra)
    assert code == 2 and message in stderr and "Traceback" not in stderr
    assert not out.exists()


def test_files_are_never_replaced_without_force(capsys, trained_run, digit, tmp_path):
    out = tmp_path / "overlay.png"
    out.write_bytes(b"keep me")
    code, _, stderr = cli(capsys, "explain", trained_run, digit, "--out", out)
    assert code == 2 and "already exists" in stderr and "(add --force)" in stderr
    assert out.read_bytes() == b"keep me"
    code, _, stderr = cli(capsys, "explain", trained_run, digit, "--out", out, "--force")
    assert code == 0 and Image.open(out).size == (224, 224)
    code, _, stderr = cli(capsys, "explain", trained_run, digit, "--out",
                          trained_run / "overlay.png")
    assert code == 2 and "inside the run folder" in stderr
    assert not (trained_run / "overlay.png").exists()


def test_a_missing_image_or_run_says_so(capsys, trained_run, digit, tmp_path):
    code, _, stderr = cli(capsys, "explain", trained_run, tmp_path / "none.png", "--out",
                          tmp_path / "x.png")
    assert code == 2 and "cnnstudio: error: cannot open" in stderr and "does not exist" in stderr
    code, _, stderr = cli(capsys, "explain", tmp_path / "norun", digit, "--out",
                          tmp_path / "x.png")
    assert code == 2 and stderr == (f"cnnstudio: error: the run folder '{tmp_path / 'norun'}' "
                                     "does not exist; give the folder a training run wrote (it "
                                     "holds project.cnnproj, data.json and model.pt)\n")
