"""Shared pieces of the training-engine tests: slices of the bundled MNIST sample, tiny networks,
and a runner that keeps every event and the Trainer (for its final weights)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch

from cnnstudio.core.graph import Graph
from cnnstudio.core.project import Project
from cnnstudio.train.data import load_dataset
from cnnstudio.train.datasets.common import LoadedDataset, channel_stats
from cnnstudio.train.engine import Trainer, TrainOptions
from cnnstudio.train.events import EpochEnded, Event, RunFinished, StepProgress

MNIST_SHAPE = (1, 28, 28)


def mnist_slice(sample: LoadedDataset, train: int, val: int) -> LoadedDataset:
    """The first `train` training and `val` validation images of the sample, with their own
    statistics (measured on the training slice, as the loaders do)."""
    train_x = np.ascontiguousarray(sample.train_x[:train])
    mean, std = channel_stats(train_x)
    return LoadedDataset(
        name=f"mnist-sample[:{train}]",
        train_x=train_x,
        train_y=np.ascontiguousarray(sample.train_y[:train]),
        val_x=np.ascontiguousarray(sample.val_x[:val]),
        val_y=np.ascontiguousarray(sample.val_y[:val]),
        classes=list(sample.classes),
        mean=mean,
        std=std,
        spec="mnist-sample",
    )


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """One intra-op thread: these tiny networks gain nothing from more, and on a busy two-core
    machine OpenMP threads that wait for each other make a run up to ten times slower."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def mnist_sample() -> LoadedDataset:
    return load_dataset("mnist-sample", MNIST_SHAPE)


@pytest.fixture(scope="session")
def small_data(mnist_sample: LoadedDataset) -> LoadedDataset:
    """512 training and 256 validation images: enough for every engine behaviour."""
    return mnist_slice(mnist_sample, 512, 256)


def tiny_graph(units: int = 10, *, dense: dict[str, Any] | None = None,
               before_output: list[tuple[str, dict[str, Any]]] | None = None,
               input_shape: tuple[int, int, int] = MNIST_SHAPE) -> Graph:
    """Input → Conv2D 4 3×3 relu → max pooling 2×2 → Flatten → Dense(units) → Output."""
    c, h, w = input_shape
    graph = Graph()
    graph.chain([
        ("Input", {"channels": c, "height": h, "width": w}, "input"),
        ("Conv2D", {"filters": 4, "kernel": [3, 3], "activation": "relu"}, "conv"),
        ("Pooling", {"mode": "max", "pool_size": [2, 2]}, "pool"),
        ("Flatten", {}, "flatten"),
        ("Dense", {"units": units, **(dense or {})}, "fc"),
        *[(t, p, f"extra{i}") for i, (t, p) in enumerate(before_output or [])],
        ("Output", {}, "output"),
    ])
    return graph


def tiny_project(graph: Graph | None = None, **training: Any) -> Project:
    return Project.new(graph if graph is not None else tiny_graph(), training=training)


def options(**overrides: Any) -> TrainOptions:
    """Short runs: 1 epoch, batch 64, Adam 1e-3, seed 0, report every 4 steps."""
    values: dict[str, Any] = {"epochs": 1, "batch_size": 64, "log_every": 4, "seed": 0}
    values.update(overrides)
    return TrainOptions(**values)


@dataclass
class Run:
    finished: RunFinished
    events: list[Event]
    trainer: Trainer
    extra: dict[str, Any] = field(default_factory=dict)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    @property
    def steps(self) -> list[StepProgress]:
        return self.of(StepProgress)

    @property
    def epochs(self) -> list[EpochEnded]:
        return self.of(EpochEnded)

    def weights(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu().clone() for k, v in self.trainer.model.state_dict().items()}


def run(project: Project, data: Any, run_dir: str | Path | None = None, *,
        on_event: Callable[[Event], None] | None = None, **kwargs: Any) -> Run:
    """Iterate a Trainer to the end; `on_event` sees each event as it comes."""
    trainer = Trainer(project, data, run_dir, **kwargs)
    events: list[Event] = []
    for event in trainer.run():
        events.append(event)
        if on_event is not None:
            on_event(event)
    assert isinstance(events[-1], RunFinished)
    assert sum(isinstance(e, RunFinished) for e in events) == 1
    return Run(events[-1], events, trainer)
