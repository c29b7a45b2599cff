"""A layered head's labels: every layer's tag id of a word in one integer, and back.

A layered model (one encoder, one tagger per layer of entities) trains on windows whose labels are single integers,
as a flat model's are, so that windows, padding and batching stay one code path: the tag ids ``(i_1, ..., i_L)`` of a
word in layers of ``(n_1, ..., n_L)`` tags are the mixed-radix number ``i_1 + n_1 * (i_2 + n_2 * (...))``; ignored
positions stay ``IGNORE_INDEX`` (-100) in every layer.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from nerforge.alignment import IGNORE_INDEX


def combine_ids(ids: Sequence[int], sizes: Sequence[int]) -> int:
    """One integer for a word's tag id in each layer.

    >>> combine_ids([2, 1], [3, 5])
    5
    """
    if len(ids) != len(sizes) or any(not 0 <= i < n for i, n in zip(ids, sizes, strict=True)):
        raise ValueError(f"tag ids {list(ids)} do not fit layers of {list(sizes)} tags")
    out = 0
    for i, n in zip(reversed(ids), reversed(sizes), strict=True):
        out = out * n + i
    return out


def split_ids(labels: torch.Tensor, sizes: Sequence[int]) -> list[torch.Tensor]:
    """Each layer's tag ids from combined labels (:func:`combine_ids`), ``IGNORE_INDEX`` kept."""
    ignored = labels == IGNORE_INDEX
    rest = labels.clamp(min=0)
    out = []
    for n in sizes:
        out.append((rest % n).masked_fill(ignored, IGNORE_INDEX))
        rest = torch.div(rest, n, rounding_mode="floor")
    return out
