"""``model.head.own_top_layers``: in a layered head, each layer after the first reads its own copy of the encoder's
top transformer layers (issue 28: the knowledge layer of SkillSpan trails a flat model trained for it alone)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from encoder_families import FAMILIES
from layered_parts import LAYERS, TAGS, assert_saved_and_loaded, layered_inputs
from nerforge.errors import ModelError
from nerforge.modeling.head import HeadSpec


def _spec(count: int = 1) -> HeadSpec:
    return HeadSpec(crf=True, layers=LAYERS, own_top_layers=count)


def test_own_top_layers_is_a_layered_heads_option_saved_only_when_set() -> None:
    assert "own_top_layers" not in HeadSpec(crf=True, layers=LAYERS).to_dict()  # models saved before it had none
    assert _spec(2).to_dict()["own_top_layers"] == 2
    with pytest.raises(ValueError, match="layered head"):
        HeadSpec(span=True, own_top_layers=1)
    with pytest.raises(ValueError, match="set one of them"):
        HeadSpec(crf=True, layers=LAYERS, own_top_layers=1, layer_mix=True)
    with pytest.raises(ValueError):
        HeadSpec(crf=True, layers=LAYERS, own_top_layers=-1)


def _logits_of_the_shared_encoder(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    hidden = model.encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    return torch.nn.functional.linear(hidden, model.classifier.weight, model.classifier.bias)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_the_copies_start_as_the_top_layers_and_serve_the_later_layer_alone(family: str, tmp_path: Path) -> None:
    """Every encoder family users bring: built for fine-tuning, the copies are the pretrained top layers, so both
    layers' logits are those of the shared encoder's output; changing a copy changes the knowledge logits and leaves
    the skill ones (copies that are not applied, or applied to every layer, fail here)."""
    from nerforge.modeling.model import build_model

    encoder = FAMILIES[family](tmp_path / family)
    model = build_model(_spec(1), str(encoder), TAGS).eval()
    stack_size = model.encoder.config.num_hidden_layers
    copies = model.own_tops.copies
    assert len(copies) == 1 and len(copies[0]) == 1 and model.own_tops.first == stack_size - 1
    batch = layered_inputs()
    with torch.no_grad():
        before = model(**batch).logits
        assert torch.allclose(before, _logits_of_the_shared_encoder(model, batch), atol=1e-5)
        for parameter in model.own_tops.copies[0].parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
        after = model(**batch).logits
    assert torch.allclose(after[..., :3], before[..., :3], atol=1e-6)
    assert not torch.allclose(after[..., 3:], before[..., 3:], atol=1e-4)


def test_the_knowledge_loss_trains_the_copy_not_the_shared_top_layer(tiny_encoder: Path) -> None:
    """The gradient of the later layer's logits reaches its copy and the shared layers below it, never the shared
    stack's top layer, which only the first layer reads."""
    from nerforge.modeling.model import build_model

    model = build_model(_spec(1), str(tiny_encoder), TAGS).train()
    model(**{k: v for k, v in layered_inputs().items() if k != "labels"}).logits[..., 3:].sum().backward()
    stack = model.encoder.encoder.layer
    assert all(p.grad is None or float(p.grad.abs().sum()) == 0 for p in stack[-1].parameters())
    assert all(float(p.grad.abs().sum()) > 0 for p in stack[0].attention.parameters())
    assert all(float(p.grad.abs().sum()) > 0 for p in model.own_tops.copies[0][0].attention.parameters())


def test_the_copies_are_saved_and_loaded_with_the_model(tiny_encoder: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from nerforge.modeling.model import build_model

    spec = _spec(2)
    model = build_model(spec, str(tiny_encoder), TAGS)
    with torch.no_grad():
        for parameter in model.own_tops.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    assert_saved_and_loaded(model, spec, tmp_path)
    assert any(k.startswith("own_tops.copies.0.1.") for k in load_file(str(tmp_path / "model.safetensors")))


def test_more_layers_than_the_encoder_has_is_one_line(tiny_encoder: Path) -> None:
    from nerforge.modeling.model import build_model

    with pytest.raises(ModelError, match=r"own_top_layers = 3, but the encoder has 2 transformer layers") as info:
        build_model(_spec(3), str(tiny_encoder), TAGS)
    assert "\n" not in str(info.value)


def test_an_encoder_normed_after_its_layers_is_refused_when_built(tmp_path: Path) -> None:
    """ModernBERT norms the stack's output (``final_norm``): a copy's output would reach the tagger unnormed, so the
    option is refused when the model is built, in one line."""
    from transformers import AutoTokenizer, ModernBertConfig, ModernBertModel

    from nerforge.model_dir import resolve_model
    from nerforge.modeling.model import build_model

    tokenizer = AutoTokenizer.from_pretrained(resolve_model("default"))
    config = ModernBertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                              num_attention_heads=2, intermediate_size=64, max_position_embeddings=64,
                              pad_token_id=0, bos_token_id=101, eos_token_id=102, cls_token_id=101,
                              sep_token_id=102)  # fmt: skip
    ModernBertModel(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    with pytest.raises(ModelError, match="normed or projected after the layers") as info:
        build_model(_spec(1), str(tmp_path), TAGS)
    assert "\n" not in str(info.value)


def test_another_thread_tagging_meanwhile_does_not_feed_its_inputs_to_the_copies(tiny_encoder: Path) -> None:
    """One model, two threads: while this thread's forward pass is between the shared stack's top layer and the
    copies, another thread runs a forward pass on other words. The copies must still read this thread's inputs
    (the recording hooks sit on shared modules; recording every thread's calls fed the other's to the copies)."""
    import threading

    from nerforge.modeling.model import build_model

    model = build_model(_spec(1), str(tiny_encoder), TAGS).eval()
    with torch.no_grad():
        for parameter in model.own_tops.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    mine = {k: v for k, v in layered_inputs().items() if k != "labels"}
    other = {"input_ids": torch.tensor([[9, 10, 11, 12]]), "attention_mask": torch.ones(1, 4, dtype=torch.long)}
    with torch.no_grad():
        alone = model(**mine).logits
    top = model.encoder.encoder.layer[-1]
    state = {"nested": False}

    def meanwhile(_module: torch.nn.Module, _args: object, _output: object) -> None:
        if not state["nested"]:
            state["nested"] = True
            worker = threading.Thread(target=lambda: model(**other))
            worker.start()
            worker.join()

    hook = top.register_forward_hook(meanwhile)
    try:
        with torch.no_grad():
            together = model(**mine).logits
    finally:
        hook.remove()
    assert state["nested"]
    assert torch.allclose(together, alone, atol=1e-6)
