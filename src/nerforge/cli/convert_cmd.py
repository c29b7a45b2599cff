"""``nerforge convert IN OUT``: read any supported file and write it as IOB2 CoNLL or JSON Lines.

A thin wrapper over :func:`nerforge.data.convert.convert_file`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from nerforge.cli.options import (
    DocColumnFlag,
    EntityTypeFlag,
    FormatFlag,
    LabelMapFlag,
    LabelNamesFlag,
    LabelsFileFlag,
    MissingTagFlag,
    SchemeFlag,
    SentenceColumnsFlag,
    SeparatorFlag,
    StripTokenPrefixFlag,
    TagColumnFlag,
    TagsFieldFlag,
    TokenColumnFlag,
    TokensFieldFlag,
    read_options_from_flags,
)
from nerforge.data.convert import convert_file

logger = logging.getLogger(__name__)


def convert_cli(
    input_path: Annotated[Path, typer.Argument(metavar="IN", help="File to read.")],
    output_path: Annotated[Path, typer.Argument(metavar="OUT", help="File to write (.conll/.txt/.tsv or .jsonl).")],
    to: Annotated[
        str | None, typer.Option("--to", help="Output format: conll or jsonl (default: from OUT's extension).")
    ] = None,
    format: FormatFlag = None,
    token_column: TokenColumnFlag = 0,
    tag_column: TagColumnFlag = -1,
    separator: SeparatorFlag = None,
    tokens_field: TokensFieldFlag = "tokens",
    tags_field: TagsFieldFlag = None,
    label_names: LabelNamesFlag = None,
    labels_file: LabelsFileFlag = None,
    entity_type: EntityTypeFlag = None,
    scheme: SchemeFlag = None,
    label_map: LabelMapFlag = None,
    strip_token_prefix: StripTokenPrefixFlag = None,
    sentence_columns: SentenceColumnsFlag = None,
    doc_column: DocColumnFlag = None,
    missing_tag: MissingTagFlag = "o",
) -> None:
    """Convert IN to IOB2 CoNLL or JSON Lines; print what was read and what was noticed."""
    options = read_options_from_flags(
        format=format,
        token_column=token_column,
        tag_column=tag_column,
        separator=separator,
        tokens_field=tokens_field,
        tags_field=tags_field,
        label_names=label_names,
        labels_file=labels_file,
        entity_type=entity_type,
        scheme=scheme,
        label_map=label_map,
        strip_token_prefix=strip_token_prefix,
        sentence_columns=sentence_columns,
        doc_column=doc_column,
        missing_tag=missing_tag,
    )
    result = convert_file(input_path, output_path, options=options, to=to)
    for finding in result.findings:
        logger.debug("%s", finding)
    hint = " (nerforge -v convert ... lists them)" if result.findings else ""
    typer.echo(result.summary() + hint)


def register(app: typer.Typer) -> None:
    app.command("convert")(convert_cli)
