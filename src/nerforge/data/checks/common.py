"""Shared pieces of the data checks: a capped finding log, safe decoding and ``-DOCSTART-`` handling.

Every check is a pure function over :class:`~nerforge.types.Example` objects that yields
:class:`~nerforge.types.Finding` objects; :class:`FindingLog` keeps the first few of each kind and counts them all.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from nerforge.data.schemes import OUTSIDE, parse_tag, tags_to_spans
from nerforge.errors import TagSchemeError, quote
from nerforge.types import Example, Finding, Span

DOCSTART = "-DOCSTART-"
INFO, WARNING, ERROR = "info", "warning", "error"


@dataclass
class FindingLog:
    """Counts every finding by kind and keeps the first ``limit`` of each kind (all when ``limit`` is ``None``)."""

    limit: int | None = 50
    counts: Counter[str] = field(default_factory=Counter)
    kept: list[Finding] = field(default_factory=list)

    def add(self, finding: Finding) -> None:
        self.counts[finding.kind] += 1
        if self.limit is None or self.counts[finding.kind] <= self.limit:
            self.kept.append(finding)

    def extend(self, findings: Iterable[Finding]) -> None:
        for f in findings:
            self.add(f)


def shorten(text: str, width: int = 60) -> str:
    """``text`` cut to ``width`` characters with an ellipsis."""
    return text if len(text) <= width else text[: width - 1] + "…"


def surface(tokens: Sequence[str], width: int = 60) -> str:
    """Tokens joined by spaces, shortened, for messages."""
    return shorten(" ".join(tokens), width)


def token_ref(example: Example, index: int) -> str:
    """``token 'x'`` for messages; ``token 3 'x'`` when the source has no line per token (JSON records)."""
    tok = example.tokens[index]
    return f"token {quote(tok)}" if example.token_lines is not None else f"token {index + 1} {quote(tok)}"


def decodable(tag: str) -> str:
    """``tag`` when it parses as a typed tag, else ``O`` (bad tags are reported by the tag checks)."""
    if tag == OUTSIDE:
        return tag
    try:
        parse_tag(tag)
    except TagSchemeError:
        return OUTSIDE
    return tag


def decode_spans(tags: Sequence[str]) -> list[Span]:
    """Conlleval-style spans of ``tags``; tags that do not parse count as ``O``."""
    try:
        return tags_to_spans(tags)
    except TagSchemeError:
        return tags_to_spans([decodable(t) for t in tags])


def _slice(example: Example, keep: Sequence[int]) -> Example:
    """``example`` restricted to the token indices ``keep`` (in order)."""
    lines = example.token_lines
    first_line = example.line_of(keep[0]) if keep else example.line
    return replace(
        example,
        tokens=tuple(example.tokens[i] for i in keep),
        tags=tuple(example.tags[i] for i in keep),
        offsets=None,
        text=None,
        line=first_line,
        token_lines=tuple(lines[i] for i in keep) if lines is not None else None,
    )


def split_docstart(examples: Sequence[Example], path: str) -> tuple[list[Example], int, list[Finding]]:
    """Drop ``-DOCSTART-`` markers; returns the content examples, the number of markers, and findings.

    A marker that is a sentence of its own is a document boundary and is only counted. A marker glued to the
    first line of a sentence (no blank line after it, as in CoNLL-2002 Dutch) is removed from that sentence and
    reported, since a reader that keeps it would train on ``-DOCSTART-`` as a word.
    """
    out: list[Example] = []
    markers = 0
    findings: list[Finding] = []
    for ex in examples:
        if DOCSTART not in ex.tokens:
            out.append(ex)
            continue
        keep = [i for i, tok in enumerate(ex.tokens) if tok != DOCSTART]
        markers += len(ex.tokens) - len(keep)
        if keep:
            first = next(i for i, tok in enumerate(ex.tokens) if tok == DOCSTART)
            findings.append(
                Finding(
                    "docstart-in-sentence",
                    path,
                    ex.line_of(first),
                    f"{DOCSTART} is part of a sentence (no blank line after it): "
                    f"'{surface(ex.tokens[:4])}'; it is not counted as a token",
                    WARNING,
                )
            )
            out.append(_slice(ex, keep))
    return out, markers, findings
