"""``nerforge predict --engine ray --address``: batch prediction joins an existing Ray cluster of two nodes started
with ``ray start`` on 127.0.0.1 (a head and a second node, as the README shows), and writes what a single process
writes; an address nothing answers at is one line within seconds (Ray itself retries for minutes) (issue 31)."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import build_tiny_token_model
from nerforge.cli import main

pytest.importorskip("ray", reason="Ray is not installed: pip install 'nerforge[ray]'")
RAY = str(Path(sys.executable).with_name("ray"))
TEXTS = ["Ann Smith works at Acme Corp in Zürich.", "", "São Paulo 🎉 hired Bob; C++ and e-mail."] * 20


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def cluster() -> str:
    port = _free_port()
    temp = tempfile.mkdtemp(prefix="nfray")  # short: Ray's socket paths must fit in 107 characters
    # no token authentication (the default of 'ray start' in Ray 2.5x): a loopback cluster for this test only
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    common = ["--num-cpus", "1", "--temp-dir", temp, "--disable-usage-stats"]
    head = [RAY, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port), "--include-dashboard",
            "false", *common]  # fmt: skip
    subprocess.run(head, check=True, capture_output=True, timeout=180, env=env)
    try:
        subprocess.run([RAY, "start", "--address", f"127.0.0.1:{port}", "--node-ip-address", "127.0.0.1",
                        "--num-cpus", "1", "--disable-usage-stats"], check=True, capture_output=True, timeout=180,
                       env=env)  # fmt: skip
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([RAY, "stop", "--force"], capture_output=True, timeout=120, env=env)


def test_predict_joins_a_two_node_cluster_and_writes_what_one_process_writes(
    cluster: str, tmp_path: Path, tiny_encoder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ray

    build_tiny_token_model(tiny_encoder, tmp_path / "model", max_length=16, stride=4)
    (tmp_path / "in.txt").write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # relative paths: the workers run in the cluster's folder, not this one
    assert main(["predict", "model", "in.txt", "-o", "single.jsonl", "--chunk-size", "8"]) == 0
    code = main(["predict", "model", "in.txt", "-o", "ray.jsonl", "--engine", "ray", "--address", cluster,
                 "--num-workers", "2", "--chunk-size", "8", "--part-size", "16"])  # fmt: skip
    assert code == 0
    assert (tmp_path / "ray.jsonl").read_bytes() == (tmp_path / "single.jsonl").read_bytes()
    assert not (tmp_path / "ray.jsonl.parts").exists()
    ray.init(address=cluster)  # the cluster really has two nodes
    try:
        assert len([n for n in ray.nodes() if n["Alive"]]) == 2
    finally:
        ray.shutdown()


def test_an_address_nothing_answers_at_is_one_line_at_once(
    tmp_path: Path, tiny_encoder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = build_tiny_token_model(tiny_encoder, tmp_path / "model", max_length=16, stride=4)
    source = tmp_path / "in.txt"
    source.write_text("Ann Smith\n", encoding="utf-8")
    capsys.readouterr()  # what building the model printed
    started = time.monotonic()
    code = main(["predict", str(model), str(source), "-o", str(tmp_path / "o.jsonl"), "--engine", "ray",
                 "--address", f"127.0.0.1:{_free_port()}"])  # fmt: skip
    took = time.monotonic() - started
    err = capsys.readouterr().err
    assert code == 2 and "cannot reach the Ray cluster at 127.0.0.1:" in err and "ray start --head" in err, err
    assert len(err.strip().splitlines()) == 1 and took < 30


def test_a_worker_failure_is_its_nerforge_error() -> None:
    from nerforge.distributed.ray_predict import worker_message

    report = (
        'ray::MapWorker.__init__() (pid=1, ip=192.0.2.2)\n  File "x.py", line 3\n'
        "nerforge.errors.ModelError: /data/model: model directory not found; pass the output directory\n"
    )
    assert worker_message(RuntimeError(report)) == "/data/model: model directory not found; pass the output directory"
    assert worker_message(RuntimeError("\nthe actor died\nmore")) == "the actor died"


def test_tune_runs_its_trials_through_ray_tune_on_both_nodes(cluster: str, tmp_path: Path, tiny_encoder: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """``nerforge tune --address``: Ray Tune runs the trials on the two nodes (ASHA stops the hopeless ones), and the
    outputs are a local study's: the leaderboard, the plots, best.toml and the best model (issue 30, item 4)."""
    import csv
    import json

    import optuna
    from test_train import write_corpus

    data = write_corpus(tmp_path, train=24, dev=8, test=8)
    config = tmp_path / "job.toml"
    config.write_text(
        "[tune]\nlearning_rate = [3e-3, 1e-9]\nbatch_size = [8]\nhead = ['plain']\nepochs = 6\n", encoding="utf-8"
    )  # a learning rate of 1e-9 learns nothing: ASHA stops such trials
    # seed 11: the sampler's random start draws 3e-3 first, then 1e-9 twice, so a hopeless trial runs beside or after
    # a good one and ASHA has something to stop it against (TPE models the results after 3 trials, and then draws
    # 3e-3; with seed 3 the three random draws were all 1e-9 and, on a loaded machine, none was stopped)
    out = tmp_path / "tuned"
    monkeypatch.chdir(tmp_path)  # the encoder given relative to here: the trials run in other folders
    started = time.monotonic()
    code = main(["tune", str(config), "--train", str(data["train"]), "--dev", str(data["dev"]), "--test",
                 str(data["test"]), "--model", tiny_encoder.name if tiny_encoder.parent == tmp_path else
                 str(tiny_encoder), "--budget", "90s", "-o", str(out), "--no-tracking", "--seed", "11", "--address",
                 cluster, "--cpus-per-trial", "1", "--set", "training.early_stopping_patience=0"])  # fmt: skip
    elapsed = time.monotonic() - started
    assert code == 0
    assert elapsed < 90 * 1.1 + 30  # the budget, plus joining the cluster and the test scores after it
    with (out / "leaderboard.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    states = [r["state"] for r in rows]
    assert states.count("complete") >= 2 and "pruned" in states, rows
    assert all(float(r["learning_rate"]) in (3e-3, 1e-9) for r in rows), rows
    best = rows[0]
    assert best["state"] == "complete" and float(best["learning_rate"]) == 3e-3 and float(best["dev_f1"]) > 0.5
    assert (out / "model" / "nerforge.json").is_file() and (out / "best.toml").is_file()
    assert (out / "plots" / "history.png").is_file()
    study = optuna.load_study(study_name="nerforge-tune", storage=f"sqlite:///{out / 'study.db'}")
    nodes = {t.user_attrs.get("node") for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE}
    assert len(nodes) == 2  # trials ran on the head and on the second node
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert any(t.params.get("learning_rate") == 1e-9 for t in pruned)
    model = json.loads((out / "model" / "nerforge.json").read_text(encoding="utf-8"))
    assert model["metrics"]["dev"]["micro"]["f1"] == pytest.approx(float(best["dev_f1"]), abs=1e-4)


def test_serve_deploys_replicas_on_ray_serve_that_answer_as_one_server_does(cluster: str, tmp_path: Path,
                                                                            tiny_encoder: Path) -> None:  # fmt: skip
    """``nerforge serve MODEL --ray --address ADDR --replicas 2``: the same API and page behind Ray Serve's proxy,
    one replica on each node (each needs one CPU and each node has one), the same entities as the model tagging
    alone; Ctrl-C removes the deployment (issue 31, item 3)."""
    import signal

    import httpx

    from nerforge.prediction.tagger import Tagger

    model = build_tiny_token_model(tiny_encoder, tmp_path / "model", max_length=16, stride=4)
    port = _free_port()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "nerforge", "serve", str(model), "--ray", "--address", cluster,
                             "--replicas", "2", "--threads", "1", "--port", str(port), "--batch-wait-ms", "300"],
                            env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        ready = False
        while time.monotonic() < deadline and not ready and proc.poll() is None:
            try:
                ready = httpx.get(base + "/v1/health", timeout=5).status_code == 200
            except httpx.HTTPError:
                time.sleep(0.5)
        assert ready, proc.poll()
        import ray
        from ray import serve

        ray.init(address=cluster, logging_level=logging.ERROR)
        try:  # two replicas run, each holding one CPU: one on each node (each node has one)
            for _ in range(120):
                status = serve.status().applications["nerforge"].deployments["nerforge"].replica_states
                if status.get("RUNNING") == 2 and ray.available_resources().get("CPU", 0) == 0:
                    break
                time.sleep(1)
            assert status.get("RUNNING") == 2 and ray.available_resources().get("CPU", 0) == 0, status
        finally:
            ray.shutdown()
        expected = [[e.to_dict() for e in found] for found in Tagger.load(model).predict(TEXTS[:6])]
        got = httpx.post(base + "/v1/entities", json={"texts": TEXTS[:6]}, timeout=60).json()["results"]
        assert [r["entities"] for r in got] == expected and any(expected)
        page = httpx.get(base + "/", timeout=30)
        assert page.status_code == 200 and "<title>nerforge</title>" in page.text
        # each replica batches what it is sent: Ray Serve must let more than its default 5 requests in flight to a
        # replica, or 32 clients get 10 requests/s from an idle machine (docs/benchmarks.md, Ray Serve replicas)
        from concurrent.futures import ThreadPoolExecutor

        def one(k: int) -> int:
            return httpx.post(base + "/v1/entities", json={"text": TEXTS[k % len(TEXTS)]}, timeout=60).status_code

        with ThreadPoolExecutor(24) as pool:
            assert set(pool.map(one, range(24))) == {200}
        largest = max(httpx.get(base + "/healthz", timeout=30).json()["batching"]["largest_batch_requests"]
                      for _ in range(12))  # fmt: skip
        assert largest > 5, largest
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=120)
    assert proc.returncode in (0, 130), out[-2000:]
    with pytest.raises(httpx.HTTPError):
        httpx.get(base + "/v1/health", timeout=5)  # the deployment and its proxy are gone


def test_serve_and_tune_refuse_a_cluster_nothing_answers_at_in_one_line(
    tmp_path: Path, tiny_encoder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from test_train import write_corpus

    model = build_tiny_token_model(tiny_encoder, tmp_path / "model", max_length=16, stride=4)
    capsys.readouterr()
    address = f"127.0.0.1:{_free_port()}"
    assert main(["serve", str(model), "--ray", "--address", address]) == 2
    assert f"cannot reach the Ray cluster at {address}" in capsys.readouterr().err
    assert main(["serve", str(model), "--replicas", "2"]) == 2
    assert "add --ray" in capsys.readouterr().err
    data = write_corpus(tmp_path, train=8, dev=4, test=4)
    code = main(["tune", "--train", str(data["train"]), "--dev", str(data["dev"]), "--model", str(tiny_encoder),
                 "--budget", "60s", "-o", str(tmp_path / "t"), "--no-tracking", "--address", address])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and f"cannot reach the Ray cluster at {address}" in err and "Traceback" not in err
    assert not (tmp_path / "t" / "study.db").exists()  # nothing begun: the same command works once the cluster is up
    assert main(["tune", "--train", str(data["train"]), "--dev", str(data["dev"]), "--budget", "60s", "-o",
                 str(tmp_path / "u"), "--cpus-per-trial", "2"]) == 2  # fmt: skip
    assert "--cpus-per-trial is for trials on a Ray cluster" in capsys.readouterr().err
