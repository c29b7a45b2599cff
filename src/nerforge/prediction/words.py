"""Word tokenizers for raw text, by versioned name, with character offsets.

A model tags *words*, so raw text must be cut into words exactly as the training text was. The tokenizers are the
readers' ones for character-offset formats (:mod:`nerforge.data.readers.tokenize`, where the rules are): one
tokenizer serves both, so a model trained on spaCy/doccano/Label Studio data sees the same words at prediction
time. ``nerforge.words.v2`` (the default) keeps ``C++``, ``Node.js``, ``U.S.``, URLs and e-mails whole, as
CoNLL-style pre-tokenised training data does; ``nerforge.words.v1`` splits every punctuation character.
Offsets are half-open and ``text[start:end] == word.text`` always holds.

A model records its tokenizer's name in ``ModelMeta.word_tokenizer``; changing the rules means a new name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from nerforge.data.readers.tokenize import tokenize, tokenize_v2
from nerforge.errors import ModelError

WORDS_V1 = "nerforge.words.v1"
WORDS_V2 = "nerforge.words.v2"
DEFAULT_WORDS = WORDS_V2


class Word(NamedTuple):
    """One word of a raw text: its characters and their half-open offsets ``[start, end)`` in the text."""

    text: str
    start: int
    end: int


def tokenize_words_v1(text: str) -> list[Word]:
    """Cut ``text`` into words with character offsets (``nerforge.words.v1``).

    >>> [w.text for w in tokenize_words_v1("e-mail me, don't wait!")]
    ['e-mail', 'me', ',', "don't", 'wait', '!']
    """
    return [Word(*triple) for triple in tokenize(text)]


def tokenize_words(text: str) -> list[Word]:
    """Cut ``text`` into words with character offsets (``nerforge.words.v2``, the default).

    >>> [w.text for w in tokenize_words("Use C++ or Node.js, e-mail me!")]
    ['Use', 'C++', 'or', 'Node.js', ',', 'e-mail', 'me', '!']
    >>> tokenize_words("  hi ")
    [Word(text='hi', start=2, end=4)]
    """
    return [Word(*triple) for triple in tokenize_v2(text)]


WordTokenizer = Callable[[str], list[Word]]

_TOKENIZERS: dict[str, WordTokenizer] = {WORDS_V1: tokenize_words_v1, WORDS_V2: tokenize_words}


def get_word_tokenizer(name: str) -> WordTokenizer:
    """The word tokenizer registered under ``name`` (a model's ``ModelMeta.word_tokenizer``).

    Raises:
        ModelError: the name is unknown (a model saved by a newer nerforge).
    """
    try:
        return _TOKENIZERS[name]
    except KeyError:
        known = ", ".join(sorted(_TOKENIZERS))
        raise ModelError(
            f"unknown word tokenizer {name!r} in the model metadata; this nerforge knows {known} (upgrade nerforge)"
        ) from None
