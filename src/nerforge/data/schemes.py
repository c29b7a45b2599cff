"""Tag schemes as pure functions: parse, detect, decode, encode, convert and validate.

Schemes: ``iob1``, ``iob2``, ``io``, ``bioes``, ``bilou`` and ``suffix`` (IOB2 prefixes written after the type,
``PER_B``, as in FiNER-ORD). Spans are half-open token ranges.

Decoding (:func:`tags_to_spans`) is the lenient, conlleval-compatible one that seqeval uses by default: an ``I-``
after ``O`` or after another type opens a span, so IOB1, IOB2 with stray ``I-`` starts, IO, BIOES and BILOU all
decode with one table. :func:`strict_tags_to_spans` is seqeval's strict IOB2 mode, used for metrics.
We keep our own implementation because it is the core of the product: it must report every violation with its
position (seqeval raises on the first), accept the suffix notation, and run without seqeval installed.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from nerforge.errors import TagSchemeError, quote
from nerforge.types import Span

SCHEMES = ("iob1", "iob2", "io", "bioes", "bilou", "suffix")
OUTSIDE = "O"

_PREFIX_RE = re.compile(r"^([BIESLU])-(.+)$")
_SUFFIX_RE = re.compile(r"^(.+)_([BIESLU])$")
_BARE_RE = re.compile(r"^[BIESLU]$")
# A tag that starts like a prefix but is broken (``I-``, ``b-per``, ``B_PER``) is malformed, never a bare type.
# A bare type is a word: letters, digits and the joiners of names such as XBRL's ``us-gaap:Revenues`` or ``C++``.
_BARE_TYPE_RE = re.compile(r"\w[\w\-:.+/&]*")
_BROKEN_PREFIX_RE = re.compile(r"^[BIESLUO][-_]|^[bieslu][-_]|[-_][BIESLU]?$")
# BILOU letters mapped onto BIOES ones: decoding only needs one alphabet.
_TO_BIOES = {"L": "E", "U": "S"}
_TO_BILOU = {"E": "L", "S": "U"}


@dataclass(frozen=True)
class ParsedTag:
    """A tag split into its prefix (``B I E S L U O``) and its type (``None`` for ``O`` and bare prefixes)."""

    prefix: str
    type: str | None


@dataclass(frozen=True)
class Violation:
    """One place where a tag sequence breaks the rules of a scheme."""

    index: int
    tag: str
    message: str


def is_valid_tag(tag: str) -> bool:
    """Whether ``tag`` has the shape of a tag in any scheme (``O``, ``B-X``, ``X_B``, or a bare ``B``)."""
    return tag == OUTSIDE or bool(_PREFIX_RE.match(tag) or _SUFFIX_RE.match(tag) or _BARE_RE.match(tag))


def is_bare_type(tag: str) -> bool:
    """Whether ``tag`` is a bare entity type (``SKILL``, ``us-gaap:Revenues``): not a tag of any scheme, not an
    integer id, no whitespace or punctuation other than the joiners of names, and not a broken prefix form such as ``I-``, ``b-per`` or ``B_PER``. Readers take
    bare types as IO tags (``I-SKILL``) when a file or a label list has no prefixed tags."""
    return (
        bool(_BARE_TYPE_RE.fullmatch(tag))
        and any(c.isalpha() for c in tag)
        and not is_valid_tag(tag)
        and not _BROKEN_PREFIX_RE.search(tag)
    )


@lru_cache(maxsize=4096)
def parse_tag(tag: str, *, default_type: str | None = None) -> ParsedTag:
    """Split a tag into prefix and type.

    ``B-PER`` and ``PER_B`` both give ``ParsedTag("B", "PER")``; a bare ``B`` gives ``default_type``.

    Raises:
        TagSchemeError: the tag has no recognisable shape.
    """
    if tag == OUTSIDE:
        return ParsedTag(OUTSIDE, None)
    m = _PREFIX_RE.match(tag)
    if m:
        return ParsedTag(m.group(1), m.group(2))
    m = _SUFFIX_RE.match(tag)
    if m:
        return ParsedTag(m.group(2), m.group(1))
    if _BARE_RE.match(tag):
        if default_type is None:
            raise TagSchemeError(f"tag {quote(tag)} has no entity type; give one (e.g. --entity-type SKILL)")
        return ParsedTag(tag, default_type)
    raise TagSchemeError(f"invalid tag {quote(tag)}; expected O, B-TYPE, I-TYPE (or E-/S-/L-/U-) or TYPE_B")


def format_tag(prefix: str, type_: str | None, scheme: str = "iob2") -> str:
    """Write a prefix and type in the notation of ``scheme`` (``suffix`` gives ``TYPE_B``)."""
    if prefix == OUTSIDE or type_ is None:
        return OUTSIDE
    if scheme == "suffix":
        return f"{type_}_{prefix}"
    return f"{prefix}-{type_}"


def _check_scheme(scheme: str) -> None:
    if scheme not in SCHEMES:
        raise TagSchemeError(f"unknown tag scheme {scheme!r}; expected one of {', '.join(SCHEMES)}")


def _bioes_letters(tags: Sequence[str], default_type: str | None) -> list[ParsedTag]:
    out = []
    for t in tags:
        p = parse_tag(t, default_type=default_type)
        out.append(ParsedTag(_TO_BIOES.get(p.prefix, p.prefix), p.type))
    return out


def _ends(prev: ParsedTag, cur: ParsedTag) -> bool:
    """Whether a span open at ``prev`` ends before ``cur`` (conlleval/seqeval lenient rules)."""
    if prev.prefix in ("E", "S"):
        return True
    if prev.prefix in ("B", "I") and cur.prefix in ("B", "S", OUTSIDE):
        return True
    return prev.prefix != OUTSIDE and prev.type != cur.type


def _starts(prev: ParsedTag, cur: ParsedTag) -> bool:
    """Whether ``cur`` opens a span after ``prev`` (conlleval/seqeval lenient rules)."""
    if cur.prefix in ("B", "S"):
        return True
    if cur.prefix in ("I", "E") and prev.prefix in ("E", "S", OUTSIDE):
        return True
    return cur.prefix != OUTSIDE and prev.type != cur.type


def tags_to_spans(tags: Sequence[str], *, default_type: str | None = None) -> list[Span]:
    """Decode tags of any scheme (conlleval-style, lenient) into spans.

    >>> tags_to_spans(["I-PER", "I-PER", "O", "B-LOC"])
    [Span(start=0, end=2, label='PER'), Span(start=3, end=4, label='LOC')]
    """
    parsed = _bioes_letters(tags, default_type)
    spans: list[Span] = []
    outside = ParsedTag(OUTSIDE, None)
    prev = outside
    start: int | None = None
    for i, cur in enumerate(parsed + [outside]):
        if start is not None and _ends(prev, cur):
            spans.append(Span(start, i, prev.type or ""))
            start = None
        if i < len(parsed) and _starts(prev, cur):
            start = i
        prev = cur
    return spans


def strict_tags_to_spans(tags: Sequence[str]) -> list[Span]:
    """Seqeval's strict IOB2 decoding: a span is ``B-X`` followed by the longest run of ``I-X``.

    ``I-`` tags that do not continue a span are ignored, as seqeval's ``mode="strict", scheme=IOB2`` does.
    """
    spans: list[Span] = []
    i, n = 0, len(tags)
    while i < n:
        p = parse_tag(tags[i])
        if p.prefix == "B":
            j = i + 1
            while j < n:
                q = parse_tag(tags[j])
                if q.prefix != "I" or q.type != p.type:
                    break
                j += 1
            spans.append(Span(i, j, p.type or ""))
            i = j
        else:
            i += 1
    return spans


def spans_to_tags(spans: Iterable[Span], length: int, scheme: str = "iob2") -> list[str]:
    """Encode non-overlapping spans as ``length`` tags in ``scheme``.

    Raises:
        TagSchemeError: spans overlap or fall outside ``[0, length)``.
    """
    _check_scheme(scheme)
    tags = [OUTSIDE] * length
    ordered = sorted(spans)
    prev: Span | None = None
    for s in ordered:
        if s.end > length:
            raise TagSchemeError(f"span [{s.start}, {s.end}) {s.label} is past the end ({length} tokens)")
        if prev is not None and s.start < prev.end:
            raise TagSchemeError(f"spans [{prev.start}, {prev.end}) and [{s.start}, {s.end}) overlap")
        n = s.end - s.start
        if scheme in ("iob2", "suffix"):
            letters = ["B"] + ["I"] * (n - 1)
        elif scheme == "io":
            letters = ["I"] * n
        elif scheme == "iob1":
            touching = prev is not None and prev.end == s.start and prev.label == s.label
            letters = ["B" if touching else "I"] + ["I"] * (n - 1)
        else:
            letters = ["S"] if n == 1 else ["B"] + ["I"] * (n - 2) + ["E"]
            if scheme == "bilou":
                letters = [_TO_BILOU.get(x, x) for x in letters]
        for k, letter in enumerate(letters):
            tags[s.start + k] = format_tag(letter, s.label, scheme)
        prev = s
    return tags


def convert_tags(
    tags: Sequence[str], target: str = "iob2", *, default_type: str | None = None
) -> list[str]:
    """Convert tags of any scheme to ``target`` through conlleval-style spans."""
    return spans_to_tags(tags_to_spans(tags, default_type=default_type), len(tags), target)


def detect_scheme(sequences: Iterable[Sequence[str]], *, default_type: str | None = None) -> str:
    """Guess the scheme of a corpus from its tags.

    Rules, in order: suffix notation gives ``suffix``; any ``L-``/``U-`` gives ``bilou``; any ``E-``/``S-`` gives
    ``bioes``; no ``B-`` at all (only ``I-``) gives ``io``; ``B-`` only ever directly after the same type while
    ``I-`` opens spans gives ``iob1``; otherwise ``iob2``.
    """
    prefixes: Counter[str] = Counter()
    suffix_notation = False
    b_opens = False  # a B- that starts a span after O / another type / sentence start
    i_opens = False
    for seq in sequences:
        prev = ParsedTag(OUTSIDE, None)
        for t in seq:
            if t != OUTSIDE and not _PREFIX_RE.match(t) and _SUFFIX_RE.match(t):
                suffix_notation = True
            p = parse_tag(t, default_type=default_type)
            prefixes[p.prefix] += 1
            if p.prefix == "B" and (prev.prefix == OUTSIDE or prev.type != p.type):
                b_opens = True
            if p.prefix == "I" and (prev.prefix == OUTSIDE or prev.type != p.type):
                i_opens = True
            prev = p
    if suffix_notation:
        return "suffix"
    if prefixes["L"] or prefixes["U"]:
        return "bilou"
    if prefixes["E"] or prefixes["S"]:
        return "bioes"
    if not prefixes["B"] and prefixes["I"]:
        return "io"
    if prefixes["B"] and not b_opens and i_opens:
        return "iob1"
    return "iob2"


# Allowed (previous letter, current letter) pairs when the types agree, per scheme; "^" is the sentence start.
_CONTINUES = {"I", "E"}


def validate_tags(tags: Sequence[str], scheme: str, *, default_type: str | None = None) -> list[Violation]:
    """Every place where ``tags`` break the strict rules of ``scheme`` (empty when valid)."""
    _check_scheme(scheme)
    out: list[Violation] = []
    try:
        parsed = [parse_tag(t, default_type=default_type) for t in tags]
    except TagSchemeError as exc:
        bad = next(i for i, t in enumerate(tags) if not _tag_ok(t, default_type))
        return [Violation(bad, tags[bad], str(exc))]
    allowed = {
        "iob1": {"B", "I"},
        "iob2": {"B", "I"},
        "suffix": {"B", "I"},
        "io": {"I"},
        "bioes": {"B", "I", "E", "S"},
        "bilou": {"B", "I", "L", "U"},
    }[scheme]
    outside = ParsedTag(OUTSIDE, None)
    for i, cur in enumerate(parsed):
        prev = parsed[i - 1] if i else outside
        nxt = parsed[i + 1] if i + 1 < len(parsed) else outside
        tag = tags[i]
        if cur.prefix == OUTSIDE:
            continue
        if cur.prefix not in allowed:
            out.append(Violation(i, tag, f"prefix {cur.prefix}- is not used in {scheme}"))
            continue
        same_prev = prev.prefix != OUTSIDE and prev.type == cur.type
        same_next = nxt.prefix != OUTSIDE and nxt.type == cur.type
        letter = _TO_BIOES.get(cur.prefix, cur.prefix)
        nletter = _TO_BIOES.get(nxt.prefix, nxt.prefix)
        pletter = _TO_BIOES.get(prev.prefix, prev.prefix)
        if scheme in ("iob2", "suffix"):
            if letter == "I" and not same_prev:
                out.append(Violation(i, tag, f"{tag} follows {tags[i - 1] if i else 'the sentence start'}"))
        elif scheme == "iob1":
            if letter == "B" and not same_prev:
                out.append(Violation(i, tag, f"{tag} opens a span; IOB1 uses B- only right after the same type"))
        elif scheme in ("bioes", "bilou"):
            if letter in _CONTINUES and not (same_prev and pletter in ("B", "I")):
                out.append(Violation(i, tag, f"{tag} does not continue a span"))
            if letter in ("B", "I") and not (same_next and nletter in _CONTINUES):
                out.append(Violation(i, tag, f"{tag} is not followed by a continuation of its span"))
    return out


def _tag_ok(tag: str, default_type: str | None) -> bool:
    try:
        parse_tag(tag, default_type=default_type)
    except TagSchemeError:
        return False
    return True
