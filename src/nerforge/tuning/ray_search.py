"""``nerforge tune --address ADDR``: the trials on a Ray cluster through Ray Tune, with the outputs of a local study.

Ray Tune runs the search: its Optuna searcher (TPE, seeded, the defaults as the first point, the same search space
drawn by the same code as a local study) proposes trials, its ASHA scheduler stops the trials whose dev F1 at an
evaluation is below the better third of the trials that reached it, and ``time_budget_s`` ends the experiment. Each
trial is ``nerforge train`` in a Ray worker with ``cpus_per_trial`` CPUs (``training.num_threads``), reporting the
dev F1 of every evaluation (:func:`ray.tune.report`) and stopping itself at the budget's end, as a local trial does.

Nothing of the distribution is nerforge's own. When the experiment ends, every Ray trial is written into
``OUT/study.db`` as an Optuna trial (settings, dev F1 per evaluation, state, seconds, model directory, the node it ran
on), so the leaderboard, the plots, ``best.toml``, ``model/`` and the test score at the end come from the code a
local study uses (:func:`nerforge.tuning.study.finish`).

Every node must see ``OUT`` and the data at the same paths (one machine, or a shared file system): trials write their
model directories under ``OUT/trials/`` and read the data files the config names.
"""

from __future__ import annotations

import datetime
import logging
import re
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nerforge.errors import UsageError
from nerforge.tuning.space import Domain, trial_keys
from nerforge.tuning.study import FIRST_PRUNABLE_EVALUATION, defaults_point, make_sampler, trial_config

logger = logging.getLogger("nerforge.tuning.study")

METRIC = "dev_f1"


def _report_callback(deadline: float) -> Any:
    """A ``transformers`` callback that reports each dev evaluation's F1 to Ray Tune and stops the training at the
    budget's end (``deadline``: ``time.time()``, one clock for every node)."""
    from ray import tune
    from transformers import TrainerCallback

    class Report(TrainerCallback):  # type: ignore[misc]
        def on_evaluate(self, args: Any, state: Any, control: Any, metrics: Mapping[str, Any] | None = None,
                        **kwargs: Any) -> None:  # fmt: skip
            f1 = (metrics or {}).get("eval_f1")
            if f1 is not None:
                tune.report({METRIC: float(f1), "complete": 0})
            if time.time() > deadline:
                control.should_training_stop = True

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if time.time() > deadline:
                control.should_training_stop = True

    return Report()


def _trial(settings: dict[str, Any], *, values: dict[str, Any], output: str, deadline: float) -> None:
    """One trial in a Ray worker: ``nerforge train`` with the drawn ``settings``, its model in
    ``OUT/trials/ray-<trial id>``; the last report says where the model is and that it is complete."""
    import ray
    from ray import tune

    from nerforge.training import train

    context = tune.get_context()
    directory = Path(output) / "trials" / f"ray-{context.get_trial_id()}"
    started = time.time()
    config = trial_config(values, trial_keys(settings), directory, Path(output).name)
    result = train(config, progress=False, callbacks=[_report_callback(deadline)])
    dev = getattr(result, "dev", None)
    stopped = time.time() > deadline
    tune.report({METRIC: float(dev.micro.f1) if dev is not None else 0.0, "complete": 0 if stopped else 1,
                 "dir": str(directory), "seconds": round(time.time() - started, 1),
                 "node": ray.get_runtime_context().get_node_id()})  # fmt: skip


def asha() -> Any:
    """Ray Tune's ASHA scheduler on the trials' dev evaluations, its first rung at the first evaluation the local
    pruner may prune at (:data:`FIRST_PRUNABLE_EVALUATION`): rungs at evaluations 2, 6, 18, ..."""
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(time_attr="training_iteration", grace_period=FIRST_PRUNABLE_EVALUATION, reduction_factor=3,
                         max_t=1000)  # fmt: skip


def run_on_ray(
    address: str,
    values: dict[str, Any],
    space: Mapping[str, Domain],
    output: Path,
    *,
    budget_s: float,
    seed: int,
    cpus_per_trial: int | None = None,
) -> None:
    """Run the study's trials on the Ray cluster at ``address`` within ``budget_s`` and write them into
    ``OUT/study.db`` (see the module docstring).

    Raises:
        UsageError: the cluster cannot be reached or joined (one line).
        MissingDependencyError: Ray or Optuna is not installed.
    """
    import functools
    import os

    # no console table of Ray Tune's own: the trials' progress lines are nerforge's
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    logging.getLogger("ray.tune").setLevel(logging.ERROR)  # e.g. "TensorboardX is not installed", each run
    import ray
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch

    from nerforge.cluster import join_cluster
    from nerforge.tuning.study import load_optuna

    optuna = load_optuna()
    join_cluster(address, log_to_driver=False)  # the trials' training logs stay in the cluster's log files
    try:
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        biggest = max((int(n.get("Resources", {}).get("CPU", 0)) for n in nodes), default=1)
        if cpus_per_trial is None:
            cpus_per_trial = max(1, min(2, biggest))
        elif cpus_per_trial > biggest:
            raise UsageError(
                f"--cpus-per-trial {cpus_per_trial}: no node of the cluster at {address} has that many "
                f"CPUs (the largest has {biggest})"
            )
        logger.info("Ray Tune on %d node(s), %g CPUs; %d CPU(s) per trial", len(nodes),
                    sum(n.get("Resources", {}).get("CPU", 0) for n in nodes), cpus_per_trial)  # fmt: skip
        deadline = time.time() + budget_s
        values = {**values, "training": {**values["training"], "num_threads": cpus_per_trial}}

        first = defaults_point(space) or {}  # the defaults first, as in a local study
        searcher = OptunaSearch(space=_Draw(dict(space)), metric=METRIC, mode="max",
                                sampler=make_sampler(optuna, seed),
                                points_to_evaluate=[first] if first else None)  # fmt: skip
        scheduler = asha()
        trainable = tune.with_resources(
            functools.partial(_trial, values=values, output=str(output), deadline=deadline), {"cpu": cpus_per_trial}
        )
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(search_alg=searcher, scheduler=scheduler, num_samples=-1,
                                        time_budget_s=budget_s, metric=METRIC, mode="max",
                                        reuse_actors=True),  # a worker imports torch once, not once per trial
            run_config=tune.RunConfig(name="ray", storage_path=str(output / "ray"), verbose=0),
        )  # fmt: skip
        grid = tuner.fit()
        _record(grid, space, output, seed, optuna, first)
    finally:
        ray.shutdown()


class _Draw:
    """The searcher's define-by-run space: each setting drawn by :meth:`Domain.draw` (as a local study draws it), the
    fixed ones returned as constants. A class, not a closure: Ray pickles the searcher."""

    def __init__(self, space: dict[str, Domain]) -> None:
        self.space = space

    def __call__(self, trial: Any) -> dict[str, Any]:
        drawn = {name: domain.draw(trial) for name, domain in self.space.items()}
        return {name: value for name, value in drawn.items() if self.space[name].fixed}


def _record(
    grid: Any, space: Mapping[str, Domain], output: Path, seed: int, optuna: Any, first: Mapping[str, Any]
) -> None:
    """Every Ray trial as a finished Optuna trial of ``OUT/study.db``: complete (the training ended by itself),
    pruned (ASHA or the budget stopped it) or failed."""
    from nerforge.tuning.study import STUDY_FILE, open_study

    study = open_study(optuna, output / STUDY_FILE, seed, load=False)
    state = optuna.trial.TrialState

    def is_defaults(result: Any) -> bool:
        config = result.config or {}
        return bool(first) and all(config.get(k) == v for k, v in first.items())

    # the defaults first (trial 0, as in a local study), then in the order the trials started
    results = sorted(grid, key=lambda r: (not is_defaults(r), _started(r) or datetime.datetime.max))
    for result in results:
        metrics = result.metrics or {}
        if not result.config:  # proposed, but the budget ended before it started
            continue
        history = result.metrics_dataframe
        steps = [] if history is None or METRIC not in history else \
            [float(v) for v, done in zip(history[METRIC], history.get("complete", [0] * len(history)), strict=False)
             if not done]  # fmt: skip
        settings = {k: v for k, v in (result.config or {}).items() if k in space}
        drawn = {k: v for k, v in settings.items() if not space[k].fixed}
        if result.error is not None:
            kind, value, stopped = state.FAIL, None, f"failed: {str(result.error).splitlines()[0]}"[:300]
        elif metrics.get("complete"):
            kind, value, stopped = state.COMPLETE, float(metrics[METRIC]), ""
        else:
            kind, value = state.PRUNED, None
            stopped = f"stopped by ASHA or the budget after evaluation {len(steps)}"
        begun = _started(result) or datetime.datetime.now()
        seconds = float(metrics.get("seconds") or metrics.get("time_total_s") or 0.0)
        attrs = {"values": settings, "seed": seed, "seconds": round(seconds, 1), "stopped": stopped,
                 "ray_trial": getattr(result, "path", "")}  # fmt: skip
        if kind == state.COMPLETE:
            attrs.update(dir=metrics.get("dir"), node=metrics.get("node"))
        else:  # what a stopped trial left (its work folder) goes, as in a local study
            found = re.search(r"_trial_([0-9a-f]+)_", Path(str(getattr(result, "path", ""))).name)
            if found:
                for leftover in (output / "trials").glob(f"ray-{found.group(1)}*"):
                    shutil.rmtree(leftover, ignore_errors=True)
        study.add_trial(optuna.trial.FrozenTrial(
            number=0, trial_id=0, state=kind, value=value, datetime_start=begun,
            datetime_complete=begun + datetime.timedelta(seconds=seconds), params=drawn,
            distributions={k: space[k].distribution() for k in drawn}, user_attrs=attrs, system_attrs={},
            intermediate_values=dict(enumerate(steps, start=1)),
        ))  # fmt: skip


def _started(result: Any) -> datetime.datetime | None:
    metrics = result.metrics or {}
    stamp = metrics.get("timestamp")
    total = metrics.get("time_total_s")
    if stamp is None or total is None:
        return None
    return datetime.datetime.fromtimestamp(float(stamp) - float(total))
