"""``nerforge init DATA... [--output CONFIG]``: inspect the data and write a commented training config for it.

Parses its arguments and calls :func:`nerforge.config.init.init_config`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from nerforge.cli.options import given_options, with_data_flags


@with_data_flags
def init_cli(
    paths: Annotated[
        list[Path],
        typer.Argument(metavar="DATA", help="Annotated files; names with train/dev/valid/test pick the split."),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", metavar="CONFIG", help="The config file to write.")] = Path(
        "nerforge.toml"
    ),
    model_dir: Annotated[
        str, typer.Option("--model-dir", metavar="DIR", help="output.dir of the config (relative to CONFIG).")
    ] = "model",
    force: Annotated[bool, typer.Option("--force", help="Replace CONFIG if it exists.")] = False,
    *,
    data_flags: dict[str, Any],
) -> None:
    """Inspect data files and write a commented training config for them.

    The config has the detected splits, format, scheme and labels, and every model and training setting at its
    default.
    """
    from nerforge.config.init import init_config

    result = init_config(paths, output, read_options=given_options(data_flags), model_dir=model_dir, force=force)
    for split, files in result.splits.items():
        typer.echo(f"{split}: {', '.join(str(p) for p in files)}")
    typer.echo(f"labels: {', '.join(result.types) or 'none found'}")
    typer.echo(f"wrote {result.output}; train with: nerforge train {result.output}")


def register(app: typer.Typer) -> None:
    app.command("init")(init_cli)
