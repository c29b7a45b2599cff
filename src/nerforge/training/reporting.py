"""What a training run tells its user at the end: why it stopped early, and a loud warning, with what to change,
when the model it hands back finds no entity at all."""

from __future__ import annotations

import logging

from nerforge.config import TrainConfig
from nerforge.model_dir import TrainingInfo
from nerforge.training.output import TrainResult
from nerforge.training.stages import Prepared

logger = logging.getLogger("nerforge.training.run")  # the run's own logger: its messages read as the run's

SMALL_DEV_ENTITIES = 20  # fewer dev entities than this make dev F1 too coarse to choose a checkpoint (warned)


def announce_early_stop(info: TrainingInfo, prepared: Prepared) -> None:
    """Say why training ended before its last step (the progress bar stops short of 100%)."""
    if not info.stopped_early:
        return
    patience = prepared.config.training.early_stopping_patience
    best = (
        f"dev F1 {info.best_dev_f1:.4f}"
        if info.best_dev_f1 is not None
        else f"dev loss {info.best_dev_loss:.4f}"
        if info.best_dev_loss is not None
        else "the best dev score"
    )
    logger.info(
        "early stopping after epoch %g (step %d of %d): %s did not improve for %d evaluations "
        "(training.early_stopping_patience); the checkpoint of step %s (%s) is kept",
        info.epochs,
        info.global_step,
        info.max_steps,
        info.best_by or "the dev score",
        patience,
        info.best_step,
        best,
    )


def warn_if_nothing_predicted(result: TrainResult, config: TrainConfig) -> list[str]:
    """Warn loudly when the trained model finds no entity at all in dev or test that has some: the run handed back
    a model that is not usable, and the warning says what to change. Returns the splits warned about."""
    warned = []
    training = config.training
    evaluations = sum(1 for row in result.epochs if row.get("eval_f1") is not None)
    for name, scores in (("dev", result.dev), ("test", result.test)):
        if scores is None or scores.micro.support == 0 or scores.micro.n_pred > 0:
            continue
        warned.append(name)
        hints = []
        if name == "dev" and scores.micro.support < SMALL_DEV_ENTITIES:
            hints.append(
                f"dev holds only {scores.micro.support} entities, too few to choose a checkpoint: give a larger dev "
                "file (or a larger data.split.dev)"
            )
        stopped_early = evaluations and training.max_steps is None and evaluations < training.epochs
        if stopped_early and training.early_stopping_patience:
            hints.append(
                f"early stopping ended the run after {evaluations} evaluations: set "
                "training.early_stopping_patience = 0 with more training.epochs"
            )
        else:
            hints.append(f"more optimizer steps ({result.global_step} were run; raise training.epochs or --max-steps)")
        hints.append(f"another learning rate ({training.learning_rate:g} now)")
        hints.append(f"tags that match the data ('nerforge inspect' on train and {name})")
        logger.warning(
            "the model predicts no entity at all on %s (%d gold entities): it is not usable as it is. Try: %s",
            name,
            scores.micro.support,
            "; ".join(hints),
        )
    return warned
