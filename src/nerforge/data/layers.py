"""Entity spans that overlap: layers, nesting and crossing, and the flat view of them. Pure functions.

Annotators make entities in layers (a skill layer and a knowledge layer, one tag column each) and inside each other
("[[Bonn]LOC-er Universität]ORG"). An :class:`~nerforge.types.Example` holds them all in ``spans`` (each
:class:`~nerforge.types.Span` with its layer), and a flat tag sequence in ``tags`` for everything that reads one.

Words used here, for two spans of one example:

* **nested**: one lies inside the other (``a.start <= b.start and b.end <= a.end``, not the same range);
* **crossing**: they share tokens and neither holds the other;
* **depth** of a span: how many spans hold it (an outermost span has depth 0); spans of the same range (one word
  marked twice with two types) count as nested in each other once, the first in sorted order being the outer.

:func:`flatten` is the one rule that makes a flat view of overlapping spans: **the outermost span is kept** (longest
first; of spans of one length, the first to start; of one range, the first label in sorted order), and every span that
shares a token with a kept one is dropped, so a crossing pair keeps the one that starts first when they are as long.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from nerforge.types import Example, Span


def entity_spans(example: Example) -> tuple[Span, ...]:
    """Every entity span of ``example``: its ``spans``, or else the spans of its tags (layer ``""``)."""
    if example.spans is not None:
        return example.spans
    from nerforge.data.schemes import tags_to_spans

    return tuple(tags_to_spans(example.tags))


def one_layer(example: Example, types: Iterable[str] | None = None) -> list[Span]:
    """Every entity span of ``example``, of every layer, in one layer (``""``), sorted: what a span head learns
    and is scored on (only those of ``types``, when given).

    >>> ex = Example(("a", "b"), ("B-X", "I-X"), spans=(Span(0, 2, "X", "one"), Span(0, 1, "Y", "two")))
    >>> one_layer(ex)
    [Span(start=0, end=1, label='Y'), Span(start=0, end=2, label='X')]
    """
    allowed = None if types is None else set(types)
    return sorted({replace(s, layer="") for s in entity_spans(example) if allowed is None or s.label in allowed})


def example_layers(example: Example) -> tuple[str, ...]:
    """The layers ``example`` is annotated in: its ``layers``, else those of its spans (``("",)`` for tags only)."""
    if example.layers is not None:
        return example.layers
    return layer_names(entity_spans(example)) or ("",)


def layer_names(spans: Iterable[Span]) -> tuple[str, ...]:
    """The layers of ``spans`` in order of first appearance (``()`` for no spans)."""
    return tuple(dict.fromkeys(s.layer for s in spans))


def in_layer(spans: Iterable[Span], layer: str) -> list[Span]:
    """The spans of one layer, sorted."""
    return sorted(s for s in spans if s.layer == layer)


def overlaps(a: Span, b: Span) -> bool:
    """Whether two spans share a token."""
    return a.start < b.end and b.start < a.end


def holds(outer: Span, inner: Span) -> bool:
    """Whether ``inner`` lies inside ``outer`` (the same range counts)."""
    return outer.start <= inner.start and inner.end <= outer.end


def flatten(spans: Iterable[Span]) -> list[Span]:
    """The flat view of ``spans``: non-overlapping, sorted, outermost first (see the module docstring).

    >>> flatten([Span(0, 1, "LOC"), Span(0, 3, "ORG"), Span(2, 5, "PER")])
    [Span(start=0, end=3, label='ORG')]
    """
    kept: list[Span] = []
    taken: set[int] = set()
    for span in sorted(set(spans), key=lambda s: (s.start - s.end, s.start, s.label, s.layer)):
        tokens = range(span.start, span.end)
        if not taken.intersection(tokens):
            kept.append(span)
            taken.update(tokens)
    return sorted(kept)


def is_flat(spans: Iterable[Span]) -> bool:
    """Whether no two spans share a token."""
    ordered = sorted(spans)
    return all(a.end <= b.start for a, b in zip(ordered, ordered[1:], strict=False))


def depths(spans: Sequence[Span]) -> list[int]:
    """The depth of each span (how many of the others hold it; of two spans of one range, the later in sorted order
    is the inner one), in the order given."""
    ordered = sorted(range(len(spans)), key=lambda i: (spans[i].start, -spans[i].end, spans[i].label, spans[i].layer))
    rank = {i: r for r, i in enumerate(ordered)}
    out = []
    for i, s in enumerate(spans):
        out.append(sum(1 for j, o in enumerate(spans) if j != i and holds(o, s)
                       and ((o.start, o.end) != (s.start, s.end) or rank[j] < rank[i])))  # fmt: skip
    return out


@dataclass
class OverlapStats:
    """How the spans of a corpus overlap (``nerforge inspect``'s nesting report).

    Attributes:
        spans: spans counted.
        layers: spans per layer, in order of first appearance.
        nested: spans that lie inside another span of their layer.
        max_depth: the deepest nesting within a layer (0: flat).
        nested_pairs: ``(outer type, inner type)`` → count, of spans one inside the other (in a layer or across).
        crossing: pairs of spans of one layer that cross (neither holds the other).
        across_layers: pairs of spans of different layers that share a token.
        examples_with_overlap: examples where two spans (of any layers) share a token.
    """

    spans: int = 0
    layers: Counter[str] = field(default_factory=Counter)
    nested: int = 0
    max_depth: int = 0
    nested_pairs: Counter[tuple[str, str]] = field(default_factory=Counter)
    crossing: int = 0
    across_layers: int = 0
    examples_with_overlap: int = 0

    def add(self, spans: Sequence[Span]) -> None:
        """Count the spans of one example."""
        self.spans += len(spans)
        self.layers.update(s.layer for s in spans)
        overlap = False
        for layer in layer_names(spans):
            mine = in_layer(spans, layer)
            for depth in depths(mine):
                self.max_depth = max(self.max_depth, depth)
                self.nested += depth > 0
            for i, a in enumerate(mine):
                for b in mine[i + 1 :]:
                    if b.start >= a.end:
                        break  # sorted by start: no later span reaches a
                    overlap = True
                    if holds(a, b) or holds(b, a):
                        outer, inner = (a, b) if holds(a, b) else (b, a)
                        self.nested_pairs[(outer.label, inner.label)] += 1
                    else:
                        self.crossing += 1
        ordered = sorted(spans)
        for i, a in enumerate(ordered):
            for b in ordered[i + 1 :]:
                if b.start >= a.end:
                    break
                if a.layer != b.layer:
                    self.across_layers += 1
                    overlap = True
                    if holds(a, b) or holds(b, a):
                        outer, inner = (a, b) if holds(a, b) else (b, a)
                        self.nested_pairs[(outer.label, inner.label)] += 1
        self.examples_with_overlap += overlap

    @property
    def flat(self) -> bool:
        """No two spans of any layers share a token."""
        return self.examples_with_overlap == 0


def overlap_stats(examples: Iterable[Sequence[Span]]) -> OverlapStats:
    """:class:`OverlapStats` over the spans of each example."""
    stats = OverlapStats()
    for spans in examples:
        stats.add(spans)
    return stats


def layer_tags(example: Example, layers: Sequence[tuple[str, Sequence[str] | None]]) -> list[list[str]]:
    """Each layer's IOB2 tags of ``example``, for layers ``(name, tags)``: the layer's outermost entities (a tag
    column, or a layered model's tagger, holds one flat layer; an entity nested inside another of its own layer is
    not there), of the types of ``tags`` (``None``: every type)."""
    from nerforge.data.schemes import spans_to_tags
    from nerforge.tags import tag_type

    spans = entity_spans(example)
    out = []
    for name, tags in layers:
        known = None if tags is None else {tag_type(t) for t in tags} - {None}
        kept = (s for s in in_layer(spans, name) if known is None or s.label in known)
        out.append(spans_to_tags(flatten(kept), len(example.tokens)))
    return out


def qualified(tags: Sequence[str], layer: str) -> list[str]:
    """IOB2 tags with their type named by layer (``B-Skill`` of layer ``skill``: ``B-skill/Skill``), so that a
    layered model's layers are scored, analysed and reported as one flat tag set.

    >>> qualified(["B-Skill", "O"], "skill")
    ['B-skill/Skill', 'O']
    """
    return [t if t == "O" else f"{t[:2]}{layer}/{t[2:]}" for t in tags]
