"""The work directory beside the model directory: Trainer checkpoints and what ``--resume`` needs.

Layout (``<dir>`` is ``output.dir``)::

    <dir>.work/checkpoints/checkpoint-N/   model, optimizer, scheduler, RNG states and trainer state at step N
    <dir>.work/resume.json                 the data/model/training config, the data fingerprint, the MLflow run

A resumed run must have the same ``data``, ``model`` and ``training`` config and the same data files (same SHA-256
of their bytes); ``output`` and ``tracking`` may change.
"""

from __future__ import annotations

import contextlib
import hashlib
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

    def remove_incomplete(self) -> list[str]:
        """Delete the checkpoints cut off mid-save (no trainer state: a full disk, a kill); their names."""
        if not self.checkpoints.is_dir():
            return []
        cut = [p for p in self.checkpoints.glob("checkpoint-*") if p.is_dir() and not (p / TRAINER_STATE).is_file()]
        for p in cut:
            shutil.rmtree(p, ignore_errors=True)
        return sorted(p.name for p in cut)

    def prepare(
        self, config: dict[str, Any], *, resume: bool, fingerprint: dict[str, str] | None = None
    ) -> ResumePoint:
        """Find the checkpoint to resume from (checking the config and the data are unchanged), or clear the way for
        a new run.

        Args:
            config: the sections of the config that must match to resume.
            resume: continue the interrupted run if there is one.
            fingerprint: the data files' digests (:func:`fingerprint_files`), which must match too.

        Raises:
            ConfigError: ``resume`` and the config or the data differ from the interrupted run's (says what).
        """
        state_file = self.path / RESUME_FILE
        last = self.last_checkpoint()
        fingerprint = fingerprint or {}
        if resume and last is not None and state_file.is_file():
            try:
                saved = json.loads(state_file.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise ConfigError(f"cannot resume: {state_file} is unreadable ({exc}); run without --resume") from None
            changed = differences(saved.get("config", {}), config)
            if changed:
                raise ConfigError(
                    f"cannot resume from {last}: the config differs from the interrupted run's in "
                    f"{'; '.join(changed[:5])}; restore it, or run without --resume to start over"
                )
            changed_data = data_changes(saved.get("data_fingerprint", {}), fingerprint)
            if changed_data:
                raise ConfigError(
                    f"cannot resume from {last}: the data changed since the interrupted run: "
                    f"{'; '.join(changed_data[:5])}; restore it, or run without --resume to start over"
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
        self._write({"config": config, "data_fingerprint": fingerprint, "mlflow_run_id": None})
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


def fingerprint_files(paths: dict[str, list[Path]]) -> dict[str, str]:
    """``"split: path" -> sha256`` of every data file (e.g. ``{"train": [a, b], "dev": [c]}``)."""
    out: dict[str, str] = {}
    for split, files in paths.items():
        for path in files:
            digest = hashlib.sha256()
            members = sorted(p for p in Path(path).rglob("*") if p.is_file()) if Path(path).is_dir() else [Path(path)]
            try:
                for member in members:  # a dataset folder (Parquet shards, save_to_disk): every file, names included
                    digest.update(str(member.relative_to(path) if member != Path(path) else "").encode())
                    with open(member, "rb") as fh:
                        for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                            digest.update(block)
            except OSError:
                continue  # the reader reports an unreadable file with its own message
            out[f"{split}: {path}"] = digest.hexdigest()
    return out


def data_changes(old: dict[str, str], new: dict[str, str]) -> list[str]:
    """What differs between two fingerprints, in words."""
    out = []
    for key in sorted(set(old) | set(new)):
        if key not in new:
            out.append(f"{key} is no longer used")
        elif key not in old:
            out.append(f"{key} was not used before")
        elif old[key] != new[key]:
            out.append(f"{key} has changed (SHA-256 {old[key][:12]} -> {new[key][:12]})")
    return out
