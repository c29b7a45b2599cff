"""Class weights: inverse square-root frequency with mean 1, and the weighted loss the Trainer calls."""

from __future__ import annotations

import math

import pytest
import torch

from nerforge.alignment import IGNORE_INDEX, EncodedWindow, Window
from nerforge.modeling.training import WeightedTokenLoss, balanced_weights, loss_function, tag_counts


def test_balanced_weights_are_inverse_sqrt_frequency_with_mean_one() -> None:
    counts = [900, 50, 50, 0]
    w = balanced_weights(counts)
    assert w[1] / w[0] == pytest.approx(math.sqrt(900 / 50))
    assert w[3] / w[0] == pytest.approx(math.sqrt(900))  # unseen counts as one
    assert sum(c * x for c, x in zip(counts, w, strict=True)) / sum(counts) == pytest.approx(1.0)
    assert balanced_weights([0, 0]) == [1.0, 1.0]


def test_tag_counts_count_labelled_positions() -> None:
    enc = [
        EncodedWindow(Window(0, 0, 2, 0, 2), [101, 5, 6, 102], {0: 1, 1: 2}, [IGNORE_INDEX, 0, 2, IGNORE_INDEX]),
        EncodedWindow(Window(1, 0, 1, 0, 1), [101, 7, 102], {0: 1}, [IGNORE_INDEX, 0, IGNORE_INDEX]),
    ]
    assert tag_counts(enc, 3) == [2, 0, 1]
    assert loss_function(None, enc, ["O", "B-X", "I-X"]) is None
    assert isinstance(loss_function("balanced", enc, ["O", "B-X", "I-X"]), WeightedTokenLoss)


def test_weighted_loss_matches_a_hand_computed_one() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 3)
    labels = torch.tensor([[IGNORE_INDEX, 0, 2, IGNORE_INDEX], [1, IGNORE_INDEX, 0, 0]])
    weights = [0.5, 2.0, 3.0]
    loss = WeightedTokenLoss(weights)({"logits": logits}, labels)
    logp = torch.log_softmax(logits, dim=-1)
    terms = [-weights[y] * logp[b, t, y] for b in range(2) for t in range(4) if (y := int(labels[b, t])) >= 0]
    assert float(loss) == pytest.approx(float(sum(terms) / len(terms)), rel=1e-5)
    across = WeightedTokenLoss(weights)({"logits": logits}, labels, num_items_in_batch=torch.tensor(10))
    assert float(across) == pytest.approx(float(sum(terms) / 10), rel=1e-5)
    uniform = WeightedTokenLoss([1.0, 1.0, 1.0])({"logits": logits}, labels)
    plain = torch.nn.functional.cross_entropy(logits.view(-1, 3), labels.view(-1), ignore_index=IGNORE_INDEX)
    assert float(uniform) == pytest.approx(float(plain), rel=1e-5)
