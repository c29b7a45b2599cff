"""Label Studio's ML backend protocol on a real server (issue 17, item 4), with payloads of the documented shape:
what Label Studio sends to ``/health``, ``/setup`` and ``/predict`` when a project connects a model."""

from __future__ import annotations

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
    r = httpx.post(url + "/predict", json={"tasks": [{"id": 1, "data": {"other": "x"}}], "label_config": CONFIG},
                   timeout=10)  # fmt: skip
    assert r.status_code == 400 and "data.content" in r.text
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
        ("/predict", {"tasks": [5, None]}),
        ("/predict", {"tasks": [{"data": [1]}]}),
        ("/predict", {"tasks": [{"data": {"text": 7}}]}),
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
        r = httpx.post(url + path, content=b"[" * 100_000 + b"]" * 100_000,
                       headers={"content-type": "application/json"}, timeout=10)
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
