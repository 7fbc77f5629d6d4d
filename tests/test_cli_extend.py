"""`cnnstudio train --extend N --out RUN`: a finished or stopped run trained N more epochs, on
small real runs (tests/faults/small_runs.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cnnstudio.core.project import load_project
from tests.faults.small_runs import cli, small_files  # noqa: F401 (a fixture)
from tests.torch_threads import one_torch_thread  # noqa: F401 (autouse fixture)


def train(capsys, small_files, out: Path, *more) -> tuple[int, str, str]:
    return cli(capsys, "train", small_files["project"], "--dataset",
               f"npz:{small_files['data']}", "--out", out, *more)


def test_extend_a_finished_cosine_run_says_the_rule(capsys, small_files, tmp_path) -> None:
    out = tmp_path / "run"
    code, _, err = train(capsys, small_files, out, "--epochs", "2", "--schedule", "cosine")
    assert code == 0, err

    code, text, err = cli(capsys, "train", "--extend", "2", "--out", out)

    assert code == 0, err
    assert "note: resumed after epoch 2" in text
    assert "note: extended after epoch 2 to 4 epochs (2 more epochs); the cosine schedule " \
           "now ends at epoch 4 instead of 2: it continues from " in text
    assert "epoch 3:" in text and "epoch 4:" in text and "epoch 1:" not in text
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2, 3, 4]
    final = json.loads((out / "final.json").read_text())
    assert (final["status"], final["epochs_completed"], final["epochs"]) == ("completed", 4, 4)
    assert final["extended"] == [{"from_epoch": 2, "to_epoch": 4,
                                  "rule": final["extended"][0]["rule"]}]
    assert "cosine" in final["extended"][0]["rule"]
    assert load_project(out / "project.cnnproj").training["epochs"] == 4


@pytest.mark.parametrize("args, message", [
    (["--extend", "0"], "expected a positive whole number"),
    (["--extend", "2", "--epochs", "5"], "leave out --epochs"),
])
def test_bad_extend_arguments(capsys, tmp_path, args, message) -> None:
    code, _, err = cli(capsys, "train", *args, "--out", tmp_path / "run")
    assert code != 0 and message in err


def test_extend_without_a_run_folder(capsys, tmp_path) -> None:
    code, _, err = cli(capsys, "train", "--extend", "2", "--out", tmp_path / "none")
    assert code == 2  # a user error, with its message
    assert f"cnnstudio: error: there is no run folder at {tmp_path / 'none'}" in err
    assert not (tmp_path / "none").exists()


def test_extend_a_run_that_failed_before_its_first_checkpoint(capsys, tmp_path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / ".cnnstudio-run").write_text('{"format": "cnnstudio-run", "version": 1}')
    (out / "final.json").write_text('{"status": "failed", "message": "out of memory"}')
    code, _, err = cli(capsys, "train", "--extend", "2", "--out", out)
    assert code == 2
    assert "failed before its first epoch finished" in err and "start a new run" in err
