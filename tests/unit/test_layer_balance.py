"""``model.head.balance_layers``: each layer's loss weighs the same in a layered head's gradient."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nerforge.modeling.head import HeadSpec
from nerforge.modeling.model import balanced_sum


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0.01, 100.0), min_size=2, max_size=4))
def test_every_layer_weighs_the_same_once_the_sizes_are_known(values: list[float]) -> None:
    sizes = torch.zeros(len(values))
    losses = [torch.tensor(v, requires_grad=True) for v in values]
    total = balanced_sum(losses, sizes)
    total.backward()
    contributions = [float(v.grad) * value for v, value in zip(losses, values, strict=True)]
    assert contributions == pytest.approx([contributions[0]] * len(values), rel=1e-4)  # each layer's share equal
    assert float(total.detach()) == pytest.approx(sum(values), rel=1e-4)  # the scale of the plain sum
    assert all(v.grad is not None and float(v.grad) > 0 for v in losses)


def test_the_sizes_follow_the_losses_slowly() -> None:
    sizes = torch.zeros(2)
    balanced_sum([torch.tensor(10.0), torch.tensor(1.0)], sizes)
    balanced_sum([torch.tensor(0.0), torch.tensor(1.0)], sizes)
    assert sizes.tolist() == pytest.approx([9.0, 1.0])  # a running mean (momentum 0.9), not the last step


def test_balance_layers_is_a_layered_heads_option_saved_only_when_set() -> None:
    assert "balance_layers" not in HeadSpec().to_dict()  # models saved before it had no such key
    assert HeadSpec(balance_layers=True).to_dict()["balance_layers"] is True
    with pytest.raises(ValueError, match="layered head"):
        HeadSpec(span=True, balance_layers=True)


def test_a_layered_model_trains_on_the_balanced_loss_and_reports_the_plain_sum(tiny_encoder) -> None:
    """In training the layered head's loss is :func:`balanced_sum` of its layers' losses; in evaluation (dev loss)
    it stays their plain sum, so dev losses compare across settings."""
    from nerforge.modeling.layered import combine_ids
    from nerforge.modeling.model import build_model

    layers = (("skill", ("O", "B-Skill", "I-Skill")), ("knowledge", ("O", "B-Know", "I-Know")))
    tags = [t for _, t in layers for t in t]
    plain = build_model(HeadSpec(crf=True, layers=layers), str(tiny_encoder), tags)
    balanced = build_model(HeadSpec(crf=True, layers=layers, balance_layers=True), str(tiny_encoder), tags)
    balanced.load_state_dict(plain.state_dict())
    ids = torch.tensor([[5, 6, 7, 8]])
    labels = torch.tensor([[-100] + [combine_ids(list(w), [3, 3]) for w in ((1, 0), (2, 1), (0, 2))]])
    torch.manual_seed(0)
    plain.eval()
    balanced.eval()
    summed = plain(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels).loss
    assert float(
        balanced(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels).loss.detach()
    ) == pytest.approx(float(summed.detach()))
    balanced.train()
    sizes = balanced._layer_loss_sizes  # noqa: SLF001 - the running sizes the balance keeps
    assert not sizes.any()
    first = balanced(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels).loss
    assert (sizes > 0).all() and float(first.detach()) == pytest.approx(
        float(sizes.sum()), rel=1e-4
    )  # sizes = the losses
    before = sizes.clone()
    second = balanced(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels).loss
    assert not torch.equal(before, sizes)  # they follow the losses (dropout makes each step's a little different)
    assert second.requires_grad
    assert "_layer_loss_sizes" not in balanced.state_dict()  # training state, not saved with the weights
