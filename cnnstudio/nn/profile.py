"""Per-block latency on this machine: which block of a network costs the forward pass its time.

The model timed is the one an export holds: the main path (export.main_path_model, no auxiliary
heads) in eval mode, on the CPU, fed random images of the run's input shape. A forward pre-hook
and a forward hook on each block's module read `time.perf_counter` around the block; CPU kernels
run synchronously, so the time between the two is the block's own (its Python call included).
After a few warm-up passes, `runs` timed passes give each block the median of its times. Each
is followed by a pass without the hooks, which times the whole forward pass: the blocks' sum
and that median differ by the graph's own bookkeeping between blocks and the hooks' cost,
which `gap_note` names when it is large. The exported model's normalisation and softmax are
no blocks and are not timed.

Torch computes with `torch.get_num_threads()` threads (the profile records how many): the
command line keeps torch's default, the window's background work runs on one thread
(ui/torch_threads.py).
"""

from __future__ import annotations

import contextlib
import copy
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from cnnstudio.core import registry
from cnnstudio.core.analysis import Analysis, analyze
from cnnstudio.core.blocks.base import format_shape
from cnnstudio.nn.build import GraphModel
from cnnstudio.nn.export import (
    DATA_FILE,
    MODEL_FILE,
    PROJECT_FILE,
    LoadedRun,
    StrPath,
    load_run,
    main_path_model,
)

DEFAULT_RUNS = 30
WARMUP_RUNS = 3
MIN_RUNS = 5  # a time limit stops the timing after at least this many runs
MAX_BATCH = 1024
GAP_NOTE = 0.15  # the blocks' sum this far (relative) from the whole forward pass earns a note

Progress = Callable[[int, int], object]  # (timed runs done, runs in all)


class ProfileError(Exception):
    """A network that cannot be timed; the message says what to do."""


@dataclass(frozen=True)
class BlockTime:
    """One block's time in the forward pass."""

    block_id: str
    name: str
    type_name: str  # the palette's name of the block type (Conv2D)
    output_shape: tuple[int, ...]  # of one image
    macs: int  # multiply-accumulates for one image (core analysis)
    ms: float  # median over the timed passes, for the whole batch
    share: float  # of the blocks' summed time, 0..1

    def describe(self) -> str:
        """What the canvas's tooltip and the command line say of the block."""
        return f"{format_ms(self.ms)} ms, {self.share:.0%} of the forward pass"

    def cells(self) -> tuple[str, ...]:
        """The block's cells under COLUMNS, as the command line and the window show them."""
        return (self.name, self.type_name, format_shape(self.output_shape), f"{self.macs:,}",
                format_ms(self.ms), f"{self.share:.1%}")


COLUMNS = ("Block", "Type", "Output", "MACs per image", "ms", "Share")


def format_ms(ms: float) -> str:
    """Milliseconds to a microsecond below 10 ms, then 3 or 4 figures: 0.041, 3.271, 152.3."""
    return f"{ms:.3f}" if ms < 10 else f"{ms:.2f}" if ms < 100 else f"{ms:.1f}"


@dataclass(frozen=True)
class LatencyProfile:
    """The blocks of the main path in graph order, with the run's setting."""

    network: str
    blocks: tuple[BlockTime, ...]
    forward_ms: float  # median of the whole forward pass, timed without the hooks
    batch: int
    runs: int
    threads: int
    device: str = "cpu"

    @property
    def blocks_ms(self) -> float:
        return sum(block.ms for block in self.blocks)

    def ranked(self) -> list[BlockTime]:
        """The blocks, slowest first (graph order among equals)."""
        return sorted(self.blocks, key=lambda block: -block.ms)

    @property
    def top(self) -> BlockTime:
        return self.ranked()[0]

    def gap_note(self) -> str:
        """A sentence when the blocks' sum and the whole forward pass differ much, else ""."""
        if self.forward_ms <= 0 or abs(self.blocks_ms - self.forward_ms) <= (
                GAP_NOTE * self.forward_ms):
            return ""
        why = ("the rest is the graph's own bookkeeping between the blocks"
               if self.blocks_ms < self.forward_ms else "the timing adds to every block")
        return (f"The blocks add up to {format_ms(self.blocks_ms)} ms against "
                f"{format_ms(self.forward_ms)} ms for the whole forward pass: {why} (or the "
                "machine was busy); compare the blocks with each other")

    def summary_lines(self) -> list[str]:
        """The end of the table in words: the totals, the slowest block, any note."""
        top = self.top
        lines = [f"Blocks in all {format_ms(self.blocks_ms)} ms; the whole forward pass "
                 f"{format_ms(self.forward_ms)} ms (timed without the per-block timing)",
                 f"Slowest block: {top.name} ({top.type_name}), {top.describe()}"]
        note = self.gap_note()
        return lines + ([f"Note: {note}"] if note else [])

    def setting(self) -> str:
        """How the times were taken, in one line."""
        images = "one image" if self.batch == 1 else f"a batch of {self.batch} images"
        threads = "1 thread" if self.threads == 1 else f"{self.threads} threads"
        return (f"{images}, median of {self.runs} runs on the {self.device.upper()} "
                f"({threads})")

    def to_json(self) -> dict[str, object]:
        return {"network": self.network, "device": self.device, "threads": self.threads,
                "batch": self.batch, "runs": self.runs,
                "forward_ms": self.forward_ms, "blocks_ms": self.blocks_ms,
                "top": self.top.block_id, "blocks": [asdict(b) for b in self.blocks]}


@contextlib.contextmanager
def _threads(count: int | None) -> Iterator[None]:
    if count is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _check_setting(batch: int, runs: int, threads: int | None) -> None:
    if not 1 <= batch <= MAX_BATCH:
        raise ProfileError(f"batch size {batch} out of range: time 1 to {MAX_BATCH:,} images")
    if runs < 1:
        raise ProfileError(f"{runs} runs time nothing: give at least 1 (the median of "
                           f"{DEFAULT_RUNS} is the default)")
    if threads is not None and threads < 1:
        raise ProfileError(f"{threads} threads cannot compute: give at least 1")


class _BlockTimer:
    """Forward hooks that time each block of a model while attached (`timing()`)."""

    def __init__(self, model: GraphModel, order: list[str]) -> None:
        self.model = model
        self.times: dict[str, list[float]] = {block_id: [] for block_id in order}
        self._started: dict[str, float] = {}

    def _before(self, block_id: str) -> Callable[..., None]:
        def hook(_module: object, _args: object) -> None:
            self._started[block_id] = time.perf_counter()
        return hook

    def _after(self, block_id: str) -> Callable[..., None]:
        def hook(_module: object, _args: object, _output: object) -> None:
            self.times[block_id].append((time.perf_counter() - self._started[block_id]) * 1000)
        return hook

    @contextlib.contextmanager
    def timing(self) -> Iterator[None]:
        handles = []
        try:
            for block_id in self.times:
                module = self.model.blocks[block_id]
                handles.append(module.register_forward_pre_hook(self._before(block_id)))
                handles.append(module.register_forward_hook(self._after(block_id)))
            yield
        finally:
            for handle in handles:
                handle.remove()


def profile_model(model: GraphModel, graph_analysis: Analysis, input_shape: tuple[int, ...], *,
                  network: str = "", batch: int = 1, runs: int = DEFAULT_RUNS,
                  threads: int | None = None, progress: Progress | None = None,
                  time_limit_s: float | None = None, seed: int = 0) -> LatencyProfile:
    """Time each block of `model`'s main path (see the module's docstring).

    `graph_analysis` is core.analysis.analyze of the model's graph (names, shapes and MACs);
    `threads` None keeps torch's current number of threads. A timed pass with the hooks and
    one without them alternate, so that other work on the machine slows both alike.
    `time_limit_s` stops after that long once MIN_RUNS runs are done (a big network in the
    window); the profile records the runs it took."""
    _check_setting(batch, runs, threads)
    deployed = main_path_model(model)
    if any(tensor.device.type != "cpu" for tensor in deployed.state_dict().values()):
        deployed = copy.deepcopy(deployed).cpu()  # leaves the caller's model where it is
    images = torch.rand(batch, *input_shape, generator=torch.Generator().manual_seed(seed))
    timer = _BlockTimer(deployed, list(deployed.main_path))
    forward_times: list[float] = []
    with _threads(threads), torch.inference_mode():
        used_threads = torch.get_num_threads()
        for _ in range(WARMUP_RUNS):
            deployed(images)
        begun_all = time.perf_counter()
        for number in range(runs):
            with timer.timing():
                deployed(images)
            begun = time.perf_counter()
            deployed(images)
            forward_times.append((time.perf_counter() - begun) * 1000)
            if progress is not None:
                progress(number + 1, runs)
            if (time_limit_s is not None and number + 1 >= MIN_RUNS
                    and time.perf_counter() - begun_all > time_limit_s):
                break
    medians = {block_id: statistics.median(times) for block_id, times in timer.times.items()}
    whole = sum(medians.values()) or 1.0
    blocks = []
    for block_id, ms in medians.items():
        info = graph_analysis.blocks[block_id]
        blocks.append(BlockTime(block_id, info.name, registry.get(info.type).display_name,
                                tuple(info.output_shape or ()), int(info.macs), ms, ms / whole))
    return LatencyProfile(network, tuple(blocks), statistics.median(forward_times), batch,
                          len(forward_times), used_threads)


def profile_loaded(run: LoadedRun, *, batch: int = 1, runs: int = DEFAULT_RUNS,
                   threads: int | None = None, progress: Progress | None = None,
                   time_limit_s: float | None = None) -> LatencyProfile:
    """Time a loaded run (export.load_run) or a project's network (export.project_run)."""
    return profile_model(run.model, analyze(run.project.graph), run.input_shape,
                         network=run.project.name, batch=batch, runs=runs, threads=threads,
                         progress=progress, time_limit_s=time_limit_s)


def profile_run(run_dir: StrPath, *, batch: int = 1, runs: int = DEFAULT_RUNS,
                threads: int | None = None, progress: Progress | None = None,
                time_limit_s: float | None = None) -> LatencyProfile:
    """Time the trained model of a run folder; ProfileError or export.ExportError when it
    cannot be read."""
    folder = Path(run_dir)
    if not folder.is_dir():
        why = "it is a file" if folder.exists() else "it does not exist"
        raise ProfileError(f"cannot time '{folder}': {why}; give the folder of a training run "
                           f"(it holds {PROJECT_FILE}, {DATA_FILE} and {MODEL_FILE})")
    if not (folder / PROJECT_FILE).exists():
        raise ProfileError(f"'{folder}' is not a training run: it has no {PROJECT_FILE}; give "
                           "the folder that 'cnnstudio train --out' or the window's training "
                           "wrote")
    if not (folder / MODEL_FILE).exists():
        raise ProfileError(f"{folder} has no {MODEL_FILE} yet: the run has not finished an "
                           "epoch; time it after the first epoch")
    _check_setting(batch, runs, threads)
    return profile_loaded(load_run(folder), batch=batch, runs=runs, threads=threads,
                          progress=progress, time_limit_s=time_limit_s)


__all__ = ["COLUMNS", "DEFAULT_RUNS", "MIN_RUNS", "BlockTime", "LatencyProfile", "ProfileError",
           "format_ms", "profile_loaded", "profile_model", "profile_run"]
