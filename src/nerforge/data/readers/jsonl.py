"""Token records in JSON: ``{"tokens": [...], "ner_tags": [...]}``.

Two layouts:

* ``jsonl``: JSON Lines, one record per line (``.json`` files often are: SkillSpan, SoftSkill). Blank lines are
  skipped; a ``null`` line is skipped with a ``null-entry`` finding.
* ``json``: one JSON document, either a list of records or an object holding one (``{"data": [...]}``, as in the
  FactRuEval-derived files). Each record's line is the line where it starts.

The tokens field is ``options.tokens_field``. The tags field is ``options.tags_field`` when given; otherwise the
first of ``ner_tags``, ``tags``, ``labels``, ``ner`` that the first record has, preferring its ``*_str`` twin
(``ner_tags_str``) when present, so string tags win over integer ids. Tags are strings or integer ids (resolved
through label names by :mod:`~nerforge.data.readers.labels`). The document id is the ``options.doc_column`` field, or
``doc_id`` when present.
"""

from __future__ import annotations

from typing import Any

from nerforge.data.readers.options import ReadOptions
from nerforge.data.readers.source import JsonItem, Source, parse_json_document, parse_json_value, split_lines
from nerforge.errors import DataFormatError, quote
from nerforge.types import Example, Finding, Span

TAGS_FIELD_CANDIDATES = ("ner_tags", "tags", "labels", "ner")
RECORD_LIST_KEYS = ("data", "examples", "records", "sentences", "rows")


def read_jsonl(source: Source, options: ReadOptions) -> tuple[list[Example], list[Finding]]:
    """Read JSON Lines token records (see the module docstring).

    Raises:
        DataFormatError: a line that is not JSON, or a record of the wrong shape, with its line.
    """
    lines, findings = split_lines(source)
    items: list[JsonItem] = []
    for no, line in enumerate(lines, 1):
        if line.strip():
            items.append(JsonItem(parse_json_value(source, line, no - 1), no))
    return _records_to_examples(items, source.path, options, findings)


def read_json(source: Source, options: ReadOptions) -> tuple[list[Example], list[Finding]]:
    """Read one JSON document of token records: a list of them, or an object with a list of them.

    Raises:
        DataFormatError: invalid JSON, no list of records, or a record of the wrong shape, with its line.
    """
    doc = parse_json_document(source)
    if doc.items is not None:
        items = doc.items
    elif isinstance(doc.value, dict):
        items = _record_list(doc.field_items, source.path, options)
    else:
        raise DataFormatError(source.path, 1, "the JSON is neither a list nor an object", "a list of records")
    return _records_to_examples(items, source.path, options, [])


def _record_list(field_items: dict[str, list[JsonItem]], path: str, options: ReadOptions) -> list[JsonItem]:
    """The array field of a top-level object that holds the records."""

    def holds_records(items: list[JsonItem]) -> bool:
        first = next((it.value for it in items if it.value is not None), None)
        return isinstance(first, dict) and options.tokens_field in first

    ordered = [k for k in RECORD_LIST_KEYS if k in field_items] + [k for k in field_items if k not in RECORD_LIST_KEYS]
    for key in ordered:
        if holds_records(field_items[key]):
            return field_items[key]
    raise DataFormatError(
        path,
        1,
        f"no list of records with a {options.tokens_field!r} field",
        '{"data": [{"tokens": [...], "ner_tags": [...]}, ...]} (or --format spacy/labelstudio for other layouts)',
    )


def choose_tags_field(record: dict[str, Any], options: ReadOptions) -> str | None:
    """The tags field to use for records shaped like ``record`` (``None`` when none is found)."""
    if options.tags_field:
        return options.tags_field
    for base in TAGS_FIELD_CANDIDATES:
        if f"{base}_str" in record:
            return f"{base}_str"
        if base in record:
            return base
    return None


def _records_to_examples(
    items: list[JsonItem], path: str, options: ReadOptions, findings: list[Finding]
) -> tuple[list[Example], list[Finding]]:
    examples: list[Example] = []
    tags_field: str | None = None
    for item in items:
        record, line = item.value, item.line
        if record is None:
            findings.append(Finding("null-entry", path, line, "a null record (skipped)"))
            continue
        if not isinstance(record, dict):
            raise DataFormatError(path, line, f"a record is a {type(record).__name__}", "a JSON object per record")
        if tags_field is None:
            tags_field = choose_tags_field(record, options)
            if tags_field is None:
                raise DataFormatError(
                    path,
                    line,
                    f"no tags field among {sorted(record)}",
                    f"one of {', '.join(TAGS_FIELD_CANDIDATES)} (or --tags-field NAME)",
                )
        example = record_to_example(record, line, path, options, tags_field)
        if example is None:
            findings.append(Finding("empty-record", path, line, "a record with no tokens (skipped)", "info"))
        else:
            examples.append(example)
    return examples, findings


def record_to_example(
    record: dict[str, Any], line: int, path: str, options: ReadOptions, tags_field: str
) -> Example | None:
    """One token record as an :class:`Example` with raw string tags (``None`` when it has no tokens).

    Raises:
        DataFormatError: missing fields, non-string tokens, tags that are neither strings nor integers, or
            token and tag counts that differ.
    """
    tokens = record.get(options.tokens_field)
    if options.tokens_field not in record:
        hint = " (character offsets? use --format doccano)" if "text" in record else ""
        raise DataFormatError(path, line, f"the record has no {options.tokens_field!r} field{hint}", "a tokens list")
    if tags_field not in record:
        raise DataFormatError(path, line, f"the record has no {tags_field!r} field", f"a {tags_field!r} list")
    tags = record[tags_field]
    if not isinstance(tokens, list) or not isinstance(tags, list):
        raise DataFormatError(path, line, f"{options.tokens_field!r} and {tags_field!r} must be lists", "JSON lists")
    if len(tokens) != len(tags):
        raise DataFormatError(
            path, line, f"{len(tokens)} tokens but {len(tags)} tags", f"as many {tags_field!r} as tokens"
        )
    if not tokens:
        return None
    for i, tok in enumerate(tokens):
        if not isinstance(tok, str):
            raise DataFormatError(path, line, f"token {i + 1} is {quote(tok)}, not a string", "string tokens")
    raw_tags = []
    for i, tag in enumerate(tags):
        if isinstance(tag, str):
            raw_tags.append(tag)
        elif isinstance(tag, int) and not isinstance(tag, bool):
            raw_tags.append(str(tag))
        else:
            raise DataFormatError(path, line, f"tag {i + 1} is {quote(tag)}", "string tags or integer ids")
    doc_key = options.doc_column or "doc_id"
    doc = record.get(doc_key)
    return Example(
        tuple(tokens),
        tuple(raw_tags),
        doc_id=None if doc is None else str(doc),
        source=path,
        line=line,
        spans=_spans(record.get(SPANS_FIELD), len(tokens), path, line),
        layers=_layers(record.get("layers"), path, line),
    )


def _layers(raw: Any, path: str, line: int) -> tuple[str, ...] | None:
    if raw is None:
        return None
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw) or len(set(raw)) != len(raw):
        raise DataFormatError(path, line, f"'layers' is {quote(raw)}", "a list of distinct layer names")
    return tuple(raw)


SPANS_FIELD = "spans"  # every entity with its layer, overlapping allowed (nerforge's own JSON Lines, issue 28)


def _spans(raw: Any, n: int, path: str, line: int) -> tuple[Span, ...] | None:
    """The ``spans`` field: ``[{"start", "end", "label", "layer"?}, ...]``, token offsets ``[start, end)``."""
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise DataFormatError(path, line, f"{SPANS_FIELD!r} is {quote(raw)}", "a list of {start, end, label, layer}")
    out = []
    for item in raw:
        ok = isinstance(item, dict) and all(isinstance(item.get(k), int) and not isinstance(item.get(k), bool)
                                            for k in ("start", "end"))  # fmt: skip
        label, layer = (item.get("label"), item.get("layer", "")) if isinstance(item, dict) else (None, None)
        if not ok or not isinstance(label, str) or not label or not isinstance(layer, str):
            raise DataFormatError(path, line, f"a span is {quote(item)}",
                                  '{"start": token, "end": token, "label": type, "layer": name}')  # fmt: skip
        if not 0 <= item["start"] < item["end"] <= n:
            raise DataFormatError(path, line, f"span [{item['start']}, {item['end']}) {label} is outside the "
                                  f"{n} tokens or empty", "0 <= start < end <= number of tokens")  # fmt: skip
        out.append(Span(item["start"], item["end"], label, layer))
    return tuple(out)
