"""`cnnstudio quantize RUN_DIR --out FILE`: the real command line on a small trained run."""

from __future__ import annotations

import onnxruntime as ort
import numpy as np

from cnnstudio import cli_quantize
from cnnstudio.core.summary import format_bytes
from cnnstudio.train import quantize
from tests.faults.small_runs import cli, small_files, trained_run  # noqa: F401 (fixtures)


def test_quantize_writes_the_int8_file_and_prints_the_table(trained_run, tmp_path, capsys):
    out = tmp_path / "tiny.int8.onnx"
    code, printed, errors = cli(capsys, "quantize", trained_run, "--out", out,
                                "--calibration", "50")
    assert code == 0, errors
    assert errors == ""  # onnxruntime's own chatter stays out of the terminal
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (p,) = session.run(None, {"image": np.zeros((3, 1, 28, 28), np.float32)})
    assert p.shape == (3, 10)
    lines = printed.splitlines()
    assert lines[0] == f"Wrote {out} (ONNX, INT8 quantised)"
    assert lines[1].split() == ["Float", "INT8", "Change"]
    size_row = next(line for line in lines if line.startswith("File size"))
    assert format_bytes(out.stat().st_size) in size_row  # the file as it lies on disk
    assert "Validation accuracy" in printed and "Calibrated on 50 training images" in printed
    assert "Time for one image" in printed and "[0, 1]" in printed


def test_an_existing_file_needs_force(trained_run, tmp_path, capsys):
    out = tmp_path / "mine.onnx"
    out.write_bytes(b"keep me")
    code, _, errors = cli(capsys, "quantize", trained_run, "--out", out)
    assert code == 1 and "already exists" in errors and "--force" in errors
    assert out.read_bytes() == b"keep me"
    code, printed, errors = cli(capsys, "quantize", trained_run, "--out", out, "--force",
                                "--calibration", "20")
    assert code == 0, errors
    assert out.read_bytes() != b"keep me" and "INT8" in printed


def test_bad_arguments_are_clear_messages(trained_run, tmp_path, capsys):
    code, _, errors = cli(capsys, "quantize", tmp_path / "nowhere", "--out", tmp_path / "m.onnx")
    assert code == 1 and "does not exist" in errors and "Traceback" not in errors
    code, _, errors = cli(capsys, "quantize", trained_run, "--out", tmp_path / "m.onnx",
                          "--calibration", "0")
    assert code == 2 and "from 1 to 10,000" in errors
    code, _, errors = cli(capsys, "quantize", trained_run, "--out", trained_run / "m.onnx")
    assert code == 1 and "inside the run folder" in errors
    assert not (tmp_path / "m.onnx").exists()


def test_the_command_line_limits_are_the_quantiser_s():
    """cli_quantize repeats two numbers so that `cnnstudio --help` needs no torch."""
    assert cli_quantize.CALIBRATION_DEFAULT == quantize.CALIBRATION_IMAGES
    assert cli_quantize.CALIBRATION_MAX == quantize.MAX_CALIBRATION_IMAGES
