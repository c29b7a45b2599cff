"""Options shared by every reader, declared once, here.

:class:`ReadOptions` is the one declaration: each field's type, default and help. The training config's ``data``
section takes them as keys (:class:`nerforge.config.DataConfig` builds its reader fields from this class), and
``convert``, ``inspect``, ``evaluate`` and ``train`` take them as flags (:mod:`nerforge.cli.options` builds the flags
from this class). :func:`problems` is the one check of their values, used by both.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from nerforge.errors import UsageError

FORMATS = ("conll", "jsonl", "json", "spacy", "doccano", "labelstudio", "csv", "csv-lists")  # text; see OTHER_FORMATS
OTHER_FORMATS = ("parquet", "arrow", "docbin", "brat")  # columns, a spaCy DocBin, .ann files beside their .txt
MISSING_TAG_POLICIES = ("o", "error")


def _opt(default: Any, help: str, *, path: bool = False, flag: str | None = None, **extra: Any) -> Any:
    return field(default=default, metadata={"help": help, "path": path, "flag": flag}, **extra)


@dataclass(frozen=True)
class ReadOptions:
    """How to read one file. ``None`` means auto-detect. Each field's ``metadata["help"]`` says what it does."""

    format: str | None = _opt(
        None, f"Input format: {', '.join((*FORMATS, *OTHER_FORMATS))} (default: detect from name and content)."
    )
    token_column: int = _opt(0, "0-based column of the token (column files, CSV).")
    tag_column: int = _opt(
        -1,
        "0-based column of the tag; negative counts from the end (default: the last). "
        "Given more than once: several tag columns, each a layer (as --tag-columns).",
    )
    tag_columns: tuple[int, ...] | None = _opt(
        None,
        "Several tag columns, each a layer of entities, comma-separated: 1,2 (column files, CSV; overrides "
        "--tag-column).",
    )
    layer_names: tuple[str, ...] | None = _opt(
        None,
        "Names of the layers of --tag-columns, comma-separated: skill,knowledge (default: each column's types).",
    )
    layer: str | None = _opt(
        None,
        "The layer of entities a flat model learns and is scored on, from data with several (default: the "
        "first; 'nerforge inspect' lists them).",
    )
    separator: str | None = _opt(
        None, "Column separator: 'tab', 'space' (runs of whitespace) or a literal string (default: detect)."
    )
    tokens_field: str = _opt("tokens", "JSON field holding the tokens.")
    tags_field: str | None = _opt(None, "JSON field holding the tags (default: ner_tags_str, ner_tags, tags...).")
    label_names: tuple[str, ...] | None = _opt(
        None, "Names of integer tag ids in id order, comma-separated: O,B-PER,I-PER."
    )
    labels_file: str | None = _opt(
        None,
        "File with the label names: JSON list or id->name object, one per line, or a CSV/TSV table id,label[,count].",
        path=True,
    )
    label_offset: int = _opt(
        0, "Integer tag k means label id k + N of --label-names/--labels-file (ids that do not start at the first)."
    )
    entity_type: str | None = _opt(None, "Type given to bare B/I tags (e.g. SKILL).")
    scheme: str | None = _opt(None, "Tag scheme of the input: iob1, iob2, io, bioes, bilou, suffix (default: detect).")
    label_map: dict[str, str | None] | None = _opt(
        None,
        "Rename/merge/drop types: 'AI=TECH,*=TECH,MISC=' (glob keys, empty value drops) or a JSON/YAML file.",
        hash=False,
        compare=False,
    )
    strip_token_prefix: str | None = _opt(None, "Remove this prefix from every token (e.g. 'de:').")
    sentence_columns: tuple[str, ...] | None = _opt(
        None, "CSV columns that identify a sentence, comma-separated: doc_idx,sent_idx."
    )
    doc_column: str | None = _opt(None, "CSV column (or JSON field) that identifies a document.")
    dataset_split: str | None = _opt(
        None,
        "The split to read from a dataset folder that holds several (train, validation, test...).",
        flag="--split",
    )
    missing_tag: str = _opt("o", "A token line without a tag: 'o' tags it O (with a finding), 'error' stops.")
    lenient: bool = _opt(
        False,
        "Read malformed tags (junk such as 'Udd', ids outside the label list) and lines short of the tag column as "
        "O, with a count and the first file:line, instead of stopping.",
    )

    def __post_init__(self) -> None:
        found = problems(self)
        if found:
            raise UsageError(found[0])


def problems(options: Any) -> list[str]:
    """What is wrong with reader option values (any object with the fields of :class:`ReadOptions`)."""
    from nerforge.data.schemes import SCHEMES

    out = []  # an unknown format is the registry's to refuse (readers can be registered under new names)
    if options.scheme is not None and options.scheme not in SCHEMES:
        out.append(f"unknown tag scheme {options.scheme!r}; expected one of {', '.join(SCHEMES)}")
    if options.missing_tag not in MISSING_TAG_POLICIES:
        out.append(f"unknown missing_tag {options.missing_tag!r}; expected one of {', '.join(MISSING_TAG_POLICIES)}")
    columns = options.tag_columns
    if columns is not None:
        if any(isinstance(c, bool) or not isinstance(c, int) for c in columns):
            out.append(f"tag columns must be column numbers, got {list(columns)}")
        elif len(set(columns)) != len(columns):
            out.append(f"a tag column is listed twice: {list(columns)}")
    if options.layer_names is not None:
        if columns is None or len(columns) < 2:
            out.append("layer names name the layers of several tag columns (--tag-columns 1,2)")
        elif len(options.layer_names) != len(columns):
            out.append(f"{len(options.layer_names)} layer names for {len(columns)} tag columns")
        elif len(set(options.layer_names)) != len(options.layer_names):
            out.append(f"a layer name is given twice: {list(options.layer_names)}")
    if options.separator == "":
        out.append("the column separator is empty; give 'tab', 'space' or a literal string")
    return out


READ_OPTION_FIELDS = tuple(fields(ReadOptions))
READ_OPTION_NAMES = tuple(f.name for f in READ_OPTION_FIELDS)
