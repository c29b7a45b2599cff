"""The work directory beside the model directory: Trainer checkpoints and what ``--resume`` needs.

Layout (``<dir>`` is ``output.dir``)::

    <dir>.work/checkpoints/checkpoint-N/   model, optimizer, scheduler, RNG states and trainer state at step N
    <dir>.work/resume.json                 the data/model/training config and the MLflow run of this run

A resumed run must have the same ``data``, ``model`` and ``training`` config; ``output`` and ``tracking`` may change.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nerforge.errors import ConfigError
from nerforge.io_utils import atomic_write_text

logger = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"
RESUME_FILE = "resume.json"
TRAINER_STATE = "trainer_state.json"  # written last into a checkpoint by the Trainer


@dataclass(frozen=True)
class ResumePoint:
    """Where a run starts: a checkpoint and an MLflow run to continue, or ``None`` for a fresh start."""

    checkpoint: Path | None
    mlflow_run_id: str | None


@dataclass(frozen=True)
class WorkDir:
    """Checkpoints and resume state of one training run."""

    path: Path

    @property
    def checkpoints(self) -> Path:
        return self.path / CHECKPOINTS

    def last_checkpoint(self) -> Path | None:
        """The newest checkpoint whose trainer state was written (one cut off mid-save is skipped)."""
        if not self.checkpoints.is_dir():
            return None
        done = [p for p in self.checkpoints.glob("checkpoint-*") if (p / TRAINER_STATE).is_file()]
        return max(done, key=lambda p: int(p.name.rsplit("-", 1)[1]), default=None)

    def prepare(self, config: dict[str, Any], *, resume: bool) -> ResumePoint:
        """Find the checkpoint to resume from (checking the config is unchanged), or clear the way for a new run.

        Raises:
            ConfigError: ``resume`` and the config differs from the interrupted run's (names the keys).
        """
        state_file = self.path / RESUME_FILE
        last = self.last_checkpoint()
        if resume and last is not None and state_file.is_file():
            saved = json.loads(state_file.read_text(encoding="utf-8"))
            changed = differences(saved.get("config", {}), config)
            if changed:
                raise ConfigError(
                    f"cannot resume from {last}: the config differs from the interrupted run's in "
                    f"{'; '.join(changed[:5])}; restore it, or run without --resume to start over"
                )
            logger.info("resuming from %s", last)
            return ResumePoint(last, saved.get("mlflow_run_id"))
        if resume:
            logger.warning("--resume: no checkpoint in %s; starting from scratch", self.checkpoints)
        elif last is not None:
            logger.warning(
                "found checkpoints of an earlier run in %s; starting over (--resume continues one)", self.path
            )
        if self.checkpoints.exists():
            shutil.rmtree(self.checkpoints)
        self.path.mkdir(parents=True, exist_ok=True)
        self._write({"config": config, "mlflow_run_id": None})
        return ResumePoint(None, None)

    def remember_run(self, run_id: str) -> None:
        """Record the MLflow run so that a resumed run continues it."""
        state = json.loads((self.path / RESUME_FILE).read_text(encoding="utf-8"))
        state["mlflow_run_id"] = run_id
        self._write(state)

    def clean(self) -> None:
        """Remove checkpoints and resume state; the folder itself only if nothing else is in it."""
        shutil.rmtree(self.checkpoints, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            (self.path / RESUME_FILE).unlink()
        with contextlib.suppress(OSError):
            self.path.rmdir()

    def _write(self, state: dict[str, Any]) -> None:
        atomic_write_text(self.path / RESUME_FILE, json.dumps(state, indent=2) + "\n")


def differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    """``key (old -> new)`` for every leaf that differs between two nested dicts."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new)):
            out += differences(old.get(key), new.get(key), f"{prefix}{key}.")
        return out
    return [] if old == new else [f"{prefix.rstrip('.')} ({old!r} -> {new!r})"]
