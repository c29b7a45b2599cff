"""The Hugging Face ``Trainer``, set up for token classification and extended only through narrow hooks.

* :func:`training_arguments` maps the typed config onto ``TrainingArguments``: AdamW (torch's fused kernel: one
  pass over all parameters instead of a dozen tensor ops each: 81 to 17 ms per step for MiniLM-L6 on 2 CPU cores,
  ``bench/train_step.py``),
  bf16 mixed precision where the hardware does it natively (:func:`resolve_precision`), linear warm-up and decay,
  evaluation and a checkpoint every epoch (or every ``eval_steps``), the best checkpoint by dev entity F1 kept and
  loaded at the end, callback state (early stopping) restored on resume, MLflow integration off (``report_to``
  ``"none"``; nerforge logs to MLflow itself, see :mod:`nerforge.training.tracking`).
* :class:`NerTrainer` overrides two hooks: the train sampler, to group windows of similar length with an order that
  depends only on (seed, epoch), so a resumed run replays exactly the batches of an uninterrupted one; and the best
  checkpoint's choice, so that a tie on dev F1 goes to the checkpoint with the lower dev loss (:func:`improves`;
  the Trainer keeps the first of equal scores, which on a small dev split where every epoch scores F1 0 is the
  untrained model of epoch 1). :class:`DevEarlyStopping` counts an evaluation as progress by the same rule.
* :func:`entity_metrics` is ``compute_metrics``: the model as it is at each evaluation tags the dev sentences through
  the prediction engine (the head's :class:`~nerforge.modeling.plan.HeadPlan`, whole sentences, document context)
  and they are scored in strict IOB2 mode by :func:`nerforge.evaluation.evaluate`: the same function that scores
  the kept model afterwards, so the per-epoch and the reported dev F1 are one computation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import EarlyStoppingCallback, EvalPrediction, Trainer, TrainingArguments

from nerforge.config import TrainingConfig
from nerforge.evaluation import EvalResult
from nerforge.evaluation.metrics import pooled
from nerforge.training.collate import EpochLengthGroupedSampler

logger = logging.getLogger(__name__)

BEST_METRIC = "f1"  # reported by entity_metrics; the Trainer sees it as eval_f1
LAYER_F1 = "f1/"  # a layered model's F1 of one layer: "f1/skill"; the Trainer sees it as eval_f1/skill
LOSS_TIE_MARGIN = 1e-3  # an equal dev F1 counts as progress when the dev loss drops by more than this fraction


def improves(metrics: Mapping[str, Any], best: Mapping[str, Any] | None, key: str, greater: bool) -> bool:
    """Whether an evaluation (``metrics``) beats the best one so far (``best``, ``None`` before the first).

    Better is a higher ``key`` (``eval_f1``; lower with ``greater=False``, for ``eval_loss``); an equal one with an
    ``eval_loss`` lower by more than :data:`LOSS_TIE_MARGIN` (relative) is better too, so that a run whose dev F1
    stays flat (0 on a tiny dev split) keeps the checkpoint that fits dev best rather than the first, while a run that
    learns nothing (the loss moves in its last digits) still stops early.
    """
    value = metrics.get(key)
    if value is None:
        return False
    if best is None or best.get(key) is None:
        return True
    old = float(best[key])
    if (value > old) if greater else (value < old):
        return True
    if value != old or key == "eval_loss":
        return False
    loss, old_loss = metrics.get("eval_loss"), best.get("eval_loss")
    return loss is not None and old_loss is not None and float(loss) < float(old_loss) * (1 - LOSS_TIE_MARGIN)


def best_record(state: Any) -> dict[str, Any] | None:
    """The evaluation record (``log_history`` entry) of the best checkpoint so far, or ``None``."""
    step = getattr(state, "best_global_step", None)
    if step is None or state.best_metric is None:
        return None
    for record in reversed(state.log_history):
        if record.get("step") == step and any(k.startswith("eval_") for k in record):
            return record
    return {"eval_f1": state.best_metric}  # resumed from a checkpoint whose log lacks the record


class DevEarlyStopping(EarlyStoppingCallback):
    """Early stopping that counts an evaluation as progress by :func:`improves` (an equal dev F1 with a lower dev
    loss is progress), so a small dev split whose F1 stays 0 for a few epochs does not stop a model still learning.
    It runs before the Trainer records the new best, so it compares with the best before this evaluation."""

    def check_metric_value(self, args: Any, state: Any, control: Any, metric_value: float) -> None:
        raise NotImplementedError  # on_evaluate below needs the whole metrics record, not one value

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict[str, float], **kwargs: Any) -> None:
        key = _metric_key(args.metric_for_best_model)
        if improves(metrics, best_record(state), key, bool(args.greater_is_better)):
            self.early_stopping_patience_counter = 0
        else:
            self.early_stopping_patience_counter += 1
        if self.early_stopping_patience_counter >= self.early_stopping_patience:
            control.should_training_stop = True


def _metric_key(name: str) -> str:
    return name if name.startswith("eval_") else f"eval_{name}"


class NerTrainer(Trainer):
    """``Trainer`` with a length-grouped train sampler seeded by (seed, epoch) when ``lengths`` are given, and the
    best checkpoint chosen by :func:`improves`."""

    def __init__(self, *args: Any, lengths: list[int] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lengths = lengths

    def _get_train_sampler(self, train_dataset: Any = None) -> torch.utils.data.Sampler | None:
        if self._lengths is None:
            return super()._get_train_sampler(train_dataset)
        batch = self.args.train_batch_size * self.args.gradient_accumulation_steps
        seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
        return EpochLengthGroupedSampler(self._lengths, batch, seed)

    def _determine_best_metric(self, metrics: dict[str, float], trial: Any) -> bool:
        # The Trainer's own rule keeps the first of equal scores; ours breaks ties by dev loss (see improves()).
        if self.args.metric_for_best_model is None:
            return False
        key = _metric_key(self.args.metric_for_best_model)
        if key not in metrics:
            return super()._determine_best_metric(metrics, trial)  # names the missing metric
        if not improves(metrics, best_record(self.state), key, bool(self.args.greater_is_better)):
            return False
        self.state.best_metric = metrics[key]
        self.state.best_global_step = self.state.global_step
        return True


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The feature flags of the first CPU in ``cpuinfo`` (Linux); empty where it cannot be read."""
    try:
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "flags":
                return frozenset(value.split())
    except OSError:
        pass
    return frozenset()


def resolve_precision(precision: str, *, cuda: bool | None = None, flags: frozenset[str] | None = None) -> str:
    """``"bf16"`` or ``"fp32"`` for the config's ``training.precision``.

    ``auto`` picks bf16 only where it is native: a CUDA device with bf16 support, or a CPU with the AVX512-BF16 or
    AMX-BF16 instructions (without them, CPU bf16 is emulated and slower than fp32). Measured by ``bench/train_step.py``
    on MiniLM-L6, 2 AMD EPYC cores with AVX512-BF16, batch 16 of 28 subwords: 299 ms per step in fp32, 184 ms in bf16
    autocast, both with fused AdamW; dev F1 figures in docs/benchmarks.md.
    """
    if precision != "auto":
        return precision
    if cuda is None:
        cuda = torch.cuda.is_available()
    if cuda:
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    flags = cpu_flags() if flags is None else flags
    return "bf16" if {"avx512_bf16", "amx_bf16"} & flags else "fp32"


def training_arguments(
    config: TrainingConfig,
    checkpoint_dir: Path,
    *,
    has_dev: bool,
    best_metric: str = BEST_METRIC,
    logging_steps: int = 10,
) -> TrainingArguments:
    """``TrainingArguments`` for ``config``, checkpointing into ``checkpoint_dir``; the train loss is logged every
    ``logging_steps`` optimizer steps (evaluations and checkpoints follow the epochs or ``eval_steps``).

    Without a dev split nothing is evaluated during training: no early stopping, the last epoch is kept. The best
    checkpoint is the one with the highest dev ``f1``, or the lowest dev ``loss`` when ``best_metric="loss"`` (a dev
    split without entities, where F1 is 0 at every epoch and would keep the first checkpoint).
    """
    by_steps = config.eval_steps is not None
    strategy = "steps" if by_steps else "epoch"
    cuda = torch.cuda.is_available()
    bf16 = resolve_precision(config.precision, cuda=cuda) == "bf16"
    logger.info("training precision: %s (training.precision = %s)", "bf16 mixed" if bf16 else "fp32", config.precision)
    return TrainingArguments(
        output_dir=str(checkpoint_dir),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps if config.max_steps is not None else -1,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.eval_batch_size or 2 * config.batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        learning_rate=config.learning_rate,
        weight_decay=config.weight_decay,
        optim="adamw_torch_fused",
        bf16=bf16,
        use_cpu=bf16 and not cuda,  # the Trainer refuses CPU bf16 unless told the run is on the CPU
        lr_scheduler_type="linear",
        warmup_steps=config.warmup_ratio,  # a float in [0, 1) is a ratio of the total steps
        max_grad_norm=config.max_grad_norm,
        seed=config.seed,
        eval_strategy=strategy if has_dev else "no",
        eval_steps=config.eval_steps,
        save_strategy=strategy,
        save_steps=config.eval_steps or 500,
        logging_strategy="steps",
        logging_steps=logging_steps,
        save_total_limit=2 if has_dev else 1,  # the best and the last; without dev, the last
        load_best_model_at_end=has_dev,
        metric_for_best_model=best_metric if has_dev else None,
        greater_is_better=(best_metric != "loss") if has_dev else None,
        restore_callback_states_from_checkpoint=True,
        report_to="none",
        disable_tqdm=False,
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
        remove_unused_columns=False,
        save_only_model=False,
    )


def entity_metrics(
    score: Callable[[], EvalResult], layers: Sequence[str] = ()
) -> Callable[[EvalPrediction], dict[str, float]]:
    """A ``compute_metrics`` for the Trainer: micro P/R/F1 (strict IOB2, whole sentences) and token accuracy of the
    model as it is at this evaluation, from ``score``: the function that also scores the kept model after training
    (the prediction engine on the dev sentences), so the dev F1 that picks a checkpoint and the one reported for it
    are computed one way. The eval loop's logits are not used (:func:`drop_logits` keeps them out of memory).
    A layered model's ``layers`` each get their pooled F1 too (``f1/NAME``: its ``NAME/type`` scores), so that a
    run shows how each layer is learning, not only their pool.
    """

    def compute(_: EvalPrediction) -> dict[str, float]:
        result = score()
        metrics = {
            "precision": result.micro.precision,
            "recall": result.micro.recall,
            BEST_METRIC: result.micro.f1,
            "token_accuracy": result.token_accuracy,
        }
        for layer in layers:
            own = {t: s for t, s in result.per_type.items() if t.startswith(f"{layer}/")}
            metrics[f"{LAYER_F1}{layer}"] = pooled(own).f1 if own else 0.0
        return metrics

    return compute


def drop_logits(logits: Any, labels: Any) -> Any:
    """``preprocess_logits_for_metrics`` for :func:`entity_metrics`: one number per window instead of its logits."""
    return labels[:, :1]
