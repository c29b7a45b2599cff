"""Token-per-row CSV: a header, then one token and its tag per row (FiNER-ORD: ``gold_label,gold_token,doc_idx,sent_idx``).

Read with the :mod:`csv` module, so quoted tokens (``0,",",0,0``) are right. Columns come from the header:

* token: a column named like ``*tok*`` (``token``, ``gold_token``) or ``*word*``; tag: like ``*label*``, ``*tag*`` or ``ner``. A non-default
  ``token_column`` / ``tag_column`` (0-based) overrides the guess. Without such names, when the first row's tag
  column holds a tag, the file is read as having no header, by ``token_column`` / ``tag_column``.
* sentences: ``sentence_columns`` (names), else the columns named like ``sent*`` / ``doc*``, in header order. A
  sentence is a run of rows with the same values there; an empty value repeats the previous one (the Kaggle
  ``Sentence #`` style). Without sentence columns, blank rows separate sentences.
* documents: ``doc_column``, else the first column named like ``doc*``.

Tags may be integer ids (through label names). Line numbers are physical lines, where each row starts.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator

from nerforge.data.readers.options import ReadOptions
from nerforge.data.readers.source import Source, split_lines
from nerforge.data.schemes import is_valid_tag
from nerforge.errors import DataFormatError, UsageError, quote
from nerforge.types import Example, Finding


def _rows(lines: list[str], path: str) -> Iterator[tuple[int, list[str]]]:
    """``(first physical line, fields)`` for every CSV record; an error names the line where its record starts."""
    reader = csv.reader((line + "\n" for line in lines), strict=True)
    start = 1
    try:
        for row in reader:
            yield start, row
            start = reader.line_num + 1
    except csv.Error as exc:
        where = f" (a quoted field runs to line {reader.line_num})" if reader.line_num > start else ""
        raise DataFormatError(path, start, f"invalid CSV: {exc}{where}", "comma-separated values") from None


def _by_name(header: list[str], *needles: str) -> int | None:
    low = [h.strip().lower() for h in header]
    for i, h in enumerate(low):
        if h in needles or any(n in h for n in needles):
            return i
    return None


def _resolve(index: int, width: int, name: str, path: str) -> int:
    col = index if index >= 0 else width + index
    if not 0 <= col < width:
        raise DataFormatError(path, 1, f"{name} column {index} does not exist", f"a column of 0..{width - 1}")
    return col


def _column(given: int, default: int, guessed: int | None, width: int, name: str, path: str) -> int | None:
    """The given column when it is not the default, else the one guessed from the header (maybe ``None``)."""
    return _resolve(given, width, name, path) if given != default else guessed


def read_csv_tokens(source: Source, options: ReadOptions) -> tuple[list[Example], list[Finding]]:
    """Read a token-per-row CSV (see the module docstring).

    Raises:
        DataFormatError: invalid CSV, columns that cannot be found, rows with a wrong number of fields, or a
            missing tag when ``missing_tag="error"``.
    """
    path = source.path
    lines, findings = split_lines(source)
    rows = _rows(lines, path)
    first = next(((no, row) for no, row in rows if row), None)
    if first is None:
        raise DataFormatError(path, None, "the CSV has no rows", "a header, then one token per row")
    header_line, header = first
    width = len(header)
    token_col = _column(options.token_column, 0, _by_name(header, "tok", "word"), width, "token", path)
    tag_col = _column(options.tag_column, -1, _by_name(header, "label", "tag", "ner"), width, "tag", path)
    pending: list[tuple[int, list[str]]] = []
    if token_col is None or tag_col is None:
        if token_col is None:
            token_col = _resolve(options.token_column, width, "token", path)
        if tag_col is None:
            tag_col = _resolve(options.tag_column, width, "tag", path)
        if not (is_valid_tag(header[tag_col].strip()) or header[tag_col].strip().isdigit()):
            raise DataFormatError(
                path,
                header_line,
                f"cannot tell the token and tag columns from the header {header}",
                "a header naming them (token,label), or --token-column/--tag-column",
            )
        pending.append(first)  # no header: the first row is data
        header = [f"column{i}" for i in range(width)]
    if token_col == tag_col:
        raise DataFormatError(path, header_line, f"the token and tag columns are both {header[token_col]!r}", "two")
    sent_cols = _sentence_columns(header, options, path, header_line)
    doc_col = (
        _named(header, options.doc_column, path, header_line)
        if options.doc_column
        else next((i for i, h in enumerate(header) if h.strip().lower().startswith("doc")), None)
    )
    return _assemble(_chain(pending, rows), width, token_col, tag_col, sent_cols, doc_col, options, path, findings)


def _chain(
    first: list[tuple[int, list[str]]], rest: Iterator[tuple[int, list[str]]]
) -> Iterator[tuple[int, list[str]]]:
    yield from first
    yield from rest


def _named(header: list[str], name: str, path: str, line: int) -> int:
    stripped = [h.strip() for h in header]
    if name not in stripped:
        raise DataFormatError(path, line, f"no column named {name!r} in the header {header}", "an existing column")
    return stripped.index(name)


def _sentence_columns(header: list[str], options: ReadOptions, path: str, line: int) -> list[int]:
    if options.sentence_columns:
        return [_named(header, n, path, line) for n in options.sentence_columns]
    return [i for i, h in enumerate(header) if h.strip().lower().startswith(("sent", "doc"))]


def _assemble(
    rows: Iterator[tuple[int, list[str]]],
    width: int,
    token_col: int,
    tag_col: int,
    sent_cols: list[int],
    doc_col: int | None,
    options: ReadOptions,
    path: str,
    findings: list[Finding],
) -> tuple[list[Example], list[Finding]]:
    if options.missing_tag not in ("o", "error"):
        raise UsageError(f"unknown missing_tag {options.missing_tag!r}; expected 'o' or 'error'")
    examples: list[Example] = []
    tokens: list[str] = []
    tags: list[str] = []
    token_lines: list[int] = []
    key: tuple[str, ...] | None = None
    doc_id: str | None = None

    def flush() -> None:
        if tokens:
            examples.append(
                Example(
                    tuple(tokens),
                    tuple(tags),
                    doc_id=doc_id,
                    source=path,
                    line=token_lines[0],
                    token_lines=tuple(token_lines),
                )
            )
        tokens.clear()
        tags.clear()
        token_lines.clear()

    for no, row in rows:
        if not row:
            if not sent_cols:
                flush()
            continue
        while len(row) > width and not row[-1].strip():
            row.pop()
        if len(row) != width:
            raise DataFormatError(path, no, f"the row has {len(row)} fields, the header has {width}", f"{width} fields")
        if sent_cols:
            values = tuple(row[c].strip() for c in sent_cols)
            if key is not None and not all(values):
                values = tuple(v or k for v, k in zip(values, key, strict=True))
            if values != key:
                flush()
                key = values
        tag = row[tag_col].strip()
        if not tag:
            if options.missing_tag == "error":
                raise DataFormatError(path, no, f"token {quote(row[token_col])} has no tag", "a tag in every row")
            tag = "O"
            findings.append(Finding("missing-tag", path, no, f"token {quote(row[token_col])} has no tag; tagged O"))
        if not tokens and doc_col is not None:
            doc_id = row[doc_col].strip() or doc_id
        tokens.append(row[token_col])
        tags.append(tag)
        token_lines.append(no)
    flush()
    return examples, findings
