"""``nerforge evaluate MODEL DATA...``: a thin wrapper over :func:`nerforge.prediction.evaluate.evaluate` (tag annotated
data with a model and write a report of how well it did).

An entity type in DATA that the model does not know is an error naming the type, the file and the line; rename or
drop such types with ``--label-map`` ('OLD=NEW', or 'OLD=' to drop).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import typer

from nerforge.cli.checks import check_inputs, check_model
from nerforge.cli.options import model_read_options, with_data_flags
from nerforge.prediction.evaluate import Evaluation, evaluate

logger = logging.getLogger(__name__)


def _table(evaluation: Evaluation) -> str:
    result = evaluation.result
    rows = [(name, s.precision, s.recall, s.f1, s.support) for name, s in result.per_type.items()]
    m = result.micro
    rows.append(("micro", m.precision, m.recall, m.f1, m.support))
    width = max(len(r[0]) for r in rows)
    lines = [f"{'type':<{width}}  precision  recall  f1      support"]
    lines += [f"{n:<{width}}  {p:9.4f}  {r:6.4f}  {f:6.4f}  {s:7d}" for n, p, r, f, s in rows]
    lines.append(f"{result.mode} {result.scheme} entity scores on {result.n_sentences} sentences")
    c = evaluation.calibration
    if c and c.get("entities"):
        fitted = (c["temperature"], c.get("shift", 0.0)) != (1.0, 0.0)
        how = (
            f"temperature {c['temperature']:g}, shift {c.get('shift', 0.0):g}, fitted on dev"
            if fitted
            else "none fitted"
        )
        lines.append(
            f"entity-score calibration error (ECE): {c['ece_before']:.3f} raw, {c['ece_after']:.3f} calibrated ({how})"
        )
    lines.append(f"report: {evaluation.files.report}")
    return "\n".join(lines)


@with_data_flags
def evaluate_cli(
    model: Path = typer.Argument(..., metavar="MODEL", help="Model directory written by 'nerforge train'."),
    data: list[Path] = typer.Argument(
        ...,
        metavar="DATA...",
        help="Annotated data in any supported format (read as IOB2); several files are scored together as one split.",
    ),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Report directory (default: MODEL/eval-<DATA stem>)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print only the scores, as one JSON object."),
    batch_size: int = typer.Option(32, "--batch-size", help="Windows per forward pass."),
    device: str = typer.Option("cpu", "--device", help="Torch device: cpu, cuda, cuda:1, mps."),
    threads: int | None = typer.Option(
        None, "--threads", min=1, help="CPU threads for torch (default: the cores idle now)."
    ),
    no_plots: bool = typer.Option(False, "--no-plots", help="Skip the PNG figures."),
    progress: bool | None = typer.Option(
        None, "--progress/--no-progress", help="Progress bar (default: on a terminal)."
    ),
    *,
    data_flags: dict[str, Any],
) -> None:
    """Score a model on annotated data (strict IOB2 entity F1) and write report.md, metrics.json and figures.

    DATA is read the way the model's training data was (label names, scheme, columns, label map are kept in the model
    directory); a data flag given here replaces the kept value.
    """
    check_model(model)
    check_inputs(*data, what="data file")
    from nerforge.threads import set_torch_threads

    set_torch_threads(threads)
    evaluation = evaluate(
        model,
        data if len(data) > 1 else data[0],
        output=output,
        options=model_read_options(model, data_flags),
        batch_size=batch_size,
        device=device,
        progress=progress,
        make_plots=not no_plots,
    )
    if as_json:
        typer.echo(json.dumps(evaluation.to_dict(), allow_nan=False))
    else:
        typer.echo(_table(evaluation))


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate_cli)
