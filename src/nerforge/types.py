"""Typed values that cross module boundaries.

Spans are half-open token ranges ``[start, end)``; character offsets are half-open too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from nerforge.tags import iob2_tags


@dataclass(frozen=True, order=True, repr=False)
class Span:
    """A labelled half-open range of tokens ``[start, end)``, in a layer of entities (``""``: the only one)."""

    start: int
    end: int
    label: str
    layer: str = ""

    def __repr__(self) -> str:
        layer = f", layer={self.layer!r}" if self.layer else ""
        return f"Span(start={self.start}, end={self.end}, label={self.label!r}{layer})"

    def __post_init__(self) -> None:
        if not (0 <= self.start < self.end):
            raise ValueError(f"invalid span [{self.start}, {self.end}) for {self.label!r}")


@dataclass(frozen=True)
class Example:
    """One sentence (or paragraph) of tokens with one tag per token.

    Attributes:
        tokens: the words, as in the source (no normalisation).
        tags: one tag per token, in the scheme of the source unless converted.
        doc_id: the document this sentence belongs to, when the source has documents.
        offsets: character ``(start, end)`` of each token in ``text``, when the source has a text.
        text: the original text the offsets point into.
        source: the file the example was read from.
        line: 1-based line in ``source`` where the example starts.
        token_lines: 1-based line of each token in ``source`` (column files).
        metadata: other columns of the source row, as ``(name, value)`` text pairs (Parquet, list-column CSV);
            written back by the JSON Lines and Parquet writers.
        spans: every entity span when the source holds more than one tag sequence can (several layers, or spans
            that overlap), each with its layer; ``None`` means the spans of ``tags``. When set, ``tags`` holds the
            flat view a flat model learns (the first layer's outermost spans, :func:`nerforge.data.layers.flatten`).
        layers: the layers of entities the source annotates, in order, those without a span in this example too (a
            sentence with no knowledge span is annotated for knowledge all the same); ``None``: the layers of
            ``spans`` in order of first appearance.
    """

    tokens: tuple[str, ...]
    tags: tuple[str, ...]
    doc_id: str | None = None
    offsets: tuple[tuple[int, int], ...] | None = None
    text: str | None = None
    source: str | None = None
    line: int | None = None
    token_lines: tuple[int, ...] | None = None
    metadata: tuple[tuple[str, str], ...] = ()
    spans: tuple[Span, ...] | None = None
    layers: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if len(self.tokens) != len(self.tags):
            raise ValueError(f"{len(self.tokens)} tokens but {len(self.tags)} tags")
        if self.offsets is not None and len(self.offsets) != len(self.tokens):
            raise ValueError(f"{len(self.tokens)} tokens but {len(self.offsets)} offsets")
        if self.spans is not None and any(s.end > len(self.tokens) for s in self.spans):
            raise ValueError(f"a span ends past the {len(self.tokens)} tokens")

    def __len__(self) -> int:
        return len(self.tokens)

    def line_of(self, index: int) -> int | None:
        """The source line of token ``index`` (or of the example when unknown)."""
        if self.token_lines is not None and 0 <= index < len(self.token_lines):
            return self.token_lines[index]
        return self.line

    def with_tags(self, tags: Iterable[str]) -> Example:
        """A copy with other tags (same length)."""
        from dataclasses import replace

        return replace(self, tags=tuple(tags))


@dataclass(frozen=True)
class LabelSet:
    """The entity types of a task, in a stable order, and the IOB2 tag vocabulary built from them."""

    types: tuple[str, ...]

    @classmethod
    def from_types(cls, types: Iterable[str]) -> LabelSet:
        return cls(tuple(sorted(set(types))))

    @property
    def tags(self) -> tuple[str, ...]:
        """``O`` then ``B-X, I-X`` for each type X."""
        return iob2_tags(self.types)

    @property
    def label2id(self) -> dict[str, int]:
        return {tag: i for i, tag in enumerate(self.tags)}

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.tags))


@dataclass(frozen=True)
class Finding:
    """One observation about a data file, with where it is."""

    kind: str
    path: str
    line: int | None
    message: str
    severity: str = "warning"  # "info" | "warning" | "error"

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.kind}: {self.message}"


@dataclass(frozen=True)
class Entity:
    """A predicted entity in a raw text, with character offsets into that text."""

    text: str
    label: str
    start: int
    end: int
    score: float
    layer: str = ""  # a layered model's layer of entities ("" for a model of one layer)

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"text": self.text, "label": self.label, "start": self.start, "end": self.end,
                                  "score": self.score}  # fmt: skip
        if self.layer:
            out["layer"] = self.layer
        return out


@dataclass
class Corpus:
    """The examples read from one file, with what the reader noticed on the way."""

    path: str
    format: str
    examples: list[Example]
    scheme: str
    findings: list[Finding] = field(default_factory=list)
