"""The learning-rate finder: real sweeps of real networks on the bundled MNIST sample."""

from __future__ import annotations

import hashlib
import math

import pytest
import torch

from cnnstudio.core.project import dumps_project, load_project, save_project
from cnnstudio.core.templates import new_project
from cnnstudio.nn.build import build_model
from cnnstudio.train.events import TrainingControl
from cnnstudio.train.guards import TrainingError
from cnnstudio.train.lr_find import (
    DIVERGENCE,
    SUGGESTION_RULE,
    LRFindResult,
    SweepPoint,
    lr_find,
    suggest,
    table_points,
)
from tests.train.conftest import MNIST_SHAPE, options, run, tiny_project


@pytest.fixture(scope="module")
def keras_sweep(mnist_sample) -> LRFindResult:
    """The Keras-book network with Adam on the whole sample: the full 100-step sweep."""
    project = new_project("keras-mnist", MNIST_SHAPE, 10)
    return lr_find(project, mnist_sample)


def test_the_keras_book_curve_falls_then_rises_and_adam_gets_a_plausible_rate(keras_sweep):
    smoothed = keras_sweep.smoothed
    lowest = keras_sweep.lowest
    assert lowest is not None
    low = smoothed.index(lowest.smoothed)
    assert lowest.smoothed < 0.6 * smoothed[0]  # it fell ...
    assert smoothed[-1] > 2 * lowest.smoothed  # ... and rose again
    assert 0 < low < len(smoothed) - 1
    assert keras_sweep.suggestion is not None
    assert 1e-4 <= keras_sweep.suggestion <= 1e-1
    assert keras_sweep.suggestion == pytest.approx(lowest.rate / 10, rel=0.05)  # the rule
    assert SUGGESTION_RULE in keras_sweep.message
    assert f"{keras_sweep.suggestion:.2g}" in keras_sweep.message


def test_the_sweep_stops_once_the_smoothed_loss_passes_four_times_its_lowest(keras_sweep):
    points = keras_sweep.points
    assert len(points) < keras_sweep.steps  # stopped before the end rate
    assert points[-1].smoothed > DIVERGENCE * keras_sweep.lowest.smoothed
    assert all(p.smoothed <= DIVERGENCE * min(q.smoothed for q in points[:i + 1])
               for i, p in enumerate(points[:-1]))  # and not before
    assert "exceeded 4 times its lowest" in keras_sweep.stop_reason


def test_the_rate_grows_by_the_same_factor_each_step_from_the_start_rate(keras_sweep):
    rates = keras_sweep.rates
    assert rates[0] == pytest.approx(1e-7)
    factor = (1.0 / 1e-7) ** (1 / 99)
    assert all(b / a == pytest.approx(factor) for a, b in zip(rates, rates[1:]))


def test_the_smoothed_loss_is_bias_corrected(keras_sweep):
    first, second = keras_sweep.points[:2]
    assert first.smoothed == pytest.approx(first.loss)  # no pull towards 0 at the start
    assert second.smoothed == pytest.approx((0.9 * 0.1 * first.loss + 0.1 * second.loss)
                                            / (1 - 0.9 ** 2))


def test_the_table_spreads_a_dozen_points_over_the_sweep(keras_sweep):
    rows = table_points(keras_sweep)
    assert 12 <= len(rows) <= 13
    assert rows[0] is keras_sweep.points[0] and rows[-1] is keras_sweep.points[-1]
    assert keras_sweep.lowest in rows
    assert [r.rate for r in rows] == sorted(r.rate for r in rows)


def _save_weights(project, folder, state) -> None:
    torch.save(state, folder / "net.weights.pt")
    project.weights = "net.weights.pt"
    save_project(project, folder / "net.cnnproj")


def test_the_sweep_starts_from_the_projects_weights_and_leaves_them_unchanged(tmp_path,
                                                                              small_data):
    trained = run(tiny_project(), small_data, options=options(epochs=2, learning_rate=0.01))
    project = tiny_project()
    _save_weights(project, tmp_path, trained.weights())
    before = hashlib.sha256((tmp_path / "net.weights.pt").read_bytes()).hexdigest()
    loaded = load_project(tmp_path / "net.cnnproj")
    project_before = dumps_project(loaded)

    result = lr_find(loaded, small_data, steps=30)

    assert hashlib.sha256((tmp_path / "net.weights.pt").read_bytes()).hexdigest() == before
    assert dumps_project(loaded) == project_before
    assert any("net.weights.pt" in note and "loaded 2 of 2" in note for note in result.notes)
    assert result.points[0].loss < 1.0  # trained weights, not a random start (about 2.3)


def test_a_loss_that_is_not_finite_stops_the_sweep_without_a_suggestion(tmp_path, small_data):
    project = tiny_project()
    state = build_model(project.graph).state_dict()
    fc = f"blocks.{project.graph.find('fc').id}.linear.weight"
    state[fc] = torch.full_like(state[fc], math.nan)
    _save_weights(project, tmp_path, state)

    result = lr_find(load_project(tmp_path / "net.cnnproj"), small_data)

    assert result.points == ()
    assert result.stop_reason == "the loss was not finite at rate 1e-07"
    assert result.suggestion is None
    assert result.message.startswith("no clear suggestion: the sweep stopped after 0 steps")
    assert result.message.endswith("(the loss was not finite at rate 1e-07)")


def test_a_sweep_whose_loss_does_not_fall_gives_no_suggestion_and_says_what_to_try(small_data):
    result = lr_find(tiny_project(), small_data, start=1e-7, end=1e-5, steps=20)
    assert len(result.points) == 20 and result.stop_reason == ""
    assert result.suggestion is None
    assert result.message.startswith("no clear suggestion: the loss did not fall")
    assert "try a larger end rate" in result.message


def test_cancelling_keeps_what_was_swept_and_suggests_nothing(small_data):
    control = TrainingControl()
    seen: list[SweepPoint] = []

    def on_point(point: SweepPoint) -> None:
        seen.append(point)
        if len(seen) == 5:
            control.stop()

    result = lr_find(tiny_project(), small_data, control=control, on_point=on_point)
    assert result.points == tuple(seen) and len(seen) == 5
    assert result.stop_reason == "cancelled" and result.suggestion is None
    assert result.message == "cancelled after 5 of 100 steps"


def test_the_projects_optimiser_settings_are_the_sweeps(small_data):
    """SGD without momentum barely moves at rates Adam already trains with."""
    adam = lr_find(tiny_project(optimizer="adam"), small_data, start=1e-4, end=1e-2, steps=20)
    sgd = lr_find(tiny_project(optimizer="sgd", momentum=0.0), small_data, start=1e-4,
                  end=1e-2, steps=20)
    assert adam.points[0].loss == pytest.approx(sgd.points[0].loss)  # the same start
    assert adam.lowest.smoothed < sgd.lowest.smoothed - 0.3


@pytest.mark.parametrize("start, end, steps, words", [
    (1e-3, 1e-4, 100, "a start rate above 0 to a larger end rate"),
    (0.0, 1.0, 100, "a start rate above 0"),
    (1e-7, 1.0, 5, "from 10 to 10,000 steps, got 5"),
])
def test_a_sweep_that_cannot_run_is_refused_with_what_to_change(small_data, start, end, steps,
                                                                 words):
    with pytest.raises(TrainingError, match=words):
        lr_find(tiny_project(), small_data, start=start, end=end, steps=steps)


def _points(losses: list[float]) -> list[SweepPoint]:
    return [SweepPoint(i + 1, 10.0 ** (i - 6), loss, loss) for i, loss in enumerate(losses)]


def test_a_loss_still_falling_where_the_sweep_ended_is_said():
    rate, message = suggest(_points([2.3, 2.0, 1.5, 1.0]))
    assert rate == pytest.approx(1e-4)  # a tenth of 1e-3, the rate of the lowest point
    assert message.endswith("the loss was still falling where the sweep ended")


def test_a_sweep_that_rose_from_the_start_has_no_suggestion():
    rate, message = suggest(_points([2.3, 9.5]))
    assert rate is None and "too few to show a descent; try a smaller start rate" in message
