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
