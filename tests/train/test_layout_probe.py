"""The training layout chosen per run (channels_last or not, fused or foreach optimiser step) and
max pooling moved before its ReLU in the training-time model."""

from __future__ import annotations

import copy
import time

import numpy as np
import pytest
import torch

from cnnstudio.core.graph import Graph
from cnnstudio.core.project import Project
from cnnstudio.core.templates import new_project
from cnnstudio.nn import build_model
from cnnstudio.nn.build import PoolThenReLU, pool_before_relu
from cnnstudio.train import layout_probe
from cnnstudio.train.engine import Trainer
from cnnstudio.train.events import RunStarted
from cnnstudio.train.inspect import activations, read_run
from cnnstudio.train.layout_probe import Layout, fused_supported, pick_layout, time_layouts

from .conftest import options, run, tiny_project

CPU = torch.device("cpu")


def keras_book() -> Graph:
    return new_project("keras-mnist", (1, 28, 28), 10).graph


# -- pool before ReLU ------------------------------------------------------------------------


def _outputs_and_gradients(model: torch.nn.Module, x: torch.Tensor):
    model.zero_grad(set_to_none=True)
    out = model(x)
    (out * torch.linspace(-1, 1, out.shape[1])).sum().backward()
    return out.detach(), {name: p.grad.clone() for name, p in model.named_parameters()}


@pytest.mark.parametrize("channels_last", [False, True])
def test_pool_before_relu_gives_identical_outputs_and_gradients(channels_last):
    torch.manual_seed(0)
    original = build_model(keras_book())
    moved_model = copy.deepcopy(original)
    moved = pool_before_relu(moved_model)
    assert moved == [("conv1", "pool1"), ("conv2", "pool2")]  # conv3 feeds Flatten: kept
    assert isinstance(moved_model.blocks["pool1"], PoolThenReLU)
    assert moved_model.state_dict().keys() == original.state_dict().keys()
    x = torch.randn(16, 1, 28, 28)
    if channels_last:
        original = original.to(memory_format=torch.channels_last)
        moved_model = moved_model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    out_a, grads_a = _outputs_and_gradients(original, x)
    out_b, grads_b = _outputs_and_gradients(moved_model, x)
    assert torch.equal(out_a, out_b)
    for name, grad in grads_a.items():
        assert torch.equal(grad, grads_b[name]), name


def test_pool_before_relu_moves_only_where_the_result_cannot_change():
    g = Graph()
    blocks = g.chain([("Input", {"channels": 1, "height": 9, "width": 9}, "input"),
             ("Conv2D", {"filters": 3, "kernel": [3, 3], "padding": "same"}, "conv"),
             ("Activation", {"function": "relu"}, "relu"),
             ("Pooling", {"mode": "max", "pool_size": [2, 2], "padding": "same"}, "pool"),
             ("Conv2D", {"filters": 3, "kernel": [3, 3], "activation": "relu",
                         "padding": "same"}, "branch"),
             ("Pooling", {"mode": "average", "pool_size": [2, 2]}, "avg"),
             ("Flatten", {}, "flatten"), ("Dense", {"units": 4}, "fc"),
             ("Output", {}, "output")])
    torch.manual_seed(1)
    model = build_model(g)
    reference = copy.deepcopy(model)
    # an Activation block before a 'same' (padded) max pooling of an odd 9×9 map moves; the
    # ReLU before an average pooling does not (mean and ReLU do not commute)
    relu, pool = blocks[2].id, blocks[3].id
    assert pool_before_relu(model) == [(relu, pool)]
    x = torch.randn(4, 1, 9, 9)
    out_a, grads_a = _outputs_and_gradients(reference, x)
    out_b, grads_b = _outputs_and_gradients(model, x)
    assert torch.equal(out_a, out_b)
    assert all(torch.equal(grads_a[k], grads_b[k]) for k in grads_a)

    shared = build_model(keras_book())
    shared.sources["conv3"] = ["pool2", "conv2"]  # conv2's ReLU read by a second block
    assert pool_before_relu(shared) == [("conv1", "pool1")]


def test_inspection_of_a_trained_run_still_shows_the_relu_output(small_data, tmp_path):
    project = tiny_project()  # conv (relu) → max pool: moved while training
    result = run(project, small_data, tmp_path / "run", options=options())
    assert result.finished.ok, result.finished.message
    (started,) = result.of(RunStarted)
    assert ("max pooling runs before its ReLU in training (the same values): Conv2D 'conv' "
            "→ Pooling 'pool'") in started.speed_notes
    contents = read_run(tmp_path / "run")
    conv = project.graph.blocks[1].id
    maps = activations(contents.model, small_data.val_x[0], [conv], contents.mean,
                       contents.std)[conv]
    assert np.min(maps) == 0.0 and np.max(maps) > 0  # after the ReLU: none below zero


# -- the probe -------------------------------------------------------------------------------


def test_pick_layout_keeps_the_default_unless_another_is_clearly_faster():
    default, other = Layout(True, "fused"), Layout(False, "foreach")
    assert pick_layout(default, {default: 10.0, other: 9.8}) == default  # within the margin
    assert pick_layout(default, {default: 10.0, other: 9.0}) == other
    assert pick_layout(default, {other: 9.0, Layout(False, "fused"): 8.0}) == Layout(False,
                                                                                    "fused")


def test_time_layouts_takes_each_candidates_fastest_step_or_gives_up_when_too_slow():
    calls: list[str] = []
    costs = {Layout(False, "foreach"): 0.004, Layout(True, "foreach"): 0.001}

    def factory(layout: Layout):
        def step() -> None:
            calls.append(layout.memory)
            end = time.perf_counter() + costs[layout]
            while time.perf_counter() < end:
                pass
        return step

    timed = time_layouts(list(costs), factory, CPU, budget_s=0.05)
    assert timed[Layout(True, "foreach")] < timed[Layout(False, "foreach")]
    assert timed[Layout(False, "foreach")] >= 4.0
    # interleaved: the candidates take turns after their warm-up steps
    assert calls[2:6] == ["contiguous", "channels_last", "contiguous", "channels_last"]
    costs[Layout(False, "foreach")] = 0.2  # a slow network: given up after its first step
    calls.clear()
    assert time_layouts(list(costs), factory, CPU, budget_s=0.05) == {}
    assert calls == ["contiguous"]


def test_fused_steps_where_torch_has_them():
    assert fused_supported("adam", CPU) and fused_supported("sgd", CPU)
    assert not fused_supported("rmsprop", CPU)


def _built(project, data, **overrides) -> Trainer:
    trainer = Trainer(project, data, None, options=options(**overrides))
    trainer.build()
    return trainer


def test_the_probe_leaves_the_start_weights_and_random_state_alone(small_data, monkeypatch):
    project = tiny_project(tiny_graph_with_dropout())
    monkeypatch.setattr(layout_probe, "MIN_PROBED_STEPS", 10_000)
    skipped = _built(project, small_data, epochs=2)
    rng_skipped = torch.get_rng_state()
    (note,) = [n for n in skipped.speed_notes if n.startswith("training layout")]
    assert "the run is short (16 steps), so it was not timed" in note
    monkeypatch.setattr(layout_probe, "MIN_PROBED_STEPS", 0)
    probed = _built(project, small_data, epochs=2)
    rng_probed = torch.get_rng_state()
    (note,) = [n for n in probed.speed_notes if n.startswith("training layout")]
    assert "timed on cpu, ms per step:" in note and note.count(" ms per step") == 1
    assert "contiguous+foreach" in note and "channels_last+fused" in note
    assert torch.equal(rng_skipped, rng_probed)
    a, b = skipped.model.state_dict(), probed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    fused = probed.optimizer.defaults.get("fused")
    assert bool(fused) == (probed.layout.step == "fused")
    assert probed.channels_last == probed.layout.channels_last


def tiny_graph_with_dropout() -> Graph:
    from .conftest import tiny_graph

    return tiny_graph(before_output=[("Dropout", {"rate": 0.5})])


def test_same_seed_same_result_in_either_layout(small_data):
    project = tiny_project(tiny_graph_with_dropout())
    finished = [run(project, small_data, options=options(epochs=2, channels_last=cl)).finished
                for cl in (False, True)]
    assert all(f.ok for f in finished)
    assert abs(finished[0].val_loss - finished[1].val_loss) < 1e-4
    assert abs(finished[0].val_acc - finished[1].val_acc) <= 2 / 256


def test_a_run_resumed_in_the_other_layout_trains_on_as_if_uninterrupted(small_data, tmp_path):
    """A checkpoint from a contiguous run resumed channels_last with a fused Adam step: the
    state tensors take the weights' strides (without, the fused step mixes them up)."""
    project = Project.new(keras_book())
    straight = run(project, small_data, options=options(epochs=2, channels_last=False))
    folder = tmp_path / "run"
    assert run(project, small_data, folder, options=options(channels_last=False)).finished.ok
    resumed = run(project, small_data, folder, resume=True,
                  options=options(epochs=2, channels_last=True))
    assert resumed.finished.ok and resumed.trainer.layout == Layout(True, "fused")
    a, b = straight.weights(), resumed.weights()
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-4


def test_state_tensors_take_their_parameters_strides():
    weight = torch.randn(4, 3, 5, 5).contiguous(memory_format=torch.channels_last)
    weight.requires_grad_()
    optimizer = torch.optim.Adam([weight], fused=True)
    optimizer.state[weight] = {"exp_avg": torch.ones(4, 3, 5, 5), "step": torch.tensor(1.0)}
    layout_probe.match_state_layout(optimizer)
    state = optimizer.state[weight]
    assert state["exp_avg"].stride() == weight.stride() and torch.equal(
        state["exp_avg"], torch.ones(4, 3, 5, 5))
    assert state["step"].shape == ()
