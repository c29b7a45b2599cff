"""``nerforge distill TEACHER``: a smaller, faster student of a trained model; a thin wrapper over
:func:`nerforge.training.distill.distill`.

    nerforge distill model --train train.conll --dev dev.conll --test test.conll --layers 3 --output model-l3
    nerforge distill model --train train.conll --unlabeled news.txt --layers 2 --output model-l2
    nerforge distill model --train train.conll --layers 2 --ffn-size 384 --output model-l2-narrow

The student takes the teacher's encoder files, windows, head and labels; the training flags and the data flags are
``nerforge train``'s.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from nerforge.cli.options import config_default, flag_overrides, model_read_options, with_data_flags
from nerforge.cli.results import print_result
from nerforge.config import DistillConfig, TrainingConfig, load_config, parse_overrides
from nerforge.data.readers.options import READ_OPTION_FIELDS
from nerforge.training.preflight import check_inputs, check_outputs


def _keep_layers(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not a comma-separated list of layer numbers, e.g. 0,2,5", param_hint="'--keep-layers'"
        ) from None


@with_data_flags
def distill_cli(
    teacher: Path = typer.Argument(..., help="The teacher: a model directory written by 'nerforge train'."),
    train: list[Path] | None = typer.Option(
        None, "--train", metavar="FILE", help="Training split with gold tags (required); repeatable."
    ),
    dev: list[Path] | None = typer.Option(
        None, "--dev", metavar="FILE", help="Dev split (per-epoch F1, early stopping, best checkpoint); repeatable."
    ),
    test: list[Path] | None = typer.Option(None, "--test", metavar="FILE", help="Test split, scored at the end."),
    unlabeled: list[Path] | None = typer.Option(
        None,
        "--unlabeled",
        metavar="FILE",
        help="Raw texts the teacher labels softly (.txt one per line, .csv, .jsonl); repeatable.",
    ),
    text_column: str = typer.Option(
        "text", "--text-column", help="Text column or field of CSV/JSONL --unlabeled files."
    ),
    augment: int = typer.Option(
        DistillConfig.model_fields["augment"].default,
        "--augment",
        min=0,
        metavar="N",
        help="Copies of each training sentence with some words swapped, labelled softly by the teacher (0: none).",
    ),
    hidden_weight: float = typer.Option(
        DistillConfig.model_fields["hidden_weight"].default,
        "--hidden-weight",
        min=0.0,
        metavar="W",
        help="Weight of matching each student layer's token vectors to its teacher layer's (0: off).",
    ),
    layers: int | None = typer.Option(
        None, "--layers", min=1, help="Transformer layers of the student, spread evenly over the teacher's."
    ),
    keep_layers: str | None = typer.Option(
        None, "--keep-layers", metavar="LIST", help="The teacher's layers to keep, e.g. 0,2,5 (instead of --layers)."
    ),
    ffn_size: int | None = typer.Option(
        None,
        "--ffn-size",
        min=1,
        metavar="N",
        help="Feed-forward units per student layer (the teacher's most important N are kept); default: all.",
    ),
    temperature: float = typer.Option(
        DistillConfig.model_fields["temperature"].default,
        "--temperature",
        help="Softens the teacher's and the student's distributions.",
    ),
    alpha: float = typer.Option(
        DistillConfig.model_fields["alpha"].default,
        "--alpha",
        help="Weight of the teacher's distributions; 1 - alpha goes to the gold tags.",
    ),
    output: Path | None = typer.Option(None, "--output", "-o", help="The student's model directory."),
    epochs: float | None = typer.Option(
        None, "--epochs", help="Training epochs." + config_default(TrainingConfig, "epochs")
    ),
    max_steps: int | None = typer.Option(None, "--max-steps", help="Optimizer steps (overrides --epochs)."),
    seed: int | None = typer.Option(None, "--seed", help="Random seed." + config_default(TrainingConfig, "seed")),
    batch_size: int | None = typer.Option(
        None, "--batch-size", help="Windows per batch." + config_default(TrainingConfig, "batch_size")
    ),
    learning_rate: float | None = typer.Option(
        None, "--learning-rate", help="Peak learning rate." + config_default(TrainingConfig, "learning_rate")
    ),
    set_: list[str] | None = typer.Option(
        None, "--set", metavar="KEY=VALUE", help="Override a config key, e.g. --set training.warmup_ratio=0.05."
    ),
    no_tracking: bool = typer.Option(False, "--no-tracking", help="Do not log to MLflow."),
    tracking_uri: str | None = typer.Option(None, "--tracking-uri", help="MLflow tracking URI."),
    experiment: str | None = typer.Option(None, "--experiment", help="MLflow experiment name."),
    run_name: str | None = typer.Option(None, "--run-name", metavar="NAME", help="MLflow run name."),
    progress: bool | None = typer.Option(
        None,
        "--progress/--no-progress",
        help="Progress bars (default: only on a terminal); epoch lines are always logged.",
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue from the last checkpoint of an interrupted run."),
    *,
    data_flags: dict[str, Any],
) -> None:
    """Distill a model into a smaller, faster student (fewer layers, optionally narrower ones) that learns the
    teacher's predictions."""
    from nerforge.training.teacher import load_teacher_meta, teacher_settings

    if not train:
        raise typer.BadParameter("give the training data with gold tags: --train FILE", param_hint="'--train'")
    if (layers is None) == (keep_layers is None):
        raise typer.BadParameter("give the student's size: --layers N, or --keep-layers LIST", param_hint="'--layers'")
    meta = load_teacher_meta(teacher)
    flags = flag_overrides(
        data_flags, train=train, dev=dev, test=test, output=output, epochs=epochs, max_steps=max_steps, seed=seed,
        batch_size=batch_size, learning_rate=learning_rate, tracking_uri=tracking_uri, experiment=experiment,
        run_name=run_name,
    )  # fmt: skip
    flags.update(teacher_settings(meta, teacher))
    # the data is read as the teacher's training data was (tag column, label names, label map...), flags on top
    reading = model_read_options(teacher, data_flags)
    for f in READ_OPTION_FIELDS:
        value = getattr(reading, f.name)
        if value != f.default:
            flags.setdefault(f"data.{f.name}", list(value) if isinstance(value, tuple) else value)
    flags.update(
        {
            "distill.teacher": str(teacher.resolve()),
            "distill.layers": layers,
            "distill.keep_layers": _keep_layers(keep_layers) if keep_layers is not None else None,
            "distill.ffn_size": ffn_size,
            "distill.temperature": temperature,
            "distill.alpha": alpha,
            "distill.unlabeled": [str(p.expanduser().resolve()) for p in unlabeled or []],
            "distill.text_column": text_column,
            "distill.augment": augment,
            "distill.hidden_weight": hidden_weight,
        }
    )
    if no_tracking:
        flags["tracking.enabled"] = False
    cfg = load_config(None, parse_overrides(set_ or []), flags=flags)
    cfg.check_complete()
    check_inputs(cfg)
    check_outputs(cfg)
    from nerforge.training.distill import distill

    result = distill(cfg, resume=resume, progress=progress)
    print_result(result, cfg, what="student")


def register(app: typer.Typer) -> None:
    app.command("distill")(distill_cli)
