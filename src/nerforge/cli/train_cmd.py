"""``nerforge train [CONFIG]``: fine-tune an encoder into an NER model; a thin wrapper over
:func:`nerforge.training.train`.

Two ways to call it, which mix:

    nerforge train job.toml --set training.learning_rate=3e-5
    nerforge train --train train.conll --dev dev.conll --test test.conll --output model --no-tracking

Flags override the config file and ``--set`` overrides both. Data flags (``--tag-column``, ...) apply to every split.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import typer

from nerforge.cli.options import config_default, flag_overrides, with_data_flags
from nerforge.cli.results import print_result
from nerforge.config import ModelConfig, TrackingConfig, TrainingConfig, load_config, parse_overrides
from nerforge.modeling.head import HEAD_PRESETS, head_preset
from nerforge.training.preflight import check_inputs, check_outputs


# Every data flag defaults to None here: a flag that is not given must not override the config file.
@with_data_flags
def train_cli(
    config: Path | None = typer.Argument(None, help="A TOML or YAML config (optional: flags alone suffice)."),
    set_: list[str] | None = typer.Option(
        None, "--set", metavar="KEY=VALUE", help="Override a config key, e.g. --set training.learning_rate=3e-5."
    ),
    train: list[Path] | None = typer.Option(
        None, "--train", metavar="FILE", help="Training split; repeat for several files (read in order)."
    ),
    dev: list[Path] | None = typer.Option(
        None, "--dev", metavar="FILE", help="Dev split (per-epoch F1, early stopping, best checkpoint); repeatable."
    ),
    test: list[Path] | None = typer.Option(
        None, "--test", metavar="FILE", help="Test split, evaluated once after training; repeatable."
    ),
    data_dir: Path | None = typer.Option(
        None,
        "--data-dir",
        metavar="DIR",
        help="The folder the CONFIG's data paths are relative to (replaces its data.root; "
        "$NERFORGE_DATA_DIR does the same for a config with data.root).",
    ),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="The model directory to write; an existing one only if nerforge wrote it."
    ),
    model: str | None = typer.Option(
        None,
        "--model",
        help="'default' (embedded MiniLM), a directory or a hub id." + config_default(ModelConfig, "name"),
    ),
    max_length: int | None = typer.Option(
        None, "--max-length", help="Subwords per window." + config_default(ModelConfig, "max_length")
    ),
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
    head: str | None = typer.Option(
        None,
        "--head",
        metavar="NAME",
        help="The head: shape+crf (default), crf, shape+softmax, or plain (the Hugging Face head that "
        "transformers.pipeline loads).",
    ),
    labels: str | None = typer.Option(None, "--labels", help="Entity types, comma-separated (default: all splits')."),
    no_tracking: bool = typer.Option(False, "--no-tracking", help="Do not log to MLflow."),
    tracking_uri: str | None = typer.Option(
        None, "--tracking-uri", help="MLflow tracking URI." + config_default(TrackingConfig, "uri")
    ),
    experiment: str | None = typer.Option(
        None, "--experiment", help="MLflow experiment name." + config_default(TrackingConfig, "experiment")
    ),
    run_name: str | None = typer.Option(
        None, "--run-name", metavar="NAME", help="MLflow run name (default: <model folder>-<date>-<time>-<4 hex>)."
    ),
    progress: bool | None = typer.Option(
        None,
        "--progress/--no-progress",
        help="Progress bars (default: only on a terminal); epoch lines are always logged.",
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue from the last checkpoint of an interrupted run."),
    *,
    data_flags: dict[str, Any],
) -> None:
    """Fine-tune an encoder on your data and write a model directory (with model card, metrics and report)."""
    flags = flag_overrides(
        data_flags, train=train, dev=dev, test=test, output=output, model=model, max_length=max_length,
        epochs=epochs, max_steps=max_steps, seed=seed, batch_size=batch_size, learning_rate=learning_rate,
        tracking_uri=tracking_uri, experiment=experiment, run_name=run_name,
    )  # fmt: skip
    if head is not None:
        if head not in HEAD_PRESETS:
            raise typer.BadParameter(f"{head!r} is not one of: {', '.join(HEAD_PRESETS)}", param_hint="'--head'")
        flags.update({f"model.head.{key}": value for key, value in head_preset(head).items()})
    if labels is not None:
        flags["data.labels"] = [t.strip() for t in labels.split(",") if t.strip()]
    if no_tracking:
        flags["tracking.enabled"] = False
    if data_dir is not None and config is None:
        raise typer.BadParameter(
            "--data-dir moves the data paths written in a CONFIG; give one, or give --train/--dev/--test paths "
            "as they are",
            param_hint="'--data-dir'",
        )
    cfg = load_config(config, parse_overrides(set_ or []), flags=flags, data_dir=data_dir)
    cfg.check_complete()
    check_inputs(cfg)  # a missing file or a refused output costs a fraction of a second, before torch is imported
    check_outputs(cfg)
    from nerforge.training import train as run_training
    from nerforge.training.distributed import is_main_process

    main = is_main_process()  # under torchrun / accelerate launch, rank 0 alone reports
    if not main:
        logging.getLogger("nerforge").setLevel(logging.WARNING)
    result = run_training(cfg, resume=resume, progress=progress)
    if not main:
        return
    print_result(result, cfg, what="model")


def register(app: typer.Typer) -> None:
    app.command("train")(train_cli)
