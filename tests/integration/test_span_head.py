"""The span head (issue 28, item 3): entities nested in one another, as GermEval 2014 marks them in an outer and an
inner column, trained as one layer (``--head span``), predicted nested, scored by depth, exported to ONNX. A model
that found only the outermost entities (a tagger's flat view) fails here."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from nerforge.cli import main

CITIES = ["Bonn", "Berlin", "Paris", "Madrid", "Rome", "Oslo", "Vienna", "Prague"]


def _rows(rng: random.Random) -> list[tuple[str, str, str]]:
    """``Students of the [[Bonn]LOC University]ORG met in [Rome]LOC .`` in an outer and an inner column."""
    city, other = rng.choice(CITIES), rng.choice(CITIES)
    return [
        ("Students", "O", "O"),
        ("of", "O", "O"),
        ("the", "O", "O"),
        (city, "B-ORG", "B-LOC"),
        ("University", "I-ORG", "O"),
        ("met", "O", "O"),
        ("in", "O", "O"),
        (other, "B-LOC", "O"),
        (".", "O", "O"),
    ]


def _write(path: Path, n: int, seed: int, per_example: int = 1) -> Path:
    """``n`` examples of ``per_example`` sentences each (several: longer than a window of the model)."""
    rng = random.Random(seed)
    examples = ["\n".join("\t".join(r) for _ in range(per_example) for r in _rows(rng)) for _ in range(n)]
    path.write_text("\n\n".join(examples) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def span_model(tmp_path_factory: pytest.TempPathFactory, tiny_encoder: Path) -> Path:
    folder = tmp_path_factory.mktemp("span")
    # examples of three sentences (27 words) in windows of 16 pieces: spans are learned and found across windows
    train, dev = _write(folder / "train.conll", 24, 1, 3), _write(folder / "dev.conll", 8, 2, 3)
    out = folder / "model"
    code = main(["train", "--train", str(train), "--dev", str(dev), "--output", str(out), "--model", str(tiny_encoder),
                 "--epochs", "12", "--batch-size", "8", "--learning-rate", "3e-3", "--seed", "1", "--no-tracking",
                 "--no-progress", "--tag-column", "1", "--tag-column", "2", "--head", "span", "--max-length", "16"])  # fmt: skip
    assert code == 0
    return out


def test_two_nested_columns_train_one_span_model_that_learns_the_inner_entities(span_model: Path) -> None:
    meta = json.loads((span_model / "nerforge.json").read_text(encoding="utf-8"))
    assert meta["head"] == "span"
    assert meta["extra"]["head"]["span"] is True and meta["extra"]["head"]["max_width"] == 2  # the longest entity
    dev = meta["metrics"]["dev"]
    assert dev["micro"]["support"] == 8 * 9  # every entity, the inner ones too (the flat view has 8 * 6)
    assert dev["per_type"]["LOC"]["support"] == 48 and dev["micro"]["f1"] > 0.9
    card = (span_model / "README.md").read_text(encoding="utf-8")
    assert "a span head: every span of up to 2 words" in card


def test_info_says_the_model_finds_nested_entities(span_model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(span_model)]) == 0
    assert "head:      span (nested entities in one layer: every span of up to 2 words" in capsys.readouterr().out


def test_the_span_model_predicts_nested_entities_with_offsets(span_model: Path) -> None:
    from nerforge.prediction.tagger import Tagger

    tagger = Tagger.load(span_model)
    text = "Students of the Vienna University met in Paris ."
    found = {(e.text, e.label, e.start) for e in tagger.predict_text(text)}
    assert found == {("Vienna University", "ORG", 16), ("Vienna", "LOC", 16), ("Paris", "LOC", 41)}


def test_a_long_text_in_many_windows_keeps_every_nested_entity(span_model: Path) -> None:
    from nerforge.prediction.tagger import Tagger

    tagger = Tagger.load(span_model)
    text = " ".join(f"Students of the {c} University met in Rome ." for c in CITIES * 4)  # 288 words
    entities = tagger.predict_text(text)
    words = [w.text for w in tagger.words(text)]
    assert len(tagger.plan.encode(tagger.engine.tokenizer, [words]).windows) > 20  # windows of 16 pieces
    assert sum(e.label == "ORG" for e in entities) == len(CITIES) * 4
    assert sum(e.label == "LOC" for e in entities) == len(CITIES) * 8
    assert all(text[e.start : e.end] == e.text for e in entities)


def test_evaluate_scores_every_entity_and_the_inner_level(span_model: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    test = _write(tmp_path / "test.conll", 12, 3)
    assert main(["evaluate", str(span_model), str(test), "--json", "--output", str(tmp_path / "eval")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["micro"]["support"] == 36 and report["micro"]["f1"] > 0.9
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["by_depth"]["inner"]["support"] == 12 and metrics["by_depth"]["inner"]["recall"] > 0.9
    assert "## By nesting depth" in (tmp_path / "eval" / "report.md").read_text(encoding="utf-8")


def test_the_onnx_exports_find_the_same_nested_entities(span_model: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from nerforge.prediction.tagger import Tagger

    test = _write(tmp_path / "test.conll", 8, 4)
    text = "Students of the Oslo University met in Prague ."
    expected = [e.to_dict() for e in Tagger.load(span_model).predict_text(text)]
    for name, extra in (("fp32", []), ("int8", ["--quantize", "int8"])):
        out = tmp_path / name
        assert (
            main(["export", str(span_model), "--onnx", *extra, "--output", str(out), "--parity-data", str(test)]) == 0
        )
        parity = json.loads((out / "parity.json").read_text(encoding="utf-8"))
        assert parity["entity_f1_vs_reference"] == 1.0 and parity["gold"]["candidate_f1"] > 0.9
        got = Tagger.load(out).predict_text(text)
        assert [(e["text"], e["label"]) for e in expected] == [(e.text, e.label) for e in got]


def test_span_head_options_that_cannot_work_are_one_line(tmp_path: Path, tiny_encoder: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    train = _write(tmp_path / "train.conll", 8, 5)
    config = tmp_path / "c.toml"
    config.write_text("[model.head]\nspan = true\ncrf = true\n", encoding="utf-8")
    code = main(["train", str(config), "--train", str(train), "--output", str(tmp_path / "m"), "--model",
                 str(tiny_encoder), "--no-tracking"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "no CRF" in err and "Traceback" not in err


def test_the_page_shows_nested_entities_on_an_outer_and_an_inner_row(span_model: Path) -> None:
    """The API returns nested entities with their offsets, and the page draws one row per depth (Chromium)."""
    import httpx
    from serving_helpers import chromium_page, running_server, screenshot, tagged_rows

    from nerforge.serving import ServeSettings, create_app, load_predictor

    text = "Students of the Madrid University met in Oslo ."
    with running_server(create_app(load_predictor(span_model), ServeSettings(batch_max_wait_ms=1))) as base:
        api = httpx.post(base + "/v1/entities", json={"text": text}, timeout=60).json()
        assert {(e["text"], e["label"]) for e in api["entities"]} == {("Madrid University", "ORG"),
                                                                      ("Madrid", "LOC"), ("Oslo", "LOC")}  # fmt: skip
        with chromium_page(base + "/", width=1000) as page:
            rows = tagged_rows(page, text)
            screenshot(page, "span-page.png")
    assert rows == [["outer", ["Madrid University", "Oslo"]], ["inner", ["Madrid"]]]


def test_nested_predictions_go_to_the_annotation_tools_as_they_hold_them(span_model: Path, tmp_path: Path) -> None:
    """Label Studio and doccano hold overlapping regions as they are; a spaCy DocBin holds the outermost in
    ``doc.ents`` and every entity in spancat's ``sc`` span group."""
    src = tmp_path / "in.txt"
    src.write_text("Students of the Rome University met in Bonn .\n", encoding="utf-8")
    expected = {("Rome University", "ORG"), ("Rome", "LOC"), ("Bonn", "LOC")}
    studio = tmp_path / "ls.json"
    assert main(["predict", str(span_model), str(src), "-o", str(studio), "--format", "label-studio"]) == 0
    task = json.loads(studio.read_text(encoding="utf-8"))[0]
    assert {(r["value"]["text"], r["value"]["labels"][0]) for r in task["predictions"][0]["result"]} == expected
    doccano = tmp_path / "d.jsonl"
    assert main(["predict", str(span_model), str(src), "-o", str(doccano), "--format", "doccano"]) == 0
    line = json.loads(doccano.read_text(encoding="utf-8").splitlines()[0])
    assert {(line["text"][a:b], label) for a, b, label in line["label"]} == expected
    spacy = pytest.importorskip("spacy")
    from spacy.tokens import DocBin

    out = tmp_path / "out.spacy"
    assert main(["predict", str(span_model), str(src), "-o", str(out), "--format", "spacy", "--no-progress"]) == 0
    doc = next(iter(DocBin().from_bytes(out.read_bytes()).get_docs(spacy.blank("en").vocab)))
    assert {(e.text, e.label_) for e in doc.ents} == {("Rome University", "ORG"), ("Bonn", "LOC")}
    assert {(s.text, s.label_) for s in doc.spans["sc"]} == expected


def test_distilling_a_span_model_is_refused_in_one_line(span_model: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    data = _write(tmp_path / "t.conll", 8, 4)
    code = main(["distill", str(span_model), "--train", str(data), "--layers", "1", "-o", str(tmp_path / "s"),
                 "--no-tracking"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "is a span head" in err and "Traceback" not in err


def test_suggest_proposes_nested_entities_for_label_studio(span_model: Path, tmp_path: Path) -> None:
    pool = tmp_path / "pool.txt"
    pool.write_text(
        "Students of the Rome University met in Bonn .\nStudents of the Oslo University met in Rome .\n",
        encoding="utf-8",
    )
    out = tmp_path / "next.json"
    assert main(["suggest", str(span_model), str(pool), "-n", "2", "-o", str(out), "--format", "label-studio",
                 "--no-progress"]) == 0  # fmt: skip
    tasks = json.loads(out.read_text(encoding="utf-8"))
    labelled = {(r["value"]["text"], r["value"]["labels"][0]) for t in tasks for r in t["predictions"][0]["result"]}
    assert {("Rome University", "ORG"), ("Rome", "LOC"), ("Oslo", "LOC")} <= labelled


def _train_quietly(data: Path, out: Path, encoder: Path, *extra: str) -> None:
    assert main(["train", "--train", str(data), "--output", str(out), "--model", str(encoder), "--epochs", "12",
                 "--batch-size", "8", "--learning-rate", "3e-3", "--seed", "1", "--no-tracking", "--no-progress",
                 *extra]) == 0  # fmt: skip


def test_a_brat_folder_with_nested_entities_trains_a_span_model(tmp_path: Path, tiny_encoder: Path) -> None:
    """GENIA-style nesting in one BRAT layer: ``[[Bonner]LOCderiv Universität]ORG``, read from ``.txt``/``.ann``
    pairs, learned and found nested."""
    folder = tmp_path / "brat"
    folder.mkdir()
    rng = random.Random(2)
    for k in range(40):
        city = rng.choice(["Bonner", "Berliner", "Kieler", "Mainzer"])
        other = rng.choice(["Bonn", "Rom", "Oslo", "Kiel"])
        text = f"Die {city} Universität liegt in {other}.\n"
        at = text.index(other, 4 + len(city))
        (folder / f"d{k:02d}.txt").write_text(text, encoding="utf-8")
        (folder / f"d{k:02d}.ann").write_text(
            f"T1\tORG 4 {16 + len(city)}\t{city} Universität\nT2\tLOCderiv 4 {4 + len(city)}\t{city}\n"
            f"T3\tLOC {at} {at + len(other)}\t{other}\n", encoding="utf-8")  # fmt: skip
    out = tmp_path / "model"
    _train_quietly(folder, out, tiny_encoder, "--head", "span")
    from nerforge.prediction.tagger import Tagger

    found = {(e.text, e.label) for e in Tagger.load(out).predict_text("Die Kieler Universität liegt in Rom.")}
    assert found == {("Kieler Universität", "ORG"), ("Kieler", "LOCderiv"), ("Rom", "LOC")}


def test_label_studio_exports_with_overlapping_regions_train(tmp_path: Path, tiny_encoder: Path) -> None:
    """Overlapping regions of two ``<Labels>`` controls train a layered model; nested regions of one control train a
    span model that finds them nested."""
    from nerforge.prediction.tagger import Tagger

    def region(text: str, start: int, end: int, label: str, control: str) -> dict:
        return {"from_name": control, "to_name": "text", "type": "labels",
                "value": {"start": start, "end": end, "text": text[start:end], "labels": [label]}}  # fmt: skip

    rng = random.Random(4)
    layered, nested = [], []
    for k in range(48):
        tech = rng.choice(["Python", "Docker", "Rust", "Java"])
        text = f"We like testing {tech} services a lot."
        start = text.index(tech)
        outer = (text.index("testing"), text.index(" a lot"))
        layered.append(
            {
                "id": k,
                "data": {"text": text},
                "annotations": [
                    {
                        "result": [
                            region(text, *outer, "SKILL", "skill"),
                            region(text, start, start + len(tech), "TECH", "knowledge"),
                        ]
                    }
                ],
            }
        )
        nested.append(
            {
                "id": k,
                "data": {"text": text},
                "annotations": [
                    {
                        "result": [
                            region(text, *outer, "SKILL", "label"),
                            region(text, start, start + len(tech), "TECH", "label"),
                        ]
                    }
                ],
            }
        )
    text = "We like testing Docker services a lot."
    for name, tasks, extra in (("layered", layered, []), ("nested", nested, ["--head", "span"])):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(tasks), encoding="utf-8")
        _train_quietly(path, tmp_path / name, tiny_encoder, *extra)
        found = {(e.text, e.label, e.layer) for e in Tagger.load(tmp_path / name).predict_text(text)}
        layers = ("skill", "knowledge") if name == "layered" else ("", "")
        assert found == {("testing Docker services", "SKILL", layers[0]), ("Docker", "TECH", layers[1])}, name


def test_bench_scores_every_nested_entity(span_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Gold data without its inner column: the inner entities the model finds are false positives for a scorer of
    every entity, invisible to one of the outermost tags only."""
    test = _write(tmp_path / "test.conll", 6, 7)
    rows = [line.rsplit("\t", 1)[0] + "\tO" if line else line for line in test.read_text(encoding="utf-8").split("\n")]
    test.write_text("\n".join(rows), encoding="utf-8")
    assert main(["evaluate", str(span_model), str(test), "--json", "--output", str(tmp_path / "eval")]) == 0
    evaluated = json.loads(capsys.readouterr().out)["micro"]["f1"]
    assert main(["bench", str(span_model), str(test), "--batch-sizes", "4", "--threads", "1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert evaluated < 0.9  # the inner entities found count against precision
    assert report["f1"] == pytest.approx(evaluated, abs=1e-9) and report["timings"][0]["words"] == 6 * 9
