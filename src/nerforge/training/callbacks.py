"""Trainer callbacks: a progress bar with one readable line per epoch, the per-epoch table, a fault-injection hook.

The per-epoch table is rebuilt from ``TrainerState.log_history``, which checkpoints carry, so it is complete after
a resumed run too.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_callback import ProgressCallback

logger = logging.getLogger(__name__)

# Fault injection for tests of --resume: hard-exit (no cleanup at all, like SIGKILL) once this optimizer step ends.
CRASH_ENV = "NERFORGE_TEST_CRASH_AFTER_STEP"
CRASH_EXIT_CODE = 137

EPOCH_KEYS = ("epoch", "step", "train_loss", "eval_loss", "eval_precision", "eval_recall", "eval_f1", "learning_rate")


def epoch_table(log_history: Iterable[Mapping[str, Any]]) -> list[dict[str, float | None]]:
    """One row per evaluation (or per logged train loss without dev): ``epoch, step, train_loss, eval_*``.

    A train-loss record and the evaluation at the same step become one row. The final summary record of
    ``Trainer.train`` (``train_runtime``, ...) is skipped.
    """
    rows: dict[int, dict[str, float | None]] = {}
    for record in log_history:
        if "train_runtime" in record or "step" not in record:
            continue
        row = rows.setdefault(int(record["step"]), dict.fromkeys(EPOCH_KEYS))
        row["step"] = int(record["step"])
        if record.get("epoch") is not None:
            row["epoch"] = round(float(record["epoch"]), 4)
        if "loss" in record:
            row["train_loss"] = float(record["loss"])
            row["learning_rate"] = record.get("learning_rate")
        for key in ("eval_loss", "eval_precision", "eval_recall", "eval_f1"):
            if key in record:
                row[key] = float(record[key])
    return [rows[step] for step in sorted(rows)]


class EpochProgressCallback(ProgressCallback):
    """transformers' tqdm bars, but logs become one line per evaluation instead of raw dicts."""

    def __init__(self, total_epochs: float | None = None) -> None:
        super().__init__()
        self._train_loss: float | None = None
        self._total = total_epochs

    def on_log(self, args: Any, state: Any, control: Any, logs: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        if not logs or not state.is_world_process_zero:
            return
        if "loss" in logs:
            self._train_loss = float(logs["loss"])
            if args.eval_strategy == "no":
                self._write(self._line(state, logs))
        elif "eval_f1" in logs:
            self._write(self._line(state, logs))

    def _line(self, state: Any, logs: Mapping[str, Any]) -> str:
        total = f"/{self._total:g}" if self._total else ""
        parts = [f"epoch {state.epoch:.2f}{total}"]
        if self._train_loss is not None:
            parts.append(f"train loss {self._train_loss:.4f}")
        if "eval_f1" in logs:
            parts.append(
                f"dev loss {logs.get('eval_loss', float('nan')):.4f}, dev P {logs.get('eval_precision', 0):.4f} "
                f"R {logs.get('eval_recall', 0):.4f} F1 {logs['eval_f1']:.4f} (strict IOB2)"
            )
        return ", ".join(parts)

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
