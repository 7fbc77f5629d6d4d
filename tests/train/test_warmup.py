"""The warm-up before the clock (same training with or without it, reported apart) and the
validation batch size (chosen, noted, and without effect on the results)."""

from __future__ import annotations

import pytest
import torch

from cnnstudio.train import warmup
from cnnstudio.train.engine import Trainer
from cnnstudio.train.events import RunFinished, RunStarted

from .conftest import options, tiny_graph, tiny_project


def _trained(data, steps: int | None, **overrides) -> tuple[Trainer, list]:
    trainer = Trainer(tiny_project(tiny_graph(before_output=[("Dropout", {"rate": 0.3})])),
                      data, options=options(**{"epochs": 2, "device": "cpu", **overrides}))
    trainer.warmup_steps = steps
    events = list(trainer.run())
    assert isinstance(events[-1], RunFinished) and events[-1].ok, events[-1].message
    return trainer, events


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_the_warm_up_leaves_training_exactly_as_without_it(small_data, optimizer: str) -> None:
    """Dropout and augmentation draw random numbers and Adam/SGD keep state: all put back."""
    cold, cold_events = _trained(small_data, 0, optimizer=optimizer, augment=("flip", "rotate"))
    warm, events = _trained(small_data, 3, optimizer=optimizer, augment=("flip", "rotate"))
    assert events[-1].warmup_s > 0 and cold_events[-1].warmup_s == 0
    for name, value in warm.model.state_dict().items():
        assert torch.equal(value, cold.model.state_dict()[name]), name
    assert ([h.train_loss for h in events[-1].history]
            == [h.train_loss for h in cold_events[-1].history])


def test_the_warm_up_is_reported_apart(small_data) -> None:
    _, events = _trained(small_data, None)
    started = next(e for e in events if isinstance(e, RunStarted))
    note = next(n for n in started.speed_notes if n.startswith("warm-up "))
    assert "before the clock (1 step on the first batch" in note
    finished = events[-1]
    assert 0 < finished.warmup_s < finished.seconds
    off = _trained(small_data, 0)[1]
    assert off[-1].warmup_s == 0
    assert not any(n.startswith("warm-up ") for n in off[0].speed_notes)


def test_restore_in_place_gives_a_fresh_optimiser_step() -> None:
    """State made after the snapshot is zeroed: the next step equals a fresh optimiser's."""
    torch.manual_seed(0)
    for make in (lambda p: torch.optim.Adam(p, lr=0.1),
                 lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True)):
        model = torch.nn.Linear(3, 2)
        fresh_model = torch.nn.Linear(3, 2)
        fresh_model.load_state_dict(model.state_dict())
        optimizer, fresh = make(list(model.parameters())), make(list(fresh_model.parameters()))
        snapshot = warmup.take_snapshot(model, optimizer)
        x = torch.randn(4, 3)
        for _ in range(2):
            model(x).square().sum().backward()
            optimizer.step()
        warmup.restore_in_place(snapshot, model, optimizer)
        for m, o in ((model, optimizer), (fresh_model, fresh)):
            o.zero_grad()
            m(x).square().sum().backward()
            o.step()
        for a, b in zip(model.parameters(), fresh_model.parameters()):
            assert torch.equal(a, b)


def test_the_validation_batch_is_timed_and_noted(mnist_sample, monkeypatch) -> None:
    from .conftest import mnist_slice

    data = mnist_slice(mnist_sample, 256, 600)
    monkeypatch.setattr(warmup, "MIN_PROBED_EVAL_IMAGES", 0)
    trainer, events = _trained(data, 0, epochs=1)
    note = next(n for n in events[0].speed_notes if n.startswith("validation batch "))
    assert note.startswith(f"validation batch {trainer.eval_batch} (timed on cpu, per image: ")
    assert trainer.eval_batch in (128, 256, 512)
    assert all(f"{size}: " in note for size in (128, 256, 512))


def test_a_short_run_keeps_the_device_default(mnist_sample) -> None:
    from .conftest import mnist_slice

    trainer, events = _trained(mnist_slice(mnist_sample, 256, 600), 0, epochs=1)
    assert trainer.eval_batch == warmup.DEFAULT_EVAL_BATCH["cpu"] == 128
    assert "validation batch 128 (the cpu default; not timed)" in events[0].speed_notes
    _, events = _trained(mnist_slice(mnist_sample, 256, 100), 0, epochs=1)
    assert not any(n.startswith("validation batch") for n in events[0].speed_notes)


def test_evaluation_gives_the_same_results_for_any_batch_size(small_data) -> None:
    trainer, _ = _trained(small_data, 0, epochs=1)
    results = []
    for size in (7, 100, 128, 512):
        trainer.eval_batch = size
        results.append(trainer.evaluate())
    for loss, accuracy in results[1:]:
        assert loss == pytest.approx(results[0][0], rel=1e-5)
        assert accuracy == results[0][1]
