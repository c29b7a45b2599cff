"""``model.head.layer_adapter``: each layer of a layered head reads the shared encoder output through its own residual
block before its tagger (issue 28: room for a layer to specialise)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from layered_parts import LAYERS, TAGS, assert_saved_and_loaded, layered_inputs
from nerforge.modeling.head import HeadSpec


def test_layer_adapter_is_a_layered_heads_option_saved_only_when_set() -> None:
    assert "layer_adapter" not in HeadSpec(crf=True, layers=LAYERS).to_dict()  # models saved before it had none
    assert HeadSpec(crf=True, layers=LAYERS, layer_adapter=32).to_dict()["layer_adapter"] == 32
    with pytest.raises(ValueError, match="layered head"):
        HeadSpec(span=True, layer_adapter=32)
    with pytest.raises(ValueError):
        HeadSpec(layers=LAYERS, layer_adapter=-1)


def test_a_new_adapter_is_the_identity_and_each_layer_learns_its_own(tiny_encoder: Path) -> None:
    """At the start the adapted head scores exactly as the shared one (``up`` is zero); one training step moves each
    layer's adapter, and only by its own layer's loss: an adapter that is not applied, or is shared, fails here."""
    from nerforge.modeling.model import build_model

    plain = build_model(HeadSpec(crf=True, layers=LAYERS), str(tiny_encoder), TAGS)
    adapted = build_model(HeadSpec(crf=True, layers=LAYERS, layer_adapter=8), str(tiny_encoder), TAGS)
    missing, unexpected = adapted.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and missing and all(k.startswith("layer_adapters.") for k in missing)
    plain.eval()
    adapted.eval()
    batch = layered_inputs()
    assert torch.allclose(plain(**batch).logits, adapted(**batch).logits)
    adapters = adapted.layer_adapters
    assert adapters is not None and len(adapters) == 2 and adapters[0] is not adapters[1]
    adapted.train()
    adapted(**batch).loss.backward()
    grads = [a.up.weight.grad for a in adapters]
    assert all(g is not None and float(g.abs().sum()) > 0 for g in grads)
    assert not torch.allclose(grads[0], grads[1])
    # the knowledge logits do not depend on the skill adapter
    adapted.zero_grad()
    adapted.eval()
    with torch.no_grad():
        adapters[0].up.weight.normal_()
    after = adapted(**batch).logits
    before = plain(**batch).logits
    assert not torch.allclose(after[..., :3], before[..., :3])
    assert torch.allclose(after[..., 3:], before[..., 3:])


def test_adapters_are_saved_and_loaded_with_the_model(tiny_encoder: Path, tmp_path: Path) -> None:
    from nerforge.modeling.model import build_model

    spec = HeadSpec(crf=True, layers=LAYERS, layer_adapter=8)
    model = build_model(spec, str(tiny_encoder), TAGS)
    with torch.no_grad():
        for adapter in model.layer_adapters or ():
            adapter.up.weight.normal_()
    assert_saved_and_loaded(model, spec, tmp_path)
