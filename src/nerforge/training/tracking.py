"""Experiment tracking in MLflow, through the ``MlflowClient`` API (transformers' own MLflow integration is off).

By default a run goes to an embedded store: the SQLite file ``mlflow.db`` in the working directory, with artifacts
in ``mlartifacts/`` beside it. Browse it with::

    mlflow ui --backend-store-uri sqlite:///mlflow.db

For a tracking server, set ``tracking.uri`` (or ``--tracking-uri``) to its address, e.g. ``http://mlflow:5000``.
``--no-tracking`` (``tracking.enabled = false``) skips MLflow entirely; it is not even imported.

What a run holds: the resolved config as params (``training.learning_rate``, ...) plus label and window counts;
per-epoch metrics ``train_loss``, ``dev_loss``, ``dev_precision``, ``dev_recall``, ``dev_f1`` (step = epoch, or
optimizer step with ``training.eval_steps``); ``test_*`` metrics; and as artifacts the model card, ``nerforge.json``,
``epochs.json``, ``config.resolved.yaml`` and the evaluation report with its plots (under ``eval/``). A run
resumed with ``--resume`` continues the same MLflow run.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from nerforge.config import TrackingConfig
from nerforge.errors import ConfigError
from nerforge.model_dir import CARD_FILE, EPOCHS_FILE, EVAL_DIR, LOSSES_FILE, META_FILE, RESOLVED_CONFIG_FILE
from nerforge.training.output import TrainResult

logger = logging.getLogger(__name__)

ARTIFACTS_DIR = "mlartifacts"
_MAX_PARAM = 500


def resolve_uri(uri: str) -> str:
    """Make a relative ``sqlite:///file.db`` absolute (relative to the working directory)."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        return prefix + str((Path.cwd() / uri[len(prefix) :]).resolve())
    return uri


def store_location(uri: str) -> str:
    """Where a run's data went, for the end-of-run line: the absolute store URI, with the artifact folder of a SQLite
    store."""
    resolved = resolve_uri(uri)
    artifacts = _artifact_location(resolved)
    return f"{resolved} (artifacts in {Path(artifacts[len('file://') :])})" if artifacts else resolved


def _artifact_location(uri: str) -> str | None:
    """Local artifacts beside a SQLite store; a server decides for itself."""
    prefix = "sqlite:///"
    if uri.startswith(prefix):
        return (Path(uri[len(prefix) :]).parent / ARTIFACTS_DIR).as_uri()
    return None


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"training": {"seed": 1}}`` -> ``{"training.seed": "1"}`` (values as strings, cut to a safe length)."""
    out: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value and name != "data.label_map":
            out.update(flatten(value, name + "."))
        else:
            out[name] = str(value)[:_MAX_PARAM]
    return out


def metric_name(name: str) -> str:
    """A metric name MLflow accepts (letters, digits, ``_ - . / space``)."""
    return re.sub(r"[^\w\-./ ]", "_", name)


def default_run_name(output: str | None) -> str:
    """``<model folder>-<date>-<time>-<4 hex>``: unique per run and readable. MLflow's own generator draws from
    Python's ``random``, which the training seed fixes, so it named every run of a config alike."""
    stem = Path(output).name if output else "run"
    return f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


class MlflowTracker:
    """One MLflow run, created or reopened; every call after setup only warns on failure."""

    def __init__(self, client: Any, run_id: str, uri: str) -> None:
        self.client = client
        self.run_id = run_id
        self.uri = uri
        self._warned = False

    @classmethod
    def start(
        cls, config: TrackingConfig, *, run_id: str | None = None, tags: Mapping[str, str] | None = None
    ) -> MlflowTracker:
        """Open the store and create a run (or reopen ``run_id`` to continue it).

        Raises:
            ConfigError: the store cannot be opened; says how to skip tracking.
        """
        uri = resolve_uri(config.uri)
        try:
            from mlflow import MlflowClient

            if not logging.getLogger("nerforge").isEnabledFor(logging.DEBUG):  # mlflow sets its loggers on import
                for chatty in ("mlflow.store.db.utils", "alembic"):  # "Creating initial MLflow database tables..."
                    logging.getLogger(chatty).setLevel(logging.WARNING)
            client = MlflowClient(tracking_uri=uri)
            if run_id is not None:
                client.get_run(run_id)
                client.update_run(run_id, status="RUNNING")
                logger.info("MLflow: continuing run %s in %s", run_id, uri)
                return cls(client, run_id, uri)
            experiment = client.get_experiment_by_name(config.experiment)
            if experiment is not None:
                experiment_id = experiment.experiment_id
            else:
                experiment_id = client.create_experiment(config.experiment, artifact_location=_artifact_location(uri))
            name = config.run_name or default_run_name((tags or {}).get("nerforge.output"))
            run = client.create_run(experiment_id, tags=dict(tags or {}), run_name=name)
        except Exception as exc:  # mlflow raises many kinds (MlflowException, OSError, SQLAlchemy, HTTP)
            raise ConfigError(
                f"tracking: cannot open MLflow store {uri}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}; "
                "fix tracking.uri (--tracking-uri) or pass --no-tracking"
            ) from None
        logger.info("MLflow: run '%s' (%s) in experiment '%s' at %s", name, run.info.run_id, config.experiment, uri)
        return cls(client, run.info.run_id, uri)

    def _safely(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> None:
        try:
            fn(*args, **kwargs)
        except Exception as exc:  # tracking must not kill a long training run
            if not self._warned:
                logger.warning("MLflow: could not %s (%s); training goes on", what, exc)
                self._warned = True

    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, v) for k, v in flatten(params).items()]
        for i in range(0, len(items), 100):
            self._safely("log params", self.client.log_batch, self.run_id, params=items[i : i + 100])

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(metric_name(k), float(v), now, step) for k, v in metrics.items() if v is not None]
        if items:
            self._safely("log metrics", self.client.log_batch, self.run_id, metrics=items)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        path = Path(path)
        if path.is_dir():
            self._safely("log artifacts", self.client.log_artifacts, self.run_id, str(path), artifact_path)
        elif path.is_file():
            self._safely("log an artifact", self.client.log_artifact, self.run_id, str(path), artifact_path)

    def end(self, status: str = "FINISHED") -> None:
        self._safely("end the run", self.client.set_terminated, self.run_id, status)


class MlflowCallback(TrainerCallback):
    """Send the Trainer's logs to MLflow on one axis, the optimizer step: ``train_loss`` and ``learning_rate`` each
    time they are logged (about 25 times an epoch), ``dev_*`` and ``epoch`` at each evaluation."""

    def __init__(self, tracker: MlflowTracker) -> None:
        self.tracker = tracker

    def on_log(self, args: Any, state: Any, control: Any, logs: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        if not logs or "train_runtime" in logs or not state.is_world_process_zero:
            return
        metrics: dict[str, float] = {}
        if "loss" in logs:
            metrics["train_loss"] = logs["loss"]
            if "learning_rate" in logs:
                metrics["learning_rate"] = logs["learning_rate"]
        for key, value in logs.items():
            if (
                key.startswith("eval_")
                and isinstance(value, (int, float))
                and not key.endswith(("_runtime", "_per_second"))
            ):
                metrics["dev_" + key[len("eval_") :]] = value
        if any(k.startswith("dev_") for k in metrics) and state.epoch is not None:
            metrics["epoch"] = float(state.epoch)
        self.tracker.log_metrics(metrics, state.global_step)


def log_results(tracker: MlflowTracker, result: TrainResult) -> None:
    """Final dev/test scores and the model directory's small files (card, metadata, report) as artifacts."""
    final: dict[str, float] = {}
    for split, scores in (("dev", result.dev), ("test", result.test)):
        if scores is None:
            continue
        m = scores.micro
        final.update({f"{split}_precision": m.precision, f"{split}_recall": m.recall, f"{split}_f1": m.f1})
        final.update({f"{split}_f1_{name}": s.f1 for name, s in scores.per_type.items()})
    tracker.log_metrics({f"final_{k}" if k.startswith("dev") else k: v for k, v in final.items()}, result.global_step)
    for name in (CARD_FILE, META_FILE, EPOCHS_FILE, LOSSES_FILE, RESOLVED_CONFIG_FILE):
        tracker.log_artifact(result.output_dir / name)
    if (result.output_dir / EVAL_DIR).is_dir():
        tracker.log_artifact(result.output_dir / EVAL_DIR, EVAL_DIR)
    tracker.end("FINISHED")
