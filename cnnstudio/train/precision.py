"""The arithmetic of a training run: the project's `precision` setting resolved for a device.

    auto     bf16 autocast on a CUDA GPU (tensor cores; bf16 keeps float32's range, so no loss
             scaling), float32 on the CPU and Apple's MPS device
    float32  no autocast; on a CUDA GPU also no TF32 (cuDNN runs float32 convolutions in TF32,
             a 10-bit mantissa, unless told otherwise), so that float32 means float32
    float16  autocast to float16 with a GradScaler (loss scaling); CUDA GPUs only: refused
             elsewhere, since CPU float16 is slow and MPS has no loss scaling here
    bf16     autocast to bfloat16 on a CUDA GPU or, through torch's CPU autocast, on the CPU
             (slower than float32 on most CPUs); refused on MPS

Autocast covers the forward pass and the loss only (torch.amp's rule); the backward pass runs in
the dtypes autocast chose. A refused combination raises PrecisionError with the fix.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, ContextManager, Iterator

import torch

from cnnstudio.core.settings import PRECISIONS

AUTOCAST_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16}


class PrecisionError(ValueError):
    """A precision this device cannot train in; the message says what to choose instead."""


@contextlib.contextmanager
def strict_float32() -> Iterator[None]:
    """CUDA convolutions and matrix products in full float32 (TF32 off), restored afterwards."""
    switches = [torch.backends.cudnn, torch.backends.cuda.matmul]
    turned_off = [s for s in switches if s.allow_tf32]
    for switch in turned_off:
        switch.allow_tf32 = False
    try:
        yield
    finally:
        for switch in turned_off:
            switch.allow_tf32 = True


@dataclass(frozen=True)
class Precision:
    """The precision asked for (a PRECISIONS value) and what it means on this device."""

    requested: str
    resolved: str  # "float32", "float16" or "bfloat16"
    device_type: str

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return AUTOCAST_DTYPES.get(self.resolved)

    def describe(self) -> str:
        """'auto → bfloat16'; just 'float32' when nothing was resolved."""
        if self.requested == self.resolved:
            return self.resolved
        return f"{self.requested} → {self.resolved}"

    def record(self) -> dict[str, str]:
        """What a run folder keeps: the setting and what it meant on the run's device."""
        return {"requested": self.requested, "resolved": self.resolved}

    def forward(self) -> ContextManager[Any]:
        """Around the forward pass and the loss: autocast, or strict float32 on CUDA."""
        dtype = self.autocast_dtype
        if dtype is not None:
            return torch.autocast(device_type=self.device_type, dtype=dtype)
        return self.backward()

    def backward(self) -> ContextManager[Any]:
        """Around the backward pass and the optimiser step (never inside autocast)."""
        if self.resolved == "float32" and self.device_type == "cuda":
            return strict_float32()
        return contextlib.nullcontext()

    def grad_scaler(self) -> torch.amp.GradScaler | None:
        """Loss scaling for float16, whose small range would flush small gradients to zero."""
        return torch.amp.GradScaler(self.device_type) if self.resolved == "float16" else None

    def note(self) -> str | None:
        """A line for the run's notes when training does not run in float32."""
        if self.resolved == "float32":
            return None
        how = "autocast with loss scaling" if self.resolved == "float16" else "autocast"
        slow = "; on the CPU it is usually slower than float32" if self.device_type == "cpu" else ""
        return (f"mixed precision {self.describe()} ({how}){slow}; precision float32 trains "
                "in full float32")


def resolve_precision(requested: str, device: torch.device) -> Precision:
    """What `requested` means on `device`; raises PrecisionError for an unknown value or a
    combination that device cannot run."""
    if requested not in PRECISIONS:
        raise PrecisionError(f"unknown precision {requested!r}; use {', '.join(PRECISIONS)}")
    kind = device.type
    if requested == "auto":
        resolved = "bfloat16" if kind == "cuda" else "float32"
    elif requested == "float16" and kind != "cuda":
        other = "auto, float32 or bf16" if kind == "cpu" else "auto or float32"
        raise PrecisionError(f"precision float16 needs a CUDA GPU and this run is on {kind}: "
                             f"choose precision {other}")
    elif requested == "bf16" and kind not in ("cuda", "cpu"):
        raise PrecisionError(f"precision bf16 runs on a CUDA GPU or the CPU, not on {kind}: "
                             "choose precision auto or float32, or device cpu")
    else:
        resolved = "bfloat16" if requested == "bf16" else requested
    return Precision(requested, resolved, kind)
