"""``nerforge info MODEL``: encoder, head, labels, training data, run and scores of a model directory; a thin
wrapper over :func:`nerforge.prediction.info.model_info`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer


def info_cli(
    model: Annotated[Path, typer.Argument(metavar="MODEL", help="A model directory (trained or exported).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Describe a model directory: encoder, head, labels, training data, training run, dev and test scores."""
    from nerforge.prediction.info import model_info, render_info

    info = model_info(model)
    typer.echo(json.dumps(info.to_dict(), indent=2, ensure_ascii=False) if as_json else "\n".join(render_info(info)))


def register(app: typer.Typer) -> None:
    app.command("info")(info_cli)
