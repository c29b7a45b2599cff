"""A layered model (issue 28, item 2): data with two tag columns trains one model, one encoder and a tagger per
layer, that predicts both layers, their entities overlapping; a model that learned one layer only fails here."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from nerforge.cli import main

TECH = ["Python", "Docker", "Kubernetes", "Rust", "Java", "Go"]
VERBS = ["building", "testing", "deploying", "running"]


def _sentence(rng: random.Random) -> list[tuple[str, str, str]]:
    """``We like building Python services .``: a skill span (verb .. services) with a knowledge span inside."""
    verb, tech = rng.choice(VERBS), rng.choice(TECH)
    rows = [
        ("We", "O", "O"),
        ("like", "O", "O"),
        (verb, "B-Skill", "O"),
        (tech, "I-Skill", "B-Knowledge"),
        ("services", "I-Skill", "O"),
        ("and", "O", "O"),
        (rng.choice(TECH), "O", "B-Knowledge"),
        (".", "O", "O"),
    ]
    return rows


def _write(path: Path, n: int, seed: int) -> Path:
    rng = random.Random(seed)
    blocks = ["\n".join("\t".join(row) for row in _sentence(rng)) for _ in range(n)]
    path.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def layered(tmp_path_factory: pytest.TempPathFactory, tiny_encoder: Path) -> Path:
    folder = tmp_path_factory.mktemp("layered")
    train, dev = _write(folder / "train.conll", 64, 1), _write(folder / "dev.conll", 16, 2)
    out = folder / "model"
    code = main(["train", "--train", str(train), "--dev", str(dev), "--output", str(out), "--model", str(tiny_encoder),
                 "--epochs", "12", "--batch-size", "8", "--learning-rate", "3e-3", "--seed", "1", "--no-tracking",
                 "--no-progress", "--tag-column", "1", "--tag-column", "2", "--layer-names", "skill,knowledge"])  # fmt: skip
    assert code == 0
    return out


def test_a_two_column_file_trains_one_model_of_both_layers(layered: Path) -> None:
    meta = json.loads((layered / "nerforge.json").read_text(encoding="utf-8"))
    head = meta["extra"]["head"]
    assert [name for name, _ in head["layers"]] == ["skill", "knowledge"]
    assert meta["head"].endswith("+layers2") and len(meta["extra"]["layer_crfs"]) == 1
    dev = meta["metrics"]["dev"]
    assert set(dev["per_type"]) == {"skill/Skill", "knowledge/Knowledge"}
    assert dev["per_type"]["knowledge/Knowledge"]["f1"] > 0.8 and dev["per_type"]["skill/Skill"]["f1"] > 0.8
    # every evaluation logs each layer's dev F1 (one type per layer here: that type's F1) beside the pooled one
    rows = json.loads((layered / "epochs.json").read_text(encoding="utf-8"))
    assert all({"eval_f1/skill", "eval_f1/knowledge"} <= set(row) for row in rows)
    best = max(rows, key=lambda row: row["eval_f1"])
    assert best["eval_f1/skill"] == pytest.approx(dev["per_type"]["skill/Skill"]["f1"])
    assert best["eval_f1/knowledge"] == pytest.approx(dev["per_type"]["knowledge/Knowledge"]["f1"])
    assert any(row["eval_f1/skill"] != row["eval_f1/knowledge"] for row in rows)  # not one number twice


def test_the_layered_model_predicts_both_layers_overlapping(layered: Path, tmp_path: Path) -> None:
    from nerforge.prediction.tagger import Tagger

    tagger = Tagger.load(layered)
    text = "We like testing Docker services and Rust ."
    found = {(e.text, e.label, e.layer) for e in tagger.predict_text(text)}
    assert ("testing Docker services", "Skill", "skill") in found
    assert ("Docker", "Knowledge", "knowledge") in found and ("Rust", "Knowledge", "knowledge") in found
    out = tmp_path / "pred.jsonl"
    (tmp_path / "in.txt").write_text(text + "\n", encoding="utf-8")
    assert main(["predict", str(layered), str(tmp_path / "in.txt"), "-o", str(out)]) == 0
    record = json.loads(out.read_text(encoding="utf-8").splitlines()[0])
    assert {e.get("layer") for e in record["entities"]} == {"skill", "knowledge"}


def test_evaluate_scores_every_layer(layered: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    test = _write(tmp_path / "test.conll", 12, 3)
    assert main(["evaluate", str(layered), str(test), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["per_type"]) == {"skill/Skill", "knowledge/Knowledge"}


def test_the_onnx_export_of_a_layered_model_tags_both_layers_alike(layered: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from nerforge.prediction.tagger import Tagger

    onnx = tmp_path / "onnx"
    assert main(["export", str(layered), "--onnx", "--output", str(onnx)]) == 0  # the parity check runs inside
    text = "We like deploying Go services and Java ."
    torch_found = Tagger.load(layered).predict_text(text)
    onnx_found = Tagger.load(onnx, backend="onnx").predict_text(text)
    assert [(e.text, e.label, e.layer) for e in onnx_found] == [(e.text, e.label, e.layer) for e in torch_found]
    assert {e.layer for e in onnx_found} == {"skill", "knowledge"}
    int8 = tmp_path / "int8"
    assert main(["export", str(layered), "--onnx", "--quantize", "int8", "--output", str(int8)]) == 0
    assert {e.layer for e in Tagger.load(int8, backend="onnx").predict_text(text)} == {"skill", "knowledge"}


def test_the_page_shows_each_layer_on_its_own_named_row(layered: Path) -> None:
    """The API returns each entity's layer, and the page draws one row of the text per layer (Chromium)."""
    import httpx
    from serving_helpers import chromium_page, running_server, screenshot, tagged_rows

    from nerforge.serving import ServeSettings, create_app, load_predictor

    text = "We like testing Docker services and Rust ."
    with running_server(create_app(load_predictor(layered), ServeSettings(batch_max_wait_ms=1))) as base:
        info = httpx.get(base + "/v1/model", timeout=30).json()
        assert info["labels"] == ["Knowledge", "Skill"] and [x["name"] for x in info["layers"]] == [
            "skill",
            "knowledge",
        ]
        api = httpx.post(base + "/v1/entities", json={"text": text}, timeout=60).json()
        assert {(e["text"], e["layer"]) for e in api["entities"]} >= {("testing Docker services", "skill"),
                                                                       ("Docker", "knowledge")}  # fmt: skip
        with chromium_page(base + "/", width=1000) as page:
            page.locator("#model-line", has_text="entity types").wait_for()
            model_line = page.inner_text("#model-line")
            rows = tagged_rows(page, text)
            screenshot(page, "layered-page.png")
    assert "2 entity types in 2 layers (skill: Skill; knowledge: Knowledge)" in model_line
    assert rows[0] == ["skill", ["testing Docker services"]]
    assert rows[1][0] == "knowledge" and {"Docker", "Rust"} <= set(rows[1][1])


def test_distilling_a_layered_model_is_refused_in_one_line(
    layered: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _write(tmp_path / "t.conll", 8, 4)
    code = main(["distill", str(layered), "--train", str(data), "--layers", "1", "-o", str(tmp_path / "s"),
                 "--no-tracking"])  # fmt: skip
    assert code == 2 and "is a layered model (skill, knowledge)" in capsys.readouterr().err


def test_suggest_scores_every_layer_and_proposes_entities_of_both(layered: Path, tmp_path: Path) -> None:
    """``suggest`` with a layered model: a text's uncertainty is over every layer's choices (a layer the model is
    unsure of makes the text worth annotating), and the proposed entities carry their layer."""
    from nerforge.prediction.suggest import uncertainty
    from nerforge.prediction.tagger import Tagger

    texts = ["We like testing Docker services and Rust .", "We like running Go services and Java ."]
    pool = tmp_path / "pool.txt"
    pool.write_text("\n".join(texts) + "\n", encoding="utf-8")
    out = tmp_path / "next.jsonl"
    assert main(["suggest", str(layered), str(pool), "--count", "2", "-o", str(out), "--no-progress"]) == 0
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    tagger = Tagger.load(layered, progress=False)
    for row in rows:
        prediction = tagger.predict_words([[w.text for w in tagger.words(row["text"])]])[0]
        every = [x for p in prediction.layers.values() for x in p.scores]
        assert row["score"] == pytest.approx(uncertainty(every), abs=1e-6)
        assert row["score"] != pytest.approx(uncertainty(prediction.scores), abs=1e-9)  # not the first layer's alone
    tasks_out = tmp_path / "next.json"
    assert main(["suggest", str(layered), str(pool), "-n", "2", "-o", str(tasks_out), "--format", "label-studio",
                 "--no-progress"]) == 0  # fmt: skip
    results = [r for t in json.loads(tasks_out.read_text(encoding="utf-8")) for r in t["predictions"][0]["result"]]
    assert {r["from_name"] for r in results} == {"skill", "knowledge"}


def test_evaluate_adds_no_depth_table_when_nothing_nests_within_a_layer(
    layered: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    test = _write(tmp_path / "test.conll", 6, 5)
    assert main(["evaluate", str(layered), str(test), "--json", "--output", str(tmp_path / "e")]) == 0
    assert "by_depth" not in json.loads(capsys.readouterr().out)  # knowledge inside skill: two layers, no depth
    assert "By nesting depth" not in (tmp_path / "e" / "report.md").read_text(encoding="utf-8")


def test_a_layered_model_with_layer_adapters_trains_exports_and_tags_both_layers(
    tmp_path: Path, tiny_encoder: Path
) -> None:
    """``model.head.layer_adapter``: the adapters are trained, saved, exported to ONNX (the parity check runs inside
    the export) and tag both layers alike on either backend."""
    pytest.importorskip("onnxruntime")
    from safetensors.torch import load_file

    out = _train_with(tmp_path, tiny_encoder, "model.head.layer_adapter=16")
    meta = json.loads((out / "nerforge.json").read_text(encoding="utf-8"))
    assert meta["extra"]["head"]["layer_adapter"] == 16
    weights = load_file(str(out / "model.safetensors"))
    ups = [weights[f"layer_adapters.{i}.up.weight"] for i in range(2)]
    assert all(float(u.abs().sum()) > 0 for u in ups)  # trained away from the identity they start as
    _tags_both_layers_alike_after_export(out, tmp_path / "onnx")


def test_a_layered_model_with_a_layer_mix_trains_exports_and_tags_both_layers(
    tmp_path: Path, tiny_encoder: Path
) -> None:
    """``model.head.layer_mix``: each layer's mix of the encoder states is trained (away from where it starts, and
    apart from the other layer's), saved, exported to ONNX (the parity check runs inside the export) and tags both
    layers alike on either backend."""
    pytest.importorskip("onnxruntime")
    import torch
    from safetensors.torch import load_file

    from nerforge.modeling.blocks import MIX_SCALE, MIX_START

    out = _train_with(tmp_path, tiny_encoder, "model.head.layer_mix=true")
    meta = json.loads((out / "nerforge.json").read_text(encoding="utf-8"))
    assert meta["extra"]["head"]["layer_mix"] is True
    mix = load_file(str(out / "model.safetensors"))["layer_mix"].float() * MIX_SCALE
    start = torch.zeros_like(mix)
    start[:, -1] = MIX_START
    assert float((mix - start).abs().max()) > 0.1 and not torch.allclose(mix[0], mix[1])
    _tags_both_layers_alike_after_export(out, tmp_path / "onnx")


def _train_with(tmp_path: Path, tiny_encoder: Path, setting: str) -> Path:
    """A layered model (skill, knowledge) trained on a two-column file with one ``--set`` head option."""
    train, dev = _write(tmp_path / "train.conll", 64, 1), _write(tmp_path / "dev.conll", 16, 2)
    out = tmp_path / "model"
    assert main(["train", "--train", str(train), "--dev", str(dev), "--output", str(out), "--model", str(tiny_encoder),
                 "--epochs", "12", "--batch-size", "8", "--learning-rate", "3e-3", "--seed", "1", "--no-tracking",
                 "--no-progress", "--tag-column", "1", "--tag-column", "2", "--layer-names", "skill,knowledge",
                 "--set", setting]) == 0  # fmt: skip
    return out


def _tags_both_layers_alike_after_export(model: Path, onnx: Path) -> None:
    """ONNX export (its parity check runs inside) and the same entities of both layers from either backend."""
    from nerforge.prediction.tagger import Tagger

    assert main(["export", str(model), "--onnx", "--output", str(onnx)]) == 0
    text = "We like deploying Go services and Java ."
    torch_found = Tagger.load(model).predict_text(text)
    onnx_found = Tagger.load(onnx, backend="onnx").predict_text(text)
    assert [(e.text, e.label, e.layer) for e in onnx_found] == [(e.text, e.label, e.layer) for e in torch_found]
    assert {e.layer for e in torch_found} == {"skill", "knowledge"}


def test_a_layered_model_with_its_own_top_layers_trains_exports_and_tags_both_layers(
    tmp_path: Path, tiny_encoder: Path
) -> None:
    """``model.head.own_top_layers``: the knowledge layer's copy of the encoder's top layer is trained away from the
    shared top layer it starts as, saved, exported to ONNX (the parity check runs inside the export) and tags both
    layers alike on either backend."""
    pytest.importorskip("onnxruntime")
    from safetensors.torch import load_file

    out = _train_with(tmp_path, tiny_encoder, "model.head.own_top_layers=1")
    meta = json.loads((out / "nerforge.json").read_text(encoding="utf-8"))
    assert meta["extra"]["head"]["own_top_layers"] == 1
    weights = load_file(str(out / "model.safetensors"))
    name = "attention.self.query.weight"
    copy, shared = weights[f"own_tops.copies.0.0.{name}"], weights[f"encoder.encoder.layer.1.{name}"]
    assert float((copy.float() - shared.float()).abs().max()) > 1e-3
    _tags_both_layers_alike_after_export(out, tmp_path / "onnx")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "model.head.layer_weights names no layer of the data: knowlege (the layers: skill, knowledge)"),
        (["--layer", "skill"], "model.head.layer_weights weighs the layers of a layered model; this data trains"),
    ],
)
def test_layer_weights_for_layers_the_data_lacks_are_one_line(
    tmp_path: Path, tiny_encoder: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    train = _write(tmp_path / "train.conll", 8, 1)
    code = main(["train", "--train", str(train), "--output", str(tmp_path / "m"), "--model", str(tiny_encoder),
                 "--no-tracking", "--no-progress", "--tag-column", "1", "--tag-column", "2", "--layer-names",
                 "skill,knowledge", "--set", "model.head.layer_weights={knowlege = 2.0}", *extra])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "m").exists()


def test_a_layered_run_counts_every_layer_not_the_first_columns_tags(
    tmp_path: Path, tiny_encoder: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """The first column has no entity in train, the second has: a layered model still has entities to learn (this
    was "the training data has no entities"), and the run's counts are of both layers (its last line said "3 tags",
    the first layer's)."""
    rows = [_sentence(random.Random(seed)) for seed in range(12)]
    train = tmp_path / "train.conll"
    train.write_text("\n\n".join("\n".join(f"{w}\tO\t{k}" for w, _, k in r) for r in rows) + "\n", encoding="utf-8")
    dev = _write(tmp_path / "dev.conll", 4, 2)
    with caplog.at_level("INFO"):
        code = main(["train", "--train", str(train), "--dev", str(dev), "--output", str(tmp_path / "m"),
                     "--model", str(tiny_encoder), "--epochs", "1", "--no-tracking", "--no-progress",
                     "--tag-column", "1", "--tag-column", "2", "--layer-names", "skill,knowledge"])  # fmt: skip
    assert code == 0
    assert "labels (2 types from all splits, every layer): Knowledge, Skill" in caplog.text
    assert "only in dev/test, never in train" in caplog.text and f"Skill ({dev}:1)" in caplog.text
    assert "the dev split holds only 12 entities" in caplog.text  # 4 skill + 8 knowledge, not the 4 skills alone
    assert f"model: {tmp_path / 'm'} (layers skill 3 tags, knowledge 3 tags; " in capsys.readouterr().out
    assert re.search(r"epoch 1/1: .* F1 [0-9.]+ \(strict IOB2\); by layer: skill F1 [0-9.]+, knowledge F1 [0-9.]+",
                     caplog.text)  # fmt: skip
