"""Word tokenizers for raw text: character-offset formats (spaCy/tecoholic JSON, doccano, Label Studio) and prediction.

Two versions, both pure and deterministic; a model records which one cut its text (``ModelMeta.word_tokenizer``),
and changing a rule means a new name. :func:`tokenize_v2` (``nerforge.words.v2``) is the default for readers and new
models; :func:`tokenize` (``nerforge.words.v1``) is kept so that models trained with it predict as they did.

``nerforge.words.v2``, tried in this order at each position:

1. URLs (``https://...``, ``www....``) and e-mail addresses are one word; trailing ``. , ; : ! ? )`` are left out.
2. Dotted single-letter abbreviations are one word, with their final dot: ``U.S.``, ``e.g.``.
3. A possessive ``'s`` at the end of a word is its own word: ``Peter's`` gives ``Peter`` ``'s``.
4. Han ideographs and kana are one word per character.
5. A run of word characters (letters, digits, ``_``, combining marks) stays one word across an inner ``-`` ``.``
   ``&`` or apostrophe followed by more word characters (``e-mail``, ``Node.js``, ``AT&T``, ``don't``, ``3.14``)
   and across ``,`` ``:`` between digits (``1,000``, ``10:30``); a trailing ``+``, ``++`` or ``#`` belongs to it
   (``C++``, ``C#``).
6. Any other visible character is a word of its own.

Whitespace, zero-width space, word joiner and BOM separate words and are never part of one.

``nerforge.words.v1``: it is deterministic, has no model and no dependency, and records where each token lies in the text:

* a **word** is a run of letters, digits or ``_`` (``\\w``), joined across single inner hyphens and apostrophes:
  ``plug-ins``, ``don't``, ``api's``, ``e-commerce`` are one token each;
* every other non-space character is a token of its own: ``c++`` gives ``c``, ``+``, ``+``; ``django/flask.``
  gives ``django``, ``/``, ``flask``, ``.``;
* whitespace (any Unicode space, including ``\\r`` and no-break spaces) separates tokens and is never part of one.

Offsets are half-open character ranges into the text, so ``text[start:end] == token`` always holds.

EXAMPLE:
    >>> tokenize("Python/Django dev, e-commerce.")
    [('Python', 0, 6), ('/', 6, 7), ('Django', 7, 13), ('dev', 14, 17), (',', 17, 18), ('e-commerce', 19, 29), ('.', 29, 30)]
"""

from __future__ import annotations

import functools
import re
import sys
import unicodedata

TOKEN_PATTERN = r"\w+(?:['’\-]\w+)*|[^\w\s]"
_TOKEN_RE = re.compile(TOKEN_PATTERN)


def tokenize(text: str) -> list[tuple[str, int, int]]:
    """Split ``text`` into ``(token, start, end)`` triples (see the module docstring)."""
    return [(m.group(), m.start(), m.end()) for m in _TOKEN_RE.finditer(text)]


# Separators that are not Unicode whitespace: zero-width space, word joiner, BOM.
_INVISIBLE = "\u200b\u2060\ufeff"
# Scripts written without spaces between words: Hiragana, Katakana, CJK ext. A, CJK unified, CJK compatibility.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"


def _mark_ranges() -> str:
    """A character-class body with every combining mark (Unicode categories Mn, Mc, Me)."""
    parts: list[str] = []
    start: int | None = None
    for cp in range(sys.maxunicode + 2):
        is_mark = cp <= sys.maxunicode and unicodedata.category(chr(cp)).startswith("M")
        if is_mark and start is None:
            start = cp
        elif not is_mark and start is not None:
            parts.append(re.escape(chr(start)) + ("-" + re.escape(chr(cp - 1)) if cp - 1 > start else ""))
            start = None
    return "".join(parts)


@functools.lru_cache(maxsize=1)
def _pattern() -> re.Pattern[str]:
    marks = _mark_ranges()
    w = rf"(?:[^\W{_CJK}]|[{marks}])"  # a word character: letter, digit, _ or combining mark (not CJK)
    letter = rf"[^\W\d_{_CJK}]"
    apostrophe = "['\u2019]"
    possessive = rf"{apostrophe}[sS](?!{w})"
    joiner = rf"(?:[-.&]|{apostrophe}(?![sS](?!{w}))|(?<=\d)[,:](?=\d))"
    url_end = r"[^\s<>\"'.,;:!?)\]}" + _INVISIBLE + "]"
    alternatives = [
        rf"(?:https?://|www\.)[^\s<>\"{_INVISIBLE}]*{url_end}",  # 1. URL
        rf"{w}(?:{w}|[.+-])*@{w}+(?:-{w}+)*(?:\.{w}+(?:-{w}+)*)+",  # 1. e-mail
        rf"{letter}(?:\.{letter})+(?:\.(?!{w})|(?!\.?{w}))",  # 2. U.S., e.g., U.S.A
        possessive,  # 3. 's
        f"[{_CJK}]",  # 4. one CJK character
        rf"{w}+(?:{joiner}{w}+)*(?:\+\+?|#)?(?!{w})",  # 5. word, with joiners and a C++/C# suffix
        rf"[^\s{_INVISIBLE}]",  # 6. any other visible character
    ]
    return re.compile("|".join(f"(?:{a})" for a in alternatives))


def tokenize_v2(text: str) -> list[tuple[str, int, int]]:
    """Split ``text`` into ``(token, start, end)`` triples with the ``nerforge.words.v2`` rules.

    >>> [t for t, _, _ in tokenize_v2("Peter's C++ and Node.js e-mail, don't!")]
    ['Peter', "'s", 'C++', 'and', 'Node.js', 'e-mail', ',', "don't", '!']
    """
    return [(m.group(), m.start(), m.end()) for m in _pattern().finditer(text)]
