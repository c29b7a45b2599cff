"""What ``train`` and ``distill`` print when a run ends: one printer for both."""

from __future__ import annotations

from typing import Any

import typer


def print_result(result: Any, cfg: Any, *, what: str) -> None:
    """The per-epoch table, where the model is (``what``: ``model`` or ``student``), dev and test scores with their
    mode and scheme, the report and the MLflow run of a :class:`~nerforge.training.output.TrainResult`."""
    from nerforge.evaluation.report import epochs_text

    if result.epochs:
        typer.echo("\n".join(epochs_text(result.epochs)))
    layers = getattr(result, "layers", ())
    tags = ("layers " + ", ".join(f"{name} {n} tags" for name, n in layers)) if layers else f"{len(result.tags)} tags"
    typer.echo(f"{what}: {result.output_dir} ({tags}; {result.global_step} optimizer steps)")
    if result.resumed_from:
        typer.echo(f"resumed from: {result.resumed_from}")
    for name, scores in (("dev", result.dev), ("test", result.test)):
        if scores is not None:
            m = scores.micro
            typer.echo(
                f"{name}: F1 {m.f1:.4f} (P {m.precision:.4f}, R {m.recall:.4f}; {scores.mode} {scores.scheme}, "
                f"{m.support} entities)"
            )
    if result.report is not None:
        typer.echo(f"report: {result.report}")
    if result.tracking_run_id:
        from nerforge.training.tracking import resolve_uri, store_location

        typer.echo(
            f"MLflow run: {result.tracking_run_id} in experiment '{cfg.tracking.experiment}', "
            f"store {store_location(cfg.tracking.uri)}"
        )
        if cfg.tracking.uri.startswith("sqlite:"):
            typer.echo(f"browse it: mlflow ui --backend-store-uri {resolve_uri(cfg.tracking.uri)}")
