"""Token checks: empty and whitespace-only tokens, invisible characters, whitespace at a token's edges."""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Iterator, Sequence

from nerforge.data.checks.common import WARNING, token_ref
from nerforge.types import Example, Finding

# C1 controls (U+0080-U+009F) in text are almost always Windows-1252 punctuation decoded as Latin-1.
C1_HINT = " (C1 control: Windows-1252 text decoded as Latin-1?)"


_UNNAMED = {"Cc": "control", "Co": "private use", "Cn": "unassigned", "Cs": "surrogate"}


def describe_char(ch: str) -> str:
    """``U+200B ZERO WIDTH SPACE``, or ``U+001A (control)`` for characters without a Unicode name."""
    name = unicodedata.name(ch, "")
    if name:
        return f"U+{ord(ch):04X} {name}"
    category = unicodedata.category(ch)
    return f"U+{ord(ch):04X} ({_UNNAMED.get(category, category)})"


def _names(chars: str) -> str:
    seen: list[str] = []
    for ch in chars:
        d = describe_char(ch)
        if d not in seen:
            seen.append(d)
    return ", ".join(seen)


def token_problems(token: str) -> list[tuple[str, str]]:
    """The ``(kind, detail)`` problems of one token (``detail`` reads after the token); empty for a clean token.

    Kinds: ``whitespace-token`` (empty or only whitespace), ``control-char`` (Unicode category Cc, e.g. U+001A),
    ``zero-width-char`` (category Cf, e.g. U+200B, U+FEFF) and ``padded-token`` (whitespace such as U+0020 or
    U+202F at its start or end), and ``space-in-token`` (whitespace between its characters).
    """
    if token and token.isprintable() and " " not in token:
        return []  # the fast path: almost every token
    if not token or token.isspace():
        what = _names(token) if token else "nothing"
        return [("whitespace-token", f"is whitespace only ({what})")]
    out: list[tuple[str, str]] = []
    control = "".join(ch for ch in token if unicodedata.category(ch) == "Cc" and not ch.isspace())
    if control:
        hint = C1_HINT if any(0x80 <= ord(ch) <= 0x9F for ch in control) else ""
        out.append(("control-char", f"holds control character {_names(control)}{hint}"))
    zero = "".join(ch for ch in token if unicodedata.category(ch) == "Cf")
    if zero:
        out.append(("zero-width-char", f"holds invisible character {_names(zero)}"))
    odd = "".join(ch for ch in token if unicodedata.category(ch) in ("Co", "Cn", "Cs"))
    if odd:
        out.append(("odd-char", f"holds private-use or unassigned character {_names(odd)}"))
    stripped = token.strip()
    lead, trail = token[: len(token) - len(token.lstrip())], token[len(token.rstrip()) :]
    if lead or trail:
        side = "leading and trailing" if lead and trail else "leading" if lead else "trailing"
        out.append(("padded-token", f"has {side} whitespace ({_names(lead + trail)})"))
    inner = "".join(ch for ch in stripped if ch.isspace())
    if inner:
        out.append(("space-in-token", f"holds whitespace inside ({_names(inner)})"))
    return out


def check_tokens(examples: Sequence[Example], path: str) -> Iterator[Finding]:
    """Every token problem of :func:`token_problems`, at the token's line."""
    cache: dict[str, list[tuple[str, str]]] = {}
    for ex in examples:
        for i, tok in enumerate(ex.tokens):
            problems = cache.get(tok)
            if problems is None:
                problems = cache[tok] = token_problems(tok)
            for kind, detail in problems:
                yield Finding(kind, path, ex.line_of(i), f"{token_ref(ex, i)} {detail}", WARNING)


def unusual_chars(examples: Sequence[Example]) -> dict[str, int]:
    """How many tokens hold each non-printable character (``{"U+001A": 40, "U+202F": 1}``), by code point."""
    counts: Counter[str] = Counter()
    for ex in examples:
        for tok in ex.tokens:
            if tok.isprintable():
                continue
            counts.update({f"U+{ord(ch):04X}" for ch in tok if not ch.isprintable()})
    return dict(sorted(counts.items()))
