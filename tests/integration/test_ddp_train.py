"""``nerforge train`` under ``torchrun`` with 2 CPU processes (DDP over gloo): one model directory, one MLflow run,
written by rank 0 only, and the data really split between the processes (half the optimizer steps)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

SENTENCES, BATCH, EPOCHS, WORLD = 32, 4, 2, 2


def write_corpus(directory: Path) -> dict[str, Path]:
    rng = random.Random(5)
    paths = {}
    for name, n in (("train", SENTENCES), ("dev", 8), ("test", 8)):
        blocks = [f"We\tO\nuse\tO\n{rng.choice(['Go', 'Rust', 'Java'])}\tB-TECH\ndaily\tO" for _ in range(n)]
        paths[name] = directory / f"{name}.conll"
        paths[name].write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    return paths


def test_torchrun_two_cpu_processes_write_one_model_and_one_run(tmp_path: Path, tiny_encoder: Path) -> None:
    data = write_corpus(tmp_path)
    out = tmp_path / "model"
    store = tmp_path / "mlflow.db"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(WORLD),
        "-m", "nerforge.cli", "train",
        "--train", str(data["train"]), "--dev", str(data["dev"]), "--test", str(data["test"]),
        "--output", str(out), "--model", str(tiny_encoder), "--epochs", str(EPOCHS), "--batch-size", str(BATCH),
        "--tracking-uri", f"sqlite:///{store}", "--experiment", "ddp",
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "MLFLOW_ENABLE_TELEMETRY": "false"}
    env.pop("ACCELERATE_USE_CPU", None)
    try:
        done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"torchrun did not finish in {exc.timeout}s:\n{(exc.stderr or b'')[-3000:]!r}")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    assert done.stdout.count("model: ") == 1, done.stdout  # only rank 0 reports

    # exactly one model directory, complete and loadable; no temporary or work directories left behind
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["mlartifacts", "model"]
    assert not list(tmp_path.glob(".model*"))
    from nerforge.prediction import Tagger

    tagger = Tagger.load(out, progress=False)
    meta = json.loads((out / "nerforge.json").read_text())
    from nerforge.data.normalize import read_examples
    from nerforge.data.readers.options import ReadOptions
    from nerforge.evaluation import evaluate

    dev = read_examples(data["dev"], ReadOptions())
    predicted = [list(p.tags) for p in tagger.predict_words([list(e.tokens) for e in dev])]
    # the dev F1 that rank 0 wrote is what the saved model scores (all ranks trained one model)
    assert evaluate([list(e.tags) for e in dev], predicted).micro.f1 == pytest.approx(
        meta["metrics"]["dev"]["micro"]["f1"]
    )
    training = meta["extra"]["training"]
    assert training["world_size"] == WORLD
    # each process takes its own batches: half the steps of a single-process run
    assert training["global_step"] == EPOCHS * SENTENCES // (BATCH * WORLD)

    # exactly one MLflow run, from rank 0, finished, with the world size in its params
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{store}")
    experiments = client.search_experiments()
    runs = client.search_runs([e.experiment_id for e in experiments])
    assert len(runs) == 1
    (run,) = runs
    assert run.info.status == "FINISHED"
    assert run.data.params["distributed.world_size"] == str(WORLD)
    assert run.data.params["distributed.backend"] == "gloo"
    assert "test_f1" in run.data.metrics
