"""The device, the optimiser and the learning-rate schedule that a run's options ask for."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from cnnstudio.train.extend import cosine_rate
from cnnstudio.train.guards import TrainingError
from cnnstudio.train.options import TrainOptions


def pick_device(name: str) -> torch.device:
    """'auto' picks CUDA, then MPS, then the CPU; asking for a missing device is an error."""
    mps = getattr(torch.backends, "mps", None)
    has_mps = bool(mps and mps.is_available())
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if has_mps else torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise TrainingError("no CUDA GPU is available here; use --device auto or cpu")
    if name == "mps" and not has_mps:
        raise TrainingError("Apple's MPS device is not available here; use --device auto or cpu")
    if name not in ("cpu", "cuda", "mps"):
        raise TrainingError(f"unknown device {name!r}; use auto, cpu, cuda or mps")
    return torch.device(name)


def make_optimizer(params: list[nn.Parameter], o: TrainOptions, device: torch.device,
                   step: str | None = None) -> torch.optim.Optimizer:
    """step: "fused" or "foreach" (a run's is chosen by layout_probe.py; RMSprop has no fused
    step); None: fused on CUDA, else foreach, which was ~8 % faster per training step of the
    Keras-book network on the CPU than the default single-tensor loop."""
    if step is None:
        step = "fused" if device.type == "cuda" else "foreach"
    fused = {"fused": True} if step == "fused" else {"foreach": True}
    if o.optimizer == "sgd":
        if o.nesterov and o.momentum <= 0:
            raise TrainingError("Nesterov momentum needs a momentum above 0")
        return torch.optim.SGD(params, lr=o.learning_rate, momentum=o.momentum,
                               nesterov=o.nesterov, weight_decay=o.weight_decay, **fused)
    if o.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=o.learning_rate, momentum=o.momentum,
                                   weight_decay=o.weight_decay,
                                   foreach=device.type != "mps")
    if o.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=o.learning_rate, weight_decay=o.weight_decay, **fused)
    return torch.optim.Adam(params, lr=o.learning_rate, weight_decay=o.weight_decay, **fused)


def make_schedule(optimizer: torch.optim.Optimizer, o: TrainOptions,
                  steps_per_epoch: int) -> torch.optim.lr_scheduler.LRScheduler:
    """Stepped once per batch; step decay counts in epochs."""
    total = max(o.epochs * steps_per_epoch, 1)
    if o.schedule == "one_cycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=o.learning_rate,
                                                   total_steps=total + 1)
    if o.schedule == "cosine":
        factor: Callable[[int], float] = lambda s: cosine_rate(s, total, 1.0)
    elif o.schedule == "step":
        factor = lambda s: o.gamma ** (s // (o.step_size * steps_per_epoch))
    else:
        factor = lambda s: 1.0
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
