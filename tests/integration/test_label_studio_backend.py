"""Label Studio's ML backend protocol on a real server (issue 17, item 4), with payloads of the documented shape:
what Label Studio sends to ``/health``, ``/setup`` and ``/predict`` when a project connects a model."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from serving_helpers import GazetteerPredictor, build_tiny_model, running_server

from nerforge.serving import ServeSettings, create_app, load_predictor
from nerforge.serving.label_studio import parse_label_config

CONFIG = """<View>
  <Labels name="ner" toName="body">
    <Label value="Person" background="red"/>
    <Label value="LOC" background="blue"/>
  </Labels>
  <Text name="body" value="$content"/>
</View>"""

# The shape Label Studio posts to /predict (label_studio/ml/api_connector.py sends tasks, project, label_config,
# params); ids and extra keys as a real project has them.
PREDICT = {
    "tasks": [
        {"id": 11, "data": {"content": "Alice Smith 🎉 flew from Paris to Berlin.", "meta": "x"}, "annotations": []},
        {"id": 12, "data": {"content": "Acme Corp hired Bob."}, "predictions": []},
        {"id": 13, "data": {"content": ""}},
    ],
    "project": "3.1733154321",
    "label_config": CONFIG,
    "params": {"login": None, "password": None, "context": None},
}
SETUP = {"project": "3.1733154321", "schema": CONFIG, "hostname": "http://localhost:8080", "access_token": "t0k",
         "model_version": None, "extra_params": ""}  # fmt: skip


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    app = create_app(GazetteerPredictor(), ServeSettings(max_texts=8, batch_max_wait_ms=5))
    with running_server(app) as base:
        yield base + "/label-studio"


def test_health_and_setup(url: str) -> None:
    for path in ("/health", "/"):
        r = httpx.get(url + path, timeout=10)
        assert r.status_code == 200 and r.json()["status"] == "UP"
    r = httpx.post(url + "/setup", json=SETUP, timeout=10)
    assert r.status_code == 200 and r.json()["model_version"] == "test"  # the served model's own version


def test_predict_answers_one_prediction_per_task_in_the_configs_names(url: str) -> None:
    r = httpx.post(url + "/predict", json=PREDICT, timeout=30)
    assert r.status_code == 200, r.text
    doc = r.json()
    results = doc["results"]
    assert len(results) == 3 and doc["model_version"]
    first = results[0]["result"]
    # the config lists "Person" and "LOC": the model's LOC entities keep their type; its PER ("Alice Smith") and
    # ORG are types the config does not have, so they are left out (Label Studio would refuse them)
    text = PREDICT["tasks"][0]["data"]["content"]
    assert [(x["value"]["text"], x["value"]["labels"]) for x in first] == [("Paris", ["LOC"]), ("Berlin", ["LOC"])]
    for x in first:
        assert (x["from_name"], x["to_name"], x["type"]) == ("ner", "body", "labels")
        assert text[x["value"]["start"] : x["value"]["end"]] == x["value"]["text"]  # code points, after the emoji
    assert results[1]["result"] == []  # ORG and PER are not in the config: Label Studio would refuse them
    assert results[2] == {"model_version": doc["model_version"], "score": 1.0, "result": []}


def test_bad_payloads_are_400_with_a_reason(url: str) -> None:
    r = httpx.post(url + "/predict", json={"tasks": "x"}, timeout=10)
    assert r.status_code == 400 and "tasks" in r.text
    r = httpx.post(url + "/setup", json={"schema": "<View><Text name='t' value='$text'/></View>"}, timeout=10)
    assert r.status_code == 400 and "<Labels>" in r.text
    r = httpx.post(url + "/train", json={"annotations": []}, timeout=10)
    assert r.status_code == 501 and r.json()["error"] == "not_implemented" and "nerforge train" in r.json()["message"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/setup", {"schema": 5}),
        ("/setup", {"schema": ["<View/>"]}),
        ("/setup", {"schema": True}),
        ("/setup", {"label_config": {"a": 1}}),
        ("/setup", [1, 2]),
        ("/setup", "text"),
        ("/predict", {"tasks": [], "label_config": 5}),
        ("/predict", {"tasks": [{"data": {"text": "x"}}], "label_config": ["x"]}),
        ("/predict", 3),
        ("/predict", None),
    ],
)
def test_every_json_shape_gets_a_4xx_never_a_500(url: str, path: str, body: object) -> None:
    r = httpx.post(url + path, json=body, timeout=10)
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    assert r.json()["message"], r.text


def test_deeply_nested_json_is_invalid_json(url: str) -> None:
    for path in ("/predict", "/setup"):
        r = httpx.post(
            url + path,
            content=b"[" * 100_000 + b"]" * 100_000,
            headers={"content-type": "application/json"},
            timeout=10,
        )
        assert r.status_code == 400 and r.json()["error"] == "invalid_json", r.text


def test_label_config_parsing() -> None:
    config = parse_label_config(CONFIG)
    assert (config.from_name, config.to_name, config.data_key, config.labels) == ("ner", "body", "content",
                                                                                   ("Person", "LOC"))  # fmt: skip
    assert config.label_for("person") == "Person" and config.label_for("ORG") is None
    default = parse_label_config(None)
    assert (default.from_name, default.to_name, default.data_key) == ("label", "text", "text")
    assert default.label_for("ORG") == "ORG"


def test_real_model_behind_the_protocol(tmp_path: Path, tiny_encoder: Path) -> None:
    model = build_tiny_model(tiny_encoder, tmp_path / "model", types=("LOC", "ORG", "PER"))
    app = create_app(load_predictor(model), ServeSettings(batch_max_wait_ms=5))
    config = CONFIG.replace('value="Person"', 'value="PER"').replace("</Labels>", '<Label value="ORG"/></Labels>')
    with running_server(app) as base:
        r = httpx.post(base + "/label-studio/predict", json={**PREDICT, "label_config": config}, timeout=60)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert len(results) == 3
    found = [x for res in results for x in res["result"]]
    assert found, "the random tiny model tags something in every text"
    for res, task in zip(results, PREDICT["tasks"], strict=True):
        text = task["data"]["content"]
        for x in res["result"]:
            assert text[x["value"]["start"] : x["value"]["end"]] == x["value"]["text"]
            assert x["value"]["labels"][0] in ("LOC", "ORG", "PER") and 0.0 <= x["score"] <= 1.0


# -- what Label Studio sends when a user selects tasks and retrieves predictions (issue 29, item 1) ----------------


def _task(n: int, text: str) -> dict:
    return {"id": 1000 + n, "data": {"content": text}}


def _found(result: dict) -> list[tuple[int, int, str]]:
    return [(x["value"]["start"], x["value"]["end"], x["value"]["text"]) for x in result["result"]]


def test_any_number_of_tasks_is_answered_task_by_task(url: str) -> None:
    """Seventy tasks where the server takes 8 texts per API request: every task gets its own prediction, in order."""
    tasks = [_task(n, f"Task {n}: " + " and ".join(["Paris"] * (n % 4)) + ".") for n in range(70)]
    r = httpx.post(url + "/predict", json={"tasks": tasks, "label_config": CONFIG}, timeout=60)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert len(results) == 70
    for n, (task, result) in enumerate(zip(tasks, results, strict=True)):
        text = task["data"]["content"]
        assert [t for _, _, t in _found(result)] == ["Paris"] * (n % 4), n
        assert all(text[a:b] == t for a, b, t in _found(result))
        assert "error" not in result


def test_long_tasks_are_tagged_whole_not_refused(url: str) -> None:
    """One task of 50,000 characters (past the API's 20,000 per text) among six: all six answered, the long one's
    entities found all along it, offsets into the whole text."""
    long = "Alice Smith flew from Berlin. " + "Nothing here at all today. " * 1850 + "Bob lives in Paris 🎉. "
    assert len(long) > 50_000
    tasks = [_task(n, "Paris and Berlin.") for n in range(5)]
    tasks.insert(3, _task(99, long))
    r = httpx.post(url + "/predict", json={"tasks": tasks, "label_config": CONFIG}, timeout=60)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert len(results) == 6 and all("error" not in x for x in results)
    found = _found(results[3])
    assert [t for _, _, t in found] == ["Berlin", "Paris"]  # LOC only: the config lists Person and LOC
    assert all(long[a:b] == t for a, b, t in found) and found[-1][0] > 49_900
    assert [t for _, _, t in _found(results[4])] == ["Paris", "Berlin"]


def test_a_bad_task_gets_its_own_error_and_the_others_are_answered(url: str) -> None:
    tasks = [_task(0, "Paris."), 5, {"id": 7, "data": {"content": 7}}, {"id": 8, "data": {"other": "x"}},
             _task(4, "Berlin.")]  # fmt: skip
    r = httpx.post(url + "/predict", json={"tasks": tasks, "label_config": CONFIG}, timeout=30)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert len(results) == 5
    assert [t for _, _, t in _found(results[0])] == ["Paris"] and [t for _, _, t in _found(results[4])] == ["Berlin"]
    for n, result in ((2, results[1]), (7, results[2]), (8, results[3])):  # its id, else its place from 1
        assert result["result"] == [] and f"task {n} has no text in data.content" in result["error"]
    assert "data.content is a number" in results[2]["error"]


def test_what_the_deadline_leaves_is_marked_to_retrieve_again() -> None:
    """A request with more work than the deadline allows answers in time with what is done; the rest say so."""
    predictor = GazetteerPredictor(delay_s=0.2)
    settings = ServeSettings(batch_max_texts=2, batch_max_wait_ms=1, label_studio_deadline_s=1.0)
    tasks = [{"id": n, "data": {"text": f"Paris {n}."}} for n in range(40)]  # 20 pieces of 0.2 s: 4 s of work
    with running_server(create_app(predictor, settings)) as base:
        started = time.monotonic()
        r = httpx.post(base + "/label-studio/predict", json={"tasks": tasks}, timeout=30)
        took = time.monotonic() - started
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    done = [n for n, x in enumerate(results) if "error" not in x]
    assert 0 < len(done) < 40 and done == list(range(len(done)))  # the first tasks, in order
    assert all([t for _, _, t in _found(results[n])] == ["Paris"] for n in done)
    assert all("retrieve predictions for it again" in x["error"] for x in results[len(done) :])
    assert took < 1.0 + 1.0  # the deadline and the piece in progress, not the 4 s of the whole request


def test_the_label_studio_route_takes_a_body_larger_than_the_apis(url: str) -> None:
    """Label Studio sends the selected tasks' whole data; the route's own body limit (64 MB) applies, not the API's."""
    settings = ServeSettings(max_body_bytes=100_000, batch_max_wait_ms=1)
    tasks = [{"id": n, "data": {"text": "Paris. " + "x" * 4000}} for n in range(60)]  # about 240 KB
    with running_server(create_app(GazetteerPredictor(), settings)) as base:
        r = httpx.post(base + "/label-studio/predict", json={"tasks": tasks}, timeout=60)
        api = httpx.post(base + "/v1/entities", json={"texts": [t["data"]["text"] for t in tasks[:30]]}, timeout=60)
    assert r.status_code == 200 and len(r.json()["results"]) == 60, r.text
    assert api.status_code == 413 and api.json()["error"] == "body_too_large"
