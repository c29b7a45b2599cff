"""Sentence lengths in words and subwords against a model's maximum, and tokens that get no subword at all.

The checks are pure functions over a ``{word: number of pieces}`` table; :func:`piece_counts` builds that table
from a Hugging Face tokenizer by encoding each distinct word once. Words are encoded one by one with
``is_split_into_words=True``, which is what a word-aligned NER encoder does, so the counts equal those of the
whole sentence. A naive truncation keeps the first ``max_length`` positions (special tokens included) and loses
every entity that does not fit whole.
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nerforge.data.checks.common import WARNING, surface, token_ref
from nerforge.types import Example, Finding, Span

logger = logging.getLogger(__name__)

_BATCH = 4096
_NO_LIMIT = 1_000_000  # tokenizers without a limit report a huge model_max_length


@dataclass(frozen=True)
class LengthStats:
    """Sentence lengths of one file in one unit, and what truncating them at ``max_length`` would lose.

    Attributes:
        unit: ``"words"`` or ``"subwords"`` (subwords include the tokenizer's special tokens).
        max: the longest sentence.
        median: the median sentence length.
        p95: the 95th percentile.
        max_length: the limit checked, or ``None`` when no limit was checked.
        over_max: sentences longer than ``max_length``.
        entities_lost: entities that a truncation at ``max_length`` would cut or drop.
        words_lost: words past the limit.
    """

    unit: str
    max: int
    median: float
    p95: int
    max_length: int | None = None
    over_max: int = 0
    entities_lost: int = 0
    words_lost: int = 0


def tokenizer_limit(tokenizer: Any) -> int | None:
    """The tokenizer's ``model_max_length``, or ``None`` when it sets none."""
    limit = getattr(tokenizer, "model_max_length", None)
    return int(limit) if isinstance(limit, int) and 0 < limit < _NO_LIMIT else None


def special_count(tokenizer: Any) -> int:
    """How many special tokens the tokenizer adds around one sequence (``[CLS]`` and ``[SEP]``: 2)."""
    return int(tokenizer.num_special_tokens_to_add(pair=False))


def piece_counts(tokenizer: Any, words: Iterable[str]) -> dict[str, int]:
    """How many subword pieces ``tokenizer`` gives each distinct word (0 for U+001A, a lone space, ...)."""
    distinct = list(dict.fromkeys(words))
    out: dict[str, int] = {}
    for k in range(0, len(distinct), _BATCH):
        batch = distinct[k : k + _BATCH]
        enc = tokenizer([[w] for w in batch], is_split_into_words=True, add_special_tokens=False)
        out.update(zip(batch, (len(ids) for ids in enc["input_ids"]), strict=True))
    logger.debug("counted pieces of %d distinct words", len(distinct))
    return out


def _p95(lengths: Sequence[int]) -> int:
    ordered = sorted(lengths)
    return ordered[min(len(ordered) - 1, (95 * len(ordered)) // 100)]


def length_stats(
    examples: Sequence[Example],
    spans: Sequence[Sequence[Span]],
    path: str,
    *,
    pieces: Mapping[str, int] | None = None,
    max_length: int | None = None,
    specials: int = 0,
) -> tuple[LengthStats, list[Finding]]:
    """Lengths in words (``pieces`` is ``None``) or subwords, and a ``too-long`` finding per sentence over the limit.

    With ``pieces``, a sentence's length is the sum of its words' pieces plus ``specials``; a naive truncation keeps
    ``max_length - specials`` pieces of words. An entity is lost when any of its words falls past that point.
    """
    unit = "words" if pieces is None else "subwords"
    lengths: list[int] = []
    findings: list[Finding] = []
    over = lost_entities = lost_words = 0
    budget = None if max_length is None else max_length - (specials if pieces is not None else 0)
    for ex, ex_spans in zip(examples, spans, strict=True):
        counts = [1] * len(ex.tokens) if pieces is None else [pieces[t] for t in ex.tokens]
        total = sum(counts) + (specials if pieces is not None else 0)
        lengths.append(total)
        if budget is None or max_length is None or total <= max_length:
            continue
        kept, used = 0, 0
        while kept < len(counts) and used + counts[kept] <= budget:
            used += counts[kept]
            kept += 1
        lost = [s for s in ex_spans if s.end > kept]
        over += 1
        lost_entities += len(lost)
        lost_words += len(counts) - kept
        findings.append(
            Finding(
                "too-long",
                path,
                ex.line,
                f"{total} {unit} > max length {max_length}: truncation drops {len(counts) - kept} of "
                f"{len(counts)} words and {len(lost)} of {len(ex_spans)} entities ('{surface(ex.tokens[:6], 40)}')",
                WARNING,
            )
        )
    if not lengths:
        return LengthStats(unit, 0, 0.0, 0, max_length), findings
    stats = LengthStats(
        unit=unit,
        max=max(lengths),
        median=float(statistics.median(lengths)),
        p95=_p95(lengths),
        max_length=max_length,
        over_max=over,
        entities_lost=lost_entities,
        words_lost=lost_words,
    )
    return stats, findings


def check_no_subword(
    examples: Sequence[Example],
    spans: Sequence[Sequence[Span]],
    path: str,
    pieces: Mapping[str, int],
    model: str,
) -> Iterator[Finding]:
    """Tokens the tokenizer maps to no piece: they can carry no label (``no-subword``)."""
    for ex, ex_spans in zip(examples, spans, strict=True):
        for i, tok in enumerate(ex.tokens):
            if pieces[tok]:
                continue
            owner = next((s for s in ex_spans if s.start <= i < s.end), None)
            where = f", inside a {owner.label} entity" if owner is not None else ""
            yield Finding(
                "no-subword",
                path,
                ex.line_of(i),
                f"{token_ref(ex, i)} maps to no subword of tokenizer {model!r}{where}",
                WARNING,
            )
