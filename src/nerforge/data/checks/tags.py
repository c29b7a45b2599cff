"""Tag checks: spans that open with ``I-``, empty, malformed, corrupt and suspiciously rare tags."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Sequence

from nerforge.data.checks.common import ERROR, INFO, WARNING, surface, token_ref
from nerforge.data.schemes import OUTSIDE, Role, parse_tag
from nerforge.data.schemes import scheme as scheme_rules
from nerforge.errors import TagSchemeError, quote
from nerforge.tags import LETTERS
from nerforge.types import Example, Finding, Span

# A type seen once is suspicious only when some other type of the file is at least this frequent.
RARE_TYPE_CONTRAST = 20
_EMBEDDED_RE = re.compile(f"[{''.join(sorted(LETTERS))}]-")
_LOWER_THEN_O_RE = re.compile(r"[a-z]O$")


def check_i_starts(
    examples: Sequence[Example], spans: Sequence[Sequence[Span]], path: str, scheme: str
) -> Iterator[Finding]:
    """Spans whose first tag is ``I-``/``E-`` (or ``X_I``): after ``O``, after another type, or at sentence start.

    In schemes whose chunks open with the INSIDE letter (IOB1, IO: the scheme table says so) every span opens this
    way, so those findings are ``info``; elsewhere they are warnings.
    """
    severity = INFO if Role.INSIDE in scheme_rules(scheme).opening_roles else WARNING
    for ex, ex_spans in zip(examples, spans, strict=True):
        for span in ex_spans:
            tag = ex.tags[span.start]
            if parse_tag(tag).role not in (Role.INSIDE, Role.END):
                continue
            before = ex.tags[span.start - 1] if span.start else "the sentence start"
            words = surface(ex.tokens[span.start : span.end], 40)
            at = f" (token {span.start + 1})" if ex.token_lines is None else ""
            message = f"{tag} opens a span after {before}: '{words}'{at}"
            yield Finding("i-start", path, ex.line_of(span.start), message, severity)


def check_tag_shapes(examples: Sequence[Example], path: str) -> Iterator[Finding]:
    """Empty tags (``empty-tag``) and tags that are not ``O``, ``B-X``, ``X_B`` or similar (``invalid-tag``)."""
    for ex in examples:
        for i, tag in enumerate(ex.tags):
            if tag == OUTSIDE:
                continue
            if not tag.strip():
                yield Finding(
                    "empty-tag",
                    path,
                    ex.line_of(i),
                    f"token {quote(ex.tokens[i])} has an empty tag {quote(tag)}",
                    ERROR,
                )
                continue
            try:
                parse_tag(tag)
            except TagSchemeError as exc:
                yield Finding("invalid-tag", path, ex.line_of(i), f"{exc} ({token_ref(ex, i)})", ERROR)


def type_counts(examples: Sequence[Example]) -> Counter[str]:
    """How many tags of each entity type a file holds (token level; malformed tags are skipped)."""
    counts: Counter[str] = Counter()
    for ex in examples:
        for tag in ex.tags:
            if tag == OUTSIDE:
                continue
            try:
                parsed = parse_tag(tag)
            except TagSchemeError:
                continue
            if parsed.type is not None:
                counts[parsed.type] += 1
    return counts


def corruption_reason(type_: str, known: set[str]) -> str | None:
    """Why an entity type looks like a corrupted tag, or ``None``.

    ``known`` are the other types of the file. A type is corrupt when it embeds another tag (``emergingB-emerging``),
    ends with a stray ``O`` glued to a known type or to a lower-case word (``blockchainO``), or holds whitespace or
    control characters (``PER\\r``).
    """
    if not type_.isprintable() or type_ != type_.strip() or any(c.isspace() for c in type_):
        return "it holds whitespace or control characters"
    for m in _EMBEDDED_RE.finditer(type_):
        head, rest = type_[: m.start()], type_[m.end() :]
        if (head and head in known) or rest in known:
            return f"it embeds another tag ({type_[m.start() :]!r} after {head!r})"
    if type_.endswith(OUTSIDE) and len(type_) > 1 and (type_[:-1] in known or _LOWER_THEN_O_RE.search(type_)):
        return f"it ends with a stray 'O' after {type_[:-1]!r}"
    return None


def check_corrupt_types(examples: Sequence[Example], path: str) -> Iterator[Finding]:
    """Tags whose type looks corrupted (``corrupt-tag``), and types seen once in a file where others are frequent
    (``rare-type``), each at every place it occurs."""
    counts = type_counts(examples)
    if not counts:
        return
    reasons: dict[str, tuple[str, str]] = {}
    for type_, n in counts.items():
        known = {t for t in counts if t != type_}
        reason = corruption_reason(type_, known)
        if reason is not None:
            reasons[type_] = ("corrupt-tag", reason)
            continue
        top = max((m for t, m in counts.items() if t != type_), default=0)
        if n == 1 and top >= RARE_TYPE_CONTRAST:
            reasons[type_] = ("rare-type", f"its type appears once while another appears {top} times")
    if not reasons:
        return
    for ex in examples:
        for i, tag in enumerate(ex.tags):
            if tag == OUTSIDE or not tag.strip():
                continue
            try:
                type_ = parse_tag(tag).type
            except TagSchemeError:
                continue
            if type_ in reasons:
                kind, reason = reasons[type_]
                severity = ERROR if kind == "corrupt-tag" else WARNING
                yield Finding(kind, path, ex.line_of(i), f"tag {quote(tag)} on {token_ref(ex, i)}: {reason}", severity)


def check_types_across_files(files: Sequence[tuple[str, Sequence[Example]]]) -> Iterator[Finding]:
    """With several files, entity types that occur in only one of them (``type-in-one-file``, info)."""
    if len(files) < 2:
        return
    per_file = [(path, type_counts(examples), examples) for path, examples in files]
    seen_in: Counter[str] = Counter()
    for _, counts, _ in per_file:
        seen_in.update(counts.keys())
    for path, counts, examples in per_file:
        lonely = {t for t in counts if seen_in[t] == 1}
        for type_ in sorted(lonely):
            line = _first_line_of_type(examples, type_)
            yield Finding(
                "type-in-one-file",
                path,
                line,
                f"type {type_!r} ({counts[type_]} tags) occurs in no other of the {len(files)} files",
                INFO,
            )


def _first_line_of_type(examples: Sequence[Example], type_: str) -> int | None:
    for ex in examples:
        for i, tag in enumerate(ex.tags):
            if tag != OUTSIDE and tag.strip():
                try:
                    if parse_tag(tag).type == type_:
                        return ex.line_of(i)
                except TagSchemeError:
                    continue
    return None
