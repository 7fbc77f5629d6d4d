"""`cnnstudio lr-find` on the real bundled MNIST sample and small project files."""

from __future__ import annotations

import hashlib
import re

import pytest

from cnnstudio.cli import main
from tests.faults.small_runs import small_files  # noqa: F401 (a fixture)
from tests.torch_threads import one_torch_thread  # noqa: F401 (autouse fixture)


def cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


ROW = re.compile(r"^\s+(\d\.\d\de[-+]\d\d)\s+(\S+)\s+(\S+)(  <- lowest)?$")


def test_the_keras_book_network_gets_a_table_and_a_suggestion_with_its_rule(capsys):
    code, out, err = cli(capsys, "lr-find", "--template", "keras-mnist", "--dataset",
                         "mnist-sample")
    assert code == 0, err
    rows = [ROW.match(line) for line in out.splitlines()]
    rows = [m for m in rows if m]
    assert 12 <= len(rows) <= 13
    rates = [float(m.group(1)) for m in rows]
    assert rates[0] == pytest.approx(1e-7) and rates == sorted(rates)
    assert sum(bool(m.group(4)) for m in rows) == 1  # the lowest smoothed loss is marked
    found = re.search(r"Suggested learning rate (\S+): a tenth of the learning rate at which "
                      r"the smoothed loss is lowest \(lowest \S+ at (\S+)\)", out)
    assert found, out
    suggestion, at = float(found.group(1)), float(found.group(2))
    assert 1e-4 <= suggestion <= 1e-1
    assert suggestion == pytest.approx(at / 10, rel=0.15)
    assert f"cnnstudio train --lr {found.group(1)}" in out
    assert "stopped after" in out and "exceeded 4 times its lowest value" in out


def test_a_project_file_is_swept_with_its_settings_and_left_unchanged(capsys, small_files):
    project = small_files["project"]
    before = hashlib.sha256(project.read_bytes()).hexdigest()
    code, out, err = cli(capsys, "lr-find", project, "--dataset", f"npz:{small_files['data']}",
                         "--optimizer", "sgd", "--batch-size", "32", "--steps", "20",
                         "--start", "1e-5", "--end", "1e-3")
    assert code == 0, err
    assert "from 1e-05 to 0.001 over 20 mini-batches of 32 (sgd)" in out
    assert "No clear suggestion: the loss did not fall" in out  # SGD barely moves there
    assert "cnnstudio train --lr" not in out
    assert hashlib.sha256(project.read_bytes()).hexdigest() == before


@pytest.mark.parametrize("args, words", [
    (["--dataset", "mnist-sample"], "name a project file or a template"),
    (["--template", "keras-mnist", "--start", "0.1", "--end", "0.01"],
     "a start rate above 0 to a larger end rate of at most 10; got 0.1 to 0.01"),
    (["--template", "keras-mnist", "--steps", "3"], "from 10 to 10,000 steps, got 3"),
    (["--template", "keras-mnist", "--dataset", "npz:/no/such/file.npz"], "file.npz"),
])
def test_bad_arguments_are_refused_with_a_clear_message(capsys, args, words):
    code, out, err = cli(capsys, "lr-find", *args)
    assert code == 2
    assert err.startswith("cnnstudio: error: ") and words in err
    assert "Traceback" not in err and "Sweeping" not in out


def test_the_command_is_listed_in_the_help(capsys):
    code, out, _ = cli(capsys, "--help")
    assert code == 0 and "lr-find" in out
