"""`cnnstudio profile`: the per-block latency table of a run folder or a project."""

from __future__ import annotations

import json

import pytest

from cnnstudio.cli import main
from cnnstudio.core.project import Project, save_project
from tests.nn.test_profile import heavy_graph, write_run


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def heavy_run(tmp_path_factory):
    return write_run(tmp_path_factory.mktemp("cli_profile") / "run")


def _rows(out: str) -> list[str]:
    """The block names of the table's rows, in the printed order."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Block "))
    rows = []
    for line in lines[start + 1:]:
        if not line.strip():
            break
        rows.append(line.split("  ")[0].strip())
    return rows


def test_the_table_names_the_slowest_block_first_and_last(capsys, heavy_run):
    code, out, err = run(capsys, "profile", heavy_run, "--runs", 5, "--threads", 1)
    assert code == 0, err
    assert out.startswith("Time per block of 'Heavy': one image, median of 5 runs on the CPU "
                          "(1 thread)")
    rows = _rows(out)
    assert rows[0] == "wide 5x5"  # slowest first
    assert sorted(rows) == sorted(["image", "relu", "wide 5x5", "gap", "logits", "output"])
    assert "19,660,800" in out  # its MACs, from the analysis
    last = out.strip().splitlines()[-1]
    if last.startswith("Note:"):  # a busy machine can spread the two totals apart
        last = out.strip().splitlines()[-2]
    assert last.startswith("Slowest block: wide 5x5 (Conv2D), ")
    assert "ms; the whole forward pass" in out


def test_graph_order_json_and_a_batch(capsys, heavy_run):
    code, out, _ = run(capsys, "profile", heavy_run, "--runs", 2, "--threads", 1, "--sort",
                       "graph")
    assert code == 0
    assert _rows(out) == ["image", "relu", "wide 5x5", "gap", "logits", "output"]

    code, out, _ = run(capsys, "profile", heavy_run, "--runs", 3, "--batch", 2, "--threads", 1,
                       "--json")
    assert code == 0
    data = json.loads(out)
    assert (data["batch"], data["runs"], data["threads"], data["top"]) == (2, 3, 1, "heavy")
    assert [b["block_id"] for b in data["blocks"]] == ["input", "relu", "heavy", "gap",
                                                       "logits", "output"]
    assert sum(b["share"] for b in data["blocks"]) == pytest.approx(1.0)


def test_a_project_times_without_training(capsys, tmp_path):
    path = tmp_path / "net.cnnproj"
    save_project(Project.new(heavy_graph(), name="Drawn"), path)
    code, out, err = run(capsys, "profile", "--project", path, "--runs", 2, "--threads", 1)
    assert code == 0, err
    assert "Time per block of 'Drawn'" in out and "Slowest block: " in out


def test_wrong_arguments_say_what_to_give(capsys, tmp_path, heavy_run):
    code, _, err = run(capsys, "profile")
    assert code == 2 and "give the run folder to time (RUN_DIR), or --project" in err
    code, _, err = run(capsys, "profile", heavy_run, "--project", tmp_path / "x.cnnproj")
    assert code == 2 and "not both" in err
    code, _, err = run(capsys, "profile", tmp_path / "nothing")
    assert code == 2
    assert err.startswith(f"cnnstudio: error: cannot time '{tmp_path / 'nothing'}': it does "
                          "not exist")
    code, _, err = run(capsys, "profile", tmp_path)
    assert code == 2 and "is not a training run: it has no project.cnnproj" in err
    code, _, err = run(capsys, "profile", heavy_run, "--runs", "0")
    assert code == 2 and "expected a positive whole number, got '0'" in err
    assert "Traceback" not in err
