"""The typed values passed between the three stages of a training run (:mod:`nerforge.training.run`):

``prepare`` (read the splits, check the labels, load the tokenizer, encode every split with the head's plan)
→ :class:`Prepared` → ``fit`` (the Hugging Face Trainer, checkpoints, early stopping, dev scores)
→ :class:`Fitted` → ``package`` (the model directory, written atomically: :func:`nerforge.training.output.write_model_dir`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nerforge.config import TrainConfig
from nerforge.evaluation import EvalResult
from nerforge.model_dir import TrainingInfo
from nerforge.modeling.plan import HeadPlan
from nerforge.training.dataset import SplitFeatures
from nerforge.types import Example


@dataclass
class Prepared:
    """Everything ``fit`` needs, built before any weight is loaded.

    Attributes:
        config: the validated config (``training.num_threads`` filled in once the run starts).
        splits: the examples of each split, IOB2.
        tokenizer: the encoder's fast tokenizer.
        base: what ``from_pretrained`` loads the encoder from (a directory or a hub id).
        plan: the head's plan (its ``tags``, ``max_length`` and ``stride`` are the model's).
        features: each split encoded into windows by ``plan``.
        best_metric: what picks the best checkpoint: ``"f1"``, or ``"loss"`` when dev has no entities.
        threads: torch CPU threads of the run.
    """

    config: TrainConfig
    splits: dict[str, list[Example]]
    tokenizer: Any
    base: str
    plan: HeadPlan
    features: dict[str, SplitFeatures]
    best_metric: str
    threads: int

    @property
    def tags(self) -> list[str]:
        return list(self.plan.tags)

    @property
    def max_length(self) -> int:
        return self.plan.max_length


@dataclass
class FitInputs:
    """What a run other than plain fine-tuning hands ``fit`` instead of the defaults (``nerforge distill``).

    Attributes:
        model: the model to train (instead of the encoder under a fresh head).
        train_dataset: the training items (instead of the train split's windows), with their ``lengths``.
        collator: pads a batch of those items.
        trainer_class: a :class:`~nerforge.training.trainer.NerTrainer` subclass, built with ``trainer_kwargs``.
        extra_meta: entries added to ``nerforge.json``'s ``extra``.
        notes: lines added to the model card's notes.
        summary: the model card's first sentence (what the model is).
        base_model: the encoder named as the model's base (instead of ``model.name``).
    """

    model: Any
    train_dataset: Any
    lengths: list[int] | None
    collator: Callable[..., Any]
    trainer_class: type
    trainer_kwargs: dict[str, Any] = field(default_factory=dict)
    extra_meta: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    summary: str | None = None
    base_model: str | None = None


@dataclass
class Fitted:
    """What ``fit`` produced.

    Attributes:
        model: the trained model (the best checkpoint when there is a dev split).
        epochs: the per-evaluation table (:func:`nerforge.training.callbacks.epoch_table`).
        dev: the dev scores of ``model``, decoded by the plan (``None`` without dev).
        info: the run's facts for ``nerforge.json`` (``extra.training``): steps, epochs, early stop, best step,
            resume point, world size, threads.
        losses: every logged train loss (:func:`nerforge.training.callbacks.loss_curve`), for the loss plot.
        calibration: the entity-score temperature fitted on dev, with the ECE before and after (``None`` without
            dev): ``extra.calibration`` of ``nerforge.json``.
        inputs: what replaced the defaults of plain fine-tuning, if anything (its meta and notes are written).
        dev_predictions: the kept model's word predictions on dev (what calibration is fitted on).
    """

    model: Any
    epochs: list[dict[str, Any]]
    dev: EvalResult | None
    info: TrainingInfo = field(default_factory=TrainingInfo)
    losses: list[dict[str, float]] = field(default_factory=list)
    calibration: dict[str, Any] | None = None
    inputs: FitInputs | None = None
    dev_predictions: list[Any] | None = field(default=None, repr=False)
