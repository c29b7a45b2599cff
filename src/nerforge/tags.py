"""The tag-scheme table: the one place where each scheme's rules are written, as data.

A tag is a *letter* (``B I E S L U``, or ``O``) and an entity *type*, spelt ``B-PER`` (prefix) or ``PER_B``
(suffix, as FiNER-ORD writes it). Each scheme gives its letters a *role* in a chunk (a span of tokens):

========  =====================================  ============================================================
scheme    letters (role)                         notes
========  =====================================  ============================================================
iob2      B (begin), I (inside)                  every chunk opens with B
suffix    B (begin), I (inside)                  IOB2 spelt TYPE_B
iob1      B (begin), I (inside)                  chunks open with I; B only right after a chunk of its type
io        I (inside)                             touching chunks of one type cannot be told apart
bioes     B (begin), I (inside), E (end),         a chunk ends with E, a one-token chunk is S
          S (single)
bilou     B, I, L (end), U (single)              BIOES with other letters
========  =====================================  ============================================================

Everything else is derived from this table in :mod:`nerforge.data.schemes` (validation, detection, lenient and
strict decoding, encoding), in the transition mask of the model's decoder and in the readers'
repairs. :func:`make_tag` and :func:`tag_type` are how every module spells a tag and reads its type.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache

from nerforge.errors import TagSchemeError, quote

OUTSIDE = "O"


class Role(str, Enum):
    """What a letter does in a chunk."""

    BEGIN = "begin"  # opens a chunk of several tokens (or, where there is no SINGLE letter, of any length)
    INSIDE = "inside"  # continues a chunk (and, in schemes whose chunks may open with it, opens one)
    END = "end"  # closes a chunk of several tokens
    SINGLE = "single"  # a chunk of one token


@dataclass(frozen=True)
class Scheme:
    """One tag scheme, as data.

    Attributes:
        name: the scheme's name (``--scheme``).
        letters: each letter the scheme uses and its role.
        suffix: the type is written before the letter (``PER_B``).
        begin_after_same_type_only: the BEGIN letter is used only right after a chunk of the same type (IOB1);
            chunks otherwise open with the INSIDE letter.
    """

    name: str
    letters: Mapping[str, Role]
    suffix: bool = False
    begin_after_same_type_only: bool = False

    def letter(self, role: Role) -> str | None:
        """The scheme's letter for ``role``, or ``None`` when it has none."""
        return next((k for k, r in self.letters.items() if r is role), None)

    @property
    def opening_roles(self) -> frozenset[Role]:
        """Roles whose tag may open a chunk after ``O``, another type or the sentence start."""
        if self.begin_after_same_type_only or self.letter(Role.BEGIN) is None:
            return frozenset({Role.INSIDE, Role.SINGLE})
        return frozenset({Role.BEGIN, Role.SINGLE})

    @property
    def closes_explicitly(self) -> bool:
        """Whether a chunk of several tokens must end with its END letter (BIOES, BILOU)."""
        return self.letter(Role.END) is not None

    def chunk_letters(self, length: int, *, after_same_type: bool = False) -> list[str]:
        """The letters of a chunk of ``length`` tokens (``after_same_type``: right after a chunk of its type)."""
        begin, inside = self.letter(Role.BEGIN), self.letter(Role.INSIDE)
        end, single = self.letter(Role.END) or inside, self.letter(Role.SINGLE)
        first = begin if begin is not None and (after_same_type or not self.begin_after_same_type_only) else inside
        if length == 1:
            return [single if single is not None else first]  # type: ignore[list-item]
        return [first, *[inside] * (length - 2), end]  # type: ignore[list-item]

    def spell(self, letter: str, type_: str) -> str:
        """A tag of this scheme: ``B-PER``, or ``PER_B`` in the suffix notation."""
        return f"{type_}_{letter}" if self.suffix else f"{letter}-{type_}"


_BI = {"B": Role.BEGIN, "I": Role.INSIDE}
SCHEME_TABLE: dict[str, Scheme] = {
    "iob1": Scheme("iob1", _BI, begin_after_same_type_only=True),
    "iob2": Scheme("iob2", _BI),
    "io": Scheme("io", {"I": Role.INSIDE}),
    "bioes": Scheme("bioes", {**_BI, "E": Role.END, "S": Role.SINGLE}),
    "bilou": Scheme("bilou", {**_BI, "L": Role.END, "U": Role.SINGLE}),
    "suffix": Scheme("suffix", _BI, suffix=True),
}
SCHEMES = tuple(SCHEME_TABLE)
LETTERS = frozenset(letter for s in SCHEME_TABLE.values() for letter in s.letters)  # B I E S L U
# A letter's role wherever it appears (each letter has one role in every scheme that uses it).
ROLE_OF: dict[str, Role] = {k: r for s in SCHEME_TABLE.values() for k, r in s.letters.items()}
IOB2 = SCHEME_TABLE["iob2"]  # the scheme nerforge trains, predicts and scores in

_letters = "".join(sorted(LETTERS))
PREFIX_RE = re.compile(rf"^([{_letters}])-(.+)$")
SUFFIX_RE = re.compile(rf"^(.+)_([{_letters}])$")
BARE_LETTER_RE = re.compile(rf"^[{_letters}]$")


def scheme(name: str) -> Scheme:
    """The table entry of ``name``.

    Raises:
        TagSchemeError: an unknown name (the message lists the known ones).
    """
    try:
        return SCHEME_TABLE[name]
    except KeyError:
        raise TagSchemeError(f"unknown tag scheme {name!r}; expected one of {', '.join(SCHEMES)}") from None


@dataclass(frozen=True)
class ParsedTag:
    """A tag split into its letter (``B I E S L U O``) and its type (``None`` for ``O``)."""

    prefix: str
    type: str | None

    @property
    def role(self) -> Role | None:
        """The letter's role; ``None`` for ``O``."""
        return ROLE_OF.get(self.prefix)


@lru_cache(maxsize=4096)
def parse_tag(tag: str, *, default_type: str | None = None) -> ParsedTag:
    """Split a tag into letter and type.

    ``B-PER`` and ``PER_B`` both give ``ParsedTag("B", "PER")``; a bare ``B`` gives ``default_type``.

    Raises:
        TagSchemeError: the tag has no recognisable shape.
    """
    if tag == OUTSIDE:
        return ParsedTag(OUTSIDE, None)
    m = PREFIX_RE.match(tag)
    if m:
        return ParsedTag(m.group(1), m.group(2))
    m = SUFFIX_RE.match(tag)
    if m:
        return ParsedTag(m.group(2), m.group(1))
    if BARE_LETTER_RE.match(tag):
        if default_type is None:
            raise TagSchemeError(f"tag {quote(tag)} has no entity type; give one (e.g. --entity-type SKILL)")
        return ParsedTag(tag, default_type)
    raise TagSchemeError(f"invalid tag {quote(tag)}; expected O, B-TYPE, I-TYPE (or E-/S-/L-/U-) or TYPE_B")


def tag_type(tag: str) -> str | None:
    """The entity type of a tag (``B-PER``, ``PER_B`` → ``PER``), ``None`` for ``O``.

    Raises:
        TagSchemeError: the tag has no recognisable shape.
    """
    return parse_tag(tag).type


def make_tag(role: Role | None, type_: str | None, scheme_name: str = "iob2") -> str:
    """The tag of ``role`` and ``type_`` in ``scheme_name`` (``O`` when either is ``None``), e.g.
    ``make_tag(Role.BEGIN, "PER")`` is ``B-PER``. A role the scheme lacks takes the letter that stands for it
    (INSIDE for BEGIN in IO, INSIDE for END and BEGIN for SINGLE in IOB2)."""
    if role is None or type_ is None:
        return OUTSIDE
    s = scheme(scheme_name)
    fallback = {Role.BEGIN: Role.INSIDE, Role.END: Role.INSIDE, Role.SINGLE: Role.BEGIN, Role.INSIDE: Role.INSIDE}
    letter = s.letter(role) or s.letter(fallback[role]) or s.letter(Role.INSIDE)
    return s.spell(letter, type_)  # type: ignore[arg-type]


def iob2_tags(types: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """``O`` then the BEGIN and INSIDE tags of each type, in order: the tag set of a model over ``types``."""
    return (OUTSIDE, *(make_tag(role, t) for t in types for role in (Role.BEGIN, Role.INSIDE)))
