"""`cnnstudio train --tensorboard`: the run folder gets a TensorBoard log, read back with
TensorBoard's own EventAccumulator; without the flag there is none."""

from __future__ import annotations

import json

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cnnstudio.train.run_folder import METRICS
from cnnstudio.train.tensorboard_log import FOLDER, SCALAR_TAGS
from tests.faults.small_runs import cli, small_files  # noqa: F401 (a fixture)


def test_the_flag_logs_every_epoch_into_the_run_folder(capsys, small_files, tmp_path):  # noqa: F811
    out = tmp_path / "run"
    code, stdout, stderr = cli(capsys, "train", small_files["project"], "--dataset",
                               f"npz:{small_files['data']}", "--epochs", "2", "--tensorboard",
                               "--out", out)
    assert code == 0, stderr
    assert f"tensorboard --logdir {out / FOLDER}" in stdout
    assert "Traceback" not in stdout + stderr and "warning" not in stderr
    log = EventAccumulator(str(out / FOLDER), size_guidance={"scalars": 0})
    log.Reload()
    assert set(SCALAR_TAGS) <= set(log.Tags()["scalars"]) and log.Tags()["graph"]
    history = [json.loads(line) for line in (out / METRICS).read_text().splitlines()]
    accuracy = log.Scalars("accuracy/validation")
    assert [(s.step, round(s.value, 6)) for s in accuracy] == [
        (h["epoch"], round(h["val_acc"], 6)) for h in history]
    saved = json.loads((out / "project.cnnproj").read_text())
    assert saved["training"]["tensorboard"] is True  # a resume goes on logging


def test_without_the_flag_no_log_is_written(capsys, small_files, tmp_path):  # noqa: F811
    out = tmp_path / "run"
    code, stdout, _ = cli(capsys, "train", small_files["project"], "--dataset",
                          f"npz:{small_files['data']}", "--epochs", "1", "--out", out)
    assert code == 0
    assert not (out / FOLDER).exists() and "tensorboard" not in stdout.lower()
