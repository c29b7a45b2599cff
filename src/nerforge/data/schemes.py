"""Tag schemes as pure functions derived from the scheme table (:mod:`nerforge.tags`): decode, encode, convert,
validate, detect, and which tag may follow which.

Schemes: ``iob1``, ``iob2``, ``io``, ``bioes``, ``bilou`` and ``suffix`` (IOB2 prefixes written after the type,
``PER_B``, as in FiNER-ORD). Spans are half-open token ranges. No function here branches on a scheme's name: each
reads the roles the table gives the scheme's letters (begin, inside, end, single).

Decoding (:func:`tags_to_spans`) is the lenient, conlleval-compatible one that seqeval uses by default: an inside
tag after ``O`` or after another type opens a span, so every scheme decodes with one set of rules over roles.
:func:`strict_tags_to_spans` is seqeval's strict IOB2 mode, used for metrics. We keep our own implementation
because it is the core of the product: it must report every violation with its position (seqeval raises on the
first), accept the suffix notation, and run without seqeval installed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from nerforge.errors import TagSchemeError
from nerforge.tags import (  # re-exported: the scheme vocabulary of the data layer
    BARE_LETTER_RE,
    IOB2,
    OUTSIDE,
    PREFIX_RE,
    SCHEME_TABLE,
    SCHEMES,
    SUFFIX_RE,
    ParsedTag,
    Role,
    Scheme,
    make_tag,
    parse_tag,
    scheme,
    tag_type,
)
from nerforge.types import Span

__all__ = [
    "OUTSIDE",
    "SCHEMES",
    "ParsedTag",
    "Role",
    "Scheme",
    "Violation",
    "convert_tags",
    "detect_scheme",
    "format_tag",
    "is_bare_type",
    "is_valid_tag",
    "make_tag",
    "may_follow",
    "parse_tag",
    "spans_to_tags",
    "strict_tags_to_spans",
    "tag_type",
    "tags_to_spans",
    "validate_tags",
]

# A tag that starts like a prefix but is broken (``I-``, ``b-per``, ``B_PER``) is malformed, never a bare type.
# A bare type is a word: letters, digits and the joiners of names such as XBRL's ``us-gaap:Revenues`` or ``C++``.
_BARE_TYPE_RE = re.compile(r"\w[\w\-:.+/&]*")
_BROKEN_PREFIX_RE = re.compile(r"^[BIESLUO][-_]|^[bieslu][-_]|[-_][BIESLU]?$")
_OPEN = frozenset({Role.BEGIN, Role.INSIDE})  # roles after which a chunk is still open
_CONTINUE = frozenset({Role.INSIDE, Role.END})  # roles that continue an open chunk


@dataclass(frozen=True)
class Violation:
    """One place where a tag sequence breaks the rules of a scheme.

    ``kind``: ``letter`` (a letter the scheme does not use), ``continuation`` (a tag that must continue a chunk of
    its type and does not) or ``unclosed`` (a chunk left open where the scheme closes chunks explicitly).
    """

    index: int
    tag: str
    message: str
    kind: str = "continuation"


def is_valid_tag(tag: str) -> bool:
    """Whether ``tag`` has the shape of a tag in any scheme (``O``, ``B-X``, ``X_B``, or a bare ``B``)."""
    return tag == OUTSIDE or bool(PREFIX_RE.match(tag) or SUFFIX_RE.match(tag) or BARE_LETTER_RE.match(tag))


def is_bare_type(tag: str) -> bool:
    """Whether ``tag`` is a bare entity type (``SKILL``, ``us-gaap:Revenues``): not a tag of any scheme, not an
    integer id, no whitespace or punctuation other than the joiners of names, and not a broken prefix form such as
    ``I-``, ``b-per`` or ``B_PER``. Readers take bare types as IO tags (``I-SKILL``) when a file or a label list has
    no prefixed tags."""
    return (
        bool(_BARE_TYPE_RE.fullmatch(tag))
        and any(c.isalpha() for c in tag)
        and not is_valid_tag(tag)
        and not _BROKEN_PREFIX_RE.search(tag)
    )


def format_tag(prefix: str, type_: str | None, scheme_name: str = "iob2") -> str:
    """Write a letter and type in the notation of ``scheme_name`` (``suffix`` gives ``TYPE_B``)."""
    if prefix == OUTSIDE or type_ is None:
        return OUTSIDE
    return scheme(scheme_name).spell(prefix, type_)


def _parsed(tags: Sequence[str], default_type: str | None) -> list[ParsedTag]:
    return [parse_tag(t, default_type=default_type) for t in tags]


# -- lenient decoding (conlleval's rules, over roles) ------------------------------------------------------------


def _ends(prev: ParsedTag, cur: ParsedTag) -> bool:
    """Whether a span open at ``prev`` ends before ``cur``."""
    if prev.role in (Role.END, Role.SINGLE):
        return True
    if prev.role in _OPEN and cur.role in (Role.BEGIN, Role.SINGLE, None):
        return True
    return prev.prefix != OUTSIDE and prev.type != cur.type


def _starts(prev: ParsedTag, cur: ParsedTag) -> bool:
    """Whether ``cur`` opens a span after ``prev``."""
    if cur.role in (Role.BEGIN, Role.SINGLE):
        return True
    if cur.role in _CONTINUE and prev.role in (Role.END, Role.SINGLE, None):
        return True
    return cur.prefix != OUTSIDE and prev.type != cur.type


def tags_to_spans(tags: Sequence[str], *, default_type: str | None = None) -> list[Span]:
    """Decode tags of any scheme (conlleval-style, lenient) into spans.

    >>> tags_to_spans(["I-PER", "I-PER", "O", "B-LOC"])
    [Span(start=0, end=2, label='PER'), Span(start=3, end=4, label='LOC')]
    """
    parsed = _parsed(tags, default_type)
    spans: list[Span] = []
    outside = ParsedTag(OUTSIDE, None)
    prev = outside
    start: int | None = None
    for i, cur in enumerate([*parsed, outside]):
        if start is not None and _ends(prev, cur):
            spans.append(Span(start, i, prev.type or ""))
            start = None
        if i < len(parsed) and _starts(prev, cur):
            start = i
        prev = cur
    return spans


def strict_tags_to_spans(tags: Sequence[str], scheme_name: str = "iob2") -> list[Span]:
    """Seqeval's strict decoding (``mode="strict"``): a span is a tag that may open one, followed by the longest run
    of tags of its type that continue it (in IOB2: ``B-X`` then ``I-X``\\ s); other tags are ignored."""
    s = scheme(scheme_name)
    opening = s.opening_roles
    spans: list[Span] = []
    i, n = 0, len(tags)
    while i < n:
        p = parse_tag(tags[i])
        if p.role in opening and p.prefix in s.letters:
            j = i + 1
            while p.role in _OPEN and j < n:  # a chunk that may go on
                q = parse_tag(tags[j])
                if q.type != p.type or q.role not in _CONTINUE or q.prefix not in s.letters:
                    break
                j += 1
                if q.role is Role.END:
                    break
            spans.append(Span(i, j, p.type or ""))
            i = j
        else:
            i += 1
    return spans


# -- encoding --------------------------------------------------------------------------------------------------


def spans_to_tags(spans: Iterable[Span], length: int, scheme_name: str = "iob2") -> list[str]:
    """Encode non-overlapping spans as ``length`` tags in ``scheme_name``.

    Raises:
        TagSchemeError: spans overlap or fall outside ``[0, length)``, or an unknown scheme.
    """
    s = scheme(scheme_name)
    tags = [OUTSIDE] * length
    prev: Span | None = None
    for span in sorted(spans):
        if span.end > length:
            raise TagSchemeError(f"span [{span.start}, {span.end}) {span.label} is past the end ({length} tokens)")
        if prev is not None and span.start < prev.end:
            raise TagSchemeError(f"spans [{prev.start}, {prev.end}) and [{span.start}, {span.end}) overlap")
        touching = prev is not None and prev.end == span.start and prev.label == span.label
        for k, letter in enumerate(s.chunk_letters(span.end - span.start, after_same_type=touching)):
            tags[span.start + k] = s.spell(letter, span.label)
        prev = span
    return tags


def convert_tags(tags: Sequence[str], target: str = "iob2", *, default_type: str | None = None) -> list[str]:
    """Convert tags of any scheme to ``target`` through conlleval-style spans."""
    return spans_to_tags(tags_to_spans(tags, default_type=default_type), len(tags), target)


# -- rules: which tag may follow which -------------------------------------------------------------------------


def _must_continue(s: Scheme, p: ParsedTag) -> bool:
    """Whether ``p`` (of ``s``) may only continue a chunk of its type (it cannot open one after another chunk)."""
    return p.role is not None and p.role not in s.opening_roles


def _must_be_continued(s: Scheme, p: ParsedTag) -> bool:
    """Whether a chunk at ``p`` must go on with a continuation of its type (schemes that close chunks explicitly)."""
    return s.closes_explicitly and p.role in _OPEN


def _continues(prev: ParsedTag, cur: ParsedTag) -> bool:
    return prev.type == cur.type and prev.role in _OPEN and cur.prefix != OUTSIDE


def _continues_iob1(s: Scheme, prev: ParsedTag, cur: ParsedTag) -> bool:
    """IOB1's BEGIN opens a chunk right after one of its type, whatever that one's role."""
    return s.begin_after_same_type_only and cur.role is Role.BEGIN and prev.type == cur.type


def may_follow(prev: str, cur: str, scheme_name: str = "iob2") -> bool:
    """Whether tag ``cur`` may directly follow tag ``prev`` in ``scheme_name`` (the CRF's transition mask).

    Both must be tags of the scheme (``O`` or a letter it uses); a sentence may still not *start* with a tag that
    must continue a chunk (see :func:`validate_tags`).
    """
    s = scheme(scheme_name)
    p, c = parse_tag(prev), parse_tag(cur)
    if _must_continue(s, c) and not (_continues(p, c) or _continues_iob1(s, p, c)):
        return False
    return not (_must_be_continued(s, p) and not (c.role in _CONTINUE and _continues(p, c)))


def validate_tags(tags: Sequence[str], scheme_name: str, *, default_type: str | None = None) -> list[Violation]:
    """Every place where ``tags`` break the strict rules of ``scheme_name`` (empty when valid)."""
    s = scheme(scheme_name)
    try:
        parsed = _parsed(tags, default_type)
    except TagSchemeError as exc:
        bad = next(i for i, t in enumerate(tags) if not _tag_ok(t, default_type))
        return [Violation(bad, tags[bad], str(exc), "letter")]
    out: list[Violation] = []
    outside = ParsedTag(OUTSIDE, None)
    for i, cur in enumerate(parsed):
        if cur.prefix == OUTSIDE:
            continue
        tag = tags[i]
        if cur.prefix not in s.letters:
            out.append(Violation(i, tag, f"prefix {cur.prefix}- is not used in {s.name}", "letter"))
            continue
        prev = parsed[i - 1] if i else outside
        nxt = parsed[i + 1] if i + 1 < len(parsed) else outside
        if _must_continue(s, cur) and not (_continues(prev, cur) or _continues_iob1(s, prev, cur)):
            before = tags[i - 1] if i else "the sentence start"
            out.append(Violation(i, tag, f"{tag} follows {before}; it only continues a span of its type"))
        if _must_be_continued(s, cur) and not (nxt.role in _CONTINUE and _continues(cur, nxt)):
            out.append(Violation(i, tag, f"{tag} is not followed by a continuation of its span", "unclosed"))
    return out


def _tag_ok(tag: str, default_type: str | None) -> bool:
    try:
        parse_tag(tag, default_type=default_type)
    except TagSchemeError:
        return False
    return True


# -- detection -------------------------------------------------------------------------------------------------


def detect_scheme(sequences: Iterable[Sequence[str]], *, default_type: str | None = None) -> str:
    """Guess the scheme of a corpus from its tags, from the table alone.

    The suffix notation gives ``suffix``. Otherwise the candidates are the schemes whose letters cover every letter
    seen, fewest letters first (then in table order: IOB2 before IOB1); the first one the whole corpus obeys wins,
    else the first candidate (a messy B/I corpus reads as IOB2, which decodes leniently anyway). A corpus of ``O``
    only is IOB2.
    """
    corpus = [list(seq) for seq in sequences]
    seen: set[str] = set()
    suffix_notation = False
    for seq in corpus:
        for t in seq:
            if t != OUTSIDE and not PREFIX_RE.match(t) and SUFFIX_RE.match(t):
                suffix_notation = True
            seen.add(parse_tag(t, default_type=default_type).prefix)
    if suffix_notation:
        return "suffix"
    seen.discard(OUTSIDE)
    if not seen:
        return IOB2.name
    plain = [s for s in SCHEME_TABLE.values() if not s.suffix]
    ranked = sorted(plain, key=lambda s: (len(seen - set(s.letters)), len(s.letters), s.name != IOB2.name))
    covering = [s for s in ranked if seen <= set(s.letters)]
    for s in covering:
        if all(not validate_tags(seq, s.name, default_type=default_type) for seq in corpus):
            return s.name
    return (covering or ranked)[0].name
