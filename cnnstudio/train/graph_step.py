"""A whole training step captured as one CUDA graph: when it can be, and how it is replayed.

The engine keeps the dataset resident on the device with fixed batch shapes, which is what a
CUDA graph needs. Captured once, the step (scale, augment, normalise, forward, the weighted
losses, backward and the Adam step) replays with one launch instead of hundreds, so small
networks stop being bound by the host's kernel launches.

`capture_plan` decides from plain facts about the run (pure; tested on any machine) whether the
step can be captured and says why not. Only when it says yes on a CUDA device does
`CapturedStep` exist: warm-up steps on a side stream, capture, then one replay per batch. Any
exception during capture or the first replay ends the attempt; the run trains eagerly and the
reason goes in its notes.

What the graph relies on:
- static shapes: only full batches are replayed; the last partial batch of an epoch is left out
  (a different one each epoch, as the order is drawn anew), and the notes say so;
- the learning rate lives in one device tensor per parameter group that the captured Adam step
  reads; the param groups keep plain floats (checkpoints, the schedule, progress), copied into
  those tensors before a replay when they change;
- random draws (augmentation, dropout) come from device generators registered with the graph,
  so reseeding them between replays works as in eager mode;
- nothing in the step reads a value back to the host (float16's loss scaling does: refused).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Callable, ContextManager, Mapping

import torch
from torch import Tensor

from cnnstudio.train.batches import train_steps

CAPTURE_OPTIMIZERS = ("adam", "adamw")  # optimisers with a capturable step and a tensor lr
MIN_CAPTURED_STEPS = 50  # a shorter run gains less than the capture costs
WARMUP_STEPS = 3  # eager steps on a side stream before capture (kernels chosen, state made)
# Block types whose layers read values back to the host or branch on them. None of today's
# blocks do (each runs fixed tensor operations); a block added later that does belongs here.
REFUSING_BLOCKS: Mapping[str, str] = {}

StepBody = Callable[[Tensor, Tensor, torch.Generator], tuple[Tensor, Tensor]]


@dataclass(frozen=True)
class CaptureFacts:
    """What the capture decision needs to know about a run, as plain values."""

    device_type: str
    distributed: bool
    streaming: bool
    train_count: int  # training images each process sees per epoch
    batch_size: int
    epochs: int
    optimizer: str
    schedule: str
    precision: str  # resolved: float32, bfloat16 or float16
    augment: tuple[str, ...]
    compiled: bool
    block_types: tuple[str, ...]


def dropped_images(train_count: int, batch_size: int) -> int:
    """Images of the last partial batch that a captured run leaves out each epoch (those the
    eager engine trains on: it also drops a remainder too small for BatchNorm)."""
    remainder = train_count % batch_size
    return remainder if train_steps(train_count, batch_size) > train_count // batch_size else 0


def capture_plan(facts: CaptureFacts,
                 refusing: Mapping[str, str] = REFUSING_BLOCKS) -> tuple[bool, str]:
    """(True, what is captured) or (False, why the step runs eagerly)."""
    if facts.device_type != "cuda":
        return False, f"graph capture needs a CUDA GPU; this run is on {facts.device_type}"
    if facts.compiled:
        return False, "torch.compile is on and makes its own graphs"
    if facts.distributed:
        return False, ("a distributed (DDP) run trains eagerly: its gradient all-reduce is not "
                       "captured here")
    if facts.streaming:
        return False, ("the dataset is read from disk as it trains, so its batches are not "
                       "resident on the GPU")
    if facts.precision == "float16":
        return False, ("float16 loss scaling checks for overflow on the host every step; "
                       "precision auto (bf16) or float32 is captured")
    if facts.optimizer not in CAPTURE_OPTIMIZERS:
        return False, (f"only Adam and AdamW have a capturable step here; {facts.optimizer} "
                       "trains eagerly")
    if facts.schedule == "one_cycle":
        return False, ("the one-cycle schedule changes Adam's beta1 every step, which a "
                       "captured step would not see")
    if "grayscale" in facts.augment:
        return False, ("grayscale augmentation copies its weights from the host each step, "
                       "which a graph cannot capture")
    for block_type in facts.block_types:
        if block_type in refusing:
            return False, f"the {block_type} block cannot be captured: {refusing[block_type]}"
    full = facts.train_count // facts.batch_size
    if full == 0:
        return False, (f"the training split ({facts.train_count} images) is smaller than one "
                       f"batch of {facts.batch_size}")
    if full * facts.epochs < MIN_CAPTURED_STEPS:
        return False, (f"the run is short ({full * facts.epochs} steps), so capturing would "
                       "cost more than it saves")
    dropped = dropped_images(facts.train_count, facts.batch_size)
    left_out = (f"; the last partial batch ({dropped} images, a different one each epoch) is "
                "left out" if dropped else "")
    return True, ("the training step (scale, augment, normalise, forward, loss, backward, "
                  f"{'AdamW' if facts.optimizer == 'adamw' else 'Adam'}) runs as one captured "
                  f"CUDA graph{left_out}")


def run_facts(trainer: Any) -> CaptureFacts:
    """The facts of a built Trainer (its batches, options, precision and graph)."""
    o = trainer.options
    assert trainer.precision is not None
    return CaptureFacts(
        device_type=trainer.device.type, distributed=trainer.world > 1,
        streaming=bool(getattr(trainer.data, "streaming", False)),
        train_count=int(getattr(trainer.batches, "shard_count", trainer.batches.train_count)),
        batch_size=o.batch_size, epochs=o.epochs, optimizer=o.optimizer, schedule=o.schedule,
        precision=trainer.precision.resolved, augment=tuple(o.augment), compiled=bool(o.compile),
        block_types=tuple(sorted({b.type for b in trainer.project.graph.blocks})))


def plan_run(trainer: Any) -> tuple[bool, str]:
    """Decide for a Trainer whose data is on the device, before its schedule is made: a run
    that will capture trains on full batches only (steps per epoch lowered to match). A refusal
    is noted on a CUDA device only (elsewhere capture is never tried: nothing to say); what is
    captured is noted once the capture has worked (warmup.py)."""
    capture, reason = capture_plan(run_facts(trainer))
    if capture:
        full = trainer.batches.train_count // trainer.options.batch_size
        if hasattr(trainer.batches, "shard_count"):
            full = trainer.batches.shard_count // trainer.options.batch_size
        trainer.batches.steps_per_epoch = trainer.steps_per_epoch = full
    if trainer.device.type == "cuda" and not capture:
        trainer.speed_notes.append(f"the training step runs eagerly: {reason}")
    return capture, reason


def forward_context(precision: Any) -> ContextManager[Any]:
    """The precision's forward context, with autocast's weight cache off: a graph must not
    keep casts made outside it (torch.cuda.make_graphed_callables asks the same)."""
    dtype = precision.autocast_dtype
    if dtype is None:
        return precision.forward()
    return torch.autocast(device_type=precision.device_type, dtype=dtype, cache_enabled=False)


def step_body(trainer: Any) -> StepBody:
    """One training step of a Trainer without zeroing gradients: (loss, correct count).

    Captured with no gradients present, backward assigns the gradients instead of adding to
    them, so every replay starts clean."""
    from cnnstudio.nn.probabilities import predicted_classes

    main = trainer.model.main_output_id

    def body(images: Tensor, y: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        x = trainer._prepare(images, True, generator)
        with forward_context(trainer.precision):
            outputs = trainer.step_module(x)
            loss = trainer._total_loss(outputs, y, trainer.model)
        with trainer.precision.backward():
            loss.backward()
            trainer.optimizer.step()
        hits = (predicted_classes(outputs[main], trainer.output_kinds[main]) == y).sum()
        return loss.detach(), hits

    return body


def make_capturable(optimizer: torch.optim.Optimizer) -> None:
    """Ask Adam for its capturable step and put its step counters on the parameters' device
    (a checkpoint may have brought them back on the CPU)."""
    for group in optimizer.param_groups:
        group["capturable"] = True
        for param in group["params"]:
            state = optimizer.state.get(param, {})
            step = state.get("step")
            if isinstance(step, Tensor) and step.device != param.device:
                state["step"] = step.to(param.device)


def settle_capturable(optimizer: torch.optim.Optimizer, capture: bool) -> None:
    """Capturable for a run that captures. A checkpoint of a captured run resumed on a device
    without a capturable step (the CPU) gets the ordinary step back, its counts on the CPU."""
    if capture:
        make_capturable(optimizer)
        return
    for group in optimizer.param_groups:
        if not group.get("capturable") or group["params"][0].device.type == "cuda":
            continue
        group["capturable"] = False
        for param in group["params"]:
            state = optimizer.state.get(param, {})
            step = state.get("step")
            if not group.get("fused") and isinstance(step, Tensor) and step.device.type != "cpu":
                state["step"] = step.cpu()


class CapturedStep:
    """The captured training step of one run; `replay` trains on one full batch."""

    def __init__(self, body: StepBody, optimizer: torch.optim.Optimizer, images: Tensor,
                 labels: Tensor, generator: torch.Generator) -> None:
        self.body, self.optimizer, self.generator = body, optimizer, generator
        self.static_images, self.static_labels = images.clone(), labels.clone()
        self.graph: torch.cuda.CUDAGraph | None = None
        self.outputs: tuple[Tensor, Tensor] | None = None
        self.lr_tensors = [torch.tensor(float(g["lr"]), dtype=torch.float32,
                                        device=images.device) for g in optimizer.param_groups]
        self.lr_values = [float(g["lr"]) for g in optimizer.param_groups]
        self.replays = 0
        self.failure: str | None = None  # why the run went back to eager steps

    @contextlib.contextmanager
    def _tensor_rates(self) -> Any:
        """The param groups read the device rates while the step is recorded."""
        for group, rate in zip(self.optimizer.param_groups, self.lr_tensors):
            group["lr"] = rate
        try:
            yield
        finally:
            for group, value in zip(self.optimizer.param_groups, self.lr_values):
                group["lr"] = value

    def warm_up_and_capture(self, steps: int = WARMUP_STEPS) -> None:
        """Eager steps on a side stream (as torch.cuda.graphs asks), then the capture. These
        steps train: the caller restores the weights and optimiser state afterwards."""
        make_capturable(self.optimizer)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with self._tensor_rates(), torch.cuda.stream(side):
            for _ in range(steps):
                self.optimizer.zero_grad(set_to_none=True)
                self.body(self.static_images, self.static_labels, self.generator)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        graph.register_generator_state(self.generator)
        self.optimizer.zero_grad(set_to_none=True)
        # thread_local: the window trains in a worker thread while its own thread may use CUDA
        with self._tensor_rates(), torch.cuda.graph(graph, capture_error_mode="thread_local"):
            self.outputs = self.body(self.static_images, self.static_labels, self.generator)
        self.graph = graph

    def replay(self, images: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        """Train on this batch; (loss, correct count) in tensors the next replay overwrites."""
        assert self.graph is not None and self.outputs is not None
        if len(images) != len(self.static_images):
            raise ValueError("a captured step replays full batches only")
        self.static_images.copy_(images)
        self.static_labels.copy_(labels)
        for k, group in enumerate(self.optimizer.param_groups):
            value = float(group["lr"])
            if value != self.lr_values[k]:  # the schedule moved: one fill, no host wait
                self.lr_values[k] = value
                self.lr_tensors[k].fill_(value)
        self.graph.replay()
        self.replays += 1
        return self.outputs

    def release(self) -> None:
        """Forget the graph (after a failure): the run goes on with eager steps."""
        self.graph, self.outputs = None, None


def first_failure_note(error: BaseException, when: str) -> str:
    """The run's note for a capture that did not work, with torch's own first line."""
    first = (str(error).strip().splitlines() or [type(error).__name__])[0]
    return (f"the training step could not be captured as a CUDA graph ({when}: {first[:200]}); "
            "it runs eagerly")

