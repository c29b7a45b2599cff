"""``model.head.layer_weights``: a layered head's loss weight per layer, by name (a layer the shared encoder serves
worse than a model of its own may be given more of it)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from layered_parts import LAYERS, TAGS, layered_inputs
from nerforge.modeling.head import HeadSpec


def test_layer_weights_is_a_layered_heads_option_saved_only_when_set() -> None:
    assert "layer_weights" not in HeadSpec(crf=True, layers=LAYERS).to_dict()  # models saved before it had none
    assert HeadSpec(crf=True, layers=LAYERS, layer_weights={"knowledge": 2.0}).to_dict()["layer_weights"] == {
        "knowledge": 2.0
    }
    for wrong in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="positive number"):
            HeadSpec(layer_weights={"knowledge": wrong})
    with pytest.raises(ValueError, match="layered head"):
        HeadSpec(span=True, layer_weights={"knowledge": 2.0})
    with pytest.raises(ValueError, match=r"a table of layer names and loss weights, e.g. \{knowledge = 2.0\}"):
        HeadSpec(layer_weights=2)
    with pytest.raises(ValueError, match="set one of them"):
        HeadSpec(balance_layers=True, layer_weights={"knowledge": 2.0})


def test_a_spec_with_weights_is_hashable_and_saved_as_the_table_it_was_given_as() -> None:
    """Specs are compared and hashed (frozen); a dict field would make every spec unhashable, weights or not."""
    spec = HeadSpec(crf=True, layers=LAYERS, layer_weights={"knowledge": 2.0})
    assert hash(spec) != hash(HeadSpec(crf=True, layers=LAYERS)) and hash(HeadSpec()) == hash(HeadSpec())
    assert HeadSpec.from_dict(spec.to_dict(), "test") == spec
    assert spec.layer_weight("knowledge") == 2.0 and spec.layer_weight("skill") == 1.0


def test_weights_must_name_layers_of_the_data() -> None:
    HeadSpec(crf=True, layers=LAYERS, layer_weights={"knowledge": 2.0}).check_layer_weights()
    with pytest.raises(ValueError, match=r"names no layer of the data: knowlege \(the layers: skill, knowledge\)"):
        HeadSpec(crf=True, layers=LAYERS, layer_weights={"knowlege": 2.0}).check_layer_weights()
    with pytest.raises(ValueError, match="this data trains a model of one layer"):
        HeadSpec(crf=True, layer_weights={"knowledge": 2.0}).check_layer_weights()


def test_the_training_loss_weighs_the_named_layer_and_the_dev_loss_stays_the_plain_sum(tiny_encoder: Path) -> None:
    """With the dropout masks fixed, the training loss is ``skill + w * knowledge`` for the weight ``w`` the spec
    gives knowledge (solved from two weights, checked at a third); in evaluation it is the plain sum whatever the
    weights, so dev losses compare across settings. A weight that is ignored, or applied to the wrong layer, fails."""
    from nerforge.modeling.model import build_model

    model = build_model(HeadSpec(crf=True, layers=LAYERS), str(tiny_encoder), TAGS)
    batch = layered_inputs()
    plain_spec = model.spec

    def loss(weights: dict[str, float], *, training: bool) -> float:
        model.spec = plain_spec.model_copy(update={"layer_weights": tuple(weights.items())})
        model.train(training)
        torch.manual_seed(0)
        with torch.no_grad():
            return float(model(**batch).loss)

    one, two = loss({}, training=True), loss({"knowledge": 2.0}, training=True)
    knowledge = two - one
    skill = one - knowledge
    assert knowledge > 0.1 and skill > 0.1
    assert loss({"knowledge": 3.5}, training=True) == pytest.approx(skill + 3.5 * knowledge, rel=1e-4)
    assert loss({"skill": 0.5}, training=True) == pytest.approx(0.5 * skill + knowledge, rel=1e-4)
    assert loss({"knowledge": 3.5}, training=False) == pytest.approx(loss({}, training=False), rel=1e-6)
