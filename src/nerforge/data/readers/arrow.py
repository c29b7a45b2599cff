"""Datasets as they come from the Hugging Face ecosystem: Parquet (one file, or a folder of shards as on the hub)
and ``datasets``' ``save_to_disk`` folders (Arrow stream files beside ``dataset_info.json``).

One row is one sentence: a list column of tokens (``tokens`` or ``words``, or ``--tokens-field``) and a list column
of tags (``ner_tags``, ``tags`` or ``labels``, or ``--tags-field``). Integer tags are decoded with the ``ClassLabel``
names that ``datasets`` stores with the data (the ``huggingface`` key of the Parquet schema metadata, or
``dataset_info.json``); ``--label-names``/``--labels-file`` override them. A document-id column (``--doc-column``,
or ``document_id``/``doc_id``) becomes each example's document. Problems name the file and the row (1-based).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from nerforge.data.readers.options import ReadOptions
from nerforge.errors import DataFormatError, UsageError, quote
from nerforge.types import Example, Finding

TOKEN_COLUMNS = ("tokens", "words")
TAG_COLUMNS = ("ner_tags", "tags", "labels", "ner_tags_str")
DOC_COLUMNS = ("document_id", "doc_id")
INFO_FILE = "dataset_info.json"


def arrow_format(path: str | Path) -> str | None:
    """``"parquet"`` or ``"arrow"`` when ``path`` is a dataset of that kind, else ``None``."""
    p = Path(path)
    if p.is_file():
        return "parquet" if p.suffix.lower() in (".parquet", ".pq") else ("arrow" if p.suffix == ".arrow" else None)
    if p.is_dir():
        if any(p.rglob("*.arrow")) and any(p.rglob(INFO_FILE)):
            return "arrow"
        if any(p.rglob("*.parquet")):
            return "parquet"
    return None


def _split_of(path: Path, root: Path) -> str:
    """The split a data file belongs to, from the hub's layouts: ``<split>/...``, ``<split>-00000-of-00002.parquet``
    or ``<split>.parquet`` (``""`` when it names none)."""
    rel = path.relative_to(root)
    for part in rel.parts[:-1]:
        if part not in ("data", "default"):
            return part
    stem = rel.name.split(".")[0]
    shard = _SHARD.match(stem)  # the hub's train-00000-of-00002
    return shard.group(1) if shard else (stem if stem in _SPLIT_NAMES else "")


_SPLIT_NAMES = ("train", "validation", "valid", "dev", "test")
_SHARD = re.compile(r"^(.+?)-\d{5}-of-\d{5}$")


def dataset_files(path: Path, fmt: str, split: str | None) -> list[Path]:
    """The data files of a dataset path, restricted to ``split`` where the folder holds several.

    Raises:
        DataFormatError: several splits and none chosen, or the chosen one missing (naming those there are).
    """
    if path.is_file():
        return [path]
    files = sorted(path.rglob(f"*.{fmt}"))
    splits: dict[str, list[Path]] = {}
    for f in files:
        splits.setdefault(_split_of(f, path), []).append(f)
    named = sorted(k for k in splits if k)
    if split is not None:
        if split not in splits:
            raise DataFormatError(
                path, None, f"no split {split!r} here (splits: {', '.join(named) or 'none'})", "--split NAME"
            )
        return splits[split]
    if len(named) > 1:
        raise DataFormatError(
            path, None, f"the folder holds the splits {', '.join(named)}", "one chosen with --split NAME"
        )
    return files


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.ipc  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError:  # a dependency of nerforge; only a broken install lacks it
        raise UsageError("reading Parquet or Arrow data needs pyarrow: pip install pyarrow") from None
    return pyarrow


def _class_label_names(features: Any, column: str) -> list[str] | None:
    """The ``ClassLabel`` names of a list-of-ClassLabel column in a ``datasets`` features description."""
    node = features.get(column) if isinstance(features, dict) else None
    while isinstance(node, dict):
        if node.get("_type") == "ClassLabel" and isinstance(node.get("names"), list):
            return [str(n) for n in node["names"]]
        node = node.get("feature")
    return None


def _read_table(path: Path, fmt: str, split: str | None) -> tuple[Any, dict[str, Any]]:
    """The rows of the dataset (of ``split``) and its ``datasets`` features description (``{}`` when it has none)."""
    pa = _pyarrow()
    files = dataset_files(path, fmt, split)
    try:
        if fmt == "parquet":
            tables = [pa.parquet.read_table(f) for f in files]
        else:
            tables = []
            for f in files:
                with pa.memory_map(str(f)) as source:
                    tables.append(pa.ipc.open_stream(source).read_all())
    except (OSError, pa.ArrowException) as exc:
        raise DataFormatError(path, None, f"cannot read the {fmt} data: {exc}", f"a {fmt} file or folder") from None
    if not tables:
        raise DataFormatError(path, None, f"no {fmt} files found", f"*.{fmt} files")
    features: dict[str, Any] = {}
    meta = tables[0].schema.metadata or {}
    if b"huggingface" in meta:
        try:
            features = json.loads(meta[b"huggingface"]).get("info", {}).get("features", {}) or {}
        except (ValueError, AttributeError):
            features = {}
    info = files[0].parent / INFO_FILE
    if not features and info.is_file():
        try:
            features = json.loads(info.read_text(encoding="utf-8")).get("features", {}) or {}
        except (OSError, ValueError, AttributeError):
            features = {}
    try:
        table = pa.concat_tables(tables, promote_options="default")
    except pa.ArrowException as exc:
        raise DataFormatError(
            path, None, f"the shards have different columns: {exc}", "shards of one dataset"
        ) from None
    return table, features


def metadata_of(record: dict[str, Any], used: tuple[str | None, ...]) -> tuple[tuple[str, str], ...]:
    """The row's other columns as text pairs (strings as they are, anything else as JSON)."""
    out = []
    for name, value in record.items():
        if name in used or value is None:
            continue
        out.append((str(name), value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)))
    return tuple(out)


def _column(names: list[str], given: str | None, candidates: tuple[str, ...], path: Path, what: str) -> str:
    if given is not None:
        if given not in names:
            raise DataFormatError(path, None, f"no column {given!r} (columns: {', '.join(names)})", f"a {what} column")
        return given
    found = next((c for c in candidates if c in names), None)
    if found is None:
        raise DataFormatError(
            path, None, f"no {what} column among {', '.join(names)}", f"one of {', '.join(candidates)} (or name it)"
        )
    return found


def read_arrow_dataset(path: str | Path, options: ReadOptions, fmt: str) -> tuple[list[Example], list[Finding]]:
    """Read a Parquet or ``save_to_disk`` dataset (see the module docstring); tags are strings (names or ids).

    Raises:
        DataFormatError: unreadable files, missing columns, or a row whose lists do not fit (with its number).
    """
    path = Path(path)
    table, features = _read_table(path, fmt, options.dataset_split)
    names = list(table.column_names)
    tokens_col = _column(names, None if options.tokens_field == "tokens" else options.tokens_field, TOKEN_COLUMNS,
                         path, "token")  # fmt: skip
    tags_col = _column(names, options.tags_field, TAG_COLUMNS, path, "tag")
    doc_col = options.doc_column if options.doc_column in names else next((c for c in DOC_COLUMNS if c in names), None)
    label_names = None if (options.label_names or options.labels_file) else _class_label_names(features, tags_col)
    findings: list[Finding] = []
    if label_names:
        findings.append(
            Finding(
                "class-labels",
                str(path),
                None,
                f"tag ids decoded with the dataset's names: {', '.join(label_names)}",
                "info",
            )
        )
    examples: list[Example] = []
    for row, record in enumerate(table.to_pylist(), start=1):
        tokens, tags = record[tokens_col], record[tags_col]
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise DataFormatError(path, None, f"row {row}: {tokens_col!r} is not a list of strings", "string tokens")
        if not isinstance(tags, list) or len(tags) != len(tokens):
            n = len(tags) if isinstance(tags, list) else type(tags).__name__
            raise DataFormatError(path, None, f"row {row}: {len(tokens)} tokens but {n} tags", "one tag per token")
        raw: list[str] = []
        for i, tag in enumerate(tags):
            if isinstance(tag, bool) or not isinstance(tag, (int, str)):
                raise DataFormatError(
                    path, None, f"row {row}: tag {i + 1} is {quote(tag)}", "string tags or integer ids"
                )
            if isinstance(tag, int) and label_names is not None:
                if not 0 <= tag < len(label_names):
                    raise DataFormatError(
                        path, None, f"row {row}: tag id {tag} is outside the dataset's {len(label_names)} label names",
                        "ids of its ClassLabel names",
                    )  # fmt: skip
                raw.append(label_names[tag])
            else:
                raw.append(str(tag))
        if not tokens:
            continue
        doc = record.get(doc_col) if doc_col else None
        meta = metadata_of(record, (tokens_col, tags_col, doc_col))
        examples.append(
            Example(
                tuple(tokens), tuple(raw), doc_id=None if doc is None else str(doc), source=str(path), metadata=meta
            )
        )
    return examples, findings
