"""IOB2 normalisation: tags of any scheme become IOB2 through conlleval-style spans.

Decoding is :func:`~nerforge.data.schemes.tags_to_spans` (lenient, as conlleval and seqeval's default mode), so
IOB1, IOB2 with spans opening on ``I-``, IO, BIOES, BILOU and the suffix notation (``PER_B``) all give the same
spans they would score as; the spans are then written back as ``B-``/``I-`` tags.

EXAMPLE:
    >>> example_to_iob2(Example(("EU", "rejects", "German"), ("I-ORG", "O", "I-MISC"))).tags
    ('B-ORG', 'O', 'B-MISC')
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import overload

from nerforge.data.readers.options import ReadOptions
from nerforge.data.readers.registry import read_corpus
from nerforge.data.schemes import convert_tags
from nerforge.types import Corpus, Example


def tags_to_iob2(tags: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """IOB2 tags for tags of any scheme (conlleval-style decoding)."""
    return tuple(convert_tags(tags, "iob2"))


def example_to_iob2(example: Example) -> Example:
    """A copy of ``example`` with IOB2 tags."""
    return example.with_tags(tags_to_iob2(example.tags))


def corpus_to_iob2(corpus: Corpus) -> Corpus:
    """A copy of ``corpus`` with IOB2 tags and ``scheme="iob2"`` (findings kept)."""
    return replace(corpus, examples=[example_to_iob2(ex) for ex in corpus.examples], scheme="iob2")


@overload
def to_iob2(item: Corpus) -> Corpus: ...


@overload
def to_iob2(item: Example) -> Example: ...


def to_iob2(item: Corpus | Example) -> Corpus | Example:
    """IOB2 tags for a :class:`Corpus` or one :class:`Example` (see the module docstring)."""
    if isinstance(item, Corpus):
        return corpus_to_iob2(item)
    return example_to_iob2(item)


def read_examples(path: str | Path, options: ReadOptions = ReadOptions()) -> list[Example]:
    """Read ``path`` (see :func:`~nerforge.data.readers.registry.read_corpus`) and return IOB2 examples."""
    return corpus_to_iob2(read_corpus(path, options)).examples
