"""Data flags shared by ``convert``, ``inspect``, ``evaluate`` and ``train``: reusable Typer option types, their
conversion into a :class:`~nerforge.data.readers.options.ReadOptions`, and decorators that give a command all of them.

Use in a command::

    @with_read_options
    def inspect_cli(path: Path, ..., *, options: ReadOptions) -> None:
        report = inspect_files([path], options)

The command's ``--help`` then lists every data flag (``--format``, ``--tag-column``, ...) in the "Data" panel, and
``options`` is what :func:`read_options_from_flags` builds from them. Every flag has the default of the matching
``ReadOptions`` field. :func:`with_data_flags` gives the raw flag values instead (``None`` where not given).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Annotated, Any, TypeVar, get_args

import typer

from nerforge.data.labelmap import load_label_map
from nerforge.data.readers.columns import MISSING_TAG_POLICIES
from nerforge.data.readers.options import FORMATS, ReadOptions
from nerforge.data.schemes import SCHEMES
from nerforge.errors import UsageError

_PANEL = "Data"
R = TypeVar("R")

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


# The Typer type of each keyword of read_options_from_flags, in --help order. Names and defaults come from that
# function's signature, so a new data flag is one keyword there and one entry here.
_FLAG_TYPES: dict[str, Any] = {
    "format": FormatFlag,
    "token_column": TokenColumnFlag,
    "tag_column": TagColumnFlag,
    "separator": SeparatorFlag,
    "tokens_field": TokensFieldFlag,
    "tags_field": TagsFieldFlag,
    "label_names": LabelNamesFlag,
    "labels_file": LabelsFileFlag,
    "entity_type": EntityTypeFlag,
    "scheme": SchemeFlag,
    "label_map": LabelMapFlag,
    "strip_token_prefix": StripTokenPrefixFlag,
    "sentence_columns": SentenceColumnsFlag,
    "doc_column": DocColumnFlag,
    "missing_tag": MissingTagFlag,
}


def _flag_parameters(unset_is_none: bool) -> list[inspect.Parameter]:
    """The data flags as keyword-only parameters; with ``unset_is_none`` each is optional and defaults to ``None``."""
    defaults = inspect.signature(read_options_from_flags).parameters
    params = []
    for name, flag in _FLAG_TYPES.items():
        annotation, default = flag, defaults[name].default
        if unset_is_none:
            base, info = get_args(flag)
            annotation, default = Annotated[base | None, info], None
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default))
    return params


def _add_data_flags(
    command: Callable[..., R], into: str, build: Callable[[dict[str, Any]], Any], *, unset_is_none: bool
) -> Callable[..., R]:
    # Typer builds a command's options from inspect.signature() and cannot spread one parameter (a dataclass) over
    # several options. So the data flags are appended to the signature Typer sees (__signature__, which Typer reads
    # as is, hence the evaluated annotations), and the wrapper folds the values Typer passes back into the one
    # keyword argument ``into``. This keeps each command a plain function with its own options only, and the data
    # flags declared once, here; a shared helper called with locals() would still need all 15 parameters per command.
    signature = inspect.signature(command, eval_str=True)
    if into not in signature.parameters:
        raise TypeError(f"{command.__qualname__} must take the keyword argument {into!r}")
    own = [p for p in signature.parameters.values() if p.name != into]
    flags = _flag_parameters(unset_is_none)
    clash = {p.name for p in own} & {p.name for p in flags}
    if clash:
        raise TypeError(f"{command.__qualname__} declares data flags itself: {', '.join(sorted(clash))}")

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> R:
        values = {p.name: kwargs.pop(p.name, p.default) for p in flags}
        return command(*args, **kwargs, **{into: build(values)})

    params = [*own, *flags]
    wrapper.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params if p.annotation is not p.empty}
    if signature.return_annotation is not signature.empty:
        wrapper.__annotations__["return"] = signature.return_annotation
    return wrapper


def with_read_options(command: Callable[..., R]) -> Callable[..., R]:
    """Give a Typer command every data flag; it receives them as one ``options: ReadOptions`` keyword argument.

    The flags are checked when the command runs, before its body (see :func:`read_options_from_flags`).
    """
    return _add_data_flags(command, "options", lambda values: read_options_from_flags(**values), unset_is_none=False)


def with_data_flags(command: Callable[..., R]) -> Callable[..., R]:
    """Give a Typer command every data flag, each defaulting to ``None`` (not given); it receives them as one
    ``data_flags: dict[str, Any]`` keyword argument, for commands where only the flags given override something else.
    """
    return _add_data_flags(command, "data_flags", dict, unset_is_none=True)
