"""``nerforge tune``: trials of ``nerforge train`` drawn from a search space, within a wall-clock budget.

The study (Optuna: TPE sampler, median pruning on the dev F1 each evaluation reports) lives in ``OUT/study.db``
(SQLite), so ``--resume`` continues a killed study. Every trial is a full ``nerforge train`` run of the base config
with the trial's settings (:mod:`nerforge.tuning.space`), its model in ``OUT/trials/NNNN``, the same seed for all (a
trial's seed is recorded). The first trial is the defaults, so the study never ends worse on dev than a plain
``nerforge train``. **The test split is never read during the search**: trials train without it; at the end, the best
model and the defaults' model are scored on it once each.

The budget covers everything: when less than a whole trial's time is left, the next trial trains the epochs that
fit (:func:`nerforge.tuning.budget.epochs_that_fit`), none when fewer than two do, and a trial still running when
the budget runs out is stopped at its next optimizer step (counted as pruned). Ctrl-C stops the same way and keeps
what was found. Outputs in ``OUT``: ``model/`` (the best trial's model), ``best.toml`` (a config that ``nerforge train``
reproduces it from), ``leaderboard.md`` and ``.csv`` (every trial: settings, dev F1, time, state), ``plots/*.png``.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nerforge.errors import ConfigError, Interrupted, MissingDependencyError, UsageError
from nerforge.io_utils import atomic_write_text
from nerforge.tuning.budget import MIN_CAPPED_EPOCHS, duration, epochs_run, epochs_that_fit
from nerforge.tuning.refit import REFIT_RESERVE, best_epoch, refit_seconds
from nerforge.tuning.report import write_leaderboard, write_plots
from nerforge.tuning.space import Domain, layer_of, trial_keys

logger = logging.getLogger(__name__)

STUDY_FILE = "study.db"
STUDY_NAME = "nerforge-tune"


def defaults() -> dict[str, Any]:
    """What ``nerforge train`` does without flags, as tune settings: the config's own defaults (``TrainingConfig``) and
    the head a user gets (:data:`nerforge.modeling.head.DEFAULT_HEAD`), so trial 0 follows them when they change."""
    from nerforge.config import TrainingConfig
    from nerforge.modeling.head import DEFAULT_HEAD

    fields = TrainingConfig.model_fields
    out: dict[str, Any] = {name: fields[name].default for name in ("learning_rate", "batch_size", "warmup_ratio",
                                                                    "weight_decay")}  # fmt: skip
    return {**out, "head": DEFAULT_HEAD, "context": 0, "class_weights": "none"}


@dataclass
class TuneResult:
    """What a study found."""

    output: Path
    model: Path | None
    best_toml: Path | None
    trials: int
    pruned: int
    failed: int
    best: dict[str, Any] | None
    default_dev_f1: float | None
    seconds: float
    budget_s: float
    interrupted: bool = False
    test: dict[str, float] = field(default_factory=dict)  # test F1 of "best" and "defaults", scored once at the end


class _Stop(Exception):
    """Raised inside a trial's training to end it (pruned, or out of budget)."""


def load_optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise MissingDependencyError("optuna", "tune") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def report_callback(
    trial: Any, deadline: float, clock: Callable[[], float] = time.monotonic, started: float | None = None
) -> Any:
    """A ``transformers`` callback that reports each dev evaluation's F1 to ``trial`` and stops the training when the
    pruner says so or the budget is spent (``trial.user_attrs["stopped"]`` says which).

    It also times the parts of the trial a refit repeats (:func:`~nerforge.tuning.refit.refit_seconds`):
    ``setup_seconds`` (from ``started``, the trial's start, to the first step: reading, encoding, loading the encoder),
    ``train_seconds`` (the training loop less its evaluations), ``eval_seconds`` and ``evaluations``. What comes
    after the loop (the final dev scoring, calibration, the report and its plots) a refit on train+dev does not do.
    """
    from transformers import TrainerCallback

    class Report(TrainerCallback):  # type: ignore[misc]
        evaluations = 0
        eval_seconds = 0.0
        loop_began: float | None = None

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.loop_began = clock()
            if started is not None:
                trial.set_user_attr("setup_seconds", round(self.loop_began - started, 3))

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.loop_began is not None:
                loop = clock() - self.loop_began - self.eval_seconds
                trial.set_user_attr("train_seconds", round(max(0.0, loop), 3))

        def on_evaluate(self, args: Any, state: Any, control: Any, metrics: Mapping[str, Any] | None = None,
                        **kwargs: Any) -> None:  # fmt: skip
            f1 = (metrics or {}).get("eval_f1")
            if f1 is None:
                return
            self.evaluations += 1
            runtime = (metrics or {}).get("eval_runtime")
            if isinstance(runtime, (int, float)):  # a refit on train+dev evaluates nothing: refit_seconds takes it off
                self.eval_seconds += float(runtime)
                trial.set_user_attr("eval_seconds", round(self.eval_seconds, 3))
                trial.set_user_attr("evaluations", self.evaluations)
            trial.report(float(f1), step=self.evaluations)
            if trial.should_prune():
                trial.set_user_attr("stopped", f"pruned after evaluation {self.evaluations} (dev F1 {f1:.4f})")
                raise _Stop
            if clock() > deadline:
                trial.set_user_attr("stopped", f"out of budget after evaluation {self.evaluations}")
                raise _Stop

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if clock() > deadline:  # within an epoch too: the budget is overrun by one optimizer step at most
                trial.set_user_attr("stopped", f"out of budget at step {state.global_step}")
                raise _Stop

    return Report()


def defaults_point(space: Mapping[str, Domain]) -> dict[str, Any] | None:
    """The drawn settings of the defaults (:func:`defaults`) where the space holds them; ``None`` when the user's
    space excludes them."""
    params = {}
    default = defaults()
    for name, domain in space.items():
        if layer_of(name) is not None:
            default[name] = 1.0  # a layer not weighed weighs 1
        if domain.fixed or name not in default:
            continue
        value = default[name]
        inside = value in domain.choices if domain.choices else (domain.low or 0) <= value <= (domain.high or 0)
        if not inside:
            return None
        params[name] = value
    return params


def enqueue_defaults(study: Any, space: Mapping[str, Domain]) -> None:
    """Make the first trial the defaults (where the space holds them), so the best is never worse on dev."""
    params = defaults_point(space)
    if params is not None:
        study.enqueue_trial(params, skip_if_exists=True)


def trial_config(values: Mapping[str, Any], keys: Mapping[str, Any], directory: Path, study: str) -> Any:
    """A trial's ``TrainConfig``: the base config's ``values`` (``model_dump(mode="json")``) with the trial's config
    ``keys``, its model in ``directory``, and no test split (the test split is never read during the search)."""
    import copy

    from nerforge.config import TrainConfig

    out = copy.deepcopy(dict(values))
    for dotted, value in keys.items():
        node = out
        *path, last = dotted.split(".")
        for part in path:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        if isinstance(value, Mapping) and isinstance(node.get(last), Mapping):  # drawn layer weights join the config's
            value = {**node[last], **value}
        node[last] = value
    out["output"] = {**out["output"], "dir": str(directory), "work_dir": None}
    out["data"] = {**out["data"], "test": None}
    out["tune"] = None
    out["tracking"] = {**out["tracking"], "run_name": f"{study}-trial-{directory.name}"}
    return TrainConfig.model_validate(out)


STARTUP_TRIALS = 3  # the defaults and two random draws; then TPE models what worked
# Pruning starts once the defaults' trial (trial 0) is complete: its dev F1 curve is the bar for trial 1. With 2, the
# first random draw could never be pruned, and in the 20-minute benchmark studies it ran to the end on all four
# datasets, 4 to 16 points below the defaults, for a fifth to two fifths of the budget (``bench/results/tune.json``).
PRUNE_AFTER = 1
# The first evaluation never prunes (a trial warming up its learning rate is not yet itself), locally or on Ray.
FIRST_PRUNABLE_EVALUATION = 2


def make_sampler(optuna: Any, seed: int) -> Any:
    """Seeded multivariate TPE that starts modelling after :data:`STARTUP_TRIALS` trials. Optuna's default waits for
    10 random ones, more than a budget of 20 minutes buys on a laptop (5 to 9 trials in ``docs/benchmarks.md``): the
    search was random draws after the defaults."""
    import warnings

    with warnings.catch_warnings():  # multivariate TPE is marked experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=STARTUP_TRIALS, multivariate=True)


def open_study(optuna: Any, db: Path, seed: int, *, load: bool) -> Any:
    """The study in ``db``: TPE (seeded, :func:`make_sampler`) and median pruning from the second evaluation, once
    :data:`PRUNE_AFTER` trials are complete."""
    sampler = make_sampler(optuna, seed)
    # evaluations are reported as steps 1, 2, ...; Optuna prunes from step n_warmup_steps on
    pruner = optuna.pruners.MedianPruner(n_startup_trials=PRUNE_AFTER, n_warmup_steps=FIRST_PRUNABLE_EVALUATION)
    storage = optuna.storages.RDBStorage(f"sqlite:///{db}", engine_kwargs={"connect_args": {"timeout": 60}})
    if load:
        return optuna.load_study(study_name=STUDY_NAME, storage=storage, sampler=sampler, pruner=pruner)
    return optuna.create_study(study_name=STUDY_NAME, storage=storage, direction="maximize", load_if_exists=True,
                               sampler=sampler, pruner=pruner)  # fmt: skip


def run_study(
    make_config: Callable[[dict[str, Any], Path], Any],
    space: Mapping[str, Domain],
    output: Path,
    *,
    budget_s: float,
    seed: int,
    resume: bool = False,
    trainer: Callable[..., Any],
    evaluate_test: Callable[[Path], float | None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    workers: int = 1,
    parallel: Callable[[int, float], None] | None = None,
    refit: Callable[[Path, int], Path] | None = None,
    remote: bool = False,
) -> TuneResult:
    """Run the study (see the module docstring).

    Args:
        make_config: the config of a trial from its config keys and its model directory (test split left out).
        space: the checked search space.
        output: ``OUT``.
        budget_s: wall-clock seconds for everything.
        seed: every trial's seed, and the sampler's.
        resume: continue the study in ``OUT/study.db``.
        trainer: ``nerforge.training.train`` (handed in from the command).
        evaluate_test: the test F1 of a model directory (``None`` without a test split), called once per model.
        clock: seconds, monotonic (tests replace it).
        workers: trials run at once; with more than one, ``parallel(workers, deadline)`` runs them (processes that
            share the study, :func:`nerforge.tuning.workers.run_workers`) instead of this process.
        remote: ``parallel`` runs the trials elsewhere (a Ray cluster, :func:`nerforge.tuning.ray_search.run_on_ray`)
            and writes them into the study when they are done (its searcher puts the defaults first).
        refit: ``--refit-on-dev``: ``refit(best trial's directory, its best epoch)`` trains the final model on train+dev
            and returns its directory; the search then stops early enough to leave it the time
            (:data:`REFIT_RESERVE` times :func:`refit_seconds`).

    Raises:
        UsageError: ``OUT`` holds a study and ``resume`` is not set, or ``resume`` without one.
    """
    optuna = load_optuna()
    started = clock()
    deadline = started + budget_s
    output.mkdir(parents=True, exist_ok=True)
    db = output / STUDY_FILE
    if db.exists() and not resume:
        raise UsageError(f"{output} holds a study already; --resume continues it, or choose another --output")
    if resume and not db.exists():
        raise UsageError(f"--resume: {output} holds no study ({STUDY_FILE}) to continue")
    study = open_study(optuna, db, seed, load=False)
    if not resume and not remote:
        enqueue_defaults(study, space)
    search_deadline = deadline
    if (workers > 1 or remote) and parallel is not None:
        interrupted = False
        try:
            parallel(workers, deadline if refit is None else started + budget_s * 0.75)
        except (KeyboardInterrupt, Interrupted):
            interrupted = True
            logger.warning("interrupted: keeping the best trial so far")
        study = open_study(optuna, db, seed, load=True)
    else:
        interrupted = work(study, space, output, seed, search_deadline, make_config, trainer, clock,
                           reserve=REFIT_RESERVE if refit is not None else 0.0)  # fmt: skip
    return _finish(study, output, started, budget_s, interrupted, evaluate_test, clock,
                   refit=None if interrupted else refit)  # fmt: skip


MAX_FAILURES_IN_A_ROW = 3  # trials that fail one after the other: the settings are not the problem, stop


@contextlib.contextmanager
def _asking(output: Path) -> Iterator[None]:
    """One process at a time takes a trial from the study: with SQLite, two workers could take the same waiting trial
    (trial 0, the defaults) without this lock."""
    import fcntl

    with (output / ".ask.lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def work(
    study: Any,
    space: Mapping[str, Domain],
    output: Path,
    seed: int,
    deadline: float,
    make_config: Callable[[dict[str, Any], Path], Any],
    trainer: Callable[..., Any],
    clock: Callable[[], float] = time.monotonic,
    reserve: float = 0.0,
) -> bool:
    """Run trials of ``study`` one after the other until the deadline (less ``reserve`` times the refit's expected
    time, kept for a final training: :func:`refit_seconds`); ``True`` when Ctrl-C stopped them (in a trial or between two).

    Raises:
        NerforgeError: :data:`MAX_FAILURES_IN_A_ROW` trials failed one after the other (the last one's error: bad
            data or a bad config fails every trial alike).
    """
    optuna = load_optuna()
    asked: list[Any] = []  # the trial in hand, until the study is told how it ended
    try:
        _trials(study, space, output, seed, deadline, make_config, trainer, clock, reserve, asked, optuna)
    except (KeyboardInterrupt, Interrupted):  # Ctrl-C, in a trial or between two: the study keeps what it has
        for trial in asked:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)  # a trial cut short is not finished
        return True
    return False


def _trials(
    study: Any,
    space: Mapping[str, Domain],
    output: Path,
    seed: int,
    deadline: float,
    make_config: Callable[[dict[str, Any], Path], Any],
    trainer: Callable[..., Any],
    clock: Callable[[], float],
    reserve: float,
    asked: list[Any],
    optuna: Any,
) -> None:
    """The loop of :func:`work`; ``asked`` holds the trial taken from the study and not yet told."""
    from nerforge.errors import NerforgeError

    state = optuna.trial.TrialState
    trials_dir = output / "trials"
    durations: list[float] = []
    epoch_seconds: list[float] = []  # of each complete trial: its time over the epochs it ran
    failures = 0

    def tell(trial: Any, *args: Any, **kwargs: Any) -> None:
        study.tell(trial, *args, **kwargs)
        asked.clear()

    while clock() < deadline:
        end = deadline - (reserve * refit_seconds(study, optuna) if reserve else 0.0)
        cap, left = None, end - clock()
        if durations and left < max(durations):  # not a whole trial's time left: a shorter trial, or none
            cap = epochs_that_fit(left, max(epoch_seconds))
            if cap < MIN_CAPPED_EPOCHS:
                break
        with _asking(output):
            trial = study.ask()
            asked.append(trial)
        begun = clock()
        try:
            values = {name: domain.draw(trial) for name, domain in space.items()}
            directory = trials_dir / f"{trial.number:04d}"
            config = make_config(trial_keys(values), directory)
            planned = float(config.training.epochs)
            if cap is not None and planned > cap:
                values["epochs"] = float(cap)
                config = make_config(trial_keys(values), directory)
                trial.set_user_attr("stopped", f"epochs capped at {cap} (the time left)")
                logger.info("trial %d: %d epoch(s) instead of %g, to end within the budget", trial.number, cap,
                            planned)  # fmt: skip
            trial.set_user_attr("values", values)
            trial.set_user_attr("seed", seed)
            result = trainer(config, progress=False,
                             callbacks=[report_callback(trial, end if durations else deadline, clock, begun)])  # fmt: skip
        except _Stop:
            shutil.rmtree(directory, ignore_errors=True)
            shutil.rmtree(Path(str(directory) + ".work"), ignore_errors=True)
            trial.set_user_attr("seconds", round(clock() - begun, 1))
            tell(trial, state=state.PRUNED)
            _said(study, trial.number, None, "pruned", clock() - begun, deadline - clock(), optuna)
            continue
        except NerforgeError as exc:
            failures += 1
            trial.set_user_attr("stopped", f"failed: {exc}"[:300])
            tell(trial, state=state.FAIL)
            logger.warning("trial %d failed: %s", trial.number, exc)
            if failures >= MAX_FAILURES_IN_A_ROW:
                raise
            continue
        failures = 0
        seconds = clock() - begun
        durations.append(seconds)
        epoch_seconds.append(seconds / max(1, epochs_run(result, planned)))
        trial.set_user_attr("seconds", round(seconds, 1))
        trial.set_user_attr("dir", str(directory))
        dev = getattr(result, "dev", None)
        if dev is None:
            tell(trial, state=state.FAIL)
            raise ConfigError("nerforge tune needs a dev split to score trials: give --dev, or data.split.dev")
        tell(trial, float(dev.micro.f1))
        _said(study, trial.number, float(dev.micro.f1), "complete", seconds, deadline - clock(), optuna)


def _said(study: Any, number: int, value: float | None, what: str, seconds: float, left: float, optuna: Any) -> None:
    """The progress line of a finished trial: its result, the best so far, the time left."""
    done = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    best = max(done, key=lambda t: t.value) if done else None
    logger.info("trial %d: %s in %.0f s; best so far %s; %s left", number,
                f"dev F1 {value:.4f}" if value is not None else what, seconds,
                f"{best.value:.4f} (trial {best.number})" if best else "none", duration(max(0.0, left)))  # fmt: skip


def _finish(
    study: Any,
    output: Path,
    started: float,
    budget_s: float,
    interrupted: bool,
    evaluate_test: Callable[[Path], float | None] | None,
    clock: Callable[[], float],
    refit: Callable[[Path, int], Path] | None = None,
) -> TuneResult:
    optuna = load_optuna()
    state = optuna.trial.TrialState
    trials = study.trials
    done = [t for t in trials if t.state == state.COMPLETE and t.user_attrs.get("dir")]
    best = max(done, key=lambda t: (t.value, -t.number)) if done else None
    defaults = next((t for t in done if t.number == 0), None)
    write_leaderboard(trials, output)
    write_plots(study, output)
    model = best_toml = None
    test: dict[str, float] = {}
    if best is not None:
        model = output / "model"
        shutil.rmtree(model, ignore_errors=True)
        if refit is not None:  # --refit-on-dev: the best settings trained on train+dev for the best trial's epochs
            epochs = best_epoch(Path(best.user_attrs["dir"]))
            logger.info("refitting the best trial (%d) on train+dev for %d epoch(s)", best.number, epochs)
            model = refit(Path(best.user_attrs["dir"]), epochs)
        else:
            staging = output / "model.incoming"
            shutil.rmtree(staging, ignore_errors=True)
            shutil.copytree(best.user_attrs["dir"], staging)
            staging.rename(model)
        best_toml = output / "best.toml"
        _write_best_toml(model / "config.resolved.yaml", best_toml, model, best)
        if evaluate_test is not None:  # the test split, once per model, after the search
            for name, trial in (("best", best), ("defaults", defaults)):
                if trial is not None:
                    f1 = evaluate_test(model if name == "best" else Path(trial.user_attrs["dir"]))
                    if f1 is not None:
                        test[name] = f1
    return TuneResult(
        output=output, model=model, best_toml=best_toml, trials=len(trials),
        pruned=sum(t.state == state.PRUNED for t in trials), failed=sum(t.state == state.FAIL for t in trials),
        best=None if best is None else {"trial": best.number, "dev_f1": best.value, **best.user_attrs["values"]},
        default_dev_f1=None if defaults is None else defaults.value, seconds=clock() - started, budget_s=budget_s,
        interrupted=interrupted, test=test,
    )  # fmt: skip


def _write_best_toml(resolved: Path, out: Path, model: Path, best: Any) -> None:
    import yaml

    from nerforge.config.template import config_toml

    values = yaml.safe_load(resolved.read_text(encoding="utf-8"))
    values.setdefault("output", {})["dir"] = str(model.with_name("model-retrained"))
    values.get("output", {}).pop("work_dir", None)
    header = (f"nerforge tune: the best trial ({best.number}, dev F1 {best.value:.4f}); "
              "'nerforge train best.toml' trains it again")  # fmt: skip
    atomic_write_text(out, config_toml(values, header))
