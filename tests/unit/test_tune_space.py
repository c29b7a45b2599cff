"""nerforge tune's search space and budget (issue 30): every bad value is one line; a trial's drawn values become the
config keys that nerforge train takes."""

from __future__ import annotations

import pytest

from nerforge.cli import main
from nerforge.errors import ConfigError, UsageError
from nerforge.tuning.budget import parse_budget
from nerforge.tuning.report import leaderboard_rows
from nerforge.tuning.space import default_space, parse_space, trial_keys


@pytest.mark.parametrize(("space", "problem"), [
    ({"learning_rat": [1e-4]}, "learning_rat: not a setting nerforge tune searches"),
    ({"learning_rate": {"low": 3e-4, "high": 1e-5}}, "the range holds no value"),
    ({"batch_size": []}, "an empty list of choices"),
    ({"learning_rate": {"low": 0, "high": 1e-3, "log": True}}, "a log range needs low > 0"),
    ({"learning_rate": 1e-4, "batch_size": 16}, "there is nothing to search"),
    ({"head": ["shape+crf", "bilstm"]}, "is not a head"),
    ({"warmup_ratio": {"low": 0.0, "high": 1.5}}, "must be in [0, 1)"),
    ({"learning_rate": {"low": 1e-5}}, "a range is {low = A, high = B}"),
    ({}, "nothing to search"),
    ({"layer_weights": [1.0, 2.0]}, "layer_weights: a table of layer names"),
    ({"layer_weights": {"low": 1.0, "high": 2.0}}, "layer_weights: a table of layer names"),
    ({"layer_weights": {"knowledge": {"low": 0.0, "high": 2.0}}}, "layer_weights.knowledge: must be above 0"),
    ({"layer_weights": {"knowledge": ["heavy"]}}, "layer_weights.knowledge: numbers only"),
    ({"layer_weights.": [1.0, 2.0]}, "layer_weights.: not a setting nerforge tune searches"),
])  # fmt: skip
def test_a_bad_space_is_one_line(space: dict, problem: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_space(space)
    assert problem in str(err.value) and "\n" not in str(err.value)


def test_the_default_space_searches_context_only_for_documents() -> None:
    assert "context" not in parse_space(default_space(has_documents=False))
    space = parse_space(default_space(has_documents=True, epochs_cap=5))
    assert space["context"].choices == (0, 1, 2) and space["epochs"].fixed
    assert space["learning_rate"].log and not space["head"].fixed


def test_a_trials_values_become_config_keys() -> None:
    keys = trial_keys({"learning_rate": 3e-5, "batch_size": 32.0, "head": "plain", "class_weights": "balanced",
                       "context": 1})  # fmt: skip
    assert keys["training.learning_rate"] == 3e-5 and keys["training.batch_size"] == 32
    assert keys["model.head.crf"] is False and keys["model.head.features"] == []
    assert keys["model.class_weights"] == "balanced" and keys["model.head.context_sentences"] == 1
    assert "model.class_weights" not in trial_keys({"head": "shape+crf", "class_weights": "balanced"})  # a CRF: none


@pytest.mark.parametrize(("text", "seconds"), [("30m", 1800), ("1h30m", 5400), ("90s", 90), ("45", 45), ("2h", 7200)])
def test_a_budget_reads_as_seconds(text: str, seconds: float) -> None:
    assert parse_budget(text) == seconds


@pytest.mark.parametrize("text", ["0", "0m", "soon", "", "-5m", "1d"])
def test_a_bad_budget_is_refused(text: str) -> None:
    with pytest.raises(UsageError, match="--budget"):
        parse_budget(text)


def test_tune_cli_bad_values_are_one_line(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "train.conll"
    data.write_text("Python\tB-TECH\n\n", encoding="utf-8")
    assert main(["tune", "--train", str(data), "--dev", str(data), "--budget", "0", "-o", str(tmp_path / "t")]) == 2
    assert "the budget must be above 0" in capsys.readouterr().err
    config = tmp_path / "job.toml"
    config.write_text(f'[data]\ntrain = "{data}"\ndev = "{data}"\n\n[tune]\nlearning_rat = [1e-4, 3e-5]\n',
                      encoding="utf-8")  # fmt: skip
    assert main(["tune", str(config), "--budget", "1m", "-o", str(tmp_path / "t")]) == 2
    err = capsys.readouterr().err
    assert "learning_rat: not a setting" in err and err.count("\n") == 1
    assert main(["tune", "--train", str(data), "--budget", "1m", "-o", str(tmp_path / "t")]) == 2
    assert "scores trials on dev data" in capsys.readouterr().err


def test_the_leaderboard_puts_the_best_first_and_keeps_pruned_trials() -> None:
    optuna = pytest.importorskip("optuna")
    from optuna.trial import TrialState, create_trial

    def trial(n: int, value: float | None, state: TrialState, lr: float) -> object:
        t = create_trial(state=state, value=value, user_attrs={"values": {"learning_rate": lr}, "seconds": 3.0})
        t.number = n
        return t

    names, rows = leaderboard_rows([trial(0, 0.5, TrialState.COMPLETE, 1e-4), trial(1, None, TrialState.PRUNED, 1e-6),
                                    trial(2, 0.7, TrialState.COMPLETE, 3e-4)])  # fmt: skip
    assert names[:3] == ["trial", "state", "dev_f1"] and "learning_rate" in names
    assert [r["trial"] for r in rows] == [2, 0, 1] and rows[2]["state"] == "pruned"
    del optuna


def test_the_markdown_leaderboard_rounds_drawn_settings_and_the_csv_keeps_them(tmp_path) -> None:
    from optuna.trial import TrialState, create_trial

    from nerforge.tuning.report import write_leaderboard

    values = {"learning_rate": 0.000123456, "warmup_ratio": 0.04542191680814189, "epochs": 6.0}
    t = create_trial(state=TrialState.COMPLETE, value=0.80174, user_attrs={"values": values, "seconds": 25.5})
    write_leaderboard([t], tmp_path)
    table = (tmp_path / "leaderboard.md").read_text(encoding="utf-8")
    assert "| 0.0454 |" in table and "| 0.000123 |" in table and "| 6 |" in table and "0.0454219" not in table
    assert "| 0.8017 |" in table and "| 25.5 |" in table  # the trial's own columns as they are
    assert "0.04542191680814189" in (tmp_path / "leaderboard.csv").read_text(encoding="utf-8")


def test_tune_help_shows_the_tune_table_by_its_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tune", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "its [tune] table is the search space" in text and "--budget" in text and "Examples:" in text


def test_the_default_space_searches_the_span_head_only_where_entities_nest() -> None:
    assert "span" not in default_space(has_documents=False)["head"]
    heads = default_space(has_documents=False, nests=True)["head"]
    assert "span" in heads and "shape+crf" in heads
    keys = trial_keys({"head": "span"})
    assert keys["model.head.span"] is True and keys["model.head.crf"] is False


def test_tune_finds_nesting_in_the_training_data(tmp_path) -> None:
    from nerforge.cli.tune_cmd import _data_traits
    from nerforge.config import load_config

    data = tmp_path / "t.conll"
    data.write_text("Bonn\tB-ORG\tB-LOC\nUniversity\tI-ORG\tO\n\nin\tO\tO\nRome\tB-LOC\tO\n", encoding="utf-8")
    nested = load_config(None, flags={"data.train": str(data), "data.tag_columns": [1, 2]})
    flat = load_config(None, flags={"data.train": str(data), "data.tag_column": 1})
    assert _data_traits(nested) == (False, True, ("LOC+ORG", "LOC"))  # two columns: layers named by their types
    assert _data_traits(flat) == (False, False, ())
    one = load_config(None, flags={"data.train": str(data), "data.tag_columns": [1, 2], "data.layer": "LOC"})
    assert _data_traits(one).layers == ()  # --layer picks one: a model of one layer


def test_a_layered_models_loss_weights_are_searched_for_every_layer_but_the_first() -> None:
    """The default space of layered data weighs every layer but the first (weights only matter relative to each
    other), 0.5 to 4 on a log scale; the defaults' trial weighs each 1; a drawn weight becomes the head's loss
    weight, except with the span head (one layer, nothing to weigh)."""
    from nerforge.tuning.study import defaults_point

    assert "layer_weights" not in default_space(has_documents=False, layers=("only",))
    space = parse_space(default_space(has_documents=False, layers=("skill", "knowledge", "tool")))
    assert [n for n in space if n.startswith("layer_weights")] == ["layer_weights.knowledge", "layer_weights.tool"]
    tool = space["layer_weights.tool"]
    assert tool.log and (tool.low, tool.high) == (0.5, 4.0)
    point = defaults_point(space)
    assert point is not None and point["layer_weights.knowledge"] == point["layer_weights.tool"] == 1.0
    keys = trial_keys({"head": "crf", "layer_weights.knowledge": 2.0, "layer_weights.tool": 0.75})
    assert keys["model.head.layer_weights"] == {"knowledge": 2.0, "tool": 0.75}
    assert trial_keys({"head": "span", "layer_weights.knowledge": 2.0})["model.head.layer_weights"] == ()
    # a [tune] table of its own: one domain per layer
    own = parse_space({"layer_weights": {"knowledge": {"low": 1.0, "high": 3.0}, "tool": [1, 2]}})
    assert own["layer_weights.knowledge"].high == 3.0 and own["layer_weights.tool"].choices == (1, 2)


def test_a_trials_drawn_weights_join_the_configs_own(tmp_path) -> None:
    """The config weighs the skill layer 0.5, the trial draws knowledge 2: the trial trains with both (the drawn
    table does not replace the configured one), and its config keeps the weights as a table."""
    from nerforge.config import load_config, parse_overrides
    from nerforge.tuning.study import trial_config

    data = tmp_path / "t.conll"
    data.write_text("Bonn\tB-ORG\tB-LOC\n\n", encoding="utf-8")
    base = load_config(None, parse_overrides(["model.head.layer_weights={skill = 0.5}"]),
                       flags={"data.train": str(data)})  # fmt: skip
    values = base.model_dump(mode="json")
    assert values["model"]["head"]["layer_weights"] == {"skill": 0.5}
    config = trial_config(values, trial_keys({"layer_weights.knowledge": 2.0}), tmp_path / "0000", "study")
    assert dict(config.model.head.layer_weights) == {"skill": 0.5, "knowledge": 2.0}


def test_ctrl_c_between_two_trials_keeps_the_study(tmp_path) -> None:
    """A Ctrl-C that lands between two trials (not inside a training) still ends the study as interrupted, with
    the finished trial kept; the loop's control flow only, so the training is a stand-in that reports a dev F1."""

    import optuna

    from nerforge.tuning.study import STUDY_FILE, open_study, work

    study = open_study(optuna, tmp_path / STUDY_FILE, 1, load=False)
    calls = {"clock": 0}

    def clock() -> float:
        calls["clock"] += 1
        if calls["clock"] > 6:  # after the first trial has been told
            raise KeyboardInterrupt
        return float(calls["clock"])

    def trainer(config, **_):
        return _ran(config, 0.5)

    space = parse_space({"learning_rate": [1e-4, 3e-4], "batch_size": [8]})
    assert work(study, space, tmp_path, 1, 1e9, _config, trainer, clock) is True
    states = [t.state for t in study.trials]
    assert states[0] == optuna.trial.TrialState.COMPLETE and optuna.trial.TrialState.RUNNING not in states


def _config(keys: dict, directory=None):
    """A stand-in for a trial's TrainConfig: its config keys, and the epochs they plan (10 unless drawn)."""
    import types

    training = types.SimpleNamespace(epochs=float(keys.get("training.epochs", 10.0)))
    return types.SimpleNamespace(keys=keys, training=training)


def _ran(config, f1: float):
    """A stand-in for a complete trial's TrainResult: its dev F1 and one row per epoch it ran."""
    import types

    rows = [{"epoch": float(e)} for e in range(1, int(config.training.epochs) + 1)]
    return types.SimpleNamespace(dev=types.SimpleNamespace(micro=types.SimpleNamespace(f1=f1)), epochs=rows)


@pytest.mark.parametrize("slow_f1", [0.5, 0.95])
def test_refit_time_is_kept_for_the_best_trial_not_the_slowest(tmp_path, slow_f1: float) -> None:
    """--refit-on-dev keeps REFIT_RESERVE x the *best* trial's time for the final training: a slow, poor trial early on does
    not end the search (more trials follow it), while a slow trial that is the best does (2 trials, and at most one
    shortened to the epochs that fit). The training is
    a stand-in that takes 1 s per epoch (the defaults, F1 0.9) or 4 s (F1 ``slow_f1``) of a fake clock."""
    import optuna

    from nerforge.tuning.refit import REFIT_RESERVE
    from nerforge.tuning.study import STUDY_FILE, open_study, work

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(optuna, tmp_path / STUDY_FILE, 1, load=False)
    study.enqueue_trial({"learning_rate": 1e-4})
    study.enqueue_trial({"learning_rate": 3e-4})
    for _ in range(20):
        study.enqueue_trial({"learning_rate": 1e-4})
    now = {"t": 0.0}

    def trainer(config, **_):
        fast = config.keys["training.learning_rate"] == 1e-4
        now["t"] += config.training.epochs * (1.0 if fast else 4.0)
        return _ran(config, 0.9 if fast else slow_f1)

    space = parse_space({"learning_rate": [1e-4, 3e-4], "batch_size": [8]})
    assert work(study, space, tmp_path, 1, 100.0, _config, trainer, lambda: now["t"],
                reserve=REFIT_RESERVE) is False  # fmt: skip
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = 40.0 if slow_f1 > 0.9 else 10.0
    assert now["t"] <= 100.0 - REFIT_RESERVE * best  # the refit's time is left
    assert (len(complete) <= 3) if slow_f1 > 0.9 else (len(complete) > 4)


def test_the_last_trial_trains_the_epochs_the_budget_has_left(tmp_path) -> None:
    """When less than a whole trial's time is left, the next trial trains fewer epochs instead of running into the
    end of the budget (where it was stopped and wasted) or not starting (a study ended minutes early): trials of 10
    epochs at 30 s each in 1100 s run three whole trials, then one of 5 epochs (170 s at most of the 200 s left)."""
    import optuna

    from nerforge.tuning.report import leaderboard_rows
    from nerforge.tuning.study import STUDY_FILE, open_study, work

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(optuna, tmp_path / STUDY_FILE, 1, load=False)
    now = {"t": 0.0}

    def trainer(config, **_):
        now["t"] += 30.0 * config.training.epochs
        return _ran(config, 0.5 + 0.01 * config.training.epochs)

    space = parse_space({"learning_rate": [1e-4, 3e-4], "batch_size": [8, 16]})
    assert work(study, space, tmp_path, 1, 1100.0, _config, trainer, lambda: now["t"]) is False
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 4
    assert [t.user_attrs["values"].get("epochs", 10.0) for t in study.trials] == [10.0, 10.0, 10.0, 5.0]
    assert now["t"] == 1050.0
    _, rows = leaderboard_rows(study.trials)
    assert any("epochs capped at 5" in r["stopped"] for r in rows)


def test_epochs_that_fit_leave_room_for_loading_and_saving() -> None:
    from nerforge.tuning.budget import CAP_SAFETY, epochs_that_fit

    assert epochs_that_fit(200.0, 30.0) == 5
    assert epochs_that_fit(300.0, 30.0) == int(300 * CAP_SAFETY // 30) < 10
    assert epochs_that_fit(20.0, 30.0) == 0
    assert epochs_that_fit(100.0, 0.0) == 0


def test_the_refit_is_expected_to_cost_the_best_epochs_on_train_and_dev(tmp_path) -> None:
    """A trial that ran 10 epochs, best at epoch 7, on 1000 train and 300 dev sentences refits 7 epochs on 1300
    sentences: 0.7 x 1.3 of its time; a directory that does not say gives 1 (the trial's whole time)."""
    import json

    from nerforge.tuning.refit import refit_share

    rows = [{"epoch": float(e), "eval_f1": 0.5 + (0.1 if e == 7 else 0.01 * e)} for e in range(1, 11)]
    (tmp_path / "epochs.json").write_text(json.dumps(rows), encoding="utf-8")
    card = {"extra": {"data": {"train": {"sentences": 1000}, "dev": {"sentences": 300}}}}
    (tmp_path / "nerforge.json").write_text(json.dumps(card), encoding="utf-8")
    assert refit_share(tmp_path) == pytest.approx(0.7 * 1.3)
    # tokens, where the card has them: dev sentences half as long as train's add 15 %, not 30 %
    card["extra"]["data"]["train"]["tokens"], card["extra"]["data"]["dev"]["tokens"] = 20000, 3000
    (tmp_path / "nerforge.json").write_text(json.dumps(card), encoding="utf-8")
    assert refit_share(tmp_path) == pytest.approx(0.7 * 1.15)
    (tmp_path / "nerforge.json").unlink()
    assert refit_share(tmp_path) == 1.0
    assert refit_share(tmp_path / "missing") == 1.0


def test_the_refit_is_not_expected_to_repeat_the_trials_dev_evaluations(tmp_path) -> None:
    """A refit on train+dev has no dev split to evaluate: its expected time is the best trial's less the seconds its
    evaluations took (400 s with 100 s of evaluations: 300 s, where the directory gives a share of 1)."""
    import optuna

    from nerforge.tuning.refit import refit_seconds
    from nerforge.tuning.study import STUDY_FILE, open_study

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(optuna, tmp_path / STUDY_FILE, 1, load=False)
    for f1, seconds, evals in ((0.8, 400.0, 100.0), (0.5, 1000.0, 10.0)):
        trial = study.ask()
        trial.set_user_attr("seconds", seconds)
        trial.set_user_attr("eval_seconds", evals)
        trial.set_user_attr("dir", str(tmp_path / "missing"))
        study.tell(trial, f1)
    assert refit_seconds(study, optuna) == pytest.approx(300.0)


def test_the_refit_estimate_leaves_out_what_a_trial_does_after_its_training_loop(tmp_path) -> None:
    """A trial timed in parts (setup 20 s, loop 200 s, 10 dev evaluations of 5 s, 400 s in all: 130 s of final dev
    scoring, calibration, report and plots) is expected to cost its refit 20 + 200 (share 1) + 2 x 5 s (the two test
    scores, a dev evaluation each) = 230 s; the older estimate, 400 - 50 = 350 s, held back 120 s too many."""
    import json

    import optuna

    from nerforge.tuning.refit import refit_seconds
    from nerforge.tuning.study import STUDY_FILE, open_study

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(optuna, tmp_path / STUDY_FILE, 1, load=False)
    trial = study.ask()
    for key, value in (("seconds", 400.0), ("eval_seconds", 50.0), ("evaluations", 10), ("setup_seconds", 20.0),
                       ("train_seconds", 200.0), ("dir", str(tmp_path / "missing"))):  # fmt: skip
        trial.set_user_attr(key, value)
    study.tell(trial, 0.8)
    assert refit_seconds(study, optuna) == pytest.approx(230.0)
    # the loop scales with the refit's share (best epoch 5 of 10, train+dev 1300 of train 1000: 0.65), the setup not
    rows = [{"epoch": float(e), "eval_f1": 0.9 if e == 5 else 0.1} for e in range(1, 11)]
    (tmp_path / "missing").mkdir()
    (tmp_path / "missing" / "epochs.json").write_text(json.dumps(rows), encoding="utf-8")
    card = {"extra": {"data": {"train": {"sentences": 1000}, "dev": {"sentences": 300}}}}
    (tmp_path / "missing" / "nerforge.json").write_text(json.dumps(card), encoding="utf-8")
    assert refit_seconds(study, optuna) == pytest.approx(20.0 + 200.0 * 0.65 + 10.0)


def test_the_first_drawn_trial_can_be_pruned_against_the_defaults(tmp_path) -> None:
    """Once trial 0 (the defaults) is complete, trial 1 is pruned when its dev F1 at an evaluation after the first
    is below the defaults' at the same evaluation; the first evaluation never prunes."""
    import optuna

    from nerforge.tuning.study import STUDY_FILE, open_study

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(optuna, tmp_path / STUDY_FILE, 1, load=False)
    defaults = study.ask()
    for step, f1 in enumerate((0.5, 0.7, 0.8), start=1):
        defaults.report(f1, step=step)
    study.tell(defaults, 0.8)
    drawn = study.ask()
    drawn.report(0.1, step=1)
    assert not drawn.should_prune()  # the first evaluation: too early to judge
    drawn.report(0.3, step=2)
    assert drawn.should_prune()
    study.tell(drawn, state=optuna.trial.TrialState.PRUNED)
    level = study.ask()
    level.report(0.1, step=1)
    level.report(0.75, step=2)  # above the defaults at evaluation 2: goes on
    assert not level.should_prune()


def test_the_sampler_models_what_worked_after_three_trials() -> None:
    """A 20-minute budget buys 5 to 9 trials: TPE must start modelling after 3 (Optuna's default waits for 10 random
    draws, so a short study never left random search). On a one-dimensional learning-rate objective the draws after
    the third sit nearer the optimum than those of the default sampler, for every seed tried."""
    import math

    optuna = pytest.importorskip("optuna")
    from nerforge.tuning.study import STARTUP_TRIALS, make_sampler

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def distances(sampler) -> float:
        study = optuna.create_study(direction="maximize", sampler=sampler)
        study.optimize(lambda t: -((math.log10(t.suggest_float("lr", 2e-5, 3e-4, log=True)) + 4.0) ** 2), n_trials=9)
        return sum(abs(math.log10(t.params["lr"]) + 4.0) for t in study.trials[STARTUP_TRIALS:])

    for seed in (1, 2, 3):
        assert distances(make_sampler(optuna, seed)) < distances(optuna.samplers.TPESampler(seed=seed)), seed


def test_a_trial_of_the_span_head_trains_without_the_configs_layered_options(tmp_path) -> None:
    """A config of a layered model with an adapter and loss weights, searched with the span head among the heads: the
    span head's trial trains without them (a span head has one layer; it failed validation with them)."""
    from nerforge.config import load_config, parse_overrides
    from nerforge.tuning.study import trial_config

    data = tmp_path / "t.conll"
    data.write_text("Bonn\tB-ORG\tB-LOC\n\n", encoding="utf-8")
    base = load_config(None, parse_overrides(["model.head.layer_weights={LOC = 2.0}", "model.head.layer_adapter=8"]),
                       flags={"data.train": str(data)})  # fmt: skip
    values = base.model_dump(mode="json")
    span = trial_config(values, trial_keys({"head": "span", "layer_weights.LOC": 3.0}), tmp_path / "1", "study")
    assert span.model.head.span and span.model.head.layer_weights == () and span.model.head.layer_adapter == 0
    crf = trial_config(values, trial_keys({"head": "crf", "layer_weights.LOC": 3.0}), tmp_path / "2", "study")
    assert dict(crf.model.head.layer_weights) == {"LOC": 3.0} and crf.model.head.layer_adapter == 8
