"""Long texts cut into segments at natural breaks, and entities moved from a segment back into its text.

The tagger (:class:`~nerforge.prediction.tagger.Tagger`) tags a text longer than :data:`SEGMENT_CHARS` one segment
at a time, so the memory a text needs while it is tagged does not grow with its length (the words, subword pieces
and logits of a 50 MB text would take gigabytes); the server cuts long texts the same way so one request cannot
hold the model. A cut falls at a paragraph break, line end, sentence end or space, so an entity is cut only where
the text has no break at all in half a segment; the model's own windows are a few hundred characters, so a cut at
a sentence end costs nothing a window would have seen.
"""

from __future__ import annotations

from collections.abc import Iterator

from nerforge.types import Entity

SEGMENT_CHARS = 20_000  # a text longer than this is tagged in segments of at most this many characters
CUT_MARKS = ("\n\n", "\n", ". ", "? ", "! ", " ")  # best first


def iter_segments(text: str, size: int) -> Iterator[tuple[int, str]]:
    """``text`` cut into ``(offset, segment)`` pieces of at most ``size`` characters, each cut at the last paragraph
    break, line end, sentence end or space of its piece (in the piece's second half; a hard cut only in a run of
    ``size`` characters without one). The segments joined are the text; offsets are code points. Lazy: a long text
    is not copied whole again."""
    if size < 1:
        raise ValueError("size must be at least 1")
    start = 0
    while len(text) - start > size:
        window = text[start : start + size]
        cut = 0
        for mark in CUT_MARKS:
            found = window.rfind(mark, size // 2)
            if found > 0:
                cut = found + len(mark)
                break
        cut = cut or size
        yield start, text[start : start + cut]
        start += cut
    yield start, text[start:]


def segments(text: str, size: int) -> list[tuple[int, str]]:
    """:func:`iter_segments` as a list."""
    return list(iter_segments(text, size))


def shift(entity: Entity, offset: int) -> Entity:
    """``entity`` with its offsets moved from a segment into the whole text."""
    if not offset:
        return entity
    return Entity(entity.text, entity.label, entity.start + offset, entity.end + offset, entity.score)
