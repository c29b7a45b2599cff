"""Data flags shared by ``convert``, ``inspect`` and ``train``: reusable Typer option types and their conversion
into a :class:`~nerforge.data.readers.options.ReadOptions`.

Use in a command::

    def inspect_cli(
        path: Path,
        format: FormatFlag = None,
        token_column: TokenColumnFlag = 0,
        tag_column: TagColumnFlag = -1,
        ...
    ) -> None:
        options = read_options_from_flags(format=format, token_column=token_column, tag_column=tag_column, ...)

Every flag has the default of the matching ``ReadOptions`` field, so a command may declare only some of them.
"""

from __future__ import annotations

from typing import Annotated

import typer

from nerforge.data.labelmap import load_label_map
from nerforge.data.readers.columns import MISSING_TAG_POLICIES
from nerforge.data.readers.options import FORMATS, ReadOptions
from nerforge.data.schemes import SCHEMES
from nerforge.errors import UsageError

_PANEL = "Data"

FormatFlag = Annotated[
    str | None,
    typer.Option("--format", help=f"Input format: {', '.join(FORMATS)} (default: detect).", rich_help_panel=_PANEL),
]
TokenColumnFlag = Annotated[
    int, typer.Option("--token-column", help="0-based column of the token (column files, CSV).", rich_help_panel=_PANEL)
]
TagColumnFlag = Annotated[
    int,
    typer.Option(
        "--tag-column", help="0-based column of the tag; negative counts from the end.", rich_help_panel=_PANEL
    ),
]
SeparatorFlag = Annotated[
    str | None,
    typer.Option(
        "--separator",
        help="Column separator: 'tab', 'space' (runs of whitespace) or a literal string (default: detect).",
        rich_help_panel=_PANEL,
    ),
]
TokensFieldFlag = Annotated[
    str, typer.Option("--tokens-field", help="JSON field holding the tokens.", rich_help_panel=_PANEL)
]
TagsFieldFlag = Annotated[
    str | None,
    typer.Option(
        "--tags-field",
        help="JSON field holding the tags (default: ner_tags_str, ner_tags, tags...).",
        rich_help_panel=_PANEL,
    ),
]
LabelNamesFlag = Annotated[
    str | None,
    typer.Option(
        "--label-names",
        help="Names of integer tag ids in id order, comma-separated: O,B-PER,I-PER.",
        rich_help_panel=_PANEL,
    ),
]
LabelsFileFlag = Annotated[
    str | None,
    typer.Option(
        "--labels-file",
        help="File with the label names (JSON list or id->name object, or one per line).",
        rich_help_panel=_PANEL,
    ),
]
EntityTypeFlag = Annotated[
    str | None,
    typer.Option("--entity-type", help="Type given to bare B/I tags (e.g. SKILL).", rich_help_panel=_PANEL),
]
SchemeFlag = Annotated[
    str | None,
    typer.Option(
        "--scheme", help=f"Tag scheme of the input: {', '.join(SCHEMES)} (default: detect).", rich_help_panel=_PANEL
    ),
]
LabelMapFlag = Annotated[
    str | None,
    typer.Option(
        "--label-map",
        help="Rename/merge/drop types: 'AI=TECH,*=TECH,MISC=' (glob keys, empty value drops) or a JSON/YAML file.",
        rich_help_panel=_PANEL,
    ),
]
StripTokenPrefixFlag = Annotated[
    str | None,
    typer.Option(
        "--strip-token-prefix", help="Remove this prefix from every token (e.g. 'de:').", rich_help_panel=_PANEL
    ),
]
SentenceColumnsFlag = Annotated[
    str | None,
    typer.Option(
        "--sentence-columns",
        help="CSV columns that identify a sentence, comma-separated: doc_idx,sent_idx.",
        rich_help_panel=_PANEL,
    ),
]
DocColumnFlag = Annotated[
    str | None,
    typer.Option("--doc-column", help="CSV column (or JSON field) that identifies a document.", rich_help_panel=_PANEL),
]
MissingTagFlag = Annotated[
    str,
    typer.Option(
        "--missing-tag",
        help="A token line without a tag: 'o' tags it O (with a finding), 'error' stops.",
        rich_help_panel=_PANEL,
    ),
]

_SEPARATORS = {"tab": "\t", "\\t": "\t", "space": " ", "whitespace": " ", "ws": " "}


def _split_list(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    items = tuple(v.strip() for v in value.split(",") if v.strip())
    return items or None


def read_options_from_flags(
    *,
    format: str | None = None,
    token_column: int = 0,
    tag_column: int = -1,
    separator: str | None = None,
    tokens_field: str = "tokens",
    tags_field: str | None = None,
    label_names: str | None = None,
    labels_file: str | None = None,
    entity_type: str | None = None,
    scheme: str | None = None,
    label_map: str | None = None,
    strip_token_prefix: str | None = None,
    sentence_columns: str | None = None,
    doc_column: str | None = None,
    missing_tag: str = "o",
) -> ReadOptions:
    """Check the data flags and build the :class:`ReadOptions` they describe.

    Raises:
        UsageError: an unknown format, scheme or missing-tag policy, or an empty separator.
        DataFormatError: a label-map file that cannot be read.
    """
    if format is not None and format not in FORMATS:
        raise UsageError(f"unknown --format {format!r}; expected one of {', '.join(FORMATS)}")
    if scheme is not None and scheme not in SCHEMES:
        raise UsageError(f"unknown --scheme {scheme!r}; expected one of {', '.join(SCHEMES)}")
    missing = missing_tag.lower()
    if missing not in MISSING_TAG_POLICIES:
        raise UsageError(f"unknown --missing-tag {missing_tag!r}; expected one of {', '.join(MISSING_TAG_POLICIES)}")
    sep = None
    if separator is not None:
        sep = _SEPARATORS.get(separator.lower(), separator)
        if sep == "":
            raise UsageError("--separator is empty; give 'tab', 'space' or a literal string")
    return ReadOptions(
        format=format,
        token_column=token_column,
        tag_column=tag_column,
        separator=sep,
        tokens_field=tokens_field,
        tags_field=tags_field,
        label_names=_split_list(label_names),
        labels_file=labels_file,
        entity_type=entity_type,
        scheme=scheme,
        label_map=load_label_map(label_map) if label_map else None,
        strip_token_prefix=strip_token_prefix or None,
        sentence_columns=_split_list(sentence_columns),
        doc_column=doc_column,
        missing_tag=missing,
    )
