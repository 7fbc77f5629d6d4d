"""The options of a training run, from a project's settings and the command line's overrides.

Its own module, below both the engine (which runs with them) and optim.py (which builds the
optimiser and schedule they ask for), so that optim.py does not import the engine back.
`cnnstudio.train.engine.TrainOptions` is the same class.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping

from cnnstudio.core.settings import TRAINING, parse_augment
from cnnstudio.train.guards import TrainingError


@dataclass(frozen=True)
class TrainOptions:
    epochs: int = 5
    batch_size: int = 64
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    schedule: str = "constant"
    step_size: int = 10
    gamma: float = 0.1
    label_smoothing: float = 0.0
    loss: str = "cross_entropy"
    augment: tuple[str, ...] = ()
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"  # see cnnstudio.train.precision
    early_stopping_patience: int = 0
    log_every: int = 10
    channels_last: bool | None = None  # None: timed per run (layout_probe.py)
    compile: bool = False
    tensorboard: bool = False  # also log the run for TensorBoard (tensorboard_log.py)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], **overrides: Any) -> TrainOptions:
        """From a project's training settings (checked by core.settings), then overrides."""
        values, problems = TRAINING.normalize(settings)
        if problems:
            name, message = problems[0]
            raise TrainingError(f"training setting {name}: {message}")
        names = set(cls.__dataclass_fields__)
        options = cls(**{k: v for k, v in values.items() if k in names and k != "augment"},
                      augment=tuple(parse_augment(values.get("augment", ""))))
        overrides = {k: v for k, v in overrides.items() if v is not None}
        if "augment" in overrides:
            overrides["augment"] = tuple(parse_augment(overrides["augment"]))
        return replace(options, **overrides)
