"""Parity between a PyTorch model and its export: the same words in, how far apart are the outputs?

Both backends run through the same :class:`~nerforge.prediction.engine.Engine` (same windows, same length-sorted
batches), so their logits can be compared batch by batch and their tags word by word. A :class:`ParityReport` gives

* the largest and mean absolute logit difference over real (unpadded) positions;
* per-word tag agreement and the share of sentences whose tags all agree;
* strict IOB2 entity F1 of the export's entities *against the PyTorch ones* (1.0: the same entities);
* with gold data (``nerforge export --parity-data FILE``), the strict IOB2 micro F1 of each against the gold tags and
  the difference in points (export minus PyTorch).

The built-in samples (:data:`SAMPLE_TEXTS`) are always used; they include a text longer than any model's window so
that window stitching is compared too.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nerforge.evaluation import MODE, SCHEME
from nerforge.evaluation.metrics import pooled, score_spans
from nerforge.io_utils import atomic_write_text
from nerforge.model_dir import ModelMeta
from nerforge.prediction.engine import Backend
from nerforge.prediction.tagger import Tagger
from nerforge.types import Example, Span

logger = logging.getLogger(__name__)

MAX_DISAGREEMENTS = 20  # words listed in the report

SAMPLE_TEXTS: tuple[str, ...] = (
    "EU rejects German call to boycott British lamb.",
    "Peter Blackburn reports from Brussels on Thursday.",
    "Acme Corp. hired Dr. Ann Smith as chief data scientist in San Francisco last March.",
    "The United Nations Security Council met in New York to discuss the crisis in South Sudan.",
    "Lionel Messi scored twice as Inter Miami beat the LA Galaxy 3-1 on Saturday night.",
    "Apple and Microsoft shares rose 2.5% on the Nasdaq after the Federal Reserve held rates.",
    "She moved from Lagos to Berlin to work for Siemens, then joined the World Health Organization.",
    "JAPAN GET LUCKY WIN , CHINA IN SURPRISE DEFEAT .",
    "Nadim Ladki",
    "AL-AIN , United Arab Emirates 1996-12-06",
    "Senior Python developer wanted: Django, PostgreSQL, AWS and Kubernetes; remote within the EU.",
    "Der Bundestag in Berlin stimmte am Donnerstag über den Haushalt ab.",
    "the quick brown fox jumps over the lazy dog",
    "@jdoe: meeting w/ IBM & NASA folks re: Mars 2030 mission!!! #space",
    "Mr. O'Neill-Smith (CEO, Smith & Sons Ltd.) said: \"We'll open in Zürich, São Paulo and Kraków.\"",
    "1 2 3 4 5 6 7 8 9 10",
    "Washington",
)


def sample_texts(repeat_long: int = 2) -> list[str]:
    """The built-in texts plus one long text: all of them ``repeat_long`` times (one copy is about 180 words, 260
    WordPiece pieces, so the default needs several windows at ``max_length`` 128 or 256 and two at 512)."""
    long_text = " ".join(SAMPLE_TEXTS * repeat_long)
    return [*SAMPLE_TEXTS, long_text]


@dataclass(frozen=True)
class Disagreement:
    """One word whose tag differs between the reference and the candidate."""

    sentence: int
    word: int
    text: str
    reference: str
    candidate: str


@dataclass(frozen=True)
class GoldScores:
    """Strict IOB2 micro F1 of reference and candidate against gold tags (F1 in [0, 1], difference in points)."""

    path: str
    sentences: int
    reference_f1: float
    candidate_f1: float

    @property
    def f1_diff_points(self) -> float:
        return round(100.0 * (self.candidate_f1 - self.reference_f1), 4)


@dataclass(frozen=True)
class ParityReport:
    """How closely a candidate backend (an export) follows the reference (PyTorch); see the module docstring."""

    reference: str
    candidate: str
    sentences: int
    words: int
    tag_agreement: float
    sentence_agreement: float
    entity_f1_vs_reference: float
    reference_entities: int
    candidate_entities: int
    max_abs_logit_diff: float
    mean_abs_logit_diff: float
    gold: GoldScores | None = None
    disagreements: tuple[Disagreement, ...] = ()
    sources: tuple[str, ...] = ()
    mode: str = MODE
    scheme: str = SCHEME
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if self.gold is not None:
            out["gold"]["f1_diff_points"] = self.gold.f1_diff_points
        return out

    def lines(self) -> list[str]:
        """A short human-readable summary."""
        out = [
            f"parity {self.candidate} vs {self.reference} on {self.sentences} sentences / {self.words} words "
            f"({', '.join(self.sources)}):",
            f"  tag agreement {self.tag_agreement:.4%}, sentences identical {self.sentence_agreement:.2%}",
            f"  entity F1 vs {self.reference} ({self.mode} {self.scheme}) {self.entity_f1_vs_reference:.4f} "
            f"({self.candidate_entities} vs {self.reference_entities} entities)",
            f"  logits: max |diff| {self.max_abs_logit_diff:.3g}, mean |diff| {self.mean_abs_logit_diff:.3g}",
        ]
        if self.gold is not None:
            g = self.gold
            out.append(
                f"  gold F1 on {g.path} ({g.sentences} sentences): {self.reference} {g.reference_f1:.4f}, "
                f"{self.candidate} {g.candidate_f1:.4f} ({g.f1_diff_points:+.2f} points)"
            )
        return out


def write_parity(path: str | Path, report: ParityReport) -> None:
    atomic_write_text(path, json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n")


class _Recorder:
    """A backend wrapper that keeps the logits of real (unpadded) positions of every batch, in call order."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.batches: list[tuple[tuple[int, ...], np.ndarray]] = []

    def logits(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        out = np.asarray(self.inner.logits(inputs))
        self.batches.append((inputs["input_ids"].shape, out[inputs["attention_mask"].astype(bool)].astype(np.float32)))
        return out


def _logit_diffs(reference: _Recorder, candidate: _Recorder) -> tuple[float, float]:
    if len(reference.batches) != len(candidate.batches):
        raise RuntimeError("the two backends saw different batches")  # the engine is deterministic: a bug if hit
    largest, total, count = 0.0, 0.0, 0
    for (shape_a, a), (shape_b, b) in zip(reference.batches, candidate.batches, strict=True):
        if shape_a != shape_b or a.shape != b.shape:
            raise RuntimeError(f"batch shapes differ: {shape_a} vs {shape_b}")
        diff = np.abs(a.astype(np.float64) - b)
        if diff.size:
            largest = max(largest, float(diff.max()))
            total += float(diff.sum())
            count += diff.size
    return largest, (total / count if count else 0.0)


def _entity_f1(reference: Sequence[Sequence[Span]], candidate: Sequence[Sequence[Span]]) -> tuple[float, int, int]:
    """Strict micro F1 of ``candidate`` entities against ``reference`` ones, and how many each has."""
    micro = pooled(score_spans(reference, candidate))
    f1 = 1.0 if micro.support == 0 and micro.n_pred == 0 else micro.f1
    return f1, micro.support, micro.n_pred


def check_parity(
    reference: Backend,
    candidate: Backend,
    tokenizer: Any,
    meta: ModelMeta,
    *,
    texts: Sequence[str] = (),
    gold: Sequence[Example] = (),
    gold_path: str = "",
    texts_name: str = "built-in samples",
    reference_name: str = "torch",
    candidate_name: str = "onnx",
    batch_size: int = 32,
) -> ParityReport:
    """Compare ``candidate`` with ``reference`` on raw ``texts`` (cut into words by the model's word tokenizer) and
    on the words of ``gold`` examples (scored against their IOB2 tags).

    Both backends must take the same inputs (the same tokenizer and metadata).
    """
    rec_ref, rec_cand = _Recorder(reference), _Recorder(candidate)
    tag_ref = Tagger.from_backend(rec_ref, tokenizer, meta, batch_size=batch_size, progress=False)
    tag_cand = Tagger.from_backend(rec_cand, tokenizer, meta, batch_size=batch_size, progress=False)
    words = [[w.text for w in tag_ref.words(t)] for t in texts] + [list(ex.tokens) for ex in gold]
    ref_pred, cand_pred = tag_ref.predict_words(words), tag_cand.predict_words(words)
    ref_tags, cand_tags = [list(p.tags) for p in ref_pred], [list(p.tags) for p in cand_pred]
    # entities as the model gives them (a span head's nested ones, a layered model's every layer), not only the tags
    ref_spans, cand_spans = [p.entity_spans() for p in ref_pred], [p.entity_spans() for p in cand_pred]
    max_diff, mean_diff = _logit_diffs(rec_ref, rec_cand)
    n_words = sum(len(w) for w in words)
    same = sum(a == b for r, c in zip(ref_tags, cand_tags, strict=True) for a, b in zip(r, c, strict=True))
    disagreements: list[Disagreement] = []
    for s, (ws, r, c) in enumerate(zip(words, ref_tags, cand_tags, strict=True)):
        for i, (a, b) in enumerate(zip(r, c, strict=True)):
            if a != b and len(disagreements) < MAX_DISAGREEMENTS:
                disagreements.append(Disagreement(s, i, ws[i], a, b))
    f1, n_ref, n_cand = _entity_f1(ref_spans, cand_spans)
    gold_scores = None
    if gold:
        gold_spans = [tag_ref.plan.gold_spans(ex) for ex in gold]
        start = len(texts)
        gold_scores = GoldScores(
            path=gold_path,
            sentences=len(gold),
            reference_f1=_entity_f1(gold_spans, ref_spans[start:])[0],
            candidate_f1=_entity_f1(gold_spans, cand_spans[start:])[0],
        )
    sources = tuple(s for s, on in ((texts_name, bool(texts)), (gold_path or "gold data", bool(gold))) if on)
    report = ParityReport(
        reference=reference_name,
        candidate=candidate_name,
        sentences=len(words),
        words=n_words,
        tag_agreement=same / n_words if n_words else 1.0,
        sentence_agreement=sum(r == c for r, c in zip(ref_tags, cand_tags, strict=True)) / len(words) if words else 1.0,
        entity_f1_vs_reference=f1,
        reference_entities=n_ref,
        candidate_entities=n_cand,
        max_abs_logit_diff=max_diff,
        mean_abs_logit_diff=mean_diff,
        gold=gold_scores,
        disagreements=tuple(disagreements),
        sources=sources,
    )
    for line in report.lines():
        logger.debug("%s", line)
    return report
