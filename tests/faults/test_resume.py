"""Resuming a run (issue 11, item 11): after a kill in the first epoch, on another dataset, from
another working folder, and from a checkpoint that is not a plain file of tensors."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
import torch

from cnnstudio.train import run_folder as rf
from tests.faults.small_runs import (  # noqa: F401 (fixtures used by name)
    EXECUTABLE,
    cli,
    run_copy,
    small_files,
    trained_run,
)


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / rf.METRICS).read_text().splitlines()]


# -- killed in the first epoch -----------------------------------------------------------------


@pytest.mark.slow
def test_resuming_a_run_killed_in_its_first_epoch_says_to_start_again(capsys, small_files,
                                                                      tmp_path):
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(  # the whole sample: an epoch takes many seconds here
        [str(EXECUTABLE), "train", "--template", "keras-mnist", "--dataset", "mnist-sample",
         "--epochs", "1", "--out", str(run)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stdout.readline().startswith("Training on")
        assert not (run / rf.CHECKPOINT).exists()
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait(timeout=60)
        process.stdout.close()
        process.stderr.close()
    assert process.returncode == -signal.SIGKILL and not (run / rf.CHECKPOINT).exists()

    code, _, err = cli(capsys, "train", "--resume", "--out", run)
    assert code == 1
    assert (f"no epoch of the run in {run} had finished, so there is nothing to resume: start "
            "it again without --resume (the folder will be reused)") in err
    assert "is missing" not in err

    code, out, err = cli(capsys, "train", small_files["project"], "--dataset",
                         f"npz:{small_files['data']}", "--epochs", "1", "--out", run)
    assert code == 0, err  # the same folder, as the message promised
    assert [m["epoch"] for m in metrics(run)] == [1]


# -- another dataset ---------------------------------------------------------------------------


def test_resuming_on_another_dataset_is_refused(capsys, small_files, run_copy):
    code, _, err = cli(capsys, "train", "--resume", "--epochs", "2", "--dataset",
                       f"npz:{small_files['other']}", "--out", run_copy)
    assert code == 1
    assert (f"was trained on npz:{small_files['data']}, not npz:{small_files['other']}"
            in err), err
    assert "add --force" in err
    assert len(metrics(run_copy)) == 1


def test_with_force_the_run_goes_on_and_records_the_change(capsys, small_files, run_copy):
    code, out, err = cli(capsys, "train", "--resume", "--force", "--epochs", "2", "--dataset",
                         f"npz:{small_files['other']}", "--out", run_copy)
    assert code == 0, err
    note = (f"resumed on npz:{small_files['other']} with --force; the epochs before were "
            f"trained on npz:{small_files['data']}")
    assert f"note: {note}" in out
    record = json.loads((run_copy / rf.DATA).read_text())
    assert record["spec"] == f"npz:{small_files['other']}" and note in record["notes"]
    project = json.loads((run_copy / rf.PROJECT).read_text())
    assert project["dataset"]["spec"] == f"npz:{small_files['other']}"
    assert [m["epoch"] for m in metrics(run_copy)] == [1, 2]


def test_naming_the_same_dataset_another_way_is_not_a_change(capsys, small_files, run_copy,
                                                              monkeypatch):
    monkeypatch.chdir(small_files["data"].parent)
    code, _, err = cli(capsys, "train", "--resume", "--epochs", "2", "--dataset",
                       "npz:./data.npz", "--out", run_copy)
    assert code == 0, err


def test_force_without_resume_is_a_usage_error(capsys, small_files, tmp_path):
    code, _, err = cli(capsys, "train", small_files["project"], "--force", "--out",
                       tmp_path / "run")
    assert code == 2 and "--force goes with --resume" in err


# -- relative paths ----------------------------------------------------------------------------


def test_a_relative_dataset_path_is_recorded_absolute_and_resumes_from_elsewhere(
        capsys, small_files, tmp_path, monkeypatch):
    monkeypatch.chdir(small_files["data"].parent)
    code, _, err = cli(capsys, "train", "tiny.cnnproj", "--dataset", "npz:data.npz",
                       "--epochs", "1", "--out", tmp_path / "run")
    assert code == 0, err
    spec = f"npz:{small_files['data']}"
    assert json.loads((tmp_path / "run" / rf.DATA).read_text())["spec"] == spec
    assert json.loads((tmp_path / "run" / rf.PROJECT).read_text())["dataset"]["spec"] == spec

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, _, err = cli(capsys, "train", "--resume", "--epochs", "2", "--out", "../run")
    assert code == 0, err
    assert [m["epoch"] for m in metrics(tmp_path / "run")] == [1, 2]


# -- files that are not plain checkpoints ------------------------------------------------------


def save_with_an_object(path: Path) -> None:
    state = torch.load(path, weights_only=True)
    torch.save({**state, "extra": argparse.Namespace(note="any Python object")}, path)


def test_a_checkpoint_holding_python_objects_is_refused_without_unsafe_advice(capsys,
                                                                               run_copy):
    save_with_an_object(run_copy / rf.CHECKPOINT)
    code, _, err = cli(capsys, "train", "--resume", "--epochs", "2", "--out", run_copy)
    assert code == 1
    assert (f"cannot read {run_copy / rf.CHECKPOINT}: it is not a plain checkpoint (it holds "
            "Python objects besides tensors), so it will not be loaded") in err
    assert "weights_only" not in err and "will likely succeed" not in err


def test_weights_holding_python_objects_are_refused_without_unsafe_advice(capsys, small_files,
                                                                          run_copy, tmp_path):
    save_with_an_object(run_copy / rf.MODEL)
    code, _, err = cli(capsys, "train", small_files["project"], "--dataset",
                       f"npz:{small_files['data']}", "--init-from", run_copy, "--out",
                       tmp_path / "new")
    assert code == 1
    assert "not a plain checkpoint" in err
    assert "weights_only" not in err and "will likely succeed" not in err


def test_a_damaged_checkpoint_is_called_damaged(capsys, run_copy):
    data = (run_copy / rf.CHECKPOINT).read_bytes()
    (run_copy / rf.CHECKPOINT).write_bytes(data[: len(data) // 2])
    code, _, err = cli(capsys, "train", "--resume", "--epochs", "2", "--out", run_copy)
    assert code == 1 and "damaged or truncated" in err
