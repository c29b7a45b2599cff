"""Checks that compare sentences: duplicates within a file, overlap between files, and inconsistent labels.

All of them hash token tuples, so each runs in one pass over the tokens (plus a dictionary lookup per token for
the label check), which keeps them fast on files of a few hundred thousand tokens.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from nerforge.data.checks.common import INFO, WARNING, surface
from nerforge.data.schemes import OUTSIDE
from nerforge.types import Example, Finding, Span


def _where(path: str, line: int | None, index: int | None = None) -> str:
    """``path:line``, or ``path (sentence k)`` when the source has no line numbers."""
    if line is not None:
        return f"{path}:{line}"
    return f"{path} (sentence {index + 1})" if index is not None else path


def _here(line: int | None, index: int) -> str:
    return f"line {line}" if line is not None else f"sentence {index + 1}"


def check_duplicates(examples: Sequence[Example], path: str) -> Iterator[Finding]:
    """Sentences whose tokens repeat an earlier sentence of the same file.

    ``duplicate-sentence`` (info) when the tags agree too, ``conflicting-duplicate`` (warning) when they differ.
    """
    first: dict[tuple[str, ...], int] = {}
    for k, ex in enumerate(examples):
        if not ex.tokens:
            continue
        j = first.setdefault(ex.tokens, k)
        if j == k:
            continue
        earlier = examples[j]
        words = surface(ex.tokens, 50)
        where = _here(earlier.line, j)
        if earlier.tags == ex.tags:
            yield Finding("duplicate-sentence", path, ex.line, f"repeats {where}: '{words}'", INFO)
        else:
            yield Finding(
                "conflicting-duplicate", path, ex.line, f"repeats {where} with other tags: '{words}'", WARNING
            )


@dataclass(frozen=True)
class Overlap:
    """Sentences of ``path`` (later in the list of files) whose tokens also occur in ``other`` (earlier)."""

    path: str
    other: str
    sentences: int


def check_overlap(files: Sequence[tuple[str, Sequence[Example]]]) -> tuple[list[Overlap], list[Finding]]:
    """Distinct sentences of each file that also occur in an earlier file (train/test leakage).

    Each shared sentence is reported once, in the later file, at its first occurrence there, naming the first
    earlier file that holds it.
    """
    # tokens -> (file, line, sentence index) of the first sighting
    seen: dict[tuple[str, ...], tuple[int, int | None, int]] = {}
    overlaps: list[Overlap] = []
    findings: list[Finding] = []
    for j, (path, examples) in enumerate(files):
        pair_counts: Counter[int] = Counter()
        here: dict[tuple[str, ...], int] = {}
        for k, ex in enumerate(examples):
            if ex.tokens:
                here.setdefault(ex.tokens, k)
        for tokens, k in here.items():
            hit = seen.get(tokens)
            if hit is None:
                seen[tokens] = (j, examples[k].line, k)
                continue
            i, other_line, other_k = hit
            pair_counts[i] += 1
            findings.append(
                Finding(
                    "overlap",
                    path,
                    examples[k].line,
                    f"sentence also in {_where(files[i][0], other_line, other_k)}: '{surface(tokens, 50)}'",
                    WARNING,
                )
            )
        for i in sorted(pair_counts):
            overlaps.append(Overlap(path, files[i][0], pair_counts[i]))
    return overlaps, findings


@dataclass
class _Surface:
    """How one token sequence is labelled across the files: counts and first place per label (``O`` included)."""

    counts: Counter[str] = field(default_factory=Counter)
    first: dict[str, tuple[str, int | None]] = field(default_factory=dict)

    def add(self, label: str, path: str, line: int | None) -> None:
        self.counts[label] += 1
        self.first.setdefault(label, (path, line))


def check_label_consistency(
    files: Sequence[tuple[str, Sequence[Example], Sequence[Sequence[Span]]]],
) -> Iterator[Finding]:
    """Token sequences labelled as one type somewhere and as another type, or left ``O``, elsewhere.

    Every entity's tokens are a surface string. A surface also counts as ``O`` wherever all its tokens are outside
    any entity (a surface inside a longer entity is not counted). One ``inconsistent-label`` finding per surface,
    at the first occurrence of its rarest label, in order of first appearance.
    """
    surfaces: dict[tuple[str, ...], _Surface] = {}
    for path, examples, spans in files:
        for ex, ex_spans in zip(examples, spans, strict=True):
            for s in ex_spans:
                key = ex.tokens[s.start : s.end]
                surfaces.setdefault(key, _Surface()).add(s.label, path, ex.line_of(s.start))
    if not surfaces:
        return
    lengths_by_first: dict[str, set[int]] = {}
    for key in surfaces:
        lengths_by_first.setdefault(key[0], set()).add(len(key))
    for path, examples, spans in files:
        for ex, ex_spans in zip(examples, spans, strict=True):
            inside = [False] * len(ex.tokens)
            for s in ex_spans:
                inside[s.start : s.end] = [True] * (s.end - s.start)
            n = len(ex.tokens)
            for i, tok in enumerate(ex.tokens):
                lengths = lengths_by_first.get(tok)
                if not lengths or inside[i]:
                    continue
                for size in lengths:
                    if i + size <= n and not any(inside[i : i + size]):
                        entry = surfaces.get(ex.tokens[i : i + size])
                        if entry is not None:
                            entry.add(OUTSIDE, path, ex.line_of(i))
    for key, entry in surfaces.items():
        if len(entry.counts) < 2:
            continue
        rarest = min(entry.counts, key=lambda label: (entry.counts[label], label))
        path, line = entry.first[rarest]
        spread = ", ".join(f"{label} {n}×" for label, n in entry.counts.most_common())
        others = "; ".join(
            f"{label} first at {_where(*entry.first[label])}"
            for label, _ in entry.counts.most_common()
            if label != rarest
        )
        yield Finding(
            "inconsistent-label",
            path,
            line,
            f"'{surface(key, 40)}' is labelled {spread}; {rarest} here ({others})",
            WARNING,
        )
