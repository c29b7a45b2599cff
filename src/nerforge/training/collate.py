"""Batching: dynamic padding, and length-grouped shuffling that is a pure function of (seed, epoch).

The grouped order depends only on the seed and the epoch (never on the global RNG), so a run resumed from a
checkpoint sees exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch
from transformers.trainer_pt_utils import get_length_grouped_indices

from nerforge.alignment import IGNORE_INDEX


@dataclass(frozen=True)
class PaddingCollator:
    """Pad ``input_ids`` (with ``pad_token_id``), ``labels`` (with -100) and any other input a head adds to its
    items (with 0) to the longest item; add the mask. An input of several values per position comes back as
    ``(batch, positions, values)``.

    Padding goes on the right, so positions of real tokens are the same as in the unpadded window.
    """

    pad_token_id: int
    pad_to_multiple_of: int | None = None

    def __call__(self, features: Sequence[Mapping[str, Sequence[int]]]) -> dict[str, torch.Tensor]:
        longest = max(len(f["input_ids"]) for f in features)
        if self.pad_to_multiple_of:
            m = self.pad_to_multiple_of
            longest = (longest + m - 1) // m * m
        ids = torch.full((len(features), longest), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(features), longest), dtype=torch.long)
        for row, f in enumerate(features):
            n = len(f["input_ids"])
            ids[row, :n] = torch.tensor(f["input_ids"], dtype=torch.long)
            mask[row, :n] = 1
        batch = {"input_ids": ids, "attention_mask": mask}
        for key in features[0]:
            if key != "input_ids":
                batch[key] = _pad(features, key, longest, IGNORE_INDEX if key == "labels" else 0)
        return batch


def _pad(features: Sequence[Mapping[str, Sequence[int]]], key: str, longest: int, fill: int) -> torch.Tensor:
    """One input of every item padded to ``longest`` positions: ``(batch, longest)``, or ``(batch, longest, k)`` for
    an input of ``k`` values per position, flattened in the item (a span head's ``span_ends`` and labels)."""
    per_position = max(1, len(features[0][key]) // max(1, len(features[0]["input_ids"])))
    out = torch.full((len(features), longest * per_position), fill, dtype=torch.long)
    for row, f in enumerate(features):
        out[row, : len(f[key])] = torch.tensor(f[key], dtype=torch.long)
    return out.view(len(features), longest, per_position) if per_position > 1 else out


class EpochLengthGroupedSampler(torch.utils.data.Sampler[int]):
    """Shuffle, then sort by length inside mega-batches (transformers' grouping), seeded by ``seed + epoch``.

    The Trainer (through accelerate) calls :meth:`set_epoch` before each epoch.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int) -> None:
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(get_length_grouped_indices(self.lengths, self.batch_size, generator=generator))
