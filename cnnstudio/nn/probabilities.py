"""Class probabilities from a network's output, whatever that output already is.

The torch side of `cnnstudio.core.outputs`: softmax for plain class scores, nothing for an output
that a softmax feeds, [1 − p, p] for a single sigmoid unit. The training loss, the inspection
views and every export call these functions, so softmax is applied exactly once. Both trace
and export to ONNX: `kind` is a Python string, fixed when the graph is recorded.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from cnnstudio.core.outputs import BINARY, KINDS, LOGITS, PROBABILITIES

# log(0) is -inf: probabilities are floored here before the log (e^-27.6), as the loss always was
MIN_PROBABILITY = 1e-12


def class_probabilities(values: Tensor, kind: str) -> Tensor:
    """N×K float32 class probabilities (each row sums to 1) of a main output of this kind."""
    _check(kind)
    values = values.float()
    if kind == PROBABILITIES:
        return values
    if kind == BINARY:
        p = values[:, :1]
        return torch.cat([1 - p, p], dim=1)
    return torch.softmax(values, dim=1)


def log_class_probabilities(values: Tensor, kind: str) -> Tensor:
    """log of class_probabilities, for the loss: log_softmax for scores (exact), else the log
    of the probabilities floored at MIN_PROBABILITY."""
    _check(kind)
    if kind == LOGITS:
        return F.log_softmax(values.float(), dim=1)
    return torch.log(class_probabilities(values, kind).clamp_min(MIN_PROBABILITY))


def predicted_classes(values: Tensor, kind: str) -> Tensor:
    """The most probable class of each row (int64), without computing the probabilities: the
    argmax of scores and probabilities alike, p > 0.5 for one sigmoid unit."""
    _check(kind)
    if kind == BINARY:
        return (values[:, 0] > 0.5).long()
    return values.argmax(dim=1)


def _check(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown output kind {kind!r}; expected one of {', '.join(KINDS)}")


__all__ = ["MIN_PROBABILITY", "class_probabilities", "log_class_probabilities",
           "predicted_classes"]
