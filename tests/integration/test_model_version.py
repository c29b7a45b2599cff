"""One model, one version string (issue 29, item 1): prediction files, suggestions, the server's model, health and
Label Studio routes, the model card and an ONNX export all name a trained model the same way; another training run
gets another name. Label Studio tells predictions apart by this string: two names for one model would have every
task predicted twice."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from serving_helpers import running_server
from test_train import write_corpus

from nerforge.cli import main
from nerforge.model_dir import ModelMeta, weights_digest


def _train(tmp_path: Path, encoder: Path, name: str, seed: int) -> Path:
    data = write_corpus(tmp_path)
    out = tmp_path / name
    code = main(["train", "--train", str(data["train"]), "--dev", str(data["dev"]), "--output", str(out),
                 "--model", str(encoder), "--epochs", "1", "--batch-size", "8", "--seed", str(seed), "--no-tracking",
                 "--head", "plain", "--no-progress"])  # fmt: skip
    assert code == 0
    return out


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory, tiny_encoder: Path) -> Path:
    return _train(tmp_path_factory.mktemp("version"), tiny_encoder, "model", seed=1)


def test_every_place_names_the_model_by_one_version(
    model: Path, tmp_path: Path, tiny_encoder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from nerforge.serving import ServeSettings, create_app, load_predictor

    version = ModelMeta.load(model).model_version
    assert version == f"nerforge-{weights_digest(model)[:12]}"  # the weights as trained, not the folder's name
    assert f"`{version}`" in (model / "README.md").read_text(encoding="utf-8")
    assert main(["info", str(model)]) == 0
    assert f"version {version}" in capsys.readouterr().out

    texts = tmp_path / "texts.txt"
    texts.write_text("We need Python and data analysis .\nGo and code review .\n", encoding="utf-8")
    tasks = tmp_path / "tasks.json"
    assert main(["predict", str(model), str(texts), "-o", str(tasks), "--format", "label-studio", "--no-progress"]) == 0
    from_file = {p["model_version"] for t in json.loads(tasks.read_text(encoding="utf-8")) for p in t["predictions"]}
    suggested = tmp_path / "suggest.json"
    assert main(["suggest", str(model), str(texts), "-o", str(suggested), "--format", "label-studio", "-n", "2",
                 "--no-progress"]) == 0  # fmt: skip
    from_suggest = {p["model_version"] for t in json.loads(suggested.read_text(encoding="utf-8"))
                    for p in t["predictions"]}  # fmt: skip

    app = create_app(load_predictor(model), ServeSettings(batch_max_wait_ms=2))
    with running_server(app) as base:
        served = httpx.get(base + "/v1/model", timeout=30).json()
        health = httpx.get(base + "/healthz", timeout=30).json()
        ls_health = httpx.get(base + "/label-studio/health", timeout=30).json()
        ls_setup = httpx.post(base + "/label-studio/setup", json={"schema": None}, timeout=30).json()
        ls = httpx.post(base + "/label-studio/predict",
                        json={"tasks": [{"id": 1, "data": {"text": "We need Python ."}}]}, timeout=30).json()  # fmt: skip
    assert from_file == from_suggest == {version}
    assert served["model_version"] == health["model_version"] == ls_health["model_version"] == version
    assert ls_setup["model_version"] == ls["model_version"] == ls["results"][0]["model_version"] == version
    assert served["trained_with"] and served["trained_with"] != version  # the nerforge version is said apart

    # an ONNX export is the same model: the same version
    exported = tmp_path / "onnx"
    assert main(["export", str(model), "-o", str(exported), "--onnx"]) == 0
    assert ModelMeta.load(exported).model_version == version

    # a model trained again (another seed) is another version
    other = _train(tmp_path, tiny_encoder, "other", seed=2)
    assert ModelMeta.load(other).model_version != version


def test_a_model_saved_before_the_digest_keeps_a_stable_version(model: Path, tmp_path: Path) -> None:
    meta = ModelMeta.load(model)
    del meta.extra["model_id"]
    older = meta.model_version
    assert older.startswith("nerforge-") and older == meta.model_version  # derived from its metadata, stable
    meta.metrics = {"test": {"micro": {"f1": 0.5}}}
    assert meta.model_version != older
