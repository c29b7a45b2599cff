"""Writing examples as IOB2 CoNLL or JSON Lines. Files appear whole or not at all (:func:`atomic_open`).

* CoNLL: ``token<TAB>tag`` per line (one tag column per layer when the examples hold several layers of entities,
  :func:`nerforge.data.layers.layer_tags`), a blank line after each sentence; when examples carry document ids, a
  ``-DOCSTART-<TAB>O`` line and a blank line open each document (whenever the id changes). UTF-8, LF.
* JSON Lines: ``{"tokens": [...], "ner_tags": [...], "doc_id": ...}`` per line (``doc_id`` only when set), and
  ``"spans": [{"start", "end", "label", "layer"}, ...]`` (token offsets) when examples hold layers or overlapping
  entities, which the JSON Lines reader reads back.
* BRAT standoff (``--to brat``): a folder with one ``NAME.txt`` and ``NAME.ann`` per document (examples with the
  same ``doc_id``, else :data:`BRAT_SENTENCES_PER_FILE` sentences a file); a sentence per line of the ``.txt``, as
  its original text where the example has one (character-offset formats), else its tokens joined by spaces; each
  entity a ``T`` line whose offsets slice the ``.txt`` (nested and overlapping ones too).

Tags are written in IOB2 whatever the scheme of the examples (conlleval-style conversion), so
``read_corpus(write_conll(read_corpus(x)))`` gives the same spans back.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from nerforge.data.layers import layer_tags
from nerforge.data.normalize import tags_to_iob2
from nerforge.data.readers.columns import is_docstart_line
from nerforge.errors import DataFormatError, UsageError, quote
from nerforge.io_utils import atomic_open
from nerforge.types import Example

WRITE_FORMATS = ("conll", "jsonl", "parquet", "brat")
BRAT_EXPORT = "nerforge BRAT export"  # the kind of folder write_brat writes (its record, nerforge.outputs)
BRAT_SENTENCES_PER_FILE = 500
_SUFFIXES = {
    ".conll": "conll",
    ".txt": "conll",
    ".tsv": "conll",
    ".iob": "conll",
    ".bio": "conll",
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
}
_BAD_IN_TOKEN = ("\t", "\n", "\r")


def output_format(path: str | Path, to: str | None = None) -> str:
    """The format to write: ``to`` when given, else from the extension of ``path``.

    Raises:
        UsageError: an unknown ``to`` or extension.
    """
    if to:
        if to not in WRITE_FORMATS:
            raise UsageError(f"unknown output format {to!r}; expected one of {', '.join(WRITE_FORMATS)}")
        return to
    suffix = Path(path).suffix.lower()
    if suffix not in _SUFFIXES:
        raise UsageError(f"cannot tell the output format from {str(path)!r}; give --to conll, jsonl, parquet or brat")
    return _SUFFIXES[suffix]


def _where(ex: Example) -> str:
    return f" (from {ex.source}:{ex.line})" if ex.source and ex.line else ""


def write_conll(examples: Iterable[Example], path: str | Path) -> int:
    """Write ``examples`` as IOB2 CoNLL (see the module docstring); returns the number of sentences written.

    Raises:
        DataFormatError: a token holds a TAB or a line break, which the format cannot represent.
    """
    count = 0
    examples = list(examples)
    layers = layers_of(examples)
    with atomic_open(path, "w", newline="\n") as fh:
        doc: str | None = None
        first = True
        for ex in examples:
            if ex.doc_id is not None and ex.doc_id != doc:
                fh.write("-DOCSTART-" + "\tO" * max(1, len(layers)) + "\n\n")
                doc = ex.doc_id
                first = False
            columns = layer_tags(ex, [(n, None) for n in layers]) if len(layers) > 1 else [tags_to_iob2(ex.tags)]
            for tok, *tags in zip(ex.tokens, *columns, strict=True):
                tag = "\t".join(tags)
                if any(c in tok for c in _BAD_IN_TOKEN) or is_docstart_line(tok):
                    raise DataFormatError(
                        path,
                        None,
                        f"token {quote(tok)}{_where(ex)} cannot be written as CoNLL (TAB, line break or -DOCSTART-)",
                        "write JSON Lines instead",
                    )
                if first and tok.startswith("\ufeff"):
                    fh.write("\ufeff")  # readers drop one leading byte-order mark: keep the token's own
                first = False
                fh.write(f"{tok}\t{tag}\n")
            fh.write("\n")
            count += 1
    return count


def layers_of(examples: Iterable[Example]) -> list[str]:
    """The layers of entities in ``examples``, in order of first appearance (``[]`` for flat tags only)."""
    from nerforge.data.layers import example_layers

    names: dict[str, None] = {}
    for ex in examples:
        if ex.spans is not None or ex.layers is not None:
            names.update(dict.fromkeys(example_layers(ex)))
    return list(names)


def write_jsonl(examples: Iterable[Example], path: str | Path) -> int:
    """Write ``examples`` as JSON Lines with IOB2 tags, and every entity with its layer under ``spans`` when the
    examples hold layers or overlapping entities; returns the number of records written."""
    count = 0
    with atomic_open(path, "w", newline="\n") as fh:
        for ex in examples:
            record: dict[str, object] = {"tokens": list(ex.tokens), "ner_tags": list(tags_to_iob2(ex.tags))}
            if ex.spans is not None:
                record["spans"] = [{"start": s.start, "end": s.end, "label": s.label, "layer": s.layer}
                                   for s in ex.spans]  # fmt: skip
                record["layers"] = list(layers_of([ex]))
            if ex.doc_id is not None:
                record["doc_id"] = ex.doc_id
            if ex.metadata:
                record["metadata"] = dict(ex.metadata)
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count


def write_parquet(examples: Iterable[Example], path: str | Path) -> int:
    """Write ``examples`` as Parquet, one row per sentence: ``tokens`` and ``ner_tags`` (IOB2 names) list columns and
    ``doc_id``, as the Hugging Face hub stores token-classification data (``datasets.load_dataset("parquet", ...)``
    reads it); returns the number of rows written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = list(examples)
    columns = {
        "tokens": pa.array([list(ex.tokens) for ex in rows], type=pa.list_(pa.string())),
        "ner_tags": pa.array([list(tags_to_iob2(ex.tags)) for ex in rows], type=pa.list_(pa.string())),
        "doc_id": pa.array([ex.doc_id for ex in rows], type=pa.string()),
    }
    extra = sorted({name for ex in rows for name, _ in ex.metadata} - set(columns))  # metadata, one column each
    for name in extra:
        columns[name] = pa.array([dict(ex.metadata).get(name) for ex in rows], type=pa.string())
    table = pa.table(columns)
    with atomic_open(path, "wb") as fh:
        pq.write_table(table, fh)
    return len(rows)


def _brat_documents(examples: Iterable[Example]) -> Iterator[tuple[str, list[Example]]]:
    """Consecutive examples grouped into documents: by ``doc_id``, else :data:`BRAT_SENTENCES_PER_FILE` at a time."""
    current: list[Example] = []
    key: str | None = None
    count = 0
    for ex in examples:
        if current and (ex.doc_id != key or (ex.doc_id is None and len(current) >= BRAT_SENTENCES_PER_FILE)):
            yield _brat_name(key, count), current
            current, count = [], count + 1
        current.append(ex)
        key = ex.doc_id
    if current:
        yield _brat_name(key, count), current


def _brat_name(doc_id: str | None, n: int) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", doc_id or "").strip("._")[:80]
    return f"{n + 1:05d}-{stem}" if stem else f"{n + 1:05d}"


def write_brat(examples: Iterable[Example], folder: str | Path) -> int:
    """Write ``examples`` as a folder of BRAT documents (see the module docstring), atomically; returns the number of
    sentences written."""
    from nerforge.data.schemes import tags_to_spans
    from nerforge.io_utils import atomic_directory, atomic_write_text

    written = 0
    with atomic_directory(folder, kind=BRAT_EXPORT) as tmp:
        for name, docs in _brat_documents(examples):
            text_parts: list[str] = []
            ann: list[str] = []
            at = 0
            for ex in docs:
                if ex.text is not None and ex.offsets is not None and "\n" not in ex.text:
                    line, offsets = ex.text, list(ex.offsets)
                else:
                    line, offsets, pos = " ".join(ex.tokens), [], 0
                    for token in ex.tokens:
                        offsets.append((pos, pos + len(token)))
                        pos += len(token) + 1
                spans = ex.spans if ex.spans is not None else tags_to_spans(list(tags_to_iob2(ex.tags)))
                for span in sorted(spans, key=lambda s: (s.start, -s.end, s.label)):  # nested ones too
                    start, end = offsets[span.start][0], offsets[span.end - 1][1]
                    covered = line[start:end].replace("\n", " ")
                    ann.append(f"T{len(ann) + 1}\t{span.label} {at + start} {at + end}\t{covered}")
                text_parts.append(line)
                at += len(line) + 1
                written += 1
            atomic_write_text(tmp / f"{name}.txt", "\n".join(text_parts) + "\n")
            atomic_write_text(tmp / f"{name}.ann", "\n".join(ann) + ("\n" if ann else ""))
    return written


def write_examples(examples: Iterable[Example], path: str | Path, fmt: str) -> int:
    """Write in ``fmt`` (``conll``, ``jsonl``, ``parquet`` or ``brat``, a folder)."""
    if fmt == "conll":
        return write_conll(examples, path)
    if fmt == "jsonl":
        return write_jsonl(examples, path)
    if fmt == "parquet":
        return write_parquet(examples, path)
    if fmt == "brat":
        return write_brat(examples, path)
    raise UsageError(f"unknown output format {fmt!r}; expected one of {', '.join(WRITE_FORMATS)}")
