"""``nerforge serve MODEL --learn`` (issue 29, item 2): Label Studio's *Start training* makes the server fetch the
project's annotations, train a new version from the served one in the background while it keeps answering, score
both on a fixed held-out slice and swap the new one in only when the rule says so; every version is recorded.

Label Studio's API is played by a stand-in HTTP server on 127.0.0.1 that answers the export route with tasks of the
shape Label Studio exports (and checks the API token); the model, the training and the server are real."""

from __future__ import annotations

import http.server
import json
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from serving_helpers import CHROMIUM, chromium_page, running_server, screenshot
from test_train import write_corpus

from nerforge.cli import main
from nerforge.model_dir import ModelMeta
from nerforge.serving import ServeSettings, create_app, load_predictor
from nerforge.serving.learning import Learner, LearnOptions, held_out

TOKEN = "s3cret-token"  # a legacy token: "Authorization: Token ..."
PAT = "eyJhbGciOi.eyJ0b2tlbl90eXBlIjoicmVmcmVzaCJ9.c2lnbmF0dXJl"  # a personal access token: a JWT to exchange
ACCESS = "short-lived-access"
TECH = ["Python", "Kubernetes", "PostgreSQL", "Go", "React", "Rust"]
SKILL = ["data analysis", "code review", "testing", "system design"]


def _tasks(n: int, seed: int = 1) -> list[dict]:
    """Label Studio's JSON export: tasks with one annotation each (labels on character spans), a few without."""
    rng = random.Random(seed)
    tasks = []
    for i in range(n):
        tech, skill = rng.choice(TECH), rng.choice(SKILL)
        text = f"We need {tech} and {skill} ."
        result = [
            {"id": f"r{i}a", "from_name": "label", "to_name": "text", "type": "labels",
             "value": {"start": 8, "end": 8 + len(tech), "text": tech, "labels": ["TECH"]}},
            {"id": f"r{i}b", "from_name": "label", "to_name": "text", "type": "labels",
             "value": {"start": 13 + len(tech), "end": 13 + len(tech) + len(skill), "text": skill, "labels": ["SKILL"]}},
        ]  # fmt: skip
        annotations = [] if i % 10 == 9 else [{"id": i, "was_cancelled": False, "result": result}]
        tasks.append({"id": 100 + i, "data": {"text": text}, "annotations": annotations, "predictions": []})
    return tasks


@pytest.fixture(scope="module")
def label_studio() -> Iterator[str]:
    tasks = _tasks(60)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the standard library's name
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            ok = self.path == "/api/token/refresh" and body.get("refresh") == PAT
            answer = json.dumps({"access": ACCESS} if ok else {"detail": "invalid"}).encode()
            self.send_response(200 if ok else 401)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def do_GET(self) -> None:  # noqa: N802 - the standard library's name
            if self.headers.get("Authorization") not in (f"Token {TOKEN}", f"Bearer {ACCESS}"):
                self.send_response(401)
                self.end_headers()
                return
            if not self.path.startswith("/api/projects/3/export"):
                self.send_response(404)
                self.end_headers()
                return
            body = json.dumps(tasks).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, tiny_encoder: Path) -> Path:
    """A model trained (one epoch, the shape+CRF head) on a corpus of its own, which a new version replays."""
    folder = tmp_path_factory.mktemp("served")
    data = write_corpus(folder, train=24)
    out = folder / "model"
    code = main(["train", "--train", str(data["train"]), "--output", str(out), "--model", str(tiny_encoder),
                 "--epochs", "1", "--batch-size", "8", "--seed", "1", "--no-tracking", "--head", "shape+crf",
                 "--no-progress", "--set", "data.labels=['SKILL', 'TECH']"])  # fmt: skip
    assert code == 0
    return out


def _wait(base: str, timeout: float = 600) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = httpx.get(base + "/label-studio/health", timeout=10).json()["learning"]
        if state["status"] in ("done", "failed"):
            return state
        time.sleep(0.5)
    raise AssertionError("the learning job did not finish")


def _train(config):  # type: ignore[no-untyped-def]
    from nerforge.training.run import train

    return train(config, progress=False)


def _app(
    model: Path,
    url: str,
    versions: Path,
    *,
    min_gain: float,
    token: str = TOKEN,  # type: ignore[no-untyped-def]
    learn_every: int = 0,
):
    options = LearnOptions(label_studio_url=url, api_key=token, versions_dir=versions, epochs=2, min_gain=min_gain,
                           learn_every=learn_every)  # fmt: skip
    return create_app(load_predictor(model), ServeSettings(batch_max_wait_ms=1),
                      learner=lambda service: Learner(service, model, options, _train))  # fmt: skip


def test_start_training_serves_a_new_version_while_answering(served: Path, label_studio: str, tmp_path: Path) -> None:
    versions = tmp_path / "versions"
    before = ModelMeta.load(served).model_version
    with running_server(_app(served, label_studio, versions, min_gain=-1.0)) as base:  # any new version is served
        r = httpx.post(base + "/label-studio/webhook", json={"action": "START_TRAINING", "project": {"id": 3}},
                       timeout=30)  # fmt: skip
        assert r.status_code == 201, r.text
        again = httpx.post(base + "/label-studio/train", json={"project": "3.1733154321"}, timeout=30)
        assert again.status_code == 409 and again.json()["status"] == "running"  # one job at a time
        answered = 0
        while httpx.get(base + "/label-studio/health", timeout=10).json()["learning"]["status"] == "running":
            r = httpx.post(base + "/v1/entities", json={"text": "We need Go and testing ."}, timeout=30)
            assert r.status_code == 200  # the served version keeps answering during training
            answered += 1
        state = _wait(base)
        assert state["status"] == "done" and state["swapped"], state
        assert answered > 0
        after = httpx.get(base + "/v1/model", timeout=10).json()["model_version"]
        ls = httpx.post(base + "/label-studio/predict", json={"tasks": [{"id": 1, "data": {"text": "We need Go ."}}]},
                        timeout=30).json()  # fmt: skip
    record = json.loads((versions / "versions.json").read_text(encoding="utf-8"))
    assert [v["name"] for v in record["versions"]] == ["v0000", "v0001"] and record["served"] == "v0001"
    new = record["versions"][1]
    assert after == new["model_version"] == ls["model_version"] != before
    expected_holdout = sum(1 for t in _tasks(60) if t["annotations"] and held_out(t["id"], 0.2))
    assert new["holdout_tasks"] == expected_holdout and new["train_tasks"] == 54 - expected_holdout
    assert new["unannotated_tasks"] == 6  # the tasks without an annotation are counted, not dropped silently
    assert (versions / "v0001" / "nerforge.json").is_file()
    # the new version was trained from the served one on its own data replayed plus the new tasks
    resolved = (versions / "v0001" / "config.resolved.yaml").read_text(encoding="utf-8")
    assert str(served) in resolved and "train.conll" in resolved and "train.json" in resolved


def test_a_version_that_does_not_meet_the_rule_is_not_served(served: Path, label_studio: str, tmp_path: Path) -> None:
    versions = tmp_path / "versions"
    before = ModelMeta.load(served).model_version
    with running_server(_app(served, label_studio, versions, min_gain=1.01)) as base:  # no F1 can gain 1.01
        assert httpx.post(base + "/label-studio/webhook", json={"action": "START_TRAINING", "project": {"id": 3}},
                          timeout=30).status_code == 201  # fmt: skip
        state = _wait(base)
        assert state["status"] == "done" and not state["swapped"] and "kept the served version" in state["decision"]
        assert httpx.get(base + "/v1/model", timeout=10).json()["model_version"] == before
    record = json.loads((versions / "versions.json").read_text(encoding="utf-8"))
    assert record["served"] == "v0000" and record["versions"][1]["served"] is False


def test_a_refused_token_fails_the_job_not_the_server(served: Path, label_studio: str, tmp_path: Path) -> None:
    with running_server(_app(served, label_studio, tmp_path / "v", min_gain=0.0, token="wrong")) as base:
        assert httpx.post(base + "/label-studio/webhook", json={"action": "START_TRAINING", "project": {"id": 3}},
                          timeout=30).status_code == 201  # fmt: skip
        state = _wait(base, timeout=60)
        assert state["status"] == "failed" and "refused the API token (401)" in state["message"]
        assert httpx.post(base + "/v1/entities", json={"text": "We need Go ."}, timeout=30).status_code == 200
        other = httpx.post(base + "/label-studio/webhook", json={"action": "ANNOTATION_CREATED"}, timeout=30)
        assert other.status_code == 200 and other.json()["status"] == "ignored"


def test_without_learning_training_requests_are_501(served: Path) -> None:
    with running_server(create_app(load_predictor(served), ServeSettings())) as base:
        r = httpx.post(base + "/label-studio/webhook", json={"action": "START_TRAINING", "project": {"id": 3}},
                       timeout=30)  # fmt: skip
        assert r.status_code == 501 and "--learn" in r.json()["message"]


def test_training_continues_from_a_trained_model(served: Path, tmp_path: Path, tiny_encoder: Path) -> None:
    """``model.name`` a trained model directory with the same tags and head: training starts from its weights (with
    a learning rate of nearly zero the result tags as it does); other tags are one clear error."""
    from nerforge.prediction.tagger import Tagger

    data = write_corpus(tmp_path, train=16)
    out = tmp_path / "continued"
    code = main(["train", "--train", str(data["train"]), "--output", str(out), "--model", str(served), "--epochs", "1",
                 "--batch-size", "8", "--learning-rate", "1e-12", "--no-tracking", "--head", "shape+crf",
                 "--no-progress", "--set", "data.labels=['SKILL', 'TECH']"])  # fmt: skip
    assert code == 0
    words = [["We", "need", "Go", "and", "data", "analysis", "."], ["Rust", "and", "testing", "."]]
    before = Tagger.load(served, progress=False).predict_words(words)
    after = Tagger.load(out, progress=False).predict_words(words)
    assert [p.tags for p in after] == [p.tags for p in before]
    flat = [s for p in before for s in p.scores]
    assert [s for p in after for s in p.scores] == pytest.approx(flat, abs=1e-3)
    fresh = tmp_path / "fresh"
    assert main(["train", "--train", str(data["train"]), "--output", str(fresh), "--model", str(tiny_encoder),
                 "--epochs", "1", "--batch-size", "8", "--learning-rate", "1e-12", "--no-tracking", "--head",
                 "shape+crf", "--no-progress", "--set", "data.labels=['SKILL', 'TECH']"]) == 0  # fmt: skip
    other = [s for p in Tagger.load(fresh, progress=False).predict_words(words) for s in p.scores]
    assert other != pytest.approx(flat, abs=1e-3)  # a fresh head scores otherwise: the test above could fail
    wrong = main(["train", "--train", str(data["train"]), "--output", str(tmp_path / "w"), "--model", str(served),
                  "--epochs", "1", "--no-tracking", "--head", "plain", "--no-progress"])  # fmt: skip
    assert wrong == 2  # another head: it cannot continue from those weights


def test_a_personal_access_token_is_exchanged_for_an_access_token(
    served: Path, label_studio: str, tmp_path: Path
) -> None:
    with running_server(_app(served, label_studio, tmp_path / "v", min_gain=1.01, token=PAT)) as base:
        assert httpx.post(base + "/label-studio/webhook", json={"action": "START_TRAINING", "project": {"id": 3}},
                          timeout=30).status_code == 201  # fmt: skip
        state = _wait(base)
        assert state["status"] == "done", state  # the export was fetched with "Bearer <access>"


def test_a_server_started_again_serves_and_trains_from_the_model_it_was_given(served: Path, tmp_path: Path) -> None:
    """A record that says v0001 is served, and a server started on the first model (a rollback): the record follows
    the server, so the next version continues from what is really served."""
    from nerforge.serving.learning import VERSIONS_FILE

    versions = tmp_path / "versions"
    versions.mkdir()
    other = tmp_path / "elsewhere"
    record = {"served": "v0001", "versions": [
        {"name": "v0000", "dir": str(served), "model_version": "a", "served": False},
        {"name": "v0001", "dir": str(other), "model_version": "b", "served": True}]}  # fmt: skip
    (versions / VERSIONS_FILE).write_text(json.dumps(record), encoding="utf-8")
    options = LearnOptions(label_studio_url="http://127.0.0.1:9", api_key=TOKEN, versions_dir=versions)
    learner = Learner(None, served, options, _train)
    assert learner.served_dir == served.resolve() and learner.state()["served_version"] == "v0000"
    fresh = Learner(None, served, LearnOptions(label_studio_url="http://127.0.0.1:9", api_key=TOKEN,
                                               versions_dir=tmp_path / "new"), _train)  # fmt: skip
    assert fresh.state()["served_version"] == "v0000" and fresh.served_dir == served.resolve()


def _learning_line(base: str) -> str | None:
    """The learning line of the web page, as Chromium shows it (``None`` without Chromium: the rest is checked)."""
    if not CHROMIUM.exists():
        return None
    with chromium_page(base + "/", height=500) as page:
        line = page.locator("#learning-line", has_text="Learning from Label Studio")
        line.wait_for()
        screenshot(page, "learning-line.png")
        return line.inner_text()


def test_every_n_annotations_start_a_job_shown_on_health_and_page(
    served: Path, label_studio: str, tmp_path: Path
) -> None:
    with running_server(_app(served, label_studio, tmp_path / "v", min_gain=0.0, learn_every=3)) as base:
        for _ in range(2):
            r = httpx.post(base + "/label-studio/webhook", json={"action": "ANNOTATION_CREATED", "project": {"id": 3},
                                                                 "annotation": {"id": 1}}, timeout=30)  # fmt: skip
            assert r.status_code == 200 and r.json()["status"] == "idle"
        health = httpx.get(base + "/v1/health", timeout=10).json()["learning"]
        assert health["new_annotations"] == 2 and health["learn_every"] == 3 and health["status"] == "idle"
        line = _learning_line(base)
        assert line is None or "after 3 new annotations (2 so far)" in line
        r = httpx.post(base + "/label-studio/webhook", json={"action": "ANNOTATIONS_CREATED", "project": {"id": 3},
                                                             "annotations": [{"id": 2}]}, timeout=30)  # fmt: skip
        assert r.status_code == 201
        state = _wait(base)
        assert state["status"] == "done" and state["new_annotations"] == 0
        health = httpx.get(base + "/healthz", timeout=10).json()["learning"]
        assert health["last_version"] == "v0001" and health["decision"] == state["decision"]
        line = _learning_line(base)
        assert line is None or ("v0001" in line and state["decision"] in line)
    # without --learn-every the annotation webhooks start nothing (counted by the test above: ignored)


def test_health_has_no_learning_state_without_learn(served: Path) -> None:
    with running_server(create_app(load_predictor(served), ServeSettings())) as base:
        assert httpx.get(base + "/v1/health", timeout=10).json()["learning"] is None


def test_learn_every_needs_learn(served: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", str(served), "--learn-every", "5"]) == 2
    assert "--learn-every needs --learn" in capsys.readouterr().err
