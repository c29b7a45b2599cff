"""A data file as text: decoding, byte-level quirks, physical lines, and JSON with the line of every record.

Every reader starts here, so that the problems of bytes (bad UTF-8, a BOM, CRLF, no final newline) are handled and
reported once, the same way, with 1-based line numbers.
"""

from __future__ import annotations

import bisect
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nerforge.errors import DataFormatError, UsageError
from nerforge.types import Finding

_BOM = "\ufeff"
_WS_RE = re.compile(r"[ \t\n\r]*")
_LINE_END_RE = re.compile(r"\n|\r(?!\n)")  # where a line ends: LF (CRLF's LF) or a lone CR (classic Mac OS)
_BOMS = (  # longest first: the UTF-32 LE mark starts with the UTF-16 LE one
    (b"\xff\xfe\x00\x00", "utf-32-le", "UTF-32 LE"),
    (b"\x00\x00\xfe\xff", "utf-32-be", "UTF-32 BE"),
    (b"\xff\xfe", "utf-16-le", "UTF-16 LE"),
    (b"\xfe\xff", "utf-16-be", "UTF-16 BE"),
)
_DECODER = json.JSONDecoder()


@dataclass
class Source:
    """The decoded text of one file (BOM removed, line endings untouched) and where it came from."""

    path: str
    text: str
    _newlines: list[int] | None = field(default=None, init=False, repr=False, compare=False)

    def line_at(self, offset: int) -> int:
        """The 1-based line holding character ``offset`` (a line ends at LF, CRLF or a lone CR)."""
        if self._newlines is None:
            self._newlines = [m.start() for m in _LINE_END_RE.finditer(self.text)]
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


MAX_INPUT_ENV = "NERFORGE_MAX_INPUT_MB"
MAX_LINE_ENV = "NERFORGE_MAX_LINE_MB"
DEFAULT_MAX_INPUT_MB = 4096
DEFAULT_MAX_LINE_MB = 64
_CHUNK = 1 << 20


def input_limits() -> tuple[int, int]:
    """The most bytes a data file, and one line of a line-based file, may have (``NERFORGE_MAX_INPUT_MB``,
    ``NERFORGE_MAX_LINE_MB``; defaults 4096 and 64). Memory stays bounded for any input, even one without an end
    (``/dev/zero``) or without line ends.

    Raises:
        UsageError: a variable that is not a positive number.
    """
    out = []
    for env, default in ((MAX_INPUT_ENV, DEFAULT_MAX_INPUT_MB), (MAX_LINE_ENV, DEFAULT_MAX_LINE_MB)):
        raw = os.environ.get(env, "").strip()
        try:
            mb = float(raw) if raw else float(default)
        except ValueError:
            mb = -1.0
        if not mb > 0:
            raise UsageError(f"{env}={raw!r}: expected a positive number of megabytes")
        out.append(int(mb * 1024 * 1024))
    return out[0], out[1]


def read_bounded(path: str | Path) -> bytes:
    """The bytes of ``path``, read in chunks within :func:`input_limits`: a line-based file whose current line runs
    past the line limit stops at once (a whole-file JSON document, which may be one minified line, only counts
    against the file limit).

    Raises:
        OSError: the file cannot be read.
        DataFormatError: past a limit, naming the line (or the file) and the variable that raises it.
    """
    max_input, max_line = input_limits()
    chunks: list[bytes] = []
    total = since_newline = 0
    line = 1
    whole_json: bool | None = None
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            if whole_json is None:
                head = chunk.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
                whole_json = head in (b"[", b"{") if head else None
            total += len(chunk)
            if total > max_input:
                raise DataFormatError(
                    path,
                    None,
                    f"the file is larger than {max_input / 2**20:.3g} MB",
                    f"a smaller file, or a higher limit ({MAX_INPUT_ENV}=MB)",
                )
            last = chunk.rfind(b"\n")
            if last < 0:
                since_newline += len(chunk)
            else:
                line += chunk.count(b"\n")
                since_newline = len(chunk) - last - 1
            if not whole_json and since_newline > max_line:
                raise DataFormatError(
                    path,
                    line,
                    f"the line is longer than {max_line / 2**20:.3g} MB (no line end found)",
                    f"one record per line; a higher limit with {MAX_LINE_ENV}=MB",
                )
            chunks.append(chunk)
    return b"".join(chunks)


def read_source(path: str | Path) -> tuple[Source, list[Finding]]:
    """Read and decode ``path`` as UTF-8, within :func:`input_limits`.

    Raises:
        DataFormatError: the file cannot be read, is past a size limit, or is not valid UTF-8 (with the line of the
            first bad byte).
    """
    name = str(path)
    try:
        data = read_bounded(path)
    except OSError as exc:
        reason = exc.strerror or exc.__class__.__name__
        raise DataFormatError(name, None, f"cannot read the file: {reason}", "a readable file") from None
    return decode_bytes(data, name)


def utf16_without_bom(data: bytes) -> str | None:
    """``"UTF-16 LE"`` or ``"UTF-16 BE"`` when ``data`` looks like UTF-16 without a byte-order mark: text whose every
    other byte is NUL (what ASCII and Latin letters look like in UTF-16); else ``None``."""
    sample = data[:4096]
    if len(sample) < 4 or b"\x00" not in sample:
        return None
    even, odd = sample[0::2], sample[1::2]
    if odd.count(0) >= 0.6 * len(odd) and even.count(0) <= 0.1 * len(even):
        return "UTF-16 LE"
    if even.count(0) >= 0.6 * len(even) and odd.count(0) <= 0.1 * len(odd):
        return "UTF-16 BE"
    return None


def refuse_utf16_without_bom(data: bytes, path: str | Path) -> None:
    """Raise when ``data`` (a file's first bytes are enough) looks like UTF-16 without a byte-order mark.

    Raises:
        DataFormatError: naming the file and the command that re-encodes it.
    """
    guess = utf16_without_bom(data)
    if guess is not None:
        codec = guess.replace(" ", "")
        raise DataFormatError(
            path,
            None,
            f"the file looks like {guess} without a byte-order mark (every other byte is NUL)",
            f"UTF-8 text; re-encode it, e.g. iconv -f {codec} -t UTF-8",
        )


def decode_bytes(data: bytes, path: str) -> tuple[Source, list[Finding]]:
    """Decode ``data`` as UTF-8, dropping a leading BOM (reported as a finding).

    A UTF-16 or UTF-32 file with its byte-order mark is decoded as what the mark says (reported); UTF-16 without a
    mark is refused with a message that says so (NUL bytes are valid UTF-8, so it would otherwise read as garbage).

    Raises:
        DataFormatError: the bytes are not UTF-8 (with the line of the first bad byte), or UTF-16 without a mark.
    """
    for bom, codec, name in _BOMS:
        if data.startswith(bom):
            try:
                text = data[len(bom) :].decode(codec)
            except UnicodeDecodeError as exc:
                raise DataFormatError(
                    path,
                    None,
                    f"the file starts with a {name} byte-order mark but is not valid {name} "
                    f"(byte offset {exc.start + len(bom)})",
                    "UTF-8 text; re-encode the file",
                ) from None
            finding = Finding("encoding", path, 1, f"the file is {name} (byte-order mark); decoded as such", "info")
            return Source(path, text), [finding]
    refuse_utf16_without_bom(data, path)
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
    """Physical lines without their ``\\n``, ``\\r\\n`` or lone ``\\r`` ending; line ``i`` of the file is ``lines[i - 1]``.

    Only these end a line (``str.splitlines`` would also split on control characters that can be tokens). A lone CR
    is a classic Mac OS line end, as editors count it. Reports CRLF and CR endings and a missing final newline,
    once each.
    """
    text = source.text
    findings: list[Finding] = []
    if not text:
        return [], findings
    lone_cr = [m.start() for m in re.finditer(r"\r(?!\n)", text)]
    if lone_cr:
        first = len(_LINE_END_RE.findall(text, 0, lone_cr[0])) + 1
        findings.append(
            Finding(
                "cr-line-end",
                source.path,
                first,
                f"{len(lone_cr)} line(s) end with a lone CR (classic Mac OS line ends; read as line breaks)",
                "info",
            )
        )
        text = re.sub(r"\r(?!\n)", "\n", text)
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
