"""Where the time of a training step goes: the record an epoch reports, and what it means.

The engine times every k-th step in phases (step_timing.py); this module holds only the
result and its plain-language reading, with no torch, so the window can show it before torch
is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass

from cnnstudio.core.summary import format_bytes

# data: gather the batch, scale, augment, normalise; forward: the network and the loss;
# backward: the gradients; optimiser: the step and the schedule; other: the engine's own
# bookkeeping (loss and accuracy sums)
PHASES = ("data", "forward", "backward", "optimiser", "other")
PHASE_NAMES = {"data": "data preparation", "forward": "forward", "backward": "backward",
               "optimiser": "optimiser", "other": "other"}
DOMINANT = 0.5  # a share that says where the time goes
SMALL_GPU_STEP_S = 0.004  # a CUDA step shorter than this is mostly kernel launches


def percent(share: float) -> str:
    """0.6 -> '60 %'."""
    return f"{share * 100:.0f} %"


@dataclass(frozen=True)
class StepBreakdown:
    seconds: dict[str, float]  # phase -> mean seconds per sampled step (PHASES)
    sampled_steps: int
    images_per_s: float
    device: str  # "cpu", "cuda:0", "mps"
    augmented: bool = False
    streamed: bool = False  # images decoded by DataLoader workers, not resident
    memory_bytes: int | None = None  # CUDA: in use at the end of the epoch
    peak_memory_bytes: int | None = None  # CUDA: the most in use since the run started

    @property
    def step_seconds(self) -> float:
        return sum(self.seconds.values())

    def shares(self) -> dict[str, float]:
        """Each phase's share of a sampled step, summing to 1 (all 0 when nothing was timed)."""
        total = self.step_seconds
        return {phase: (self.seconds.get(phase, 0.0) / total if total > 0 else 0.0)
                for phase in PHASES}

    def describe(self) -> str:
        """'data 12 %, forward 30 %, backward 45 %, optimiser 10 %, other 3 %'."""
        shares = self.shares()
        return ", ".join(f"{phase} {percent(shares[phase])}" for phase in PHASES)

    def summary(self) -> str:
        """'a step 25.9 ms: data 1 %, forward 40 %, ...; memory: not measured on the CPU'."""
        return (f"a step {self.step_seconds * 1000:.1f} ms: {self.describe()}; "
                f"{self.memory_text()}")

    def memory_text(self) -> str:
        if self.memory_bytes is None:
            where = "the CPU" if self.device.startswith("cpu") else self.device
            return f"memory: not measured on {where}"
        peak = (f", peak {format_bytes(self.peak_memory_bytes)}"
                if self.peak_memory_bytes is not None else "")
        return f"GPU memory {format_bytes(self.memory_bytes)} in use{peak}"

    @property
    def dominant(self) -> str:
        """What the time goes to, when one thing does: "reading", "augmentation", "data",
        "launches" (a GPU too big for the network), "optimiser", "layers"; else ''."""
        shares = self.shares()
        data = shares["data"]
        if data >= DOMINANT:
            return "reading" if self.streamed else "augmentation" if self.augmented else "data"
        if self.device.startswith("cuda") and 0 < self.step_seconds < SMALL_GPU_STEP_S:
            return "launches"
        if shares["optimiser"] >= DOMINANT * 0.7:
            return "optimiser"
        return "layers" if shares["forward"] + shares["backward"] >= 0.7 else ""

    def hint(self) -> str:
        """One plain sentence when one part dominates the step ('' when none does)."""
        shares = self.shares()
        processor = ("the GPU" if self.device.startswith("cuda") else
                     "the device" if self.device == "mps" else "the CPU")
        data, network = percent(shares["data"]), percent(shares["forward"] + shares["backward"])
        hints = {
            "reading": f"reading the images takes {data} of each step: {processor} waits for "
                       "data; a dataset that fits in memory trains from memory instead",
            "augmentation": f"augmentation takes {data} of each step: the network waits for "
                            "its data; fewer augmentations (rotate and scale cost most) train "
                            "faster",
            "data": f"the network is small: most time ({data}) goes to preparing its data, so "
                    "a larger network would cost little more per step",
            "launches": f"the network is too small to fill this GPU (a step takes "
                        f"{self.step_seconds * 1000:.1f} ms, mostly launching operations): a "
                        "larger batch or graph capture helps",
            "optimiser": f"the optimiser step takes {percent(shares['optimiser'])} of each "
                         "step: the network has many weights for little arithmetic (large "
                         "Dense layers); a larger batch spreads that cost over more images",
            "layers": f"the layers themselves take {network} of each step (forward "
                      f"{percent(shares['forward'])}, backward {percent(shares['backward'])}): "
                      f"the data keeps up, and {processor} spends its time on the network",
        }
        return hints.get(self.dominant, "")
