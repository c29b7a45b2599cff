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

import functools
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


_CONTEXT_FLAGS = frozenset({"first_word", "cap_not_first", "upper_sentence"})  # depend on the other words
_BIT = {name: 1 << k for k, name in enumerate(SHAPE_FLAGS)}


@functools.lru_cache(maxsize=1 << 16)
def _word_info(word: str) -> tuple[int, bool, bool]:
    """What a word says about itself, cached (prediction sees the same words again and again; uncached, these flags
    took about a third as long as a 2-layer student's int8 forward pass on 500 CoNLL sentences): the packed bits of its context-free flags, whether it
    has two or more cased letters (it counts towards :func:`is_upper_sentence`) and whether it ends a sentence."""
    flags = _word_flags(word, first=False, upper_sentence=False)
    bits = sum(_BIT[name] for name, on in flags.items() if on and name not in _CONTEXT_FLAGS)
    cased = sum(1 for ch in word if ch.isupper() or ch.islower())
    return bits, cased >= 2, _ends_sentence(word)


def _upper_sentence(info: Sequence[tuple[int, bool, bool]]) -> bool:
    long = sum(1 for _, is_long, _ in info if is_long)
    caps = sum(1 for bits, is_long, _ in info if is_long and bits & _BIT["all_caps"])
    return long >= 2 and 2 * caps > long


def is_upper_sentence(words: Sequence[str]) -> bool:
    """Whether most words with two or more cased letters are all caps (and there are at least two such words)."""
    return _upper_sentence([_word_info(w) for w in words])


def shape_ids(words: Sequence[str]) -> list[int]:
    """The flags of each word packed into one integer (bit ``k`` = flag ``k``); always > 0 for a word."""
    info = [_word_info(w) for w in words]
    upper = _BIT["upper_sentence"] if _upper_sentence(info) else 0
    out: list[int] = []
    first = True
    for bits, _, ends in info:
        if first:
            bits |= _BIT["first_word"]
        elif bits & _BIT["init_cap"]:
            bits |= _BIT["cap_not_first"]
        out.append(bits | upper)
        first = ends
    return out


def shape_flags(words: Sequence[str]) -> list[tuple[int, ...]]:
    """One tuple of 0/1 flags (in :data:`SHAPE_FLAGS` order) per word of a sentence."""
    return [tuple((value >> k) & 1 for k in range(NUM_SHAPE_FLAGS)) for value in shape_ids(words)]


def feature_row(first_piece_of: Mapping[int, int], length: int, ids: Sequence[int]) -> list[int]:
    """The ``word_features`` input of one window: ``ids[w]`` at the first subword of each owned word, 0 elsewhere."""
    row = [0] * length
    for word, position in first_piece_of.items():
        row[position] = ids[word]
    return row
