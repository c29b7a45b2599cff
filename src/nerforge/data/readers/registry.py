"""Readers by versioned name, format detection, and :func:`read_corpus`, the one entry point for reading data.

``read_corpus(path, options)`` decodes the file, detects its format (unless given), runs the format's reader,
then checks and converts the tags (:func:`~nerforge.data.readers.labels.finalize`). Tags in the returned examples
are as in the source, after label-name lookup for integer ids and after the label map; ``Corpus.scheme`` is the
detected or given scheme. Use :func:`nerforge.data.normalize.to_iob2` for IOB2 tags.

Only :class:`~nerforge.errors.NerforgeError` subclasses escape: a problem in the data is a
:class:`~nerforge.errors.DataFormatError` with the path and, when the problem is on a line, its 1-based number.

EXAMPLE:
    >>> corpus = read_corpus("eng.testb", ReadOptions())        # doctest: +SKIP
    >>> corpus.format, corpus.scheme, len(corpus.examples)      # doctest: +SKIP
    ('conll', 'iob1', 3453)
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from nerforge.data.readers.arrow import arrow_format, read_arrow_dataset
from nerforge.data.readers.brat import BRAT_FORMAT, brat_format, read_brat
from nerforge.data.readers.columns import read_columns
from nerforge.data.readers.csv_lists import looks_like_list_csv, read_csv_lists
from nerforge.data.readers.csv_tokens import read_csv_tokens
from nerforge.data.readers.docbin import DOCBIN_FORMAT, docbin_format, read_docbin
from nerforge.data.readers.jsonl import read_json, read_jsonl
from nerforge.data.readers.labels import finalize
from nerforge.data.readers.layered import read_layers, select_layer
from nerforge.data.readers.offsets import read_doccano, read_labelstudio, read_spacy
from nerforge.data.readers.options import FORMATS, OTHER_FORMATS, ReadOptions
from nerforge.data.readers.source import Source, read_source
from nerforge.errors import DataFormatError, UsageError
from nerforge.types import Corpus, Example, Finding

logger = logging.getLogger(__name__)

Reader = Callable[[Source, ReadOptions], "tuple[list[Example], list[Finding]]"]

READERS: dict[str, Reader] = {
    "nerforge.conll.v1": read_columns,
    "nerforge.jsonl.v1": read_jsonl,
    "nerforge.json.v1": read_json,
    "nerforge.spacy.v1": read_spacy,
    "nerforge.doccano.v1": read_doccano,
    "nerforge.labelstudio.v1": read_labelstudio,
    "nerforge.csv.v1": read_csv_tokens,
    "nerforge.csv-lists.v1": read_csv_lists,
}
"""Reader functions by versioned name. A reader takes the decoded file and the options and returns the examples
(raw tags) and its findings."""

FORMAT_READERS: dict[str, str] = {fmt: f"nerforge.{fmt}.v1" for fmt in FORMATS}
"""The reader used for each format name of :data:`~nerforge.data.readers.options.FORMATS`."""

_HEAD_BYTES = 1 << 20
ARROW_FORMATS = ("parquet", "arrow")  # read from columns by nerforge.data.readers.arrow, not from decoded text


def register_reader(name: str, reader: Reader, *, format: str | None = None) -> None:
    """Add a reader under a versioned name (``"myorg.brat.v1"``), optionally as the reader of a format name."""
    READERS[name] = reader
    if format:
        FORMAT_READERS[format] = name


def get_reader(name: str) -> Reader:
    """The reader for a format name (``"conll"``) or a versioned reader name (``"nerforge.conll.v1"``).

    Raises:
        UsageError: neither is known.
    """
    key = FORMAT_READERS.get(name, name)
    if key not in READERS:
        known = ", ".join([*FORMAT_READERS, *OTHER_FORMATS])
        raise UsageError(f"unknown format {name!r}; expected one of {known}")
    return READERS[key]


def detect_format(path: str | Path, *, tokens_field: str = "tokens") -> str:
    """Guess the format of ``path`` from its name and first bytes: one of ``FORMATS``.

    ``.csv`` is ``csv``. Content that starts with ``{`` or ``[`` is JSON: one record per line is ``jsonl`` (or
    ``doccano`` when records have a ``text`` and no tokens); a whole-file document is ``spacy`` (an
    ``annotations`` list of ``[text, {...}]`` pairs), ``labelstudio`` (tasks with ``data``/``annotations``, or
    JSON-min records with a ``text``) or ``json`` (token records). Anything else is ``conll``.

    Raises:
        DataFormatError: the file cannot be read.
    """
    p = Path(path)
    if docbin_format(p):
        return DOCBIN_FORMAT
    if brat_format(p):
        return BRAT_FORMAT
    try:
        with p.open("rb") as fh:
            head = fh.read(_HEAD_BYTES).decode("utf-8", errors="replace")
    except OSError as exc:
        raise DataFormatError(
            str(path), None, f"cannot read the file: {exc.strerror or exc}", "a readable file"
        ) from None
    return _detect(p, head.lstrip("\ufeff"), tokens_field)


def _detect(path: Path, text: str, tokens_field: str) -> str:
    if path.suffix.lower() in (".csv", ".tsv") and looks_like_list_csv(text, tokens_field):
        return "csv-lists"  # one sentence per row with list columns (pandas to_csv of a dataset)
    if path.suffix.lower() == ".csv":
        return "csv"
    return sniff_format(text[:_HEAD_BYTES], path.suffix.lower(), tokens_field=tokens_field)


def sniff_format(head: str, suffix: str = "", *, tokens_field: str = "tokens") -> str:
    """The format of a file from its first characters (see :func:`detect_format`)."""
    stripped = head.lstrip()
    if not stripped.startswith(("{", "[")):
        return {".json": "json", ".jsonl": "jsonl"}.get(suffix, "conll")
    first_line = stripped.split("\n", 1)[0]
    try:
        first: Any = json.loads(first_line)
    except (ValueError, RecursionError):
        first = None
        if _column_line(first_line):
            return "conll"  # a token that starts with { or [ ("{\tO"), not JSON
    if isinstance(first, dict):
        if isinstance(first.get("annotations"), list) and tokens_field not in first:
            return "spacy"
        if "text" in first and tokens_field not in first:
            return "doccano"
        if tokens_field not in first and any(_holds_records(v, tokens_field) for v in first.values()):
            return "json"
        return "jsonl"
    if isinstance(first, list):
        return _list_kind(first, tokens_field)
    if stripped[0] == "[":
        if re.match(r'\[\s*\[\s*"', stripped):
            return "spacy"
        if '"annotations"' in head and '"data"' in head:
            return "labelstudio"
        if re.search(r'"text"\s*:', head) and f'"{tokens_field}"' not in head:
            return "labelstudio"
        return "json"
    if re.search(r'"annotations"\s*:\s*\[\s*(\[|null)', head):
        return "spacy"
    return "json"


def _column_line(line: str) -> bool:
    """Whether a line that is not JSON reads as a column-file line: a token, then a tag in the last column."""
    from nerforge.data.schemes import is_valid_tag

    fields = line.rstrip("\r").split("\t") if "\t" in line else line.split()
    if len(fields) < 2 or '":' in line:
        return False
    last = fields[-1].strip()
    return is_valid_tag(last) or last.isdigit()


def _holds_records(value: Any, tokens_field: str) -> bool:
    return isinstance(value, list) and any(isinstance(v, dict) and tokens_field in v for v in value[:1])


def _list_kind(items: list[Any], tokens_field: str) -> str:
    first = next((x for x in items if x is not None), None)
    if isinstance(first, list) and len(first) == 2 and isinstance(first[0], str):
        return "spacy"
    if isinstance(first, dict) and tokens_field not in first and ("data" in first or "text" in first):
        return "labelstudio"
    return "json"


def read_corpus(path: str | Path, options: ReadOptions = ReadOptions()) -> Corpus:
    """Read one data file into a :class:`~nerforge.types.Corpus` (see the module docstring).

    Raises:
        DataFormatError: the data cannot be read as asked (path and line in the message).
        UsageError: an unknown format or scheme in ``options``.
    """
    name = str(path)
    if options.tag_columns is not None and len(options.tag_columns) == 1:
        options = replace(options, tag_column=options.tag_columns[0], tag_columns=None, layer_names=None)
    if options.layer is not None:
        return select_layer(read_corpus(path, replace(options, layer=None)), options.layer)
    if options.tag_columns:
        return read_layers(name, options, read_corpus)
    if options.format in (*ARROW_FORMATS, DOCBIN_FORMAT, BRAT_FORMAT):
        binary: str | None = options.format
    else:
        binary = docbin_format(path) or brat_format(path) or arrow_format(path)
    if binary == DOCBIN_FORMAT:  # spaCy's serialized docs
        fmt = binary
        examples, findings = read_docbin(path, options)
    elif binary == BRAT_FORMAT:  # standoff: .ann files beside their .txt documents
        fmt = binary
        examples, findings = read_brat(path, options)
    elif binary is not None:  # Parquet / save_to_disk datasets are columnar, not text
        fmt = binary
        examples, findings = read_arrow_dataset(path, options, binary)
    else:
        source, findings = read_source(path)
        fmt = options.format or _detect(Path(path), source.text, options.tokens_field)
        reader = get_reader(fmt)
        examples, more = reader(source, options)
        findings += more
    if not examples:
        raise DataFormatError(name, None, f"no examples found (read as {fmt})", "at least one annotated sentence")
    examples, scheme, more = finalize(examples, name, options)
    findings += more
    logger.debug("read %s as %s/%s: %d examples, %d findings", name, fmt, scheme, len(examples), len(findings))
    return Corpus(path=name, format=fmt, examples=examples, scheme=scheme, findings=findings)
