"""``nerforge suggest MODEL POOL --count N --output OUT``: the unlabelled texts to annotate next, most useful first;
a thin wrapper over :mod:`nerforge.prediction.suggest`."""

from __future__ import annotations

from pathlib import Path

import typer

from nerforge.cli.checks import check_inputs, check_model


def suggest_cli(
    model: str = typer.Argument(..., metavar="MODEL", help="Model directory written by 'nerforge train'."),
    pool: Path = typer.Argument(
        ..., metavar="POOL", help="Unlabelled texts: .txt (one per line), .csv/.parquet (--text-column) or .jsonl."
    ),
    count: int = typer.Option(..., "--count", "-n", min=1, help="How many texts to suggest."),
    output: Path = typer.Option(..., "--output", "-o", help="OUT.jsonl (text, line, index, score) or OUT.json."),
    strategy: str = typer.Option(
        "uncertainty",
        "--strategy",
        help="uncertainty (least sure first), diverse (uncertain and unlike each other), random.",
    ),
    output_kind: str = typer.Option(
        "jsonl", "--format", metavar="FORMAT", help="jsonl, or label-studio (OUT.json: tasks pre-annotated)."
    ),
    from_name: str = typer.Option("label", "--from-name", help="Label Studio: the name of the <Labels> tag."),
    to_name: str = typer.Option("text", "--to-name", help="Label Studio: the name of the <Text> tag."),
    text_column: str = typer.Option("text", "--text-column", help="CSV column / JSONL field holding the text."),
    seed: int = typer.Option(13, "--seed", help="Seed of --strategy random."),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Windows per forward pass."),
    progress: bool | None = typer.Option(
        None, "--progress/--no-progress", help="Progress bar (default: on a terminal)."
    ),
) -> None:
    """Rank unlabelled texts by how much annotating them should teach the model, and write the COUNT most useful.

    Scores are the model's uncertainty: 1 - the geometric mean of its word-tag probabilities. Near-duplicates are
    left out.
    """
    check_model(model)
    check_inputs(pool)
    from nerforge.prediction.suggest import SuggestOptions, suggest

    options = SuggestOptions(
        count=count,
        strategy=strategy,
        output_format=output_kind,
        from_name=from_name,
        to_name=to_name,
        text_column=text_column,
        seed=seed,
        batch_size=batch_size,
        progress=progress,
    )
    result = suggest(model, pool, output, options)
    typer.echo(f"suggested {len(result.chosen)} of {result.texts} texts ({result.strategy}); wrote {result.output}")


def register(app: typer.Typer) -> None:
    app.command("suggest")(suggest_cli)
