"""CSV in and out of the serving app: tolerant reading, spreadsheet-safe writing.

Reading: UTF-8 with or without a byte-order mark; the delimiter is the first of ``, ; TAB |`` that makes a
``text`` column appear in the header (matched without regard to case or surrounding spaces). A file without such
a column is refused with the columns that were found. Short rows are padded with empty cells; a row with more
cells than the header is an error (its extra cells would otherwise be lost).

Writing: every cell that a spreadsheet could read as a formula (it begins with ``= + - @``, their full-width forms,
a tab or a carriage return) is prefixed with ``'``, so opening the file never runs anything; the offsets in the
``entities`` column count that ``'``, so they slice the text cell as written.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from nerforge.errors import DataFormatError, UsageError
from nerforge.prediction.io import FORMULA_STARTS, cell_entities, escape_cell  # noqa: F401 - one escaping for all
from nerforge.types import Entity

TEXT_COLUMN = "text"
ENTITIES_COLUMN = "entities"
DELIMITERS = (",", ";", "\t", "|")
SOURCE = "<upload>"


class CsvLimitError(UsageError):
    """A CSV upload with more rows than the server accepts."""

    code = "E423"


@dataclass(frozen=True)
class CsvTable:
    """A parsed upload: its header, its data rows (all as long as the header), and where the text is."""

    columns: list[str]
    rows: list[list[str]]
    text_index: int
    delimiter: str

    @property
    def texts(self) -> list[str]:
        return [row[self.text_index] for row in self.rows]


def _find_text_column(header: Sequence[str]) -> int | None:
    for i, name in enumerate(header):
        if name.strip().casefold() == TEXT_COLUMN:
            return i
    return None


def _header(content: str, delimiter: str, source: str) -> list[str]:
    try:
        return next(csv.reader(io.StringIO(content, newline=""), delimiter=delimiter), [])
    except csv.Error as exc:
        raise DataFormatError(source, 1, f"the header is not valid CSV: {exc}") from None


def read_csv(data: bytes, *, max_rows: int, source: str = SOURCE) -> CsvTable:
    """Parse an uploaded CSV file that has a ``text`` column."""
    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataFormatError(
            source, None, f"the file is not UTF-8 text (byte {exc.start})", "a CSV saved as UTF-8"
        ) from None
    if not content.strip():
        raise DataFormatError(source, None, "the file is empty", f"a header line with a {TEXT_COLUMN!r} column")
    delimiter, header = ",", _header(content, ",", source)
    for candidate in DELIMITERS:
        cells = _header(content, candidate, source)
        if _find_text_column(cells) is not None:
            delimiter, header = candidate, cells
            break
    text_index = _find_text_column(header)
    if text_index is None:
        found = ", ".join(repr(c) for c in header) or "none"
        raise DataFormatError(
            source,
            1,
            f"no {TEXT_COLUMN!r} column; columns found: {found}",
            f"a header line with a {TEXT_COLUMN!r} column",
        )
    if any(c.strip().casefold() == ENTITIES_COLUMN for c in header):
        raise DataFormatError(
            source,
            1,
            f"the file already has an {ENTITIES_COLUMN!r} column",
            f"no {ENTITIES_COLUMN!r} column (rename or remove it; the results go there)",
        )
    reader = csv.reader(io.StringIO(content, newline=""), delimiter=delimiter)
    rows: list[list[str]] = []
    try:
        next(reader)  # the header, already read
        for row in reader:
            if not row:  # a blank line
                continue
            if len(row) > len(header):
                raise DataFormatError(
                    source,
                    reader.line_num,
                    f"{len(row)} cells but the header has {len(header)}",
                    "at most one cell per column",
                )
            if len(rows) >= max_rows:
                raise CsvLimitError(f"the file has more than {max_rows} data rows, the limit of this server")
            rows.append(row + [""] * (len(header) - len(row)))
    except csv.Error as exc:
        raise DataFormatError(source, reader.line_num, f"not valid CSV: {exc}") from None
    return CsvTable(columns=list(header), rows=rows, text_index=text_index, delimiter=delimiter)


def write_csv(columns: Sequence[str], rows: Iterable[Sequence[str]], *, delimiter: str = ",") -> str:
    """CSV text (``\\r\\n`` line ends, minimal quoting) with every cell escaped by :func:`escape_cell`."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow([escape_cell(str(c)) for c in columns])
    for row in rows:
        writer.writerow([escape_cell(str(c)) for c in row])
    return out.getvalue()


def entities_cell(entities: Sequence[Entity]) -> str:
    """The ``entities`` cell of a row: a JSON list of ``{text, label, start, end, score}``."""
    return json.dumps([e.to_dict() for e in entities], ensure_ascii=False, allow_nan=False)


@dataclass(frozen=True)
class Distinct:
    text: str
    label: str
    count: int


def distinct_entities(per_text: Iterable[Sequence[Entity]]) -> list[Distinct]:
    """Each distinct ``(text, label)`` with its count, most frequent first (then by label and text)."""
    counts = Counter((e.text, e.label) for entities in per_text for e in entities)
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0][1], item[0][0]))
    return [Distinct(text=text, label=label, count=n) for (text, label), n in ordered]


def tagged_csv(table: CsvTable, per_row: Sequence[Sequence[Entity]]) -> str:
    """The upload with an ``entities`` column added, in the upload's delimiter; the offsets slice the text cell as
    written (an escaped cell's ``'`` counts, see :func:`~nerforge.prediction.io.cell_entities`)."""
    columns = [*table.columns, ENTITIES_COLUMN]
    rows = (
        [*row, entities_cell(cell_entities(row[table.text_index], ents))]
        for row, ents in zip(table.rows, per_row, strict=True)
    )
    return write_csv(columns, rows, delimiter=table.delimiter)


def distinct_csv(per_row: Iterable[Sequence[Entity]]) -> str:
    """A CSV of distinct entities: ``label, text, count``."""
    rows = ([d.label, d.text, str(d.count)] for d in distinct_entities(per_row))
    return write_csv(["label", "text", "count"], rows)
