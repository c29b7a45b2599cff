"""Opening a training run's MLflow tracker, with the run's parameters (the config and what was derived from the
data)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nerforge.tags import tag_type
from nerforge.training.distributed import DistributedContext
from nerforge.training.stages import Prepared
from nerforge.training.workdir import ResumePoint, WorkDir


def start_run_tracker(
    prepared: Prepared, start: ResumePoint, work: WorkDir, dist: DistributedContext, output: Path
) -> Any:
    """The run's MLflow tracker (``None`` when tracking is off or on another process than the main one): a new run
    with the config and derived counts as parameters, nested under ``tracking.parent_run_id`` when set (a ``nerforge
    tune`` trial), or the run of the checkpoint being resumed."""
    config = prepared.config
    if not (config.tracking.enabled and dist.is_main):
        return None
    from nerforge.training.tracking import MlflowTracker

    tags = {"nerforge.output": str(output)}
    if config.tracking.parent_run_id:  # a nerforge tune trial: nested under the study's run
        tags["mlflow.parentRunId"] = config.tracking.parent_run_id
    tracker = MlflowTracker.start(config.tracking, run_id=start.mlflow_run_id, tags=tags)
    if start.mlflow_run_id is None:
        work.remember_run(tracker.run_id)
        tracker.log_params({**run_params(prepared), "distributed": dist.params()})
    return tracker


def run_params(prepared: Prepared) -> dict[str, Any]:
    params: dict[str, Any] = prepared.config.model_dump(mode="json")
    tags, features = prepared.tags, prepared.features
    params["derived"] = {
        "num_tags": len(tags),
        "types": ",".join(sorted({tag_type(t) for t in tags if t != "O"})),
        "max_length": prepared.max_length,
        **{f"{name}_sentences": f.stats.examples for name, f in features.items()},
        **{f"{name}_windows": f.windows for name, f in features.items()},
    }
    return params
