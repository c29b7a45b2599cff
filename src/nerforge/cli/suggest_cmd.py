"""``nerforge suggest MODEL POOL --count N --output OUT``: the unlabelled texts to annotate next, most useful first;
a thin wrapper over :mod:`nerforge.prediction.suggest`."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from nerforge.cli.checks import check_inputs, check_model
from nerforge.errors import UsageError


def suggest_cli(
    model: str = typer.Argument(..., metavar="MODEL", help="Model directory written by 'nerforge train'."),
    pool: Path = typer.Argument(
        ..., metavar="POOL", help="Unlabelled texts: .txt (one per line), .csv/.parquet (--text-column) or .jsonl."
    ),
    count: int = typer.Option(..., "--count", "-n", min=1, help="How many texts to suggest."),
    output: Path = typer.Option(..., "--output", "-o", help="OUT.jsonl (text, line, index, score) or OUT.json."),
    strategy: str = typer.Option(
        "uncertainty", "--strategy", help="uncertainty (least sure first), diverse (uncertain and unlike each other), random."
    ),
    output_kind: str = typer.Option(
        "jsonl", "--format", metavar="FORMAT", help="jsonl, or label-studio (OUT.json: tasks pre-annotated)."
    ),
    from_name: str = typer.Option("label", "--from-name", help="Label Studio: the name of the <Labels> tag."),
    to_name: str = typer.Option("text", "--to-name", help="Label Studio: the name of the <Text> tag."),
    text_column: str = typer.Option("text", "--text-column", help="CSV column / JSONL field holding the text."),
    seed: int = typer.Option(13, "--seed", help="Seed of --strategy random."),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Windows per forward pass."),
    progress: bool | None = typer.Option(None, "--progress/--no-progress", help="Progress bar (default: on a terminal)."),
) -> None:
    """Rank unlabelled texts by how much annotating them should teach the model, and write the COUNT most useful.

    Scores are the model's uncertainty: 1 - the geometric mean of its word-tag probabilities. Near-duplicates are
    left out.
    """
    check_model(model)
    check_inputs(pool)
    from nerforge.io_utils import atomic_open
    from nerforge.outputs import check_output_file
    from nerforge.prediction.annotation_formats import label_studio_task
    from nerforge.prediction.heap import settle_loaded_objects
    from nerforge.prediction.io import InputRecord, count_inputs, read_inputs
    from nerforge.prediction.suggest import STRATEGIES, rank, score_records
    from nerforge.prediction.tagger import Tagger

    if strategy not in STRATEGIES:
        raise typer.BadParameter(f"{strategy!r} is not one of: {', '.join(STRATEGIES)}", param_hint="'--strategy'")
    if output_kind not in ("jsonl", "label-studio"):
        raise typer.BadParameter(f"{output_kind!r} is not one of: jsonl, label-studio", param_hint="'--format'")
    wanted = ".jsonl" if output_kind == "jsonl" else ".json"
    if output.suffix.lower() != wanted:
        raise UsageError(f"--format {output_kind} writes *{wanted}; got --output {output}")
    check_output_file(output)
    if output.resolve() == pool.resolve():
        raise UsageError(f"--output {output} is the POOL file; choose another --output")
    total = count_inputs(pool, text_column=text_column)
    tagger = Tagger.load(model, batch_size=batch_size, progress=progress)
    settle_loaded_objects()  # one model for the whole pool (nerforge.prediction.heap)
    candidates = score_records(tagger, read_inputs(pool, text_column=text_column), total=total)
    chosen = rank(candidates, count, strategy, seed)
    with atomic_open(output, "w", encoding="utf-8") as fh:
        if output_kind == "jsonl":
            for c in chosen:
                row = {"text": c.text, "line": c.line, "index": c.index, "score": round(c.score, 6)}
                fh.write(json.dumps({**c.fields, **row}, ensure_ascii=False, default=str) + "\n")
        else:
            tasks = []
            for c in chosen:
                record = InputRecord(c.index, c.text, c.line, {**c.fields, "nerforge_uncertainty": round(c.score, 6)})
                tasks.append(label_studio_task(record, list(c.entities), from_name=from_name, to_name=to_name,
                                               model_version=f"nerforge {Path(model).name}"))  # fmt: skip
            fh.write(json.dumps(tasks, ensure_ascii=False, indent=1) + "\n")
    texts = sum(1 for c in candidates if c.text.strip())
    typer.echo(f"suggested {len(chosen)} of {texts} texts ({strategy}); wrote {output}")


def register(app: typer.Typer) -> None:
    app.command("suggest")(suggest_cli)
