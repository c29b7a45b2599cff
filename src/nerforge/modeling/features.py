"""Word shape features: what the uncased encoder cannot see (capitals, digits, punctuation), from the word strings.

One pure function, :func:`shape_flags`, turns the words of a sentence into a tuple of binary flags per word
(:data:`SHAPE_FLAGS`); :func:`shape_ids` packs them into one integer per word (bit ``k`` is flag ``k``). Training
(:func:`nerforge.training.dataset.build_split`) and prediction (:mod:`nerforge.modeling.runtime`) both call
:func:`shape_ids` on the original words, so the features are identical in both. The ids go to the model as the
``word_features`` input, on the first subword of each labelled word (0 elsewhere), where
:class:`nerforge.modeling.model.NerforgeTokenClassifier` unpacks the bits and projects them next to the encoder's
hidden state.

EXAMPLE:
    >>> [f for f, on in zip(SHAPE_FLAGS, shape_flags(["Acme", "hired", "McDonald"])[2]) if on]
    ['word', 'init_cap', 'mixed_case', 'cap_not_first']
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence

SHAPE_FLAGS: tuple[str, ...] = (
    "word",  # always on: a real word (so a word with no other flag still differs from padding)
    "init_cap",  # starts with an uppercase letter and is not all caps (Paris, McDonald, I)
    "all_caps",  # at least two cased letters, all uppercase (IBM, U.S., AL-AIN)
    "all_lower",  # cased letters, all lowercase (the, e-mail)
    "mixed_case",  # upper- and lowercase letters, not just a leading capital (iPhone, McDonald, eBay)
    "has_digit",  # at least one digit (A4, 1996-12-06)
    "all_digits",  # digits only (1996)
    "number_like",  # digits with , . - / : % + only (1,000 3.5 1996-12-06 2.5%)
    "punctuation",  # neither a letter nor a digit (, ( -- & ...)
    "inner_punct",  # a letter, and a symbol between two letters/digits (O'Neill, Smith-Jones, U.S., AT&T)
    "first_word",  # first word of the sentence, or the word after . ! ? (casing there says little)
    "cap_not_first",  # init_cap and not first_word: the classic proper-noun cue
    "upper_sentence",  # most cased words of the sentence are all caps (a headline: casing says little)
    "uncased_letters",  # letters, none of them cased (CJK, Arabic, Hebrew...)
)
FLAG_INDEX: Mapping[str, int] = {name: k for k, name in enumerate(SHAPE_FLAGS)}
NUM_SHAPE_FLAGS = len(SHAPE_FLAGS)
FEATURE_NAMES = ("shape",)  # values of model.features

_SENTENCE_END = frozenset(".!?…")
_NUMBER_CHARS = frozenset(",.-/:%+")


def _is_punct(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "PS"


def _ends_sentence(word: str) -> bool:
    return bool(word) and all(ch in _SENTENCE_END for ch in word)


def _word_flags(word: str, first: bool, upper_sentence: bool) -> dict[str, bool]:
    cased = [ch for ch in word if ch.isupper() or ch.islower()]
    letters = [ch for ch in word if ch.isalpha()]
    uppers = sum(ch.isupper() for ch in cased)
    digits = sum(ch.isdigit() for ch in word)
    all_caps = len(cased) >= 2 and uppers == len(cased)
    init_cap = bool(word) and word[0].isupper() and not all_caps
    mixed = 0 < uppers < len(cased) and not (uppers == 1 and cased[0].isupper())
    inner = bool(letters) and any(
        not word[i].isalnum() and word[i - 1].isalnum() and word[i + 1].isalnum() for i in range(1, len(word) - 1)
    )
    return {
        "word": True,
        "init_cap": init_cap,
        "all_caps": all_caps,
        "all_lower": bool(cased) and uppers == 0,
        "mixed_case": mixed,
        "has_digit": digits > 0,
        "all_digits": bool(word) and digits == len(word),
        "number_like": digits > 0 and all(ch.isdigit() or ch in _NUMBER_CHARS for ch in word),
        "punctuation": bool(word) and all(_is_punct(ch) for ch in word),
        "inner_punct": inner,
        "first_word": first,
        "cap_not_first": init_cap and not first,
        "upper_sentence": upper_sentence,
        "uncased_letters": bool(letters) and not cased,
    }


def is_upper_sentence(words: Sequence[str]) -> bool:
    """Whether most words with two or more cased letters are all caps (and there are at least two such words)."""
    cased = [[ch for ch in w if ch.isupper() or ch.islower()] for w in words]
    long = [c for c in cased if len(c) >= 2]
    caps = sum(all(ch.isupper() for ch in c) for c in long)
    return len(long) >= 2 and 2 * caps > len(long)


def shape_flags(words: Sequence[str]) -> list[tuple[int, ...]]:
    """One tuple of 0/1 flags (in :data:`SHAPE_FLAGS` order) per word of a sentence."""
    upper = is_upper_sentence(words)
    out: list[tuple[int, ...]] = []
    for i, word in enumerate(words):
        first = i == 0 or _ends_sentence(words[i - 1])
        flags = _word_flags(word, first, upper)
        out.append(tuple(int(flags[name]) for name in SHAPE_FLAGS))
    return out


def shape_ids(words: Sequence[str]) -> list[int]:
    """The flags of each word packed into one integer (bit ``k`` = flag ``k``); always > 0 for a word."""
    return [sum(bit << k for k, bit in enumerate(flags)) for flags in shape_flags(words)]


def feature_row(first_piece_of: Mapping[int, int], length: int, ids: Sequence[int]) -> list[int]:
    """The ``word_features`` input of one window: ``ids[w]`` at the first subword of each owned word, 0 elsewhere."""
    row = [0] * length
    for word, position in first_piece_of.items():
        row[position] = ids[word]
    return row
