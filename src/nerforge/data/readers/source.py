"""A data file as text: decoding, byte-level quirks, physical lines, and JSON with the line of every record.

Every reader starts here, so that the problems of bytes (bad UTF-8, a BOM, CRLF, no final newline) are handled and
reported once, the same way, with 1-based line numbers.
"""

from __future__ import annotations

import bisect
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nerforge.errors import DataFormatError
from nerforge.types import Finding

_BOM = "\ufeff"
_WS_RE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


@dataclass
class Source:
    """The decoded text of one file (BOM removed, line endings untouched) and where it came from."""

    path: str
    text: str
    _newlines: list[int] | None = field(default=None, init=False, repr=False, compare=False)

    def line_at(self, offset: int) -> int:
        """The 1-based line holding character ``offset``."""
        if self._newlines is None:
            self._newlines = [m.start() for m in re.finditer("\n", self.text)]
        return bisect.bisect_left(self._newlines, offset) + 1


@dataclass(frozen=True)
class JsonItem:
    """One element of a JSON array, with the 1-based line where it starts."""

    value: Any
    line: int


@dataclass
class JsonDocument:
    """A whole-file JSON value, with line numbers for the elements of the top-level array(s).

    Attributes:
        value: the parsed value.
        items: the elements of the top-level array, when the file is an array.
        field_items: for a top-level object, the elements of each of its array-valued fields.
    """

    value: Any
    items: list[JsonItem] | None = None
    field_items: dict[str, list[JsonItem]] = field(default_factory=dict)


def read_source(path: str | Path) -> tuple[Source, list[Finding]]:
    """Read and decode ``path`` as UTF-8.

    Raises:
        DataFormatError: the file cannot be read, or is not valid UTF-8 (with the line of the first bad byte).
    """
    name = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        reason = exc.strerror or exc.__class__.__name__
        raise DataFormatError(name, None, f"cannot read the file: {reason}", "a readable file") from None
    return decode_bytes(data, name)


def decode_bytes(data: bytes, path: str) -> tuple[Source, list[Finding]]:
    """Decode ``data`` as UTF-8, dropping a leading BOM (reported as a finding)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        bad = data[exc.start : exc.start + 1].hex()
        raise DataFormatError(
            path, line, f"invalid UTF-8 (byte 0x{bad} at byte offset {exc.start})", "UTF-8 text; re-encode the file"
        ) from None
    findings = []
    if text.startswith(_BOM):
        text = text[1:]
        findings.append(Finding("bom", path, 1, "the file starts with a UTF-8 byte-order mark (ignored)", "info"))
    return Source(path, text), findings


def split_lines(source: Source) -> tuple[list[str], list[Finding]]:
    """Physical lines without their ``\\n`` or ``\\r\\n`` ending; line ``i`` of the file is ``lines[i - 1]``.

    Only ``\\n`` ends a line (``str.splitlines`` would also split on control characters that can be tokens).
    Reports CRLF endings and a missing final newline, once each.
    """
    text = source.text
    findings: list[Finding] = []
    if not text:
        return [], findings
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    else:
        findings.append(
            Finding("no-final-newline", source.path, len(lines), "the last line has no newline (read anyway)", "info")
        )
    crlf = 0
    first = None
    for i, line in enumerate(lines if "\r" in text else ()):
        if line.endswith("\r"):
            lines[i] = line[:-1]
            crlf += 1
            if first is None:
                first = i + 1
    if crlf:
        findings.append(
            Finding("crlf", source.path, first, f"{crlf} line(s) end with CRLF (the CR is ignored)", "info")
        )
    return lines, findings


def parse_json_value(source: Source, text: str, line_offset: int = 0) -> Any:
    """Parse ``text`` (one JSON value, e.g. one line of a JSON Lines file) with errors as :class:`DataFormatError`."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataFormatError(
            source.path, exc.lineno + line_offset, f"invalid JSON: {exc.msg} (column {exc.colno})", "valid JSON"
        ) from None
    except RecursionError:
        raise DataFormatError(source.path, line_offset + 1, "JSON nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise DataFormatError(source.path, line_offset + 1, f"invalid JSON value: {exc}", "valid JSON") from None


def parse_json_document(source: Source) -> JsonDocument:
    """Parse the whole file as one JSON value, remembering where each top-level record starts.

    Handles a top-level array (each element located) and a top-level object (the elements of each array-valued
    field located), which covers ``[{...}, ...]``, ``{"data": [{...}, ...]}`` and spaCy's
    ``{"classes": [...], "annotations": [...]}``.
    """
    text = source.text
    i = _skip(text, 0)
    if i >= len(text):
        raise DataFormatError(source.path, None, "the file holds no JSON value", "a JSON object or array")
    if text[i] == "[":
        items, end = _array_items(source, i)
        doc = JsonDocument([it.value for it in items], items=items)
    elif text[i] == "{":
        doc, end = _object_fields(source, i)
    else:
        value, end = _decode_at(source, i)
        doc = JsonDocument(value)
    end = _skip(text, end)
    if end < len(text):
        raise DataFormatError(
            source.path, source.line_at(end), "extra data after the JSON value", "one JSON value (or JSON Lines)"
        )
    return doc


def _skip(text: str, i: int) -> int:
    m = _WS_RE.match(text, i)
    return m.end() if m else i


def _decode_at(source: Source, i: int) -> tuple[Any, int]:
    try:
        return _DECODER.raw_decode(source.text, i)
    except json.JSONDecodeError as exc:
        raise DataFormatError(
            source.path, exc.lineno, f"invalid JSON: {exc.msg} (column {exc.colno})", "valid JSON"
        ) from None
    except RecursionError:
        raise DataFormatError(source.path, source.line_at(i), "JSON nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise DataFormatError(source.path, source.line_at(i), f"invalid JSON value: {exc}", "valid JSON") from None


def _expect(source: Source, i: int, allowed: str, what: str) -> str:
    text = source.text
    if i >= len(text):
        raise DataFormatError(source.path, source.line_at(i), "the JSON ends too early", what)
    if text[i] not in allowed:
        raise DataFormatError(source.path, source.line_at(i), f"unexpected {text[i]!r} in JSON", what)
    return text[i]


def _array_items(source: Source, i: int) -> tuple[list[JsonItem], int]:
    """Elements of the array that starts at ``text[i] == '['``, and the offset after its ``]``."""
    text = source.text
    items: list[JsonItem] = []
    i = _skip(text, i + 1)
    if i < len(text) and text[i] == "]":
        return items, i + 1
    while True:
        value, end = _decode_at(source, i)
        items.append(JsonItem(value, source.line_at(i)))
        end = _skip(text, end)
        if _expect(source, end, ",]", "',' or ']'") == "]":
            return items, end + 1
        i = _skip(text, end + 1)


def _object_fields(source: Source, i: int) -> tuple[JsonDocument, int]:
    """The object that starts at ``text[i] == '{'``; array-valued fields keep the line of each element."""
    text = source.text
    value: dict[str, Any] = {}
    doc = JsonDocument(value)
    i = _skip(text, i + 1)
    if i < len(text) and text[i] == "}":
        return doc, i + 1
    while True:
        _expect(source, i, '"', "a quoted object key")
        key, end = _decode_at(source, i)
        end = _skip(text, end)
        _expect(source, end, ":", "':' after an object key")
        start = _skip(text, end + 1)
        if start < len(text) and text[start] == "[":
            items, end = _array_items(source, start)
            value[key] = [it.value for it in items]
            doc.field_items[key] = items
        else:
            value[key], end = _decode_at(source, start)
        end = _skip(text, end)
        if _expect(source, end, ",}", "',' or '}'") == "}":
            return doc, end + 1
        i = _skip(text, end + 1)
