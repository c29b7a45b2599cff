"""From raw tags to checked tags: label names for integer ids, types for bare tags, the label map, the scheme.

Every reader yields examples whose tags are the raw strings of the source (integer ids as digit strings); then
:func:`finalize` turns them into the tags a :class:`~nerforge.types.Corpus` holds and records what it noticed:

1. ``strip_token_prefix`` is removed from tokens; empty or whitespace-only tokens are reported (``whitespace-token``).
2. An integer id becomes its name from ``label_names`` / ``labels_file`` (an error without them; in a label table
   without an ``O`` row, id 0 is ``O``).
3. A bare ``B``/``I``/``E``/``S``/``L``/``U`` gets ``entity_type`` (an error without it).
4. Every tag must have a tag's shape (:func:`~nerforge.data.schemes.is_valid_tag`). A bare type (``SKILL``) is the IO
   tag ``I-SKILL`` when neither the label names nor the file have a prefixed tag; otherwise it is a malformed tag,
   like any other: the reader raises with the token's line, unless the label map names it exactly (dropped or
   renamed) or the options are ``lenient`` (read as ``O``, counted in one ``bad-tag`` finding).
5. The label map renames, merges or drops types.
6. The scheme is the given one, or detected; spans that open with ``I-`` in IOB2 data are reported (``i-start``),
   and other breaks of the scheme's rules as ``scheme-violation`` (decoding stays conlleval-lenient).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from nerforge.data.labelmap import LabelMap, compile_label_map
from nerforge.data.readers.options import ReadOptions
from nerforge.data.schemes import (
    OUTSIDE,
    SCHEMES,
    Role,
    detect_scheme,
    format_tag,
    is_bare_type,
    is_valid_tag,
    validate_tags,
)
from nerforge.data.schemes import scheme as scheme_rules
from nerforge.errors import DataFormatError, TagSchemeError, UsageError, quote
from nerforge.types import Example, Finding

_BARE = frozenset("BIESLU")


class TagProblem(Exception):
    """Why one raw tag cannot be used (turned into a :class:`DataFormatError` with its line by the caller).

    ``malformed`` problems (a tag of no known shape, an id outside the label list) become ``O`` when the reader is
    lenient; the others (integer tags without label names, bare B/I without a type) are settings to give.
    """

    def __init__(self, problem: str, expected: str | None = None, *, malformed: bool = False) -> None:
        super().__init__(problem)
        self.problem = problem
        self.expected = expected
        self.malformed = malformed


def load_labels_file(path: str | Path) -> tuple[str, ...] | dict[int, str]:
    """Label names, in id order, from a sidecar file.

    Accepted: a JSON list ``["O", "B-PER"]``; a JSON object ``{"0": "O", "1": "B-PER"}`` (id to name) or
    ``{"O": 0, "B-PER": 1}`` (name to id); a JSON object with an ``id2label`` field (a Hugging Face
    ``config.json``); or a text file with one name per line.

    Raises:
        DataFormatError: the file cannot be read or has none of these shapes, or the ids are not ``0..n-1``.
    """
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFormatError(name, None, f"cannot read the labels file: {exc}", "a UTF-8 text or JSON file") from None
    stripped = text.strip()
    if stripped[:1] in ("[", "{"):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise DataFormatError(name, exc.lineno, f"invalid JSON: {exc.msg}", "a JSON list of label names") from None
        except (ValueError, RecursionError) as exc:
            raise DataFormatError(name, None, f"invalid JSON: {exc}", "a JSON list of label names") from None
        try:
            names = _names_from_json(data, name)
        except ValueError as exc:  # an id of more than 4300 digits
            raise DataFormatError(name, None, f"invalid label id: {exc}", "ids 0..n-1") from None
    else:
        table = _id_table(text, name)
        if table is not None:
            return table
        names = tuple(line.strip() for line in text.splitlines() if line.strip())
    check_label_names(names, name)
    return names


_ID_HEADERS = ("id", "label_id", "tag_id", "index", "idx")
_NAME_HEADERS = ("label", "name", "tag", "label_name", "tag_name")
_COUNT_HEADERS = ("count", "frequency", "freq", "n", "support")


def _is_int(cell: str) -> bool:
    text = cell.strip()
    return text.lstrip("-").isdigit() and text.count("-") <= 1 and len(text) < 10


def _id_table(text: str, path: str) -> dict[int, str] | None:
    """A CSV/TSV label table, with or without a header: ``id,label[,count]`` in any column order (a header names the
    columns ``id`` and ``label``/``name``/``tag``; without one the id is the first all-integer column and the label
    the first other one, as FNXL's headerless ``labelCount.csv``), or ``label,count`` rows whose ids are their order.
    Returns the names by id (ids need not start at 0; see ``label_offset``), or ``None`` for one name per line.

    Raises:
        DataFormatError: a row without an integer id or a label, an id given twice, a label that is no tag or type.
    """
    import csv

    numbered = [(no, ln) for no, ln in enumerate(text.splitlines(), start=1) if ln.strip()]
    if not numbered:
        return None
    first = numbered[0][1]
    delimiter = "\t" if "\t" in first else "," if "," in first else None
    if delimiter is None:
        return None
    rows = [
        (no, [c.strip() for c in row])
        for (no, _), row in zip(numbered, csv.reader([ln for _, ln in numbered], delimiter=delimiter), strict=True)
    ]
    header = [c.lower() for c in rows[0][1]]
    id_col = next((header.index(c) for c in _ID_HEADERS if c in header), None)
    label_col = next((header.index(c) for c in _NAME_HEADERS if c in header), None)
    if label_col is not None or id_col is not None:
        body = rows[1:]
        if label_col is None:
            raise DataFormatError(
                path, rows[0][0], f"the header {quote(first)} names no label column", "a header such as id,label,count"
            )
    else:
        body = rows
        width = min(len(r) for _, r in body)
        ints = [c for c in range(width) if all(_is_int(r[c]) for _, r in body)]
        names = [c for c in range(width) if c not in ints]
        if not names:
            raise DataFormatError(path, rows[0][0], f"row {quote(first)} has no label", "id,label[,count] rows")
        label_col = names[0]
        id_col = ints[0] if ints and ints[0] < label_col else None  # id,label,count; label,count has no id
    if not body:
        raise DataFormatError(path, None, "the label table has no rows", "id,label rows under the header")
    table: dict[int, str] = {}
    for order, (number, row) in enumerate(body):
        if len(row) <= max(label_col, id_col or 0) or (id_col is not None and not _is_int(row[id_col])):
            expected = "an integer id and a label" if id_col is not None else "a label"
            raise DataFormatError(path, number, f"row {quote(delimiter.join(row))}", expected)
        tag_id = int(row[id_col]) if id_col is not None else order
        label = row[label_col]
        if tag_id in table:
            raise DataFormatError(path, number, f"id {tag_id} is given twice", "one row per id")
        if not is_label_name(label):
            raise DataFormatError(path, number, f"label {quote(label)} is not a tag or a type", _NAME_SHAPES)
        table[tag_id] = label
    return table


_NAME_SHAPES = "O, B-TYPE, TYPE_B, a bare B/I, or a bare type such as SKILL (read as IO)"


def is_label_name(name: str) -> bool:
    """Whether ``name`` can name a label: a tag (``O``, ``B-X``, ``X_B``, bare ``B``) or a bare type (``SKILL``,
    ``us-gaap:Revenues``: read as IO tags)."""
    return is_valid_tag(name) or is_bare_type(name)


def _names_from_json(data: object, path: str) -> tuple[str, ...]:
    if isinstance(data, dict) and isinstance(data.get("id2label"), dict):
        data = data["id2label"]
    if isinstance(data, list) and all(isinstance(x, str) for x in data):
        return tuple(data)
    if isinstance(data, dict) and data:
        if all(isinstance(v, int) and not isinstance(v, bool) for v in data.values()):
            pairs = {int(v): str(k) for k, v in data.items()}
        elif all(isinstance(v, str) and str(k).strip().isdigit() for k, v in data.items()):
            pairs = {int(k): v for k, v in data.items()}
        else:
            pairs = {}
        if pairs and sorted(pairs) == list(range(len(pairs))):
            return tuple(pairs[i] for i in range(len(pairs)))
        if pairs:
            raise DataFormatError(path, None, f"label ids {sorted(pairs)} are not 0..{len(pairs) - 1}", "ids 0..n-1")
    raise DataFormatError(path, None, "no label names found", 'a JSON list ["O", "B-PER", ...] or {"0": "O", ...}')


def check_label_names(names: Sequence[str], where: str = "--label-names") -> None:
    """Every name must have a tag's shape.

    Raises:
        DataFormatError: a name is not a tag.
    """
    if not names:
        raise DataFormatError(where, None, "no label names given", "names such as O,B-PER,I-PER")
    for i, n in enumerate(names):
        if not is_label_name(n):
            raise DataFormatError(where, None, f"label name {i} {n!r} is not a tag or a type", _NAME_SHAPES)


def label_names_of(options: ReadOptions) -> tuple[str, ...] | dict[int, str] | None:
    """The label names given by ``label_names`` or ``labels_file`` (``label_names`` wins), or ``None``."""
    if options.label_names:
        check_label_names(options.label_names)
        return tuple(options.label_names)
    if options.labels_file:
        return load_labels_file(options.labels_file)
    return None


class TagResolver:
    """Turns raw tags into checked tags (steps 2-5 of the module docstring), with a cache per distinct raw tag.

    ``bare_types``: read a bare type (``SKILL``) as the IO tag ``I-SKILL``; :func:`finalize` sets it when neither the
    label names nor the file's tags have a prefixed tag (in a file of ``B-``/``I-`` tags a bare word is a corrupt tag).
    """

    def __init__(self, options: ReadOptions, *, bare_types: bool = False) -> None:
        self.label_names = label_names_of(options)
        self.offset = options.label_offset
        self.entity_type = options.entity_type
        self.label_map: LabelMap | None = compile_label_map(options.label_map) if options.label_map else None
        self.table: dict[int, str] | None = None
        if self.label_names is not None:
            names = self.label_names
            self.table = names if isinstance(names, dict) else dict(enumerate(names))
        self.outside_is_zero = isinstance(self.label_names, dict) and OUTSIDE not in self.label_names.values()
        self.bare_types = bare_types
        self._cache: dict[str, str | TagProblem] = {}
        self.ok: dict[str, str] = {}
        """Raw tags already resolved without a problem (a fast path for callers)."""

    def __call__(self, raw: str) -> str:
        out = self._cache.get(raw)
        if out is None:
            out = self._resolve(raw)
            self._cache[raw] = out
            if not isinstance(out, TagProblem):
                self.ok[raw] = out
        if isinstance(out, TagProblem):
            raise out
        return out

    def name_of(self, raw: str) -> str:
        """The label name of an integer id (``raw`` itself for other tags, or an id without a name)."""
        if self.table is None or not (raw.isdigit() and raw.isascii()):
            return raw
        if self.outside_is_zero and int(raw) == 0:
            return OUTSIDE
        idx = (int(raw) if len(raw) < 10 else 10**9) + self.offset
        return self.table.get(idx, raw)

    def _resolve(self, raw: str) -> str | TagProblem:
        tag = raw
        if tag.isdigit() and tag.isascii():
            if self.table is None:
                return TagProblem(
                    f"integer tag {tag} but no label names", "--label-names O,B-PER,I-PER,... or --labels-file FILE"
                )
            idx = (int(tag) if len(tag) < 10 else 10**9) + self.offset
            if self.outside_is_zero and int(tag) == 0:
                if idx in self.table:
                    return TagProblem(
                        f"tag id 0 is ambiguous: the label table has no O row, and id 0 + label offset {self.offset} "
                        f"is {quote(self.table[idx])}",
                        "a --label-offset that puts id 0 (O) before the table (FNXL's labelCount.csv: "
                        "--label-offset -1), or an O row in the table",
                    )
                return OUTSIDE
            if idx not in self.table:
                shift = f" + label offset {self.offset} = {idx}" if self.offset else ""
                return TagProblem(
                    f"tag id {tag[:12]}{shift} is out of range (not among the {len(self.table)} label ids)",
                    malformed=True,
                )
            tag = self.table[idx]
        if tag in _BARE:
            if not self.entity_type:
                return TagProblem(f"tag {quote(tag)} has no entity type", "--entity-type NAME for bare B/I/O tags")
            tag = format_tag(tag, self.entity_type)
        if not is_valid_tag(tag):
            if self.label_map is not None and tag in self.label_map.exact:
                new = self.label_map.exact[tag]  # a corrupt tag the label map names: dropped (or read as a type)
                return OUTSIDE if new is None else format_tag("I", new)
            if self.bare_types and is_bare_type(tag):
                tag = format_tag("I", tag)
            else:
                hint = f"--label-map '{tag}=' drops it, " if is_bare_type(tag) else ""
                return TagProblem(
                    f"invalid tag {quote(raw)} ({hint}--lenient reads it as O)",
                    "O, B-TYPE, I-TYPE (E-/S-/L-/U-), TYPE_B, TYPE (IO) or an id",
                    malformed=True,
                )
        if self.label_map is not None:
            try:
                tag = self.label_map.map_tag(tag)
            except TagSchemeError as exc:  # pragma: no cover - the tag was checked above
                return TagProblem(str(exc))
        return tag


def _has_prefixed(names: Iterable[str]) -> bool:
    """Whether any of ``names`` is a prefixed or suffixed tag (``B-X``, ``X_B``): then bare words are not types."""
    return any(n != OUTSIDE and n not in _BARE and is_valid_tag(n) for n in names)


@dataclass
class Lenience:
    """What a lenient read turned into ``O``: how many tags, and the first places."""

    count: int = 0
    places: list[str] = field(default_factory=list)
    kinds: Counter[str] = field(default_factory=Counter)

    def add(self, where: str, raw: str) -> None:
        self.count += 1
        self.kinds[raw] += 1
        if len(self.places) < 5:
            self.places.append(where)


def finalize(examples: Sequence[Example], path: str, options: ReadOptions) -> tuple[list[Example], str, list[Finding]]:
    """Check and convert the raw tags of ``examples`` (see the module docstring); returns examples, scheme, findings.

    Raises:
        DataFormatError: a tag cannot be used, with the line of its token (with ``options.lenient``, only tags
            that need a setting: integer ids without label names, bare B/I without a type).
        UsageError: an unknown scheme name.
    """
    resolve = TagResolver(options)  # the label names are read once; bare types are decided over the whole file
    names = resolve.table.values() if resolve.table is not None else ()
    bare = not _has_prefixed(names) and not _has_prefixed(
        resolve.name_of(t) for t in {t for ex in examples for t in ex.tags}
    )
    resolve.bare_types = bare
    prefix = options.strip_token_prefix
    findings: list[Finding] = []
    out: list[Example] = []
    missing_prefix = 0
    lenience = Lenience() if options.lenient else None
    for ex in examples:
        tokens = ex.tokens
        if prefix:
            missing_prefix += sum(1 for t in tokens if not t.startswith(prefix))
            tokens = tuple(t[len(prefix) :] if t.startswith(prefix) else t for t in tokens)
        try:
            tags = tuple([resolve.ok[t] for t in ex.tags])
        except KeyError:
            tags = tuple(_resolve_all(resolve, ex, tokens, path, lenience))
        if not all(map(str.strip, tokens)):
            for i, tok in enumerate(tokens):
                if not tok.strip():
                    findings.append(
                        Finding(
                            "whitespace-token", path, ex.line_of(i), f"token {i + 1} is {quote(tok)} (kept)", "warning"
                        )
                    )
        spans = ex.spans
        if spans is not None and resolve.label_map is not None:  # every layer's types renamed, merged or dropped alike
            mapped = ((s, resolve.label_map.map_type(s.label)) for s in spans)
            spans = tuple(replace(s, label=new) for s, new in mapped if new is not None)
        if tags == ex.tags and tokens is ex.tokens and spans is ex.spans:
            out.append(ex)
        else:
            out.append(replace(ex, tokens=tokens, tags=tags, spans=spans))
    if missing_prefix:
        findings.append(
            Finding("prefix-missing", path, None, f"{missing_prefix} token(s) do not start with {prefix!r}", "warning")
        )
    bare_read = sorted({raw for raw in resolve.ok if bare and is_bare_type(resolve.name_of(raw))})
    if bare_read:
        shown = ", ".join(quote(resolve.name_of(r)) for r in bare_read[:3]) + (" ..." if len(bare_read) > 3 else "")
        findings.append(
            Finding(
                "bare-types", path, None, f"{len(bare_read)} bare type(s) read as IO tags ({shown} -> I-TYPE)", "info"
            )
        )
    if lenience is not None and lenience.count:
        common = ", ".join(f"{quote(raw)} x{n}" for raw, n in lenience.kinds.most_common(5))
        findings.append(
            Finding(
                "bad-tag",
                path,
                None,
                f"{lenience.count} malformed tag(s) read as O (--lenient): {common}; first at "
                + ", ".join(lenience.places),
                "warning",
            )
        )
    scheme = _scheme_of(out, options.scheme)
    findings += scheme_findings(out, scheme, path)
    return out, scheme, findings


def _resolve_all(
    resolve: TagResolver, ex: Example, tokens: tuple[str, ...], path: str, lenience: Lenience | None = None
) -> list[str]:
    tags = []
    for i, raw in enumerate(ex.tags):
        try:
            tags.append(resolve(raw))
        except TagProblem as exc:
            if lenience is not None and exc.malformed:
                line = ex.line_of(i)
                lenience.add(f"{path}:{line}" if line is not None else path, raw)
                tags.append(OUTSIDE)
                continue
            raise DataFormatError(
                path, ex.line_of(i), f"token {i + 1} {quote(tokens[i])}: {exc.problem}", exc.expected
            ) from None
    return tags


def _scheme_of(examples: Sequence[Example], given: str | None) -> str:
    if given:
        if given not in SCHEMES:
            raise UsageError(f"unknown tag scheme {given!r}; expected one of {', '.join(SCHEMES)}")
        return given
    return detect_scheme(dict.fromkeys(ex.tags for ex in examples))


def scheme_findings(examples: Sequence[Example], scheme: str, path: str) -> list[Finding]:
    """Breaks of ``scheme``'s rules (the scheme table's): where chunks open with a BEGIN letter (IOB2, suffix), a chunk
    opened by an INSIDE tag is the common slip ``i-start``, read as a span start; anything else is a
    ``scheme-violation``.

    Each distinct tag sequence is checked once; a finding is made for every example that has it.
    """
    rules = scheme_rules(scheme)
    slips_read_as_starts = Role.BEGIN in rules.opening_roles and not rules.closes_explicitly
    findings: list[Finding] = []
    seen: dict[tuple[str, ...], list[tuple[int, str, str]]] = {}
    for ex in examples:
        problems = seen.get(ex.tags)
        if problems is None:
            problems = []
            for v in validate_tags(ex.tags, scheme):
                if slips_read_as_starts and v.kind == "continuation":
                    before = ex.tags[v.index - 1] if v.index else "the sentence start"
                    problems.append((v.index, "i-start", f"{v.tag} follows {before}; read as a span start"))
                elif not slips_read_as_starts:
                    problems.append((v.index, "scheme-violation", f"{scheme}: {v.message}"))
            seen[ex.tags] = problems
        for index, kind, message in problems:
            findings.append(Finding(kind, path, ex.line_of(index), message))
    return findings


def count_kinds(findings: Sequence[Finding]) -> Counter[str]:
    """How many findings of each kind."""
    return Counter(f.kind for f in findings)
