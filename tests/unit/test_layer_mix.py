"""``model.head.layer_mix``: each layer of a layered head reads its own learned weighting of the encoder's hidden
states (issue 28: the knowledge layer may want other encoder layers than the skill layer)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from layered_parts import LAYERS, TAGS, assert_saved_and_loaded, layered_inputs
from nerforge.modeling.head import HeadSpec


def _weights(model: torch.nn.Module) -> torch.Tensor:
    from nerforge.modeling.blocks import MIX_SCALE

    return torch.softmax(model.layer_mix.detach() * MIX_SCALE, dim=-1)


def test_layer_mix_is_a_layered_heads_option_saved_only_when_set() -> None:
    assert "layer_mix" not in HeadSpec(crf=True, layers=LAYERS).to_dict()  # models saved before it had none
    assert HeadSpec(crf=True, layers=LAYERS, layer_mix=True).to_dict()["layer_mix"] is True
    with pytest.raises(ValueError, match="layered head"):
        HeadSpec(span=True, layer_mix=True)


def test_each_layer_reads_its_own_mix_of_the_encoder_states(tiny_encoder: Path) -> None:
    """A new mix leans on the last layer; the logits are each layer's weighted sum of the hidden states through its
    slice of the classifier; changing the skill layer's mix changes the skill logits and leaves the knowledge ones
    (a mix that is shared, or not applied, fails here)."""
    from nerforge.modeling.blocks import MIX_SCALE
    from nerforge.modeling.model import build_model

    model = build_model(HeadSpec(crf=True, layers=LAYERS, layer_mix=True), str(tiny_encoder), TAGS)
    model.eval()
    depth = model.encoder.config.num_hidden_layers
    weights = _weights(model)
    assert weights.shape == (2, depth + 1)
    assert torch.all(weights[:, -1] > 0.5) and torch.all(weights[:, -1] == weights.max(dim=-1).values)
    batch = layered_inputs()
    with torch.no_grad():
        states = model.encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                               output_hidden_states=True).hidden_states  # fmt: skip
        expected = []
        for layer in range(2):
            mixed = sum(w * s for w, s in zip(weights[layer], states, strict=True))
            rows = slice(3 * layer, 3 * layer + 3)
            expected.append(
                torch.nn.functional.linear(mixed, model.classifier.weight[rows], model.classifier.bias[rows])
            )
        before = model(**batch).logits
        assert torch.allclose(before, torch.cat(expected, dim=-1), atol=1e-5)
        model.layer_mix[0] = torch.zeros(depth + 1)
        model.layer_mix[0, 0] = 10.0 / MIX_SCALE  # the skill layer now reads the embeddings
        after = model(**batch).logits
    assert not torch.allclose(after[..., :3], before[..., :3])
    assert torch.allclose(after[..., 3:], before[..., 3:])


def test_the_mix_moves_at_a_fine_tuning_learning_rate(tiny_encoder: Path) -> None:
    """One AdamW step at 1e-4 moves each layer's mixing weights by a visible amount, each by its own layer's loss
    (about 1e-3 here; a plain softmax over the parameter would move them by about 2e-5)."""
    from nerforge.modeling.model import build_model

    model = build_model(HeadSpec(crf=True, layers=LAYERS, layer_mix=True), str(tiny_encoder), TAGS)
    model.train()
    start = _weights(model)
    optimizer = torch.optim.AdamW([model.layer_mix], lr=1e-4, weight_decay=0.0)
    model(**layered_inputs()).loss.backward()
    grad = model.layer_mix.grad
    assert grad is not None and float(grad[0].abs().sum()) > 0 and float(grad[1].abs().sum()) > 0
    assert not torch.allclose(grad[0], grad[1])
    optimizer.step()
    moved = (_weights(model) - start).abs().max(dim=-1).values
    assert torch.all(moved > 3e-4)


def test_the_mix_is_saved_and_loaded_with_the_model(tiny_encoder: Path, tmp_path: Path) -> None:
    from nerforge.modeling.model import build_model

    spec = HeadSpec(crf=True, layers=LAYERS, layer_mix=True)
    model = build_model(spec, str(tiny_encoder), TAGS)
    with torch.no_grad():
        model.layer_mix.normal_(std=0.05)
    loaded = assert_saved_and_loaded(model, spec, tmp_path)
    assert torch.equal(loaded.layer_mix, model.layer_mix)
