"""Per-block latency (nn/profile.py): the table's blocks are the exported model's, and a block
made deliberately heavy takes the largest share of the time.

The run folders are written here as the training engine writes them (project.cnnproj,
data.json, model.pt). Timings use one thread: on a busy machine a team of threads waits for its
slowest member, which only adds noise to a comparison of blocks.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from cnnstudio.core.analysis import analyze
from cnnstudio.core.graph import Graph
from cnnstudio.core.project import Project, save_project
from cnnstudio.nn import build_model
from cnnstudio.nn.export import main_path_model
from cnnstudio.nn.profile import (
    BlockTime,
    MIN_RUNS,
    LatencyProfile,
    ProfileError,
    profile_model,
    profile_run,
)

HEAVY_SHAPE = (3, 64, 64)


def heavy_graph() -> Graph:
    """A wide 5×5 convolution on a 64×64 image (19.7 M MACs) beside blocks that cost next to
    nothing: a ReLU on the image, a global pooling, a small Dense; and an auxiliary head, which
    a deployment export (and so the timing) leaves out."""
    g = Graph()
    g.add_block("Input", {"channels": 3, "height": 64, "width": 64}, name="image",
                block_id="input")

    def add(type_id: str, params: dict, name: str, source: str, block_id: str) -> str:
        g.add_block(type_id, params, name=name, block_id=block_id)
        g.connect(source, block_id)
        return block_id

    relu = add("Activation", {"function": "relu"}, "relu", "input", "relu")
    heavy = add("Conv2D", {"filters": 64, "kernel": [5, 5], "padding": "same"}, "wide 5x5",
                relu, "heavy")
    pool = add("Pooling", {"mode": "global_average"}, "gap", heavy, "gap")
    add("Output", {}, "output", add("Dense", {"units": 4}, "logits", pool, "logits"), "output")
    side = add("Pooling", {"mode": "global_max"}, "aux pool", "input", "aux_pool")
    add("Output", {"auxiliary": True}, "aux", add("Dense", {"units": 4}, "aux fc", side,
                                                   "aux_fc"), "aux")
    return g


def write_run(folder: Path, graph: Graph | None = None, name: str = "Heavy") -> Path:
    """A run folder as the engine writes it, with random weights."""
    graph = graph or heavy_graph()
    model = build_model(graph)
    analysis = analyze(graph)
    channels, height, width = analysis.blocks[model.input_id].output_shape
    (count,) = analysis.blocks[model.main_output_id].output_shape
    folder.mkdir(parents=True, exist_ok=True)
    save_project(Project.new(graph, name=name, dataset={"spec": "mnist-sample"}),
                 folder / "project.cnnproj")
    torch.save(model.state_dict(), folder / "model.pt")
    (folder / "data.json").write_text(json.dumps({
        "spec": "mnist-sample", "name": "test", "classes": [f"c{i}" for i in range(count)],
        "mean": [0.5] * channels, "std": [0.25] * channels,
        "input_shape": [channels, height, width], "train_count": 10, "val_count": 10,
        "notes": []}), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def heavy_run(tmp_path_factory) -> Path:
    return write_run(tmp_path_factory.mktemp("profile") / "run")


@pytest.fixture(scope="module")
def heavy_profile(heavy_run) -> LatencyProfile:
    return profile_run(heavy_run, runs=7, threads=1)


def test_the_table_holds_the_blocks_of_the_exported_model(heavy_profile):
    graph = heavy_graph()
    analysis = analyze(graph)
    exported = main_path_model(build_model(graph))
    assert [b.block_id for b in heavy_profile.blocks] == exported.main_path
    assert "aux_fc" not in exported.main_path  # the auxiliary head is not timed
    for block in heavy_profile.blocks:
        info = analysis.blocks[block.block_id]
        assert (block.name, block.output_shape, block.macs) == (
            info.name, tuple(info.output_shape), info.macs)
        assert block.ms > 0
    assert heavy_profile.blocks[2].type_name == "Conv2D"
    assert sum(b.share for b in heavy_profile.blocks) == pytest.approx(1.0)
    assert heavy_profile.blocks_ms == pytest.approx(sum(b.ms for b in heavy_profile.blocks))
    assert (heavy_profile.batch, heavy_profile.runs, heavy_profile.threads) == (1, 7, 1)
    assert heavy_profile.network == "Heavy" and heavy_profile.forward_ms > 0


def test_a_heavy_convolution_takes_the_largest_share(heavy_profile):
    times = {block.block_id: block for block in heavy_profile.blocks}
    assert heavy_profile.top.block_id == "heavy"
    assert heavy_profile.ranked()[0] is times["heavy"]
    # 19.7 M multiply-adds against a max(0, x) over the image's 12,288 values
    assert times["heavy"].ms > 5 * times["relu"].ms
    assert times["heavy"].share > 0.5


def test_batch_threads_and_progress(heavy_run):
    threads_before = torch.get_num_threads()
    seen: list[tuple[int, int]] = []
    profile = profile_run(heavy_run, batch=3, runs=2, threads=1,
                          progress=lambda done, total: seen.append((done, total)))
    assert torch.get_num_threads() == threads_before  # set back after timing
    assert seen == [(1, 2), (2, 2)]
    assert profile.batch == 3 and profile.runs == 2
    assert profile.setting() == "a batch of 3 images, median of 2 runs on the CPU (1 thread)"


def test_a_time_limit_stops_after_the_fewest_runs(heavy_run):
    profile = profile_run(heavy_run, runs=50, threads=1, time_limit_s=0.0)
    assert profile.runs == MIN_RUNS
    assert profile.setting().startswith(f"one image, median of {MIN_RUNS} runs")


def test_a_project_network_times_without_a_run_folder():
    graph = heavy_graph()
    profile = profile_model(build_model(graph), analyze(graph), HEAVY_SHAPE, runs=1, threads=1)
    assert [b.block_id for b in profile.blocks][:3] == ["input", "relu", "heavy"]


def test_bad_folders_and_settings_say_what_to_do(tmp_path, heavy_run):
    with pytest.raises(ProfileError, match="does not exist; give the folder of a training run"):
        profile_run(tmp_path / "missing")
    with pytest.raises(ProfileError, match="is not a training run: it has no project.cnnproj"):
        profile_run(tmp_path)
    unfinished = write_run(tmp_path / "unfinished")
    (unfinished / "model.pt").unlink()
    with pytest.raises(ProfileError, match="has no model.pt yet: the run has not finished an "
                                           "epoch"):
        profile_run(unfinished)
    with pytest.raises(ProfileError, match="at least 1"):
        profile_run(heavy_run, runs=0)
    with pytest.raises(ProfileError, match="batch size 0 out of range"):
        profile_run(heavy_run, batch=0)


def _profile(forward_ms: float, *times: float) -> LatencyProfile:
    total = sum(times)
    blocks = tuple(BlockTime(f"b{i}", f"b{i}", "Conv2D", (1,), 0, ms, ms / total)
                   for i, ms in enumerate(times))
    return LatencyProfile("net", blocks, forward_ms, 1, 5, 2)


def test_a_large_gap_between_the_blocks_and_the_forward_pass_is_named():
    assert _profile(10.0, 6.0, 3.5).gap_note() == ""  # 9.5 against 10: close enough
    note = _profile(10.0, 2.0, 3.0).gap_note()
    assert note.startswith("The blocks add up to 5.000 ms against 10.00 ms for the whole "
                           "forward pass: the rest is the graph's own bookkeeping")
    assert "the timing adds to every block" in _profile(10.0, 9.0, 4.0).gap_note()
    assert _profile(10.0, 2.0, 3.0).ranked()[0].block_id == "b1"
    assert _profile(10.0, 2.0, 3.0).top.describe() == "3.000 ms, 60% of the forward pass"
