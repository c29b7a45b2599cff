"""``nerforge convert IN OUT``: read any supported file and write it as IOB2 CoNLL or JSON Lines.

A thin wrapper over :func:`nerforge.data.convert.convert_file`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from nerforge.cli.options import with_read_options
from nerforge.data.convert import convert_file
from nerforge.data.readers.options import ReadOptions

logger = logging.getLogger(__name__)


@with_read_options
def convert_cli(
    input_path: Annotated[Path, typer.Argument(metavar="IN", help="File (or BRAT or Parquet folder) to read.")],
    output_path: Annotated[
        Path,
        typer.Argument(
            metavar="OUT", help="File to write (.conll/.txt/.tsv, .jsonl or .parquet; --to brat: a folder)."
        ),
    ],
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            help="Output format: conll, jsonl, parquet or brat (OUT a folder of .txt and .ann files; default: from OUT's extension).",
        ),
    ] = None,
    *,
    options: ReadOptions,
) -> None:
    """Convert IN to IOB2 CoNLL (a tag column per layer), JSON Lines with spans, Parquet or BRAT; print what was read
    and what was noticed."""
    result = convert_file(input_path, output_path, options=options, to=to)
    for finding in result.findings:
        logger.debug("%s", finding)
        if finding.kind == "spans-not-written":  # entities the output cannot hold: said whatever the verbosity
            typer.echo(f"warning: {finding.message}", err=True)
    hint = " (nerforge -v convert ... lists them)" if result.findings else ""
    typer.echo(result.summary() + hint)


def register(app: typer.Typer) -> None:
    app.command("convert")(convert_cli)
