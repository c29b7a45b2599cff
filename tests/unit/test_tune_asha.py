"""``nerforge tune --address``: Ray Tune's ASHA scheduler spares a trial's first evaluation, as the local pruner
does (``FIRST_PRUNABLE_EVALUATION``), and stops a hopeless trial at the next rung."""

from __future__ import annotations

import types

import pytest

pytest.importorskip("ray.tune", reason="Ray is not installed: pip install 'nerforge[ray]'")


def test_asha_spares_the_first_evaluation_and_stops_a_hopeless_trial_at_the_second() -> None:
    from ray.tune.schedulers import TrialScheduler

    from nerforge.tuning.ray_search import METRIC, asha

    scheduler = asha()
    scheduler.set_search_properties(METRIC, "max")
    good, bad = types.SimpleNamespace(trial_id="good"), types.SimpleNamespace(trial_id="bad")
    for trial in (good, bad):
        scheduler.on_trial_add(None, trial)

    def report(trial: types.SimpleNamespace, evaluation: int, f1: float) -> str:
        return scheduler.on_trial_result(None, trial, {"training_iteration": evaluation, METRIC: f1})

    assert report(good, 1, 0.9) == TrialScheduler.CONTINUE
    assert report(bad, 1, 0.0) == TrialScheduler.CONTINUE  # the first evaluation: too early to judge
    assert report(good, 2, 0.95) == TrialScheduler.CONTINUE
    assert report(bad, 2, 0.0) == TrialScheduler.STOP
