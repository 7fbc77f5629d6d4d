"""nn.probabilities: a main output of each kind turned into class probabilities exactly once."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cnnstudio.core.outputs import BINARY, KINDS, LOGITS, PROBABILITIES
from cnnstudio.nn.probabilities import (
    MIN_PROBABILITY,
    class_probabilities,
    log_class_probabilities,
    predicted_classes,
)

SCORES = torch.tensor([[2.0, -1.0, 0.5], [0.0, 0.0, 30.0], [-5.0, 4.0, 4.0]])


def test_scores_get_one_softmax():
    p = class_probabilities(SCORES, LOGITS)
    torch.testing.assert_close(p, torch.softmax(SCORES, dim=1))
    torch.testing.assert_close(log_class_probabilities(SCORES, LOGITS),
                               F.log_softmax(SCORES, dim=1))


def test_probabilities_are_passed_through_untouched():
    p = torch.softmax(SCORES, dim=1)
    assert torch.equal(class_probabilities(p, PROBABILITIES), p)  # no second softmax
    log_p = log_class_probabilities(p, PROBABILITIES)
    moderate = [0, 2]  # row 1 has a probability of e^-30, below the floor
    torch.testing.assert_close(log_p[moderate], F.log_softmax(SCORES, dim=1)[moderate],
                               atol=1e-6, rtol=0)
    assert log_p[1, 0] == pytest.approx(torch.log(torch.tensor(MIN_PROBABILITY)).item())


def test_one_sigmoid_unit_gives_two_class_probabilities():
    p = torch.tensor([[0.2], [0.9], [0.5]])
    probabilities = class_probabilities(p, BINARY)
    torch.testing.assert_close(probabilities, torch.tensor([[0.8, 0.2], [0.1, 0.9], [0.5, 0.5]]))
    torch.testing.assert_close(log_class_probabilities(p, BINARY), probabilities.log())
    assert predicted_classes(p, BINARY).tolist() == [0, 1, 0]


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_gives_rows_that_sum_to_one_and_agree_with_the_argmax(kind):
    values = {LOGITS: SCORES, PROBABILITIES: torch.softmax(SCORES, 1),
              BINARY: torch.sigmoid(SCORES[:, :1])}[kind]
    p = class_probabilities(values.double(), kind)
    assert p.dtype == torch.float32
    torch.testing.assert_close(p.sum(dim=1), torch.ones(len(p)))
    assert torch.equal(predicted_classes(values, kind), p.argmax(dim=1))


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown output kind 'softmax'"):
        class_probabilities(SCORES, "softmax")
