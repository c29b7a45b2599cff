"""Trainer callbacks: a progress bar with one readable line per epoch, the per-epoch table, a fault-injection hook.

The per-epoch table is rebuilt from ``TrainerState.log_history``, which checkpoints carry, so it is complete after
a resumed run too.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Mapping
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_callback import ProgressCallback

logger = logging.getLogger(__name__)

# Fault injection for tests of --resume: hard-exit (no cleanup at all, like SIGKILL) once this optimizer step ends.
CRASH_ENV = "NERFORGE_TEST_CRASH_AFTER_STEP"
CRASH_EXIT_CODE = 137

EPOCH_KEYS = (
    "epoch", "step", "train_loss", "eval_loss", "eval_precision", "eval_recall", "eval_f1", "eval_token_accuracy",
    "learning_rate",
)  # fmt: skip
EVAL_KEYS = ("eval_loss", "eval_precision", "eval_recall", "eval_f1", "eval_token_accuracy")
LAYER_F1_KEY = "eval_f1/"  # a layered model's dev F1 of one layer (nerforge.training.trainer.LAYER_F1)


def _records(log_history: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    # the final summary record of Trainer.train (train_runtime, ...) is not a log of the run's progress
    return [r for r in log_history if "train_runtime" not in r and "step" in r]


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def epoch_table(log_history: Iterable[Mapping[str, Any]]) -> list[dict[str, float | None]]:
    """One row per evaluation (per epoch, or per ``eval_steps``), or per epoch without dev: ``epoch, step``, the
    mean train loss since the row before, the dev loss, precision, recall, F1 and token accuracy, the last learning
    rate. The train loss is logged many times an epoch (:func:`loss_curve`); a row averages those of its span.
    """
    records = _records(log_history)
    losses = [r for r in records if "loss" in r]
    evals = [r for r in records if any(k in r for k in EVAL_KEYS)]
    rows: list[dict[str, float | None]] = []
    if evals:
        spans = []
        previous = 0
        for record in evals:
            step = int(record["step"])
            spans.append((record, [r for r in losses if previous < int(r["step"]) <= step]))
            previous = step
    else:  # no dev: one row per epoch, from the losses logged in it
        by_epoch: dict[int, list[Mapping[str, Any]]] = {}
        for r in losses:
            by_epoch.setdefault(max(1, math.ceil(float(r.get("epoch") or 0) - 1e-6)), []).append(r)
        spans = [(group[-1], group) for _, group in sorted(by_epoch.items())]
    for record, span in spans:
        row: dict[str, float | None] = dict.fromkeys(EPOCH_KEYS)
        row["step"] = int(record["step"])
        if record.get("epoch") is not None:
            row["epoch"] = round(float(record["epoch"]), 4)
        row["train_loss"] = _mean([float(r["loss"]) for r in span])
        row["learning_rate"] = span[-1].get("learning_rate") if span else None
        for key in EVAL_KEYS:
            if key in record:
                row[key] = float(record[key])
        for key in sorted(k for k in record if k.startswith(LAYER_F1_KEY)):  # a layered model's F1 of each layer
            row[key] = float(record[key])
        rows.append(row)
    return rows


def loss_curve(log_history: Iterable[Mapping[str, Any]]) -> list[dict[str, float]]:
    """Every logged train loss: ``step``, ``epoch``, ``loss`` (the mean since the log before), ``learning_rate``."""
    return [
        {
            "step": int(r["step"]),
            "epoch": round(float(r.get("epoch") or 0), 4),
            "loss": float(r["loss"]),
            **({"learning_rate": float(r["learning_rate"])} if r.get("learning_rate") is not None else {}),
        }
        for r in _records(log_history)
        if "loss" in r
    ]


def epoch_line(row: Mapping[str, Any], total: float | None = None) -> str:
    """One epoch (or evaluation) as a log line: ``epoch 2/10: train loss 0.41, dev loss 0.38, P .. R .. F1 ..``."""
    of = f"/{total:g}" if total else ""
    epoch = row.get("epoch")
    parts = [f"epoch {epoch:g}{of}" if epoch is not None else f"step {row.get('step')}"]
    if row.get("train_loss") is not None:
        parts.append(f"train loss {row['train_loss']:.4f}")
    if row.get("eval_loss") is not None:
        parts.append(f"dev loss {row['eval_loss']:.4f}")
    if row.get("eval_f1") is not None:
        parts.append(
            f"dev P {row.get('eval_precision') or 0:.4f} R {row.get('eval_recall') or 0:.4f} "
            f"F1 {row['eval_f1']:.4f} (strict IOB2)"
        )
        layers = [(k[len(LAYER_F1_KEY) :], v) for k, v in row.items() if k.startswith(LAYER_F1_KEY) and v is not None]
        if layers:
            parts[-1] += "; by layer: " + ", ".join(f"{name} F1 {f1:.4f}" for name, f1 in layers)
    if row.get("eval_token_accuracy") is not None:
        parts.append(f"token accuracy {row['eval_token_accuracy']:.4f}")
    return parts[0] + (": " + ", ".join(parts[1:]) if len(parts) > 1 else "")


class EpochProgressCallback(ProgressCallback):
    """transformers' tqdm bars, but logs become one line per evaluation (or per epoch without dev) instead of raw
    dicts; ``progress=False`` keeps the lines and drops the bars."""

    def __init__(self, total_epochs: float | None = None, *, progress: bool = True) -> None:
        super().__init__()
        self._losses: list[float] = []
        self._total = total_epochs
        self._progress = progress

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._progress:
            super().on_train_begin(args, state, control, **kwargs)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._progress:
            super().on_step_end(args, state, control, **kwargs)

    def on_prediction_step(
        self, args: Any, state: Any, control: Any, eval_dataloader: Any = None, **kwargs: Any
    ) -> None:
        if self._progress:
            super().on_prediction_step(args, state, control, eval_dataloader=eval_dataloader, **kwargs)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._progress and getattr(self, "training_bar", None) is not None:
            super().on_train_end(args, state, control, **kwargs)

    def on_log(self, args: Any, state: Any, control: Any, logs: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        if not logs or not state.is_world_process_zero:
            return
        if "loss" in logs:
            self._losses.append(float(logs["loss"]))
        if "eval_f1" in logs or "eval_loss" in logs:
            row = {
                "epoch": round(float(state.epoch or 0), 2),
                "step": state.global_step,
                "train_loss": _mean(self._losses),
                **logs,
            }
            self._losses = []
            self._write(epoch_line(row, self._total))

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if args.eval_strategy == "no" and state.is_world_process_zero and self._losses:
            row = {"epoch": round(float(state.epoch or 0), 2), "train_loss": _mean(self._losses)}
            self._losses = []
            self._write(epoch_line(row, self._total))

    def _write(self, line: str) -> None:
        logger.info("%s", line)


class CrashAfterStepCallback(TrainerCallback):
    """Exit the process at once (``os._exit``) after optimizer step ``step``: a test stand-in for a kill."""

    def __init__(self, step: int) -> None:
        self.step = step

    @classmethod
    def from_env(cls) -> CrashAfterStepCallback | None:
        value = os.environ.get(CRASH_ENV)
        return cls(int(value)) if value else None

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step == self.step:
            logger.warning("%s=%d: exiting now", CRASH_ENV, self.step)
            logging.shutdown()
            os._exit(CRASH_EXIT_CODE)
