"""MLflow tracking: the default embedded SQLite store in the working directory gets one run with params, per-epoch
metrics, final scores and artifacts."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from nerforge.cli import main


def write_corpus(directory: Path) -> dict[str, Path]:
    rng = random.Random(2)
    paths = {}
    for name, n in (("train", 24), ("dev", 6), ("test", 6)):
        blocks = [f"Knows\tO\n{rng.choice(['Go', 'Rust', 'Java'])}\tB-TECH\nwell\tO" for _ in range(n)]
        paths[name] = directory / f"{name}.conll"
        paths[name].write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    return paths


def test_tracking_logs_one_run_to_the_embedded_store(
    tmp_path: Path, tiny_encoder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = write_corpus(tmp_path)
    monkeypatch.chdir(tmp_path)  # the default store is sqlite:///mlflow.db in the working directory
    code = main(
        ["train", "--train", str(data["train"]), "--dev", str(data["dev"]), "--test", str(data["test"]),
         "--output", str(tmp_path / "model"), "--model", str(tiny_encoder), "--epochs", "2", "--batch-size", "8",
         "--experiment", "tiny"]
    )  # fmt: skip
    assert code == 0
    assert (tmp_path / "mlflow.db").is_file()

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("tiny")
    assert experiment is not None
    assert experiment.artifact_location.startswith((tmp_path / "mlartifacts").as_uri())
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"

    params = run.data.params
    assert params["training.epochs"] == "2.0" and params["training.batch_size"] == "8"
    assert params["model.name"] == str(tiny_encoder) and params["derived.types"] == "TECH"

    run_id = run.info.run_id
    train_loss = client.get_metric_history(run_id, "train_loss")
    dev_f1 = client.get_metric_history(run_id, "dev_f1")
    epochs = json.loads((tmp_path / "model" / "epochs.json").read_text())
    assert [row["epoch"] for row in epochs] == [1.0, 2.0]
    # one axis, the optimizer step: dev scores at each epoch's end, the train loss many times an epoch
    assert sorted(m.step for m in dev_f1) == [row["step"] for row in epochs]
    loss_steps = sorted(m.step for m in train_loss)
    assert len(loss_steps) > 2 and loss_steps == sorted(set(loss_steps)) and loss_steps[-1] <= epochs[-1]["step"]
    assert sorted(m.value for m in client.get_metric_history(run_id, "epoch")) == [1.0, 2.0]
    # a unique, readable run name (the training seed used to fix MLflow's name generator)
    assert run.info.run_name.startswith("model-")
    for name in ("dev_precision", "dev_recall", "dev_loss", "test_f1", "test_precision", "final_dev_f1"):
        assert name in run.data.metrics, name

    top = {a.path for a in client.list_artifacts(run_id)}
    assert {"README.md", "nerforge.json", "epochs.json", "losses.json", "config.resolved.yaml", "eval"} <= top
    assert {"eval/report.md", "eval/metrics.json", "eval/per_type_f1.png"} <= {
        a.path for a in client.list_artifacts(run_id, "eval")
    }
