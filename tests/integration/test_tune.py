"""``nerforge tune`` (issue 30) with a real study on a tiny encoder: the budget is kept, the defaults are the first
trial and the best is at least as good on dev, the search draws from the space, the pruner prunes hopeless trials,
best.toml trains the best trial again, a killed study resumes, the test split is read only at the end."""

from __future__ import annotations

import csv
import json
import re
import time
from pathlib import Path

import pytest
from test_train import write_corpus

from nerforge.cli import main

pytest.importorskip("optuna")


def _tune(tmp_path: Path, encoder: Path, out: Path, budget: str, *extra: str, test_files: int = 1) -> int:
    data = write_corpus(tmp_path, train=24, dev=8, test=8)
    tests = [data["test"]]
    if test_files == 2:  # a test split published as two files: scored together
        blocks = data["test"].read_text(encoding="utf-8").strip().split("\n\n")
        tests = [tmp_path / "test_a.conll", tmp_path / "test_b.conll"]
        tests[0].write_text("\n\n".join(blocks[:3]) + "\n", encoding="utf-8")
        tests[1].write_text("\n\n".join(blocks[3:]) + "\n", encoding="utf-8")
    return main(["tune", "--train", str(data["train"]), "--dev", str(data["dev"]),
                 *[arg for t in tests for arg in ("--test", str(t))],
                 "--model", str(encoder), "--budget", budget, "-o", str(out), "--no-tracking", "--seed", "5",
                 "--set", "training.epochs=3", "--set", "training.num_threads=1", *extra])  # fmt: skip


def _rows(out: Path) -> list[dict[str, str]]:
    with (out / "leaderboard.csv").open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_a_study_keeps_its_budget_and_beats_or_ties_the_defaults(
    tmp_path: Path, tiny_encoder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "tuned"
    started = time.monotonic()
    assert _tune(tmp_path, tiny_encoder, out, "75s", test_files=2) == 0
    elapsed = time.monotonic() - started
    assert elapsed < 75 * 1.1 + 15  # the budget, plus loading and the test scores after it
    assert elapsed > 75 * 0.9  # and it is used: the last trial trains the epochs that fit
    text = capsys.readouterr().out
    rows = _rows(out)
    assert len(rows) >= 3 and re.search(r"test F1 \(read once, after the search\): best \d\.\d{4}, defaults \d", text)
    by_trial = {int(r["trial"]): r for r in rows}
    defaults = by_trial[0]
    assert defaults["head"] == "shape+crf" and float(defaults["learning_rate"]) == 1e-4  # trial 0: the defaults
    done = [r for r in rows if r["state"] == "complete"]
    assert float(rows[0]["dev_f1"]) >= float(defaults["dev_f1"]) and rows[0] in done
    drawn = {(r["learning_rate"], r["head"], r["batch_size"]) for r in rows}
    assert len(drawn) == len(rows)  # every trial drew its own settings
    for r in rows:
        assert 2e-5 <= float(r["learning_rate"]) <= 3e-4 and r["head"] in ("shape+crf", "crf", "plain")
    assert (out / "model" / "nerforge.json").is_file() and (out / "plots" / "history.png").is_file()
    assert (out / "leaderboard.md").read_text(encoding="utf-8").count("\n|") >= len(rows)
    # best.toml trains the best trial again: the same seed and threads give the same dev F1
    best = json.loads((out / "model" / "nerforge.json").read_text(encoding="utf-8"))["metrics"]["dev"]["micro"]["f1"]
    again = tmp_path / "again"
    assert main(["train", str(out / "best.toml"), "--output", str(again)]) == 0
    repeated = json.loads((again / "nerforge.json").read_text(encoding="utf-8"))["metrics"]["dev"]["micro"]["f1"]
    assert repeated == pytest.approx(best, abs=1e-9)
    assert "test" not in json.loads((out / "model" / "nerforge.json").read_text(encoding="utf-8"))["metrics"]
    # each complete trial's dev evaluations are timed (a refit, which has none, is expected to take that much less)
    import optuna

    study = optuna.load_study(study_name="nerforge-tune", storage=f"sqlite:///{out / 'study.db'}")
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert complete and all(0 < t.user_attrs["eval_seconds"] < t.user_attrs["seconds"] for t in complete)
    # and so are its setup and training loop, which with the evaluations fit inside the trial's time
    for t in complete:
        parts = t.user_attrs["setup_seconds"] + t.user_attrs["train_seconds"] + t.user_attrs["eval_seconds"]
        assert t.user_attrs["setup_seconds"] > 0 and t.user_attrs["train_seconds"] > 0
        assert parts <= t.user_attrs["seconds"] + 0.1 and t.user_attrs["evaluations"] >= 1


def test_hopeless_trials_are_pruned_and_a_study_resumes(tmp_path: Path, tiny_encoder: Path) -> None:
    out = tmp_path / "tuned"
    config = tmp_path / "job.toml"
    config.write_text(
        "[tune]\nlearning_rate = [3e-3, 1e-9]\nbatch_size = [8]\nhead = ['plain']\nepochs = 6\n", encoding="utf-8"
    )  # a learning rate of 1e-9 learns nothing: pruned once two trials are in
    data = write_corpus(tmp_path, train=24, dev=8, test=8)
    common = ["--train", str(data["train"]), "--dev", str(data["dev"]), "--model", str(tiny_encoder), "-o", str(out),
              "--no-tracking", "--seed", "3", "--set", "training.num_threads=1",
              "--set", "training.early_stopping_patience=0"]  # fmt: skip
    assert main(["tune", str(config), "--budget", "45s", *common]) == 0
    first = _rows(out)
    assert main(["tune", str(config), "--budget", "45s", "--resume", *common]) == 0
    rows = _rows(out)
    assert len(rows) > len(first) and sorted(int(r["trial"]) for r in rows) == list(range(len(rows)))
    states = {r["state"] for r in rows if float(r["learning_rate"]) < 1e-6 and int(r["trial"]) >= 2}
    assert "pruned" in states, rows
    assert main(["tune", str(config), "--budget", "45s", *common]) == 2  # a study is there: --resume or another -o


def test_trials_are_mlflow_runs_nested_under_the_study(tmp_path: Path, tiny_encoder: Path) -> None:
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    data = write_corpus(tmp_path, train=16, dev=8, test=8)
    assert main(["tune", "--train", str(data["train"]), "--dev", str(data["dev"]), "--model", str(tiny_encoder),
                 "--budget", "30s", "-o", str(tmp_path / "tuned"), "--set", "training.epochs=2",
                 "--set", "training.num_threads=1", "--set", f"tracking.uri={uri}"]) == 0  # fmt: skip
    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    study = [r for r in runs if r.info.run_name == "tuned-study"]
    assert len(study) == 1 and study[0].data.metrics["trials"] >= 1 and "best_dev_f1" in study[0].data.metrics
    trials = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == study[0].info.run_id]
    assert len(trials) == study[0].data.metrics["trials"]


def test_workers_run_trials_at_once_in_processes_of_their_own(tmp_path: Path, tiny_encoder: Path) -> None:
    import optuna
    import yaml

    out = tmp_path / "tuned"
    data = write_corpus(tmp_path, train=16, dev=8, test=8)
    assert main(["tune", "--train", str(data["train"]), "--dev", str(data["dev"]), "--model", str(tiny_encoder),
                 "--budget", "50s", "-o", str(out), "--no-tracking", "--workers", "2",
                 "--set", "training.epochs=2"]) == 0  # fmt: skip
    study = optuna.load_study(study_name="nerforge-tune", storage=f"sqlite:///{out / 'study.db'}")
    done = [t for t in study.trials if t.datetime_complete is not None]
    assert len(done) >= 2
    overlapping = any(a.datetime_start < b.datetime_complete and b.datetime_start < a.datetime_complete
                      for i, a in enumerate(done) for b in done[i + 1 :])  # fmt: skip
    assert overlapping  # two trials trained at the same time
    threads = {yaml.safe_load((Path(t.user_attrs["dir"]) / "config.resolved.yaml").read_text())["training"]["num_threads"]
               for t in done if t.user_attrs.get("dir")}  # fmt: skip
    from nerforge.threads import usable_cpus

    assert threads == {max(1, usable_cpus() // 2)}  # the cores split between the workers
    assert (out / "model" / "nerforge.json").is_file() and (out / "leaderboard.csv").is_file()


def test_ctrl_c_stops_the_study_and_keeps_the_best_so_far(tmp_path: Path, tiny_encoder: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    out = tmp_path / "tuned"
    data = write_corpus(tmp_path, train=16, dev=8, test=8)
    cmd = [sys.executable, "-m", "nerforge", "tune", "--train", str(data["train"]), "--dev", str(data["dev"]),
           "--model", str(tiny_encoder), "--budget", "10m", "-o", str(out), "--no-tracking",
           "--set", "training.epochs=2", "--set", "training.num_threads=1"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})  # fmt: skip
    deadline = time.monotonic() + 240
    # trial 1 is training while its work directory exists (a trial's model directory appears when it has finished:
    # waiting for that one sent the signal between trials at times, and no trial was cut)
    while not (out / "trials" / "0001.work").exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-2000:]
    assert "(interrupted)" in stdout and "Traceback" not in stderr
    assert (out / "model" / "nerforge.json").is_file() and (out / "best.toml").is_file()
    rows = _rows(out)
    assert rows[0]["state"] == "complete" and any(r["state"] == "fail" for r in rows)  # the cut trial: not finished


def test_refit_on_dev_trains_the_final_model_on_train_and_dev_within_the_budget(
    tmp_path: Path, tiny_encoder: Path
) -> None:
    import yaml

    out = tmp_path / "tuned"
    data = write_corpus(tmp_path, train=16, dev=8, test=8)
    started = time.monotonic()
    assert main(["tune", "--train", str(data["train"]), "--dev", str(data["dev"]), "--model", str(tiny_encoder),
                 "--budget", "45s", "-o", str(out), "--no-tracking", "--refit-on-dev", "--set", "training.epochs=3",
                 "--set", "training.num_threads=1", "--set", "data.sample.train=12", "--set", "data.sample.dev=6",
                 ]) == 0  # fmt: skip
    assert time.monotonic() - started < 45 * 1.1 + 10
    card = json.loads((out / "model" / "nerforge.json").read_text(encoding="utf-8"))["extra"]["data"]
    # the trials' sampled 12 train and 6 dev sentences, not a new sample of 12 from the two files together
    assert card["train"]["sentences"] == 18 and "dev" not in card
    resolved = yaml.safe_load((out / "model" / "config.resolved.yaml").read_text(encoding="utf-8"))
    assert resolved["data"]["dev_in_train"] is True and 1 <= resolved["training"]["epochs"] <= 3
    best = next(r for r in _rows(out) if r["state"] == "complete")
    epochs = json.loads((out / "trials" / f"{int(best['trial']):04d}" / "epochs.json").read_text(encoding="utf-8"))
    assert resolved["training"]["epochs"] == max(1, round(max(epochs, key=lambda r: r["eval_f1"])["epoch"]))


def test_a_layered_study_searches_the_loss_weight_of_the_second_layer(
    tmp_path: Path, tiny_encoder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two tag columns train a layered model: the default space then draws the knowledge layer's loss weight (the
    first layer's stays 1), trial 0 weighs it 1, and every trial's model trained with the weight the leaderboard
    says; best.toml keeps the best trial's weight. A [tune] weight of a layer the data lacks is one line."""
    from test_layered_model import _write

    train, dev = _write(tmp_path / "train.conll", 32, 1), _write(tmp_path / "dev.conll", 8, 2)
    out = tmp_path / "tuned"
    common = ["--train", str(train), "--dev", str(dev), "--model", str(tiny_encoder), "--no-tracking", "--seed", "2",
              "--tag-column", "1", "--tag-column", "2", "--layer-names", "skill,knowledge",
              "--set", "training.epochs=2", "--set", "training.num_threads=1"]  # fmt: skip
    assert main(["tune", *common, "--budget", "40s", "-o", str(out)]) == 0
    rows = [r for r in _rows(out) if r["state"] == "complete"]
    assert len(rows) >= 2 and "layer_weights.skill" not in rows[0]
    weights = {int(r["trial"]): float(r["layer_weights.knowledge"]) for r in rows}
    assert weights[0] == 1.0 and len(set(weights.values())) >= 2
    for trial, weight in weights.items():
        assert 0.5 <= weight <= 4.0
        meta = json.loads((out / "trials" / f"{trial:04d}" / "nerforge.json").read_text(encoding="utf-8"))
        assert meta["extra"]["head"]["layer_weights"] == {"knowledge": pytest.approx(weight)}
        assert [name for name, _ in meta["extra"]["head"]["layers"]] == ["skill", "knowledge"]
    import tomllib

    best = int(_rows(out)[0]["trial"])
    again = tomllib.loads((out / "best.toml").read_text(encoding="utf-8"))
    assert again["model"]["head"]["layer_weights"] == {"knowledge": pytest.approx(weights[best])}
    capsys.readouterr()
    config = tmp_path / "job.toml"
    config.write_text("[tune]\nlearning_rate = [1e-4, 3e-4]\n\n[tune.layer_weights]\nknowlege = [1.0, 2.0]\n",
                      encoding="utf-8")  # fmt: skip
    assert main(["tune", str(config), *common, "--budget", "40s", "-o", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err
    assert "knowlege is not a layer of the data (the layers: skill, knowledge)" in err and err.count("\n") == 1
    assert not (tmp_path / "bad").exists()
