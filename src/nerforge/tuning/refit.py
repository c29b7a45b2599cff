"""The final training of ``nerforge tune --refit-on-dev``: the best trial's settings trained again on train+dev for
its best epoch count, and how much of the budget the search leaves for it."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

# --refit-on-dev: the search leaves this many times the refit's expected time (refit_seconds) for the final training.
# Measured with the estimate as it is (setup + loop x share + two evaluations), 2026-12-05, bench/tune.py's 20-minute
# studies two at a time on 2 cores: the refit and the two test scores took 84 %, 82 %, 74 % and 73 % of it (CoNLL-2003,
# NCBI-disease, tech_terms, SkillSpan; the share then counted sentences), and 92 % for a SkillSpan refit alone on the
# machine; the older estimate (the trial's whole time less its evaluations) 98-101 % on CoNLL/NCBI. 1.1 left 13-18 %
# of the budget unused on the two slowest; 1.0 keeps the worst measured case inside the budget.
REFIT_RESERVE = 1.0


def refit_values(trial_dir: Path, epochs: int, final: Path) -> dict[str, Any]:
    """The config values (``config.resolved.yaml`` of ``trial_dir``) that train the trial's settings again on
    train+dev for ``epochs`` epochs into ``final``: the dev split joins train after reading, carving and sampling
    (``data.dev_in_train``), so the refit sees the trials' very sentences, no others."""
    import yaml

    resolved = yaml.safe_load((trial_dir / "config.resolved.yaml").read_text(encoding="utf-8"))
    resolved["data"] = {**resolved["data"], "dev_in_train": True}
    resolved["training"] = {**resolved["training"], "epochs": epochs}
    resolved["output"] = {**resolved["output"], "dir": str(final), "work_dir": None}
    return resolved


def best_epoch(directory: Path) -> int:
    """The epoch whose dev F1 was the best in a trained model directory (``epochs.json``), at least 1."""
    try:
        return _best_epoch(json.loads((directory / "epochs.json").read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return 1


def _best_epoch(rows: list[dict[str, Any]]) -> int:
    best = max((r for r in rows if r.get("eval_f1") is not None), key=lambda r: r["eval_f1"])
    return max(1, math.ceil(float(best["epoch"])))


def refit_seconds(study: Any, optuna: Any) -> float:
    """What ``--refit-on-dev`` is expected to cost, 0 before any complete trial: the best complete trial so far (the
    one it would train again) gives it.

    Where the trial timed its parts (:func:`~nerforge.tuning.study.report_callback`): its setup, plus its training
    loop times :func:`refit_share`, plus two of its dev evaluations for the test scores after the search (the final
    model's and the defaults'; the test split is not read during the search, so a dev evaluation stands in for its
    size). What a trial does after its loop (the final dev scoring, calibration, the report and its plots) a refit
    does not, and neither does it evaluate on dev. Otherwise (a trial timed only as a whole) the trial's time less its
    dev evaluations, times :func:`refit_share`.

    Not the longest trial's: one slow, poor draw early in a short study would otherwise hold back a large part of the
    budget for a refit that never trains it.
    """
    done = [t for t in study.get_trials(deepcopy=False)
            if t.state == optuna.trial.TrialState.COMPLETE and t.user_attrs.get("seconds") is not None]  # fmt: skip
    if not done:
        return 0.0
    best = max(done, key=lambda t: (t.value, -t.number))
    attrs = best.user_attrs
    directory = attrs.get("dir")
    share = refit_share(Path(directory)) if directory else 1.0
    evals = float(attrs.get("eval_seconds") or 0.0)
    if attrs.get("train_seconds") is not None and attrs.get("setup_seconds") is not None:
        scoring = 2 * evals / max(1, int(attrs.get("evaluations") or 1))
        return float(attrs["setup_seconds"]) + float(attrs["train_seconds"]) * share + scoring
    return max(0.0, float(attrs["seconds"]) - evals) * share


def refit_share(directory: Path) -> float:
    """The refit's training time as a share of its trial's: the refit trains the trial's best epoch count, not every
    epoch the trial ran, on train+dev instead of train (from the trial's ``epochs.json`` and ``nerforge.json``: their
    tokens, where it gives them, else their sentences; SkillSpan's dev sentences are two thirds as long as its train
    sentences, so 30 % more sentences are 20 % more tokens); 1 where the directory does not say. A trial that peaked
    at epoch 7 of 10 on 1000 train sentences and 300 dev sentences of the same length gives 0.7 x 1.3 = 0.91."""
    try:
        rows = json.loads((directory / "epochs.json").read_text(encoding="utf-8"))
        ran = max(math.ceil(float(r["epoch"])) for r in rows)
        best = _best_epoch(rows)
        data = json.loads((directory / "nerforge.json").read_text(encoding="utf-8"))["extra"]["data"]
        unit = "tokens" if all(isinstance(data[s].get("tokens"), int) for s in ("train", "dev")) else "sentences"
        train, dev = int(data["train"][unit]), int(data["dev"][unit])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return 1.0
    if ran < 1 or train < 1:
        return 1.0
    return min(1.0, best / ran) * (train + dev) / train
