"""A two-layer head (skill, knowledge) and one batch for it, shared by the layered-head option tests."""

from __future__ import annotations

import torch

LAYERS = (("skill", ("O", "B-Skill", "I-Skill")), ("knowledge", ("O", "B-Know", "I-Know")))
TAGS = [t for _, tags in LAYERS for t in tags]


def layered_inputs() -> dict[str, torch.Tensor]:
    """Four pieces, the first unlabelled; the three words tagged (B-Skill, O), (I-Skill, B-Know), (O, I-Know)."""
    from nerforge.modeling.layered import combine_ids

    ids = torch.tensor([[5, 6, 7, 8]])
    labels = torch.tensor([[-100] + [combine_ids(list(w), [3, 3]) for w in ((1, 0), (2, 1), (0, 2))]])
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}


def assert_saved_and_loaded(model: torch.nn.Module, spec: object, directory: object) -> torch.nn.Module:
    """Save ``model`` (head ``spec``) to ``directory``, load it back and check it gives the same logits, and that the
    directory is refused under the plain two-layer head (the option is part of what the weights describe)."""
    import pytest

    from nerforge.modeling.head import HeadSpec
    from nerforge.modeling.model import load_head_model

    model.save_pretrained(directory, safe_serialization=True)
    loaded = load_head_model(directory, spec, TAGS)  # type: ignore[arg-type]
    model.eval()
    batch = layered_inputs()
    assert torch.allclose(model(**batch).logits, loaded(**batch).logits, atol=1e-6)
    with pytest.raises(Exception, match="does not describe the head"):
        load_head_model(directory, HeadSpec(crf=True, layers=LAYERS), TAGS)  # type: ignore[arg-type]
    return loaded
