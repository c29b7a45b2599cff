"""CSV/TSV with one sentence per row and list columns, as pandas' ``to_csv()`` writes a token-classification
dataset: ``tokens`` holds ``['The', 'amount', ...]`` (a Python list literal) or ``["The", ...]`` (JSON), and the tags
column (``ner_tags``, ``tags`` or ``labels``) ``[0, 0, 1337, 0]`` or ``['O', 'B-PER']``.

Told apart from token-per-row CSV (:mod:`nerforge.data.readers.csv_tokens`) by content: the token column's first
cell is a list. Literals are parsed as JSON, else with :func:`ast.literal_eval` (literals only, never code). Integer
tags are names through ``--label-names``/``--labels-file`` (with ``--label-offset``). Other columns are kept
as the document id (``--doc-column``, or ``document_id``/``doc_id``) and as each example's metadata. Errors name the
file and the line of the row.
"""

from __future__ import annotations

import ast
import csv
import io
import json
from typing import Any

from nerforge.data.readers.options import ReadOptions
from nerforge.data.readers.source import Source
from nerforge.errors import DataFormatError, quote
from nerforge.types import Example, Finding

TOKEN_COLUMNS = ("tokens", "words")
TAG_COLUMNS = ("ner_tags", "tags", "labels")
DOC_COLUMNS = ("document_id", "doc_id")


def _delimiter(first_line: str) -> str:
    return "\t" if first_line.count("\t") > first_line.count(",") else ","


def _reader(text: str) -> Any:
    first = text.split("\n", 1)[0]
    return csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(first))


def looks_like_list_csv(text: str, tokens_field: str = "tokens") -> bool:
    """Whether the first data row's token column holds a list literal."""
    try:
        rows = _reader(text[: 1 << 16])
        header = next(rows)
        row = next(rows)
    except (StopIteration, csv.Error):
        return False
    names = [h.strip() for h in header]
    col = next((names.index(c) for c in (tokens_field, *TOKEN_COLUMNS) if c in names), None)
    return col is not None and col < len(row) and row[col].strip().startswith("[")


def parse_list(cell: str, path: str, line: int, column: str) -> list[Any]:
    """A list literal in JSON or Python syntax (no code is ever run).

    Raises:
        DataFormatError: not a list literal.
    """
    text = cell.strip()
    try:
        value = json.loads(text)
    except ValueError:
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            raise DataFormatError(
                path, line, f"{column}: {quote(text)} is not a list literal", "['a', 'b'] or [0, 1]"
            ) from None
    if not isinstance(value, (list, tuple)):
        raise DataFormatError(path, line, f"{column}: {quote(text)} is not a list", "a list literal")
    return list(value)


def read_csv_lists(source: Source, options: ReadOptions) -> tuple[list[Example], list[Finding]]:
    """Read a one-sentence-per-row CSV/TSV with list columns (see the module docstring).

    Raises:
        DataFormatError: a missing column, a malformed literal, or lists of different lengths (with the line).
    """
    path = source.path
    rows = _reader(source.text)
    try:
        header = [h.strip() for h in next(rows)]
    except StopIteration:
        raise DataFormatError(path, None, "the file is empty", "a header and rows") from None
    tokens_col = next((c for c in (options.tokens_field, *TOKEN_COLUMNS) if c in header), None)
    tags_col = options.tags_field or next((c for c in TAG_COLUMNS if c in header), None)
    if tokens_col is None or tags_col not in header:
        raise DataFormatError(path, 1, f"no token and tag list columns in the header {header}", "tokens and ner_tags")
    doc_col = (
        options.doc_column if options.doc_column in header else next((c for c in DOC_COLUMNS if c in header), None)
    )
    ti, gi = header.index(tokens_col), header.index(tags_col)
    di = header.index(doc_col) if doc_col else None
    examples: list[Example] = []
    line = 2
    try:
        for row in rows:
            if not row or not any(cell.strip() for cell in row):
                line = rows.line_num + 1
                continue
            if len(row) != len(header):
                raise DataFormatError(
                    path, line, f"{len(row)} fields but the header has {len(header)}", "one per column"
                )
            tokens = parse_list(row[ti], path, line, tokens_col)
            tags = parse_list(row[gi], path, line, tags_col)
            if not all(isinstance(t, str) for t in tokens):
                raise DataFormatError(path, line, f"{tokens_col} holds a non-string token", "string tokens")
            if len(tags) != len(tokens):
                raise DataFormatError(path, line, f"{len(tokens)} tokens but {len(tags)} tags", "one tag per token")
            if any(isinstance(t, bool) or not isinstance(t, (int, str)) for t in tags):
                raise DataFormatError(path, line, f"{tags_col} holds a tag that is neither a name nor an id", "tags")
            if tokens:
                doc = row[di].strip() if di is not None else None
                meta = tuple(
                    (name, cell) for k, (name, cell) in enumerate(zip(header, row, strict=True))
                    if k not in (ti, gi, di) and name and cell != ""
                )  # fmt: skip
                examples.append(
                    Example(
                        tuple(tokens),
                        tuple(str(t) for t in tags),
                        doc_id=doc or None,
                        source=path,
                        line=line,
                        metadata=meta,
                    )  # fmt: skip
                )
            line = rows.line_num + 1
    except csv.Error as exc:
        raise DataFormatError(path, line, f"invalid CSV: {exc}", "CSV with quoted list cells") from None
    return examples, []
