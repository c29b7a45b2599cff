"""Inputs of distributed prediction: which files, cut into parts by a planning pass, each part readable on its own.

An input is a file, a folder or a glob, local or any fsspec URL (``s3://bucket/corpus/*.jsonl``); all its files
have one format, chosen by suffix: ``.txt`` (one text per line), ``.jsonl``/``.ndjson``, ``.csv`` or ``.parquet``.
Records are read exactly as ``nerforge predict`` reads them (:mod:`nerforge.prediction.io`: same BOM handling,
blank lines, CSV quoting, ``id`` and ``line`` of each record), and row indices run on across files.

Planning (:func:`plan_parts`) streams text files once on the driver: it parses every record (so a malformed line
fails at once, with ``path:line``, before any worker starts) and notes the byte range of every ``part_size``
records. Parquet files are planned from their metadata alone. A worker then reads just its byte range (or row
range) with :func:`read_part`.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import IO, Any

from nerforge.errors import DataFormatError, UsageError
from nerforge.prediction.io import (
    INPUT_SUFFIXES,
    InputRecord,
    check_parquet_texts,
    csv_record,
    decode_utf8,
    json_record,
    open_parquet,
    parquet_records,
    text_column_index,
)

FORMATS = {**INPUT_SUFFIXES, ".parquet": "parquet", ".pq": "parquet"}
_GLOB = re.compile(r"[*?\[]")
_BOM = b"\xef\xbb\xbf"
_BARE_CR = re.compile(r"(?<=\r)(?!\n)")  # text-mode newline="" also ends a line at a lone \r


def url_to_fs(url: str) -> tuple[Any, str]:
    """The fsspec filesystem and path of a local path or URL."""
    from fsspec.core import url_to_fs as _url_to_fs

    try:
        return _url_to_fs(url)
    except (ImportError, ValueError) as exc:  # an unknown protocol, or its package missing (s3fs, gcsfs...)
        raise UsageError(f"{url}: cannot open this location: {exc}") from None


def is_local(fs: Any) -> bool:
    protocol = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    return "file" in protocol


def format_of(path: str) -> str:
    lower = path.lower()
    for suffix, fmt in FORMATS.items():
        if lower.endswith(suffix):
            return fmt
    raise UsageError(f"{path}: cannot tell the input format; use {', '.join(FORMATS)} files")


def _unstrip(fs: Any, path: str) -> str:
    """A path from ``fs`` back as a URL other processes can open."""
    return path if is_local(fs) else fs.unstrip_protocol(path)


def resolve_inputs(url: str) -> tuple[list[str], str]:
    """The input files of ``url`` (a file, a folder or a glob) in name order, and their one format."""
    fs, path = url_to_fs(url)
    if _GLOB.search(path):
        found = sorted(p for p in fs.glob(path) if fs.isfile(p))
    elif fs.isdir(path):
        found = sorted(p for p in fs.find(path) if any(p.lower().endswith(s) for s in FORMATS))
    elif fs.isfile(path):
        found = [path]
    else:
        raise UsageError(f"{url}: input not found")
    if not found:
        raise UsageError(f"{url}: no input files there (expected {', '.join(FORMATS)})")
    formats = {format_of(p) for p in found}
    if len(formats) > 1:
        raise UsageError(f"{url}: files of several formats ({', '.join(sorted(formats))}); give one format at a time")
    return [_unstrip(fs, p) for p in found], formats.pop()


def fingerprint(url: str) -> dict[str, Any]:
    """Size and modification stamp of a file, to notice when an input changed between runs."""
    fs, path = url_to_fs(url)
    info = fs.info(path)
    stamp = info.get("mtime") or info.get("LastModified") or info.get("ETag") or info.get("updated") or ""
    return {"url": url, "size": int(info.get("size") or 0), "stamp": str(stamp)}


@dataclass(frozen=True)
class Part:
    """One unit of work: ``rows`` records of one file, starting at global row ``first_row``.

    For text formats ``start``/``end`` are byte offsets and ``first_line`` is the 1-based line at ``start``; for
    Parquet they are row numbers within the file. ``header`` is the CSV header of the file.
    """

    index: int
    url: str
    fmt: str
    first_row: int
    rows: int
    start: int
    end: int
    first_line: int = 1
    header: tuple[str, ...] | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Part:
        raw = json.loads(text)
        if raw.get("header") is not None:
            raw["header"] = tuple(raw["header"])
        return cls(**raw)


@dataclass(frozen=True)
class Plan:
    """The parts of a whole input, and the columns a CSV output gets (``None`` until known)."""

    fmt: str
    parts: list[Part]
    columns: tuple[str, ...] | None  # the input's own columns (CSV header, Parquet schema), when it has them

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self.parts)


# -- text formats ------------------------------------------------------------------------------------------------


def _lines(
    fh: IO[bytes], start: int, end: int | None, url: str, first_line: int, *, split_cr: bool
) -> Iterator[tuple[str, int]]:
    """Decoded lines from byte ``start`` up to ``end`` (at a line boundary) with the byte offset after each."""
    fh.seek(start)
    offset, line = start, first_line
    for raw in fh:
        if end is not None and offset >= end:
            return
        text = decode_utf8(raw, url, line)
        if offset == 0 and raw.startswith(_BOM):
            text = text[1:]
            offset += len(_BOM)
        for piece in _BARE_CR.split(text) if split_cr else (text,):
            offset += len(piece.encode("utf-8"))
            line += 1
            yield piece, offset


def _text_records(
    fh: IO[bytes], part: Part, text_column: str, *, end: int | None
) -> Iterator[tuple[InputRecord, int, int]]:
    """``(record, byte offset after it, next line)`` for the records of a text file from ``part.start``."""
    index, line = part.first_row, part.first_line
    if part.fmt == "txt":
        for text, offset in _lines(fh, part.start, end, part.url, line, split_cr=False):
            yield InputRecord(index, text.removesuffix("\n").removesuffix("\r"), line), offset, line + 1
            index, line = index + 1, line + 1
    elif part.fmt == "jsonl":
        for text, offset in _lines(fh, part.start, end, part.url, line, split_cr=False):
            if text.strip():
                yield json_record(text, part.url, line, index, text_column), offset, line + 1
                index += 1
            line += 1
    else:
        yield from _csv_records(fh, part, end, text_column)


def _csv_records(
    fh: IO[bytes], part: Part, end: int | None, text_column: str
) -> Iterator[tuple[InputRecord, int, int]]:
    header = list(part.header or ())
    column = header.index(text_column)
    offsets: list[int] = [part.start]

    def feed() -> Iterator[str]:
        for text, offset in _lines(fh, part.start, end, part.url, part.first_line, split_cr=True):
            offsets.append(offset)
            yield text

    reader = csv.reader(feed())
    index, start = part.first_row, part.first_line
    try:
        for row in reader:
            if row:
                record = csv_record(row, header, column, part.url, start, index)
                yield record, offsets[-1], part.first_line + reader.line_num
                index += 1
            start = part.first_line + reader.line_num
    except csv.Error as exc:
        raise DataFormatError(part.url, start, f"invalid CSV: {exc}") from None


def _csv_header(fh: IO[bytes], url: str, text_column: str) -> tuple[tuple[str, ...] | None, int, int]:
    """The header of a CSV file, the byte offset after it and the line after it (``None`` for an empty file)."""
    offsets = [0]

    def feed() -> Iterator[str]:
        for text, offset in _lines(fh, 0, None, url, 1, split_cr=True):
            offsets.append(offset)
            yield text

    reader = csv.reader(feed())
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise DataFormatError(url, 1, f"invalid CSV: {exc}") from None
    if header is None:
        return None, offsets[-1], 1
    text_column_index(header, text_column, url, 1)
    return tuple(header), offsets[-1], 1 + reader.line_num


def _plan_text(
    url: str, fmt: str, text_column: str, part_size: int, first_row: int, first_index: int
) -> tuple[list[Part], tuple[str, ...] | None]:
    fs, path = url_to_fs(url)
    parts: list[Part] = []
    with fs.open(path, "rb") as fh:
        header, start, line = (None, 0, 1)
        if fmt == "csv":
            header, start, line = _csv_header(fh, url, text_column)
            if header is None:
                return [], None
        if fmt == "txt-whole":
            size = fs.info(path)["size"]
            return [Part(first_index, url, fmt, first_row, 1, 0, int(size), 1)], None
        cursor = Part(first_index, url, fmt, first_row, 0, start, 0, line, header)
        count, row = 0, first_row
        for _record, offset, next_line in _text_records(fh, cursor, text_column, end=None):
            count += 1
            if count == part_size:
                parts.append(Part(first_index + len(parts), url, fmt, row, count, start, offset, line, header))
                start, line, row, count = offset, next_line, row + count, 0
        if count:
            parts.append(
                Part(first_index + len(parts), url, fmt, row, count, start, fs.info(path)["size"], line, header)
            )
    return parts, header


# -- parquet ------------------------------------------------------------------------------------------------------


def _parquet_file(url: str) -> Any:
    fs, path = url_to_fs(url)
    return open_parquet(url, opener=lambda _url, mode: fs.open(path, mode))


def _plan_parquet(
    url: str, text_column: str, part_size: int, first_row: int, first_index: int
) -> tuple[list[Part], tuple[str, ...]]:

    with _parquet_file(url) as pf:
        schema, meta = pf.schema_arrow, pf.metadata
        check_parquet_texts(pf, text_column, url)
    total = meta.num_rows
    parts = [
        Part(first_index + k, url, "parquet", first_row + s, min(part_size, total - s), s, min(s + part_size, total))
        for k, s in enumerate(range(0, total, part_size))
    ]
    return parts, tuple(schema.names)


def _read_parquet(part: Part, text_column: str) -> Iterator[InputRecord]:
    fs, path = url_to_fs(part.url)
    yield from parquet_records(
        part.url, text_column, start=part.start, end=part.end, first_index=part.first_row,
        opener=lambda _url, mode: fs.open(path, mode),
    )  # fmt: skip


# -- planning and reading ----------------------------------------------------------------------------------------


def plan_parts(
    url: str, *, text_column: str = "text", part_size: int, whole_file: bool = False
) -> tuple[Plan, list[str]]:
    """Cut the input at ``url`` into parts of ``part_size`` records; also returns the input files.

    Raises:
        UsageError: no input, mixed formats, CSV files with different headers, ``whole_file`` on a non-text input.
        DataFormatError: a record that cannot be read (``path:line``).
    """
    if part_size < 1:
        raise UsageError(f"the part size must be at least 1, got {part_size}")
    files, fmt = resolve_inputs(url)
    if whole_file:
        if fmt != "txt":
            raise UsageError("--whole-file applies to .txt inputs only")
        fmt = "txt-whole"
    parts: list[Part] = []
    columns: tuple[str, ...] | None = None
    for file in files:
        first_row = parts[-1].first_row + parts[-1].rows if parts else 0
        if fmt == "parquet":
            found, cols = _plan_parquet(file, text_column, part_size, first_row, len(parts))
        else:
            found, cols = _plan_text(file, fmt, text_column, part_size, first_row, len(parts))
        if cols is not None and columns is not None and cols != columns and fmt == "csv":
            raise UsageError(f"{file}: its CSV header differs from the first file's ({', '.join(columns)})")
        columns = columns or cols
        parts += found
    return Plan(fmt, parts, columns), files


def read_part(part: Part, *, text_column: str = "text") -> Iterator[InputRecord]:
    """The records of one part, in order (see the module docstring)."""
    if part.fmt == "parquet":
        yield from _read_parquet(part, text_column)
        return
    fs, path = url_to_fs(part.url)
    with fs.open(path, "rb") as fh:
        if part.fmt == "txt-whole":
            raw = fh.read()
            yield InputRecord(part.first_row, decode_utf8(raw, part.url, 1).removeprefix("\ufeff"), 1)
            return
        for record, _offset, _line in _text_records(fh, part, text_column, end=part.end):
            yield record
