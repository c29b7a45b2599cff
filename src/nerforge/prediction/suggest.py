"""``nerforge suggest``: which unlabelled texts to annotate next (active learning by uncertainty sampling).

A text's **uncertainty** is one minus the geometric mean, over its words, of the probability the model gave the tag
it chose: a length-normalised best-path probability (a long sentence is not more uncertain just for its length,
and one word the model is unsure of still counts). Texts are then chosen by one of three strategies:

* ``uncertainty``: the most uncertain first;
* ``diverse``: from the most uncertain ``4 * count``, greedily the one with the highest uncertainty times its
  distance (1 - Jaccard similarity of word sets) to the texts already chosen, so one frequent phrasing does not
  fill the batch;
* ``random``: a seeded random sample (the baseline an active-learning loop must beat).

Near-duplicates are never chosen twice: texts equal after lower-casing and dropping digits, punctuation and
spacing, or whose word sets are 90% the same as a chosen one's, are skipped. The ranking functions are pure
(:func:`rank`), the model is only used for :func:`uncertainty` inputs.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nerforge.errors import UsageError

STRATEGIES = ("uncertainty", "diverse", "random")
DUPLICATE_JACCARD = 0.9
DIVERSE_POOL_FACTOR = 4
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


@dataclass(frozen=True)
class Candidate:
    """One unlabelled text: where it came from, its uncertainty, and what the model found in it."""

    index: int
    text: str
    score: float
    line: int | None = None
    fields: dict[str, Any] = field(default_factory=dict, compare=False)
    entities: tuple[Any, ...] = field(default=(), compare=False)


def uncertainty(word_scores: Sequence[float]) -> float:
    """``1 - geometric mean`` of the chosen tags' probabilities, in [0, 1]; 0 for a text without words."""
    if not word_scores:
        return 0.0
    logs = [math.log(min(1.0, max(p, 1e-12))) for p in word_scores]
    return 1.0 - math.exp(sum(logs) / len(logs))


def fingerprint(text: str) -> str:
    """Lower-cased letters only, single-spaced: texts that differ in digits, punctuation or spacing collide."""
    return " ".join(_WORD.findall(text.lower()))


def _words(text: str) -> frozenset[str]:
    return frozenset(_WORD.findall(text.lower()))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def rank(candidates: Sequence[Candidate], count: int, strategy: str = "uncertainty", seed: int = 13) -> list[Candidate]:
    """The ``count`` texts to annotate first, most useful first (see the module docstring).

    Raises:
        ValueError: an unknown strategy or a negative count.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of: {', '.join(STRATEGIES)}")
    if count < 0:
        raise ValueError("count must be at least 0")
    pool = [c for c in candidates if c.text.strip()]
    if strategy == "random":
        order = list(pool)
        random.Random(seed).shuffle(order)
    else:
        order = sorted(pool, key=lambda c: (-c.score, c.index))
    if strategy == "diverse":
        order = _diverse(_deduplicated(order, DIVERSE_POOL_FACTOR * count), count)
    return _deduplicated(order, count)


def _deduplicated(order: Sequence[Candidate], count: int) -> list[Candidate]:
    chosen: list[Candidate] = []
    seen: set[str] = set()
    sets: list[frozenset[str]] = []
    for c in order:
        if len(chosen) >= count:
            break
        key = fingerprint(c.text)
        words = _words(c.text)
        if key in seen or any(jaccard(words, s) >= DUPLICATE_JACCARD for s in sets):
            continue
        seen.add(key)
        sets.append(words)
        chosen.append(c)
    return chosen


def _diverse(pool: Sequence[Candidate], count: int) -> list[Candidate]:
    remaining = list(pool)
    chosen: list[Candidate] = []
    sets: list[frozenset[str]] = []
    while remaining and len(chosen) < count:

        def value(c: Candidate) -> tuple[float, int]:
            words = _words(c.text)
            distance = min((1.0 - jaccard(words, s) for s in sets), default=1.0)
            return (c.score * distance, -c.index)

        best = max(remaining, key=value)
        remaining.remove(best)
        chosen.append(best)
        sets.append(_words(best.text))
    return chosen


def score_records(tagger: Any, records: Any, *, total: int | None = None) -> list[Candidate]:
    """Tag every record (:class:`~nerforge.prediction.io.InputRecord`) and keep its uncertainty and entities."""
    from nerforge.prediction.tagger import entities_from_words

    kept: list[Any] = []

    def texts() -> Any:
        for record in records:
            kept.append(record)
            yield record.text

    out = []
    calibration = tagger.meta.score_calibration
    for n, (text, words, prediction) in enumerate(tagger.iter_predict_scored(texts(), total=total)):
        record = kept[n]
        entities = tuple(entities_from_words(text, words, prediction, calibration))
        out.append(Candidate(record.index, text, uncertainty(prediction.every_score()), record.line, dict(record.fields),
                             entities))  # fmt: skip
    return out


@dataclass(frozen=True)
class SuggestOptions:
    """What ``nerforge suggest`` asks for (see :func:`suggest`)."""

    count: int
    strategy: str = "uncertainty"
    output_format: str = "jsonl"  # jsonl | label-studio
    from_name: str = "label"
    to_name: str = "text"
    text_column: str = "text"
    seed: int = 13
    batch_size: int = 32
    progress: bool | None = None


@dataclass(frozen=True)
class SuggestResult:
    """What :func:`suggest` chose and wrote."""

    output: Path
    chosen: list[Candidate]
    texts: int  # non-empty texts scored
    strategy: str


OUTPUT_FORMATS = {"jsonl": ".jsonl", "label-studio": ".json"}


def check_suggest_options(options: SuggestOptions, pool: Path, output: Path) -> None:
    """Refuse options that do not fit together, before the model is loaded.

    Raises:
        UsageError: an unknown strategy or format, an output whose suffix does not match the format, the pool as
            output, or an output nerforge may not write.
    """
    from nerforge.outputs import check_output_file

    if options.strategy not in STRATEGIES:
        raise UsageError(f"--strategy {options.strategy!r} is not one of: {', '.join(STRATEGIES)}")
    wanted = OUTPUT_FORMATS.get(options.output_format)
    if wanted is None:
        raise UsageError(f"--format {options.output_format!r} is not one of: {', '.join(OUTPUT_FORMATS)}")
    if output.suffix.lower() != wanted:
        raise UsageError(f"--format {options.output_format} writes *{wanted}; got --output {output}")
    check_output_file(output)
    if output.resolve() == pool.resolve():
        raise UsageError(f"--output {output} is the POOL file; choose another --output")


def suggest(model: str | Path, pool: Path, output: Path, options: SuggestOptions) -> SuggestResult:
    """Score every text of ``pool`` with the model, choose ``options.count`` by ``options.strategy`` and write them
    to ``output`` (JSON Lines rows, or Label Studio tasks pre-annotated with the model's entities), atomically.

    Raises:
        UsageError: see :func:`check_suggest_options`; ModelError, DataFormatError: the model or the pool.
    """
    from nerforge.io_utils import atomic_open
    from nerforge.prediction.annotation_formats import label_studio_task
    from nerforge.prediction.heap import settle_loaded_objects
    from nerforge.prediction.io import InputRecord, count_inputs, read_inputs
    from nerforge.prediction.tagger import Tagger

    check_suggest_options(options, pool, output)
    total = count_inputs(pool, text_column=options.text_column)
    tagger = Tagger.load(model, batch_size=options.batch_size, progress=options.progress)
    settle_loaded_objects()  # one model for the whole pool (nerforge.prediction.heap)
    candidates = score_records(tagger, read_inputs(pool, text_column=options.text_column), total=total)
    chosen = rank(candidates, options.count, options.strategy, options.seed)
    with atomic_open(output, "w", encoding="utf-8") as fh:
        if options.output_format == "jsonl":
            for c in chosen:
                row = {"text": c.text, "line": c.line, "index": c.index, "score": round(c.score, 6)}
                fh.write(json.dumps({**c.fields, **row}, ensure_ascii=False, default=str) + "\n")
        else:
            tasks = []
            for c in chosen:
                record = InputRecord(c.index, c.text, c.line, {**c.fields, "nerforge_uncertainty": round(c.score, 6)})
                tasks.append(
                    label_studio_task(
                        record,
                        list(c.entities),
                        from_name=options.from_name,
                        to_name=options.to_name,
                        model_version=tagger.meta.model_version,
                    )
                )
            fh.write(json.dumps(tasks, ensure_ascii=False, indent=1) + "\n")
    return SuggestResult(output, chosen, sum(1 for c in candidates if c.text.strip()), options.strategy)
