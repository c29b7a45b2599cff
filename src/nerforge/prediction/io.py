"""Files in and out of ``nerforge predict``: texts to tag, and the entities found in them.

Inputs (chosen by suffix, read lazily so any size streams):

- ``.txt`` / ``.text``: one text per line (blank lines are empty texts, so ``id`` stays the 0-based line index), or
  the whole file as one text;
- ``.csv``: a header row, the text in column ``text_column`` (a real CSV parser: quoted newlines and commas work);
- ``.jsonl`` / ``.ndjson``: one JSON object per line with the text in field ``text_column``; blank lines skipped.

Outputs (written atomically):

- ``.jsonl``: one object per input record, ``{"id", "text", "entities": [{"text", "label", "start", "end",
  "score"}], ...}``; fields of JSONL and CSV inputs are kept, and an input ``id`` field is kept as the ``id``;
- ``.csv``: the input columns (``id, text`` for other inputs) plus ``entities_text``, the entities to read
  (``Power BI [TECH]; SQL [TECH]``), and an ``entities`` column holding the JSON list;
  cells starting with ``= + - @`` (or a tab / carriage return, or a full-width ``＝ ＋ － ＠``) get a leading
  ``'`` so spreadsheets do not run them as formulas (the server's CSV output uses the same :func:`escape_cell`);
  the offsets in ``entities`` then count that ``'`` too, so they slice the text cell as written
  (:func:`cell_entities`).

Problems in an input file raise :class:`~nerforge.errors.DataFormatError` with ``path:line``.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from nerforge.data.readers.source import MAX_LINE_ENV, input_limits, read_bounded, refuse_utf16_without_bom
from nerforge.errors import DataFormatError, UsageError
from nerforge.io_utils import atomic_open
from nerforge.types import Entity

logger = logging.getLogger(__name__)

INPUT_SUFFIXES = {
    ".txt": "txt", ".text": "txt", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet",
    ".pq": "parquet",
}  # fmt: skip
OUTPUT_SUFFIXES = {".jsonl": "jsonl", ".csv": "csv"}
ENTITIES_COLUMN = "entities"
READABLE_COLUMN = "entities_text"  # CSV: "Power BI [TECH]; SQL [TECH]", beside the JSON column
# Cells a spreadsheet would run as a formula: = + - @, tab, CR, and their full-width forms (which some spreadsheets
# fold to ASCII before parsing).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


@dataclass(frozen=True)
class InputRecord:
    """One text to tag and where it came from.

    Attributes:
        index: 0-based position in the input.
        text: the text.
        line: 1-based line of the input file where the record starts (``None`` for a literal text).
        fields: the input row (CSV) or object (JSONL), in input order; empty for plain text.
    """

    index: int
    text: str
    line: int | None = None
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> Any:
        """The input's own ``id`` field when it has one, else the 0-based index."""
        return self.fields.get("id", self.index)


def input_format(path: str | Path) -> str:
    """``txt``, ``csv`` or ``jsonl`` from the file suffix."""
    fmt = INPUT_SUFFIXES.get(Path(path).suffix.lower())
    if fmt is None:
        raise UsageError(f"{path}: cannot tell the input format; use a {', '.join(INPUT_SUFFIXES)} file or --text")
    return fmt


def output_format(path: str | Path) -> str:
    """``jsonl`` or ``csv`` from the output suffix."""
    fmt = OUTPUT_SUFFIXES.get(Path(path).suffix.lower())
    if fmt is None:
        raise UsageError(f"{path}: unknown output format; name the output file *.jsonl or *.csv")
    return fmt


def read_inputs(path: str | Path, *, text_column: str = "text", whole_file: bool = False) -> Iterator[InputRecord]:
    """The records of an input file, lazily (see the module docstring for the formats)."""
    path = Path(path)
    fmt = input_format(path)
    if not path.is_file():
        raise UsageError(f"{path}: input file not found")
    if whole_file and fmt != "txt":
        raise UsageError("--whole-file applies to .txt inputs only")
    if fmt != "parquet":
        with path.open("rb") as fh:  # NUL bytes are valid UTF-8: UTF-16 would be read as text full of NULs
            refuse_utf16_without_bom(fh.read(4096), path)
    if fmt == "txt":
        return _read_whole(path) if whole_file else _read_lines(path)
    if fmt == "csv":
        return _read_csv(path, text_column)
    if fmt == "parquet":
        return parquet_records(str(path), text_column)
    return _read_jsonl(path, text_column)


def count_inputs(path: str | Path, *, text_column: str = "text", whole_file: bool = False) -> int:
    """Read the whole input once without tagging: the number of records, for the progress bar's total and ETA.

    A cheap pre-scan (parsing is thousands of times faster than tagging), so that a bad byte or record at line
    3,001 stops the run before any tagging, not after 3,000 texts were tagged and thrown away.

    Raises:
        DataFormatError: the first problem in the file, with its line.
    """
    if input_format(path) == "parquet":  # columnar: the count and the null texts are in the metadata
        with open_parquet(str(path)) as pf:
            check_parquet_texts(pf, text_column, str(path))
            return int(pf.metadata.num_rows)
    return sum(1 for _ in read_inputs(path, text_column=text_column, whole_file=whole_file))


@contextlib.contextmanager
def open_parquet(url: str, opener: Any = None) -> Iterator[Any]:
    """A ``pyarrow.parquet.ParquetFile`` of a local path or of a file opened by ``opener`` (an fsspec ``open``)."""
    import pyarrow.parquet as pq

    with opener(url, "rb") if opener is not None else open(url, "rb") as fh:
        try:
            pf = pq.ParquetFile(fh)
        except Exception as exc:  # pyarrow raises ArrowInvalid / OSError for a file that is not Parquet
            raise DataFormatError(url, None, f"not a Parquet file ({exc})") from None
        yield pf


def check_parquet_texts(pf: Any, text_column: str, url: str) -> int:
    """Check from the metadata alone that ``text_column`` exists, holds strings and has no null in any row group;
    returns the column's index.

    Raises:
        DataFormatError: naming the column, or the row group with nulls.
    """
    import pyarrow as pa

    schema, meta = pf.schema_arrow, pf.metadata
    column = text_column_index(schema.names, text_column, url, None)
    kind = schema.field(text_column).type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        raise DataFormatError(url, None, f"column {text_column!r} holds {kind}", expected="strings")
    for g in range(meta.num_row_groups):
        stats = meta.row_group(g).column(column).statistics
        if stats is not None and stats.has_null_count and stats.null_count:
            raise DataFormatError(
                url, None, f"column {text_column!r} has {stats.null_count} null value(s) in row group {g}",
                expected="a text in every row",
            )  # fmt: skip
    return column


def parquet_records(
    url: str, text_column: str, *, start: int = 0, end: int | None = None, first_index: int = 0, opener: Any = None
) -> Iterator[InputRecord]:
    """The records of rows ``start``..``end`` of a Parquet file (the text in ``text_column``, every column kept as a
    field); the one Parquet reader of ``predict``, local and on Ray (:mod:`nerforge.distributed.io`).

    Raises:
        DataFormatError: not Parquet, no such column, or a row whose text is not a string (with its row number).
    """
    with open_parquet(url, opener) as pf:
        meta = pf.metadata
        text_column_index(pf.schema_arrow.names, text_column, url, None)
        end = meta.num_rows if end is None else end
        offset, index = 0, first_index
        for g in range(meta.num_row_groups):  # one row group in memory at a time
            n = meta.row_group(g).num_rows
            lo, hi = max(start, offset), min(end, offset + n)
            if lo < hi:
                rows = pf.read_row_group(g).slice(lo - offset, hi - lo).to_pylist()
                for k, row in enumerate(rows):
                    text = row.get(text_column)
                    if not isinstance(text, str):
                        where = f"row {lo + k + 1} of the file"
                        raise DataFormatError(
                            url, None, f"{where}: column {text_column!r} is {text!r}", expected="a text"
                        )
                    yield InputRecord(index, text, None, row)
                    index += 1
            offset += n


# The parsers of one record below are shared with nerforge.distributed.io, which reads byte ranges of the same
# files, so that both read every record (and reject every bad one) alike.


def decode_utf8(raw: bytes, path: str | Path, line: int | None) -> str:
    """``raw`` as UTF-8 text; a :class:`DataFormatError` at ``path:line`` when it is not."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataFormatError(path, line, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def json_record(text: str, path: str | Path, line: int, index: int, text_field: str) -> InputRecord:
    """The record of one non-blank JSON Lines line: an object with a string in ``text_field``, else an error."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataFormatError(path, line, f"invalid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise DataFormatError(path, line, f"a JSON {type(obj).__name__}", expected="one JSON object per line")
    if text_field not in obj:
        keys = ", ".join(map(str, obj)) or "none"
        raise DataFormatError(
            path, line, f"no {text_field!r} field (fields: {keys})", expected="the text in that field (--text-column)"
        )
    value = obj[text_field]
    if not isinstance(value, str):
        raise DataFormatError(path, line, f"field {text_field!r} is a JSON {type(value).__name__}", expected="a string")
    return InputRecord(index, value, line, obj)


def text_column_index(columns: Sequence[str], text_column: str, path: str | Path, line: int | None) -> int:
    """Where ``text_column`` is among the input's ``columns`` (a CSV header, a Parquet schema), else an error."""
    if text_column not in columns:
        raise DataFormatError(
            path, line, f"no column {text_column!r} (columns: {', '.join(columns)})", expected="--text-column NAME"
        )
    return list(columns).index(text_column)


def csv_record(
    row: list[str], header: Sequence[str], column: int, path: str | Path, line: int, index: int
) -> InputRecord:
    """The record of one non-empty CSV row, which must have as many fields as the header."""
    if len(row) != len(header):
        raise DataFormatError(path, line, f"{len(row)} fields but the header has {len(header)}")
    return InputRecord(index, row[column], line, dict(zip(header, row, strict=True)))


def _read_whole(path: Path) -> Iterator[InputRecord]:
    text = decode_utf8(read_bounded(path), path, None).removeprefix("\ufeff")
    yield InputRecord(0, text, 1)


def bounded_lines(fh: IO[bytes], path: str | Path) -> Iterator[bytes]:
    """The lines of a binary file, each at most ``NERFORGE_MAX_LINE_MB`` long (a file without line ends must not be
    read into memory whole before the first record is tagged).

    Raises:
        DataFormatError: a longer line, naming it and the variable that raises the limit.
    """
    _, max_line = input_limits()
    n = 0
    while raw := fh.readline(max_line + 1):
        n += 1
        if len(raw) > max_line and not raw.endswith(b"\n"):
            raise DataFormatError(
                path,
                n,
                f"the line is longer than {max_line / 2**20:.3g} MB",
                f"one text per line; a higher limit with {MAX_LINE_ENV}=MB",
            )
        yield raw


def _read_lines(path: Path) -> Iterator[InputRecord]:
    with path.open("rb") as fh:
        for n, raw in enumerate(bounded_lines(fh, path)):
            text = decode_utf8(raw, path, n + 1)
            if n == 0:
                text = text.removeprefix("\ufeff")
            yield InputRecord(n, text.removesuffix("\n").removesuffix("\r"), n + 1)


def _read_jsonl(path: Path, text_field: str) -> Iterator[InputRecord]:
    index = 0
    with path.open("rb") as fh:
        for n, raw in enumerate(bounded_lines(fh, path), start=1):
            line = decode_utf8(raw, path, n)
            if n == 1:
                line = line.removeprefix("\ufeff")
            if not line.strip():
                continue
            yield json_record(line, path, n, index, text_field)
            index += 1


def _read_csv(path: Path, text_column: str) -> Iterator[InputRecord]:
    with path.open("r", encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        start = 1
        try:
            header = next(reader, None)
            if header is None:
                return
            col = text_column_index(header, text_column, path, 1)
            index = 0
            start = reader.line_num + 1
            for row in reader:
                if not row:  # a blank line between rows
                    start = reader.line_num + 1
                    continue
                yield csv_record(row, header, col, path, start, index)
                index += 1
                start = reader.line_num + 1
        except csv.Error as exc:
            raise DataFormatError(path, start, f"invalid CSV: {exc}") from None
        except UnicodeDecodeError as exc:
            raise DataFormatError(path, start, f"not UTF-8 text ({exc.reason})") from None


# -- output ------------------------------------------------------------------------------------------------------


def escape_cell(value: str) -> str:
    """Prefix ``'`` to a cell a spreadsheet would run as a formula (:data:`FORMULA_STARTS`)."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def cell_entities(text: str, entities: Sequence[Entity]) -> list[Entity]:
    """``entities`` with offsets into ``escape_cell(text)``: shifted by the ``'`` it prefixes, if any, so
    ``escape_cell(text)[e.start:e.end] == e.text`` holds in the written file as it does in the input."""
    shift = len(escape_cell(text)) - len(text)
    if not shift:
        return list(entities)
    return [dataclasses.replace(e, start=e.start + shift, end=e.end + shift) for e in entities]


def entities_json(entities: Sequence[Entity]) -> list[dict[str, object]]:
    return [e.to_dict() for e in entities]


def record_to_json(record: InputRecord, entities: Sequence[Entity]) -> dict[str, Any]:
    """The JSONL object for one record: ``id``, ``text``, ``entities``, then the input's other fields."""
    out: dict[str, Any] = {"id": record.id, "text": record.text, ENTITIES_COLUMN: entities_json(entities)}
    for key, value in record.fields.items():
        out.setdefault(key, value)
    return out


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def readable_entities(entities: Sequence[Entity]) -> str:
    """``Power BI [TECH]; SQL [TECH]``: the entities in text order, for people reading a spreadsheet."""
    return "; ".join(f"{' '.join(e.text.split())} [{e.label}]" for e in entities)


def record_to_row(record: InputRecord, entities: Sequence[Entity], columns: Sequence[str]) -> list[str]:
    """The CSV row for one record under ``columns`` (the last two are ``entities_text`` and ``entities``),
    spreadsheet-escaped."""
    values = {"id": record.id, "text": record.text, **record.fields}
    values[READABLE_COLUMN] = readable_entities(entities)
    values[ENTITIES_COLUMN] = json.dumps(entities_json(cell_entities(record.text, entities)), ensure_ascii=False)
    return [escape_cell(_csv_cell(values.get(c))) for c in columns]


def csv_columns(record: InputRecord | None, csv_input: bool) -> list[str]:
    """Output columns: the input's own columns for CSV input, ``id, text`` otherwise; then ``entities_text`` (readable)
    and ``entities`` (JSON) last."""
    ours = (READABLE_COLUMN, ENTITIES_COLUMN)
    base = [k for k in record.fields if k not in ours] if csv_input and record is not None else ["id", "text"]
    for name in ours:
        if csv_input and record is not None and name in record.fields:
            logger.warning("the input column %r is replaced by the predicted entities", name)
    return [*base, *ours]


def write_predictions(
    path: str | Path, results: Iterable[tuple[InputRecord, Sequence[Entity]]], *, csv_input: bool = False
) -> int:
    """Write ``(record, entities)`` pairs to ``path`` (``.jsonl`` or ``.csv``) atomically; returns the count.

    The pairs are consumed lazily; the file appears only once all of them are written.
    """
    fmt = output_format(path)
    count = 0
    with atomic_open(path, "w", newline="" if fmt == "csv" else None) as fh:
        if fmt == "jsonl":
            for record, entities in results:
                fh.write(json.dumps(record_to_json(record, entities), ensure_ascii=False, default=str) + "\n")
                count += 1
        else:
            count = _write_csv(fh, results, csv_input)
    return count


def _write_csv(fh: IO[str], results: Iterable[tuple[InputRecord, Sequence[Entity]]], csv_input: bool) -> int:
    writer = csv.writer(fh)
    columns: list[str] | None = None
    count = 0
    for record, entities in results:
        if columns is None:
            columns = csv_columns(record, csv_input)
            writer.writerow([escape_cell(c) for c in columns])
        writer.writerow(record_to_row(record, entities, columns))
        count += 1
    if columns is None:
        writer.writerow(csv_columns(None, csv_input))
    return count


def render_inline(text: str, entities: Sequence[Entity]) -> str:
    """The text with each entity marked in place: ``[Acme Corp](ORG) hired [Ann](PER)``; an entity inside another
    is marked inside it (``[[Bonn](LOC) University](ORG)``), one that crosses an entity already marked is left out.

    >>> render_inline("Bonn University", [Entity("Bonn University", "ORG", 0, 15, 1.0), Entity("Bonn", "LOC", 0, 4, 1.0)])
    '[[Bonn](LOC) University](ORG)'
    """
    ordered = sorted(entities, key=lambda e: (e.start, -e.end))

    def marked(start: int, end: int, inside: list[Entity]) -> str:
        parts: list[str] = []
        pos = start
        for i, e in enumerate(inside):
            if e.start < pos or e.end > end:
                continue  # crosses one already marked, or reaches past its parent
            children = [c for c in inside[i + 1 :] if e.start <= c.start and c.end <= e.end]
            parts += [text[pos : e.start], f"[{marked(e.start, e.end, children)}]({e.label})"]
            pos = e.end
        parts.append(text[pos:end])
        return "".join(parts)

    return marked(0, len(text), ordered)
