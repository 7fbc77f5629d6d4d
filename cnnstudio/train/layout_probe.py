"""The memory format and optimiser step of a run, chosen by timing a few real steps.

Whether channels_last beats the default (contiguous) layout, and a fused optimiser step beats
the multi-tensor (foreach) one, depends on the device, the torch version and the network: on
this 2-core CPU with torch 2.14 channels_last made the Keras-book network 1.4x faster, where an
older measurement had found it slower. So at the start of a run the engine times each way on
the run's own model and batch, and keeps the fastest.

The probe runs on private copies of the model (their own optimisers) with the CPU and device
random number generators forked, so the run starts from the same weights and draws the same
random numbers whether it probes or not. Each candidate first takes WARMUP_STEPS untimed steps
(oneDNN and cuDNN pick their kernels on the first call), then the candidates take turns, one
timed step each, for as many rounds as fit in PROBE_BUDGET_S; each keeps its fastest step (the
least disturbed by other work on the machine). Another candidate replaces the device's default
only when it is faster by more than MARGIN, so noise alone does not flip the choice.

A short run (fewer than MIN_PROBED_STEPS steps), a distributed one (every process must choose
alike), a streamed dataset, or a network whose step is too slow to time within the budget uses
the default, and its note says so.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Any, Callable, ContextManager

import torch
from torch import Tensor, nn

from cnnstudio.train.batches import train_steps
from cnnstudio.train.optim import make_optimizer
from cnnstudio.train.options import TrainOptions

PROBE_BUDGET_S = 0.8  # timed rounds stop once the probe has taken this long
WARMUP_STEPS = 1
MIN_ROUNDS = 2
MIN_PROBED_STEPS = 300  # a shorter run gains less than the probe costs
MARGIN = 0.05
PARAMETER_LIMIT = 25_000_000  # four copies of a larger network would take too much memory
FUSED_OPTIMIZERS = ("adam", "adamw", "sgd")


@dataclass(frozen=True)
class Layout:
    """How a run trains: the memory format of its tensors and its optimiser's step."""

    channels_last: bool
    step: str  # "fused" or "foreach"

    def describe(self, optimizer: str) -> str:
        return f"{self.memory}, {self.step} {_optimizer_name(optimizer)} step"

    @property
    def memory(self) -> str:
        return "channels_last" if self.channels_last else "contiguous"


@dataclass(frozen=True)
class LayoutChoice:
    layout: Layout
    note: str
    step_ms: dict[Layout, float]  # the fastest timed step of each candidate; {} unprobed


def _optimizer_name(optimizer: str) -> str:
    return {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD", "rmsprop": "RMSprop"}.get(
        optimizer, optimizer)


def fused_supported(optimizer: str, device: torch.device) -> bool:
    """Whether torch has a fused step of this optimiser on this device (torch says so when
    the optimiser is made)."""
    if optimizer not in FUSED_OPTIMIZERS:
        return False
    kind = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}
    probe = torch.zeros(1, device=device, requires_grad=True)
    try:
        kind[optimizer]([probe], lr=0.1, fused=True)
    except (RuntimeError, ValueError):
        return False
    return True


def default_layout(optimizer: str, device: torch.device) -> Layout:
    """What measured faster where no probe runs: channels_last and a fused step on CUDA and
    on the CPU (torch 2.14; the probe corrects it where it is not), contiguous on MPS."""
    channels_last = device.type in ("cuda", "cpu")
    step = "fused" if fused_supported(optimizer, device) and device.type != "mps" else "foreach"
    return Layout(channels_last, step)


def candidate_layouts(optimizer: str, device: torch.device,
                      channels_last: bool | None) -> list[Layout]:
    """Every combination the probe times; a layout set in the options is kept as it is."""
    formats = [False, True] if channels_last is None else [channels_last]
    steps = ["foreach", "fused"] if fused_supported(optimizer, device) else ["foreach"]
    return [Layout(cl, step) for cl in formats for step in steps]


def match_state_layout(optimizer: torch.optim.Optimizer) -> None:
    """Give each optimiser state tensor its parameter's strides, in place.

    A checkpoint written in one layout may resume in the other (an older run, or a probe that
    chose differently), and torch's fused steps walk parameter and state as flat memory: a
    contiguous exp_avg beside a channels_last weight silently trains on scrambled values.
    """
    for group in optimizer.param_groups:
        for param in group["params"]:
            state = optimizer.state.get(param, {})
            for key, value in state.items():
                if (isinstance(value, Tensor) and value.shape == param.shape
                        and value.stride() != param.stride()):
                    state[key] = torch.empty_like(param, dtype=value.dtype).copy_(value)


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (a CPU runs each operation to its end anyway)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


StepFactory = Callable[[Layout], Callable[[], None]]


@dataclass(frozen=True)
class ProbeInputs:
    """What the probe needs of a run: its model, batch and how it computes a loss."""

    model: nn.Module
    images: Tensor  # uint8 (B, C, H, W), on the device
    labels: Tensor
    mean: Tensor
    std: Tensor
    make_optimizer: Callable[[list[nn.Parameter], str], torch.optim.Optimizer]
    loss_of: Callable[[nn.Module, Tensor, Tensor], Tensor]  # (model copy, x, y): autocast inside
    backward: Callable[[], ContextManager[object]]


def step_factory(inputs: ProbeInputs) -> StepFactory:
    """For each layout, one training step of a private copy of the model in that layout."""

    def make(layout: Layout) -> Callable[[], None]:
        model = copy.deepcopy(inputs.model)
        if layout.channels_last:
            model = model.to(memory_format=torch.channels_last)
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = inputs.make_optimizer(params, layout.step)

        def step() -> None:
            x = (inputs.images.float().div_(255.0) - inputs.mean) / inputs.std
            if layout.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            loss = inputs.loss_of(model, x, inputs.labels)
            optimizer.zero_grad(set_to_none=True)
            with inputs.backward():
                loss.backward()
                optimizer.step()

        return step

    return make


def time_layouts(candidates: list[Layout], make_step: StepFactory, device: torch.device,
                 budget_s: float = PROBE_BUDGET_S) -> dict[Layout, float]:
    """The fastest step of each candidate in milliseconds, from interleaved rounds; {} as soon
    as the warm-up steps show that the warm-up and MIN_ROUNDS rounds would take more than
    twice the budget (a large network: its first step is all the probe costs it)."""
    started = time.perf_counter()
    steps = {}
    for done, layout in enumerate(candidates, start=1):
        steps[layout] = make_step(layout)
        for _ in range(WARMUP_STEPS):
            steps[layout]()
        synchronize(device)
        per_step = (time.perf_counter() - started) / (done * WARMUP_STEPS)
        if per_step * len(candidates) * (WARMUP_STEPS + MIN_ROUNDS) > budget_s * 2:
            return {}
    best = {layout: float("inf") for layout in candidates}
    rounds = 0
    while rounds < MIN_ROUNDS or time.perf_counter() - started < budget_s:
        for layout in candidates:
            begin = time.perf_counter()
            steps[layout]()
            synchronize(device)
            best[layout] = min(best[layout], (time.perf_counter() - begin) * 1000)
        rounds += 1
    return best


def _rng_devices(device: torch.device) -> list[int]:
    if device.type != "cuda":
        return []
    return [device.index if device.index is not None else torch.cuda.current_device()]


def pick_layout(default: Layout, step_ms: dict[Layout, float]) -> Layout:
    """The default unless another candidate is faster by more than MARGIN."""
    if default not in step_ms:
        return min(step_ms, key=step_ms.__getitem__)
    fastest = min(step_ms, key=step_ms.__getitem__)
    if step_ms[fastest] < step_ms[default] * (1 - MARGIN):
        return fastest
    return default


def choose_layout(inputs: ProbeInputs | None, optimizer: str, device: torch.device,
                  channels_last: bool | None, run_steps: int,
                  skip_reason: str = "") -> LayoutChoice:
    """The layout a run trains in, with the note that says how it was chosen.

    inputs: None when the run cannot be probed (skip_reason says why); run_steps: the steps
    the run will take, to skip the probe where it would cost more than it can gain.
    """
    default = default_layout(optimizer, device)
    if channels_last is not None:
        default = Layout(channels_last, default.step)
    candidates = candidate_layouts(optimizer, device, channels_last)
    if not skip_reason and run_steps < MIN_PROBED_STEPS:
        skip_reason = f"the run is short ({run_steps} steps), so it was not timed"
    if not skip_reason and inputs is not None:
        count = sum(p.numel() for p in inputs.model.parameters())
        if count > PARAMETER_LIMIT:
            skip_reason = f"the network is large ({count:,} parameters), so it was not timed"
    if skip_reason or inputs is None or len(candidates) == 1:
        why = skip_reason or "the only choice here"
        return LayoutChoice(default, f"training layout {default.describe(optimizer)} on "
                                     f"{device.type} (the default: {why})", {})
    with torch.random.fork_rng(devices=_rng_devices(device),
                               device_type="cuda" if device.type == "cuda" else "cpu"):
        step_ms = time_layouts(candidates, step_factory(inputs), device)
    if not step_ms:
        return LayoutChoice(default, f"training layout {default.describe(optimizer)} on "
                                     f"{device.type} (the default: a step takes too long to "
                                     "time each way within a second)", {})
    chosen = pick_layout(default, step_ms)
    figures = ", ".join(f"{layout.memory}+{layout.step} {ms:.1f}"
                        for layout, ms in sorted(step_ms.items(), key=lambda item: item[1]))
    return LayoutChoice(chosen, f"training layout {chosen.describe(optimizer)} (timed on "
                                f"{device.type}, ms per step: {figures})", step_ms)


def choose_run_layout(model: nn.Module, data: Any, device: torch.device, options: TrainOptions,
                      loss_of: Callable[[nn.Module, Tensor, Tensor], Tensor],
                      backward: Callable[[], ContextManager[object]]) -> LayoutChoice:
    """The layout of a run of `model` on `data`, timed on its first batch where it can be."""
    dist = torch.distributed
    skip = ("the dataset is read from disk as it trains" if getattr(data, "streaming", False)
            else "every process of a distributed run must choose alike"
            if dist.is_available() and dist.is_initialized() else "")
    b, channels = options.batch_size, data.image_shape[0]
    steps = options.epochs * train_steps(len(getattr(data, "train_x", ())), b)
    inputs = None
    if not skip and steps >= MIN_PROBED_STEPS:
        per_channel = (1, channels, 1, 1)
        inputs = ProbeInputs(
            model, torch.from_numpy(data.train_x[:b].copy()).to(device),
            torch.as_tensor(data.train_y[:b], dtype=torch.long, device=device),
            torch.as_tensor(data.mean, dtype=torch.float32, device=device).view(per_channel),
            torch.as_tensor(data.std, dtype=torch.float32, device=device).view(per_channel),
            lambda params, step: make_optimizer(params, options, device, step),
            loss_of, backward)
    return choose_layout(inputs, options.optimizer, device, options.channels_last, steps, skip)
