"""The Hugging Face ``Trainer``, set up for token classification and extended only through narrow hooks.

* :func:`training_arguments` maps the typed config onto ``TrainingArguments``: AdamW, linear warm-up and decay,
  evaluation and a checkpoint every epoch (or every ``eval_steps``), the best checkpoint by dev entity F1 kept and
  loaded at the end, callback state (early stopping) restored on resume, MLflow integration off (``report_to``
  ``"none"``; nerforge logs to MLflow itself, see :mod:`nerforge.training.tracking`).
* :class:`NerTrainer` overrides one hook, the train sampler, to group windows of similar length with an order that
  depends only on (seed, epoch), so a resumed run replays exactly the batches of an uninterrupted one.
* :func:`entity_metrics` is ``compute_metrics``: predictions at the labelled positions of the dev windows go back
  to words (:func:`nerforge.training.dataset.word_tags`) and whole sentences are scored in strict IOB2 mode by
  :func:`nerforge.evaluation.evaluate`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from transformers import EvalPrediction, Trainer, TrainingArguments

from nerforge.config import TrainingConfig
from nerforge.evaluation import EvalResult, evaluate
from nerforge.training.collate import EpochLengthGroupedSampler
from nerforge.training.dataset import SplitFeatures, word_tags

logger = logging.getLogger(__name__)

BEST_METRIC = "f1"  # reported by entity_metrics; the Trainer sees it as eval_f1


class NerTrainer(Trainer):
    """``Trainer`` with a length-grouped train sampler seeded by (seed, epoch) when ``lengths`` are given."""

    def __init__(self, *args: Any, lengths: list[int] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lengths = lengths

    def _get_train_sampler(self, train_dataset: Any = None) -> torch.utils.data.Sampler | None:
        if self._lengths is None:
            return super()._get_train_sampler(train_dataset)
        batch = self.args.train_batch_size * self.args.gradient_accumulation_steps
        seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
        return EpochLengthGroupedSampler(self._lengths, batch, seed)


def training_arguments(config: TrainingConfig, checkpoint_dir: Path, *, has_dev: bool) -> TrainingArguments:
    """``TrainingArguments`` for ``config``, checkpointing into ``checkpoint_dir``.

    Without a dev split nothing is evaluated during training: no early stopping, the last epoch is kept.
    """
    by_steps = config.eval_steps is not None
    strategy = "steps" if by_steps else "epoch"
    return TrainingArguments(
        output_dir=str(checkpoint_dir),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps if config.max_steps is not None else -1,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.eval_batch_size or 2 * config.batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        learning_rate=config.learning_rate,
        weight_decay=config.weight_decay,
        optim="adamw_torch",
        lr_scheduler_type="linear",
        warmup_steps=config.warmup_ratio,  # a float in [0, 1) is a ratio of the total steps
        max_grad_norm=config.max_grad_norm,
        seed=config.seed,
        eval_strategy=strategy if has_dev else "no",
        eval_steps=config.eval_steps,
        save_strategy=strategy,
        save_steps=config.eval_steps or 500,
        logging_strategy=strategy,
        logging_steps=config.eval_steps or 500,
        save_total_limit=2 if has_dev else 1,  # the best and the last; without dev, the last
        load_best_model_at_end=has_dev,
        metric_for_best_model=BEST_METRIC if has_dev else None,
        greater_is_better=True if has_dev else None,
        restore_callback_states_from_checkpoint=True,
        report_to="none",
        disable_tqdm=False,
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
        remove_unused_columns=False,
        save_only_model=False,
    )


def argmax_logits(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``preprocess_logits_for_metrics``: keep label ids, not logits, across evaluation batches."""
    if isinstance(logits, tuple):
        logits = logits[0]
    return logits.argmax(dim=-1)


def score_split(split: SplitFeatures, predictions: Any, id2label: Mapping[int, str]) -> EvalResult:
    """Strict IOB2 scores of window predictions mapped back to the words of ``split``."""
    pred = word_tags(split, predictions, id2label)
    return evaluate([list(ex.tags) for ex in split.examples], pred)


def entity_metrics(split: SplitFeatures, id2label: Mapping[int, str]) -> Callable[[EvalPrediction], dict[str, float]]:
    """A ``compute_metrics`` for the Trainer: micro P/R/F1 (strict IOB2, whole sentences) and token accuracy."""

    def compute(prediction: EvalPrediction) -> dict[str, float]:
        result = score_split(split, prediction.predictions, id2label)
        return {
            "precision": result.micro.precision,
            "recall": result.micro.recall,
            BEST_METRIC: result.micro.f1,
            "token_accuracy": result.token_accuracy,
        }

    return compute
