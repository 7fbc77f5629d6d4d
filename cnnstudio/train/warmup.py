"""Everything a run does once before its clock starts: warm-up, graph capture, validation batch.

The first steps of a run pay one-off costs: oneDNN and cuDNN pick their kernels for each new
shape (with cudnn.benchmark, cuDNN times several), the caching allocator grows to the step's
working set, and on CUDA the step is captured as a graph (graph_step.py). Counted in the first
epoch, those costs made short runs look slow (GoogLeNet over two epochs on an H200: 139 images/s
overall, the first epoch at 0.35-0.78 of the later ones). So the engine takes a few real steps
on the run's first batch before the clock starts, then puts the weights, the optimiser state
(in place: a captured graph keeps pointing at the same tensors), the loss scale and the random
number generators back as they were: the run trains exactly as it would have without the
warm-up, and its epochs' images/s measure training alone. The warm-up's own time is reported
apart ("warm-up 0.4 s" in the notes and RunFinished.warmup_s).

The validation batch: evaluation has no backward pass and no optimiser, so its best batch size
differs from training's. On a 2-core CPU the Keras-book network evaluated 2.8-3.9x faster at
batch 128 in channels_last than at 512 in the default layout. A run whose validation passes are
long enough times each candidate size on its own model and keeps the fastest per image (the
device's default unless another is faster by more than EVAL_MARGIN); shorter runs use the
default. Measured here: batch 128 channels_last 16.7k images/s against 3.3-5.1k at 512 in the
default layout (the engine's earlier choice). Loss and accuracy do not depend on the batch size.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from cnnstudio.train import graph_step
from cnnstudio.train.layout_probe import synchronize

WARMUP_STEPS = {"cpu": 1, "mps": 1}  # CUDA: graph_step.WARMUP_STEPS, or EAGER_CUDA_STEPS
EAGER_CUDA_STEPS = 2
# at most the engine's EVAL_BATCH (512): a larger one could run out of GPU memory in the probe
EVAL_CANDIDATES = {"cpu": (128, 256, 512), "cuda": (128, 256, 512), "mps": (128, 256, 512)}
# where no probe runs; 128 measured fastest on the 2-core CPU (channels_last), the others are
# the engine's earlier 512 until measured
DEFAULT_EVAL_BATCH = {"cpu": 128, "cuda": 512, "mps": 512}
MIN_PROBED_EVAL_IMAGES = 20_000  # epochs x validation images below this: the default
EVAL_ROUNDS = 2  # timed rounds per candidate, after one untimed pass each
EVAL_MARGIN = 0.10  # another size replaces the default only when this much faster per image


# -- the weights and optimiser state, put back in place --------------------------------------------

@dataclass
class Snapshot:
    """Copies of what a training step changes, to be copied back into the same tensors."""

    model: dict[str, Tensor]
    optimizer: dict[int, dict[str, Tensor]]  # by id(parameter)
    scaler: dict[str, Any] | None


def take_snapshot(model: nn.Module, optimizer: torch.optim.Optimizer,
                  scaler: torch.amp.GradScaler | None = None) -> Snapshot:
    state = {id(p): {k: v.detach().clone() for k, v in s.items() if isinstance(v, Tensor)}
             for p, s in optimizer.state.items()}
    return Snapshot({k: v.detach().clone() for k, v in model.state_dict().items()}, state,
                    scaler.state_dict() if scaler is not None else None)


@torch.no_grad()
def restore_in_place(snapshot: Snapshot, model: nn.Module, optimizer: torch.optim.Optimizer,
                     scaler: torch.amp.GradScaler | None = None) -> None:
    """Copy the snapshot back into the tensors that exist now. Optimiser state made since the
    snapshot is zeroed, which is what a fresh step of Adam, AdamW, RMSprop or SGD (without
    dampening) starts from: zero moments and a step count of 0."""
    for name, value in model.state_dict().items():
        value.copy_(snapshot.model[name])
    for param, state in optimizer.state.items():
        saved = snapshot.optimizer.get(id(param), {})
        for key, value in state.items():
            if isinstance(value, Tensor):
                if key in saved:
                    value.copy_(saved[key])
                else:
                    value.zero_()
    if scaler is not None and snapshot.scaler is not None:
        scaler.load_state_dict(snapshot.scaler)


# -- the warm-up -----------------------------------------------------------------------------------

def _rng_devices(device: torch.device) -> list[int]:
    if device.type != "cuda":
        return []
    return [device.index if device.index is not None else torch.cuda.current_device()]


def training_modes(model: nn.Module, frozen_norms: list[nn.Module]) -> None:
    """The modes a training step runs in (an epoch's and the warm-up's): training, except that
    a frozen BatchNorm keeps its running statistics, as Keras does."""
    model.train()
    for module in frozen_norms:
        module.eval()


def first_batch(trainer: Any) -> tuple[Tensor, Tensor] | None:
    """The run's first training images (a full batch), or None for a streamed dataset."""
    batches = trainer.batches
    if getattr(trainer.data, "streaming", False) or not hasattr(batches, "train_x"):
        return None
    b = trainer.options.batch_size
    if batches.train_count < b:
        return None
    return batches.train_x[:b], batches.train_y[:b]


def warmup_steps(trainer: Any) -> int:
    """The trainer's own count (tests set 0 to switch the warm-up off), else the device's."""
    if trainer.warmup_steps is not None:
        return int(trainer.warmup_steps)
    if trainer.device.type == "cuda":
        return graph_step.WARMUP_STEPS if trainer.capture else EAGER_CUDA_STEPS
    return WARMUP_STEPS.get(trainer.device.type, 1)


def warm_up(trainer: Any) -> float:
    """Warm-up steps (and on CUDA the capture) on the real model, everything restored after;
    the seconds it took (0.0 when nothing ran). Sets trainer.captured when a graph works."""
    steps = warmup_steps(trainer)
    batch = first_batch(trainer)
    if batch is None or (steps == 0 and not trainer.capture):
        return 0.0
    images, labels = batch
    device = trainer.device
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # static shapes: worth timing cuDNN's kernels
    started = time.perf_counter()
    training_modes(trainer.model, trainer.frozen_norms)
    snapshot = take_snapshot(trainer.model, trainer.optimizer, trainer.scaler)
    try:
        with torch.random.fork_rng(devices=_rng_devices(device),
                                   device_type="cuda" if device.type == "cuda" else "cpu"):
            generator = torch.Generator(device=device)
            generator.manual_seed(trainer.options.seed)
            if trainer.capture:
                trainer.captured = _capture(trainer, images, labels, generator, steps)
            if trainer.captured is None:
                for _ in range(steps):
                    trainer.train_step(images, labels, generator)
    finally:
        restore_in_place(snapshot, trainer.model, trainer.optimizer, trainer.scaler)
        trainer.optimizer.zero_grad(set_to_none=trainer.captured is None)
    synchronize(device)
    return time.perf_counter() - started


def _capture(trainer: Any, images: Tensor, labels: Tensor, generator: torch.Generator,
             steps: int) -> graph_step.CapturedStep | None:
    """The captured step after its warm-up, capture and first replay; None (with the reason in
    the notes) if any of them raised."""
    captured = graph_step.CapturedStep(graph_step.step_body(trainer), trainer.optimizer,
                                       images, labels, generator)
    when = "capture"
    try:
        captured.warm_up_and_capture(max(steps, 1))
        when = "first replay"
        captured.replay(images, labels)
        synchronize(trainer.device)
    except Exception as err:  # noqa: BLE001 - any failure means: train eagerly
        captured.release()
        graph_step.settle_capturable(trainer.optimizer, capture=False)
        trainer.speed_notes.append(graph_step.first_failure_note(err, when))
        return None
    trainer.timing_every = 0  # one graph has no phases to mark (step_timing.py)
    trainer.speed_notes.append(graph_step.capture_plan(graph_step.run_facts(trainer))[1])
    return captured


# -- the validation batch --------------------------------------------------------------------------

@torch.no_grad()
def time_eval_batches(model: nn.Module, images: Tensor, prepare: Any, forward: Any,
                      device: torch.device, candidates: tuple[int, ...],
                      rounds: int = EVAL_ROUNDS) -> dict[int, float]:
    """Milliseconds per image of an evaluation pass at each candidate batch size, the fastest
    of `rounds` interleaved rounds after one untimed pass each (kernels chosen)."""
    was_training = model.training
    model.eval()
    batches = {size: images[:size] for size in candidates}
    best = dict.fromkeys(candidates, float("inf"))
    try:
        for round_ in range(rounds + 1):
            for size, batch in batches.items():
                begin = time.perf_counter()
                with forward():
                    model(prepare(batch))
                synchronize(device)
                if round_:
                    best[size] = min(best[size], (time.perf_counter() - begin) * 1000 / size)
    finally:
        model.train(was_training)
    return best


def choose_eval_batch(trainer: Any) -> tuple[int, str | None]:
    """The validation batch size and the note that says how it was chosen (None: nothing
    worth saying, as for a validation split that fits one default batch)."""
    kind = trainer.device.type
    cap = trainer.eval_batch  # the memory plan's limit on the CPU
    val_count = trainer.batches.val_count
    default = min(DEFAULT_EVAL_BATCH.get(kind, cap), cap)
    candidates = tuple(c for c in EVAL_CANDIDATES.get(kind, ()) if c <= min(cap, val_count))
    if val_count <= default:
        return default, None
    long_enough = trainer.options.epochs * val_count >= MIN_PROBED_EVAL_IMAGES
    if len(candidates) < 2 or not long_enough or not hasattr(trainer.batches, "val_x"):
        return default, f"validation batch {default} (the {kind} default; not timed)"
    images = trainer.batches.val_x[:max(candidates)]
    with torch.random.fork_rng(devices=_rng_devices(trainer.device),
                               device_type="cuda" if kind == "cuda" else "cpu"):
        ms = time_eval_batches(trainer.model, images, lambda x: trainer._prepare(x, False, None),
                               trainer._autocast, trainer.device, candidates)
    chosen = min(ms, key=ms.__getitem__)
    if default in ms and ms[chosen] > ms[default] * (1 - EVAL_MARGIN):
        chosen = default  # noise alone does not move it off the measured default
    figures = ", ".join(f"{size}: {ms[size] * 1000:.0f} µs" for size in candidates)
    return chosen, f"validation batch {chosen} (timed on {kind}, per image: {figures})"


# -- what the engine calls -------------------------------------------------------------------------

def prepare_run(trainer: Any) -> None:
    """After set-up and resume, before the run's first event: the optimiser made ready for the
    device, the warm-up (and capture), the validation batch; each noted."""
    graph_step.settle_capturable(trainer.optimizer, trainer.capture)
    trainer.eval_batch, note = choose_eval_batch(trainer)
    if note:
        trainer.speed_notes.append(note)
    seconds = warm_up(trainer)
    trainer.warmup_seconds = seconds
    if seconds:
        count = warmup_steps(trainer)
        what = (f"{max(count, 1)} steps and the graph capture" if trainer.captured is not None
                else "1 step" if count == 1 else f"{count} steps")
        trainer.speed_notes.append(f"warm-up {seconds:.2f} s before the clock ({what} on the first "
                             "batch, the weights put back after), not counted in the epochs' "
                             "images/s")
