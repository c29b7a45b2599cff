"""Predictions as Label Studio, doccano and spaCy imports, and the accepted export read back as training data
(issue 17, items 1 and 2). The entities come from a real (tiny, untrained) model on text with emoji and accents."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nerforge.cli import main
from nerforge.data.readers.options import ReadOptions
from nerforge.data.readers.registry import read_corpus
from nerforge.data.schemes import strict_tags_to_spans

TEXTS = [
    "Ann Smith 🎉 works at Acme Corp in Zürich with Python and SQL.",
    "",
    "Señora Núñez leads the data team in São Paulo; 東京 office uses Kubernetes.",
]


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory, tiny_encoder: Path) -> Path:
    from conftest import build_tiny_token_model

    # the same kind of tiny model the predict tests use: random weights, so it finds entities everywhere
    return build_tiny_token_model(tiny_encoder, tmp_path_factory.mktemp("formats"), types=["ORG", "PER", "TECH"],
                                  max_length=16, stride=4)  # fmt: skip


def _predict(tmp_path: Path, model: Path, fmt: str, name: str, *extra: str) -> tuple[Path, list[dict]]:
    src = tmp_path / "texts.txt"
    src.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    jsonl = tmp_path / "plain.jsonl"
    assert main(["predict", str(model), str(src), "-o", str(jsonl), "--no-progress"]) == 0
    plain = [json.loads(line) for line in jsonl.read_text(encoding="utf-8").splitlines()]
    out = tmp_path / name
    assert main(["predict", str(model), str(src), "-o", str(out), "--format", fmt, "--no-progress", *extra]) == 0
    return out, plain


def _entity_tuples(record: dict) -> list[tuple[int, int, str]]:
    return [(e["start"], e["end"], e["label"]) for e in record["entities"]]


def test_label_studio_tasks_carry_the_predictions(tmp_path: Path, model: Path) -> None:
    out, plain = _predict(tmp_path, model, "label-studio", "tasks.json", "--from-name", "ner", "--to-name", "body")
    tasks = json.loads(out.read_text(encoding="utf-8"))
    assert [t["data"]["text"] for t in tasks] == TEXTS
    assert sum(len(p["entities"]) for p in plain) > 0, "the tiny model found nothing: the test would prove nothing"
    for task, record in zip(tasks, plain, strict=True):
        [prediction] = task["predictions"]
        assert prediction["model_version"].startswith("nerforge-")
        got = [(r["value"]["start"], r["value"]["end"], r["value"]["labels"][0]) for r in prediction["result"]]
        assert got == _entity_tuples(record)
        for r in prediction["result"]:
            assert (r["from_name"], r["to_name"], r["type"]) == ("ner", "body", "labels")
            assert task["data"]["text"][r["value"]["start"] : r["value"]["end"]] == r["value"]["text"]  # code points
            assert 0.0 <= r["score"] <= 1.0
        scores = [r["score"] for r in prediction["result"]]
        assert prediction["score"] == pytest.approx(sum(scores) / len(scores) if scores else 1.0, abs=1e-5)


def test_accepted_label_studio_export_reads_back_as_training_data(tmp_path: Path, model: Path) -> None:
    out, plain = _predict(tmp_path, model, "label-studio", "tasks.json")
    tasks = json.loads(out.read_text(encoding="utf-8"))
    # what Label Studio exports once a person accepted each prediction: the result becomes an annotation
    exported = [
        {"id": i + 1, "data": t["data"], "annotations": [{"id": i + 1, "result": t["predictions"][0]["result"]}],
         "predictions": []}
        for i, t in enumerate(tasks)
    ]  # fmt: skip
    path = tmp_path / "export.json"
    path.write_text(json.dumps(exported, ensure_ascii=False), encoding="utf-8")
    corpus = read_corpus(path, ReadOptions())
    assert corpus.format == "labelstudio"
    _check_round_trip(corpus, plain)


@pytest.mark.parametrize(
    ("fmt", "name", "reader"), [("doccano", "out.jsonl", "doccano"), ("spacy-json", "out.json", "spacy")]
)
def test_doccano_and_spacy_files_read_back(tmp_path: Path, model: Path, fmt: str, name: str, reader: str) -> None:
    out, plain = _predict(tmp_path, model, fmt, name)
    if fmt == "doccano":
        lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        # offsets in UTF-16 code units, as doccano's page counts them; the empty text (its importer refuses it) left out
        assert [(d["text"], [(_utf16(d["text"], a, b), lab) for a, b, lab in d["label"]]) for d in lines] == [
            (r["text"], [(e["text"], e["label"]) for e in r["entities"]]) for r in plain if r["text"]
        ]
        shifted = [x for d in lines for x in d["label"] if d["text"][: x[0]].count("🎉")]
        assert shifted  # entities after the emoji: code points would slice them wrong
    else:
        items = json.loads(out.read_text(encoding="utf-8"))
        assert [(t, [tuple(x) for x in a["entities"]]) for t, a in items] == [
            (r["text"], _entity_tuples(r)) for r in plain
        ]
    corpus = read_corpus(out, ReadOptions())
    assert corpus.format == reader
    _check_round_trip(corpus, plain)


def _utf16(text: str, start: int, end: int) -> str:
    return text.encode("utf-16-le")[2 * start : 2 * end].decode("utf-16-le")


def test_doccano_offsets_can_be_code_points_and_empty_texts_are_counted(
    tmp_path: Path, model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, plain = _predict(tmp_path, model, "doccano", "cp.jsonl", "--doccano-offsets", "code-points")
    assert "1 empty text left out" in capsys.readouterr().out
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [(d["text"], [tuple(x) for x in d["label"]]) for d in lines] == [
        (r["text"], _entity_tuples(r)) for r in plain if r["text"]
    ]
    utf16 = tmp_path / "u.jsonl"
    assert main(["predict", str(model), str(tmp_path / "texts.txt"), "-o", str(utf16), "--format", "doccano",
                 "--no-progress"]) == 0  # fmt: skip
    first_cp, first_u = lines[0]["label"], json.loads(utf16.read_text(encoding="utf-8").splitlines()[0])["label"]
    emoji = TEXTS[0].index("🎉")
    assert [x[0] + (x[0] > emoji) for x in first_cp] == [x[0] for x in first_u]  # one more unit after the emoji
    assert main(["predict", str(model), str(tmp_path / "texts.txt"), "-o", str(utf16), "--format", "doccano",
                 "--doccano-offsets", "bytes"]) == 2  # fmt: skip
    assert "unknown offset unit 'bytes'" in capsys.readouterr().err


@given(st.text(alphabet="ab é🎉東\U0001f600", max_size=40), st.data())
def test_utf16_offsets_slice_the_same_text(text: str, data: st.DataObject) -> None:
    from nerforge.prediction.annotation_formats import utf16_offsets

    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, len(text)))
    unit = utf16_offsets(text)
    assert _utf16(text, unit(start), unit(end)) == text[start:end]


def _check_round_trip(corpus, plain: list[dict]) -> None:  # type: ignore[no-untyped-def]
    """Every predicted entity comes back as an entity of the same words and label (empty texts have no example)."""
    with_text = [r for r in plain if r["text"]]
    assert len(corpus.examples) == len(with_text)
    for ex, record in zip(corpus.examples, with_text, strict=True):
        spans = strict_tags_to_spans(ex.tags)
        got = sorted((" ".join(ex.tokens[s.start : s.end]), s.label) for s in spans)
        want = sorted((" ".join(e["text"].split()), e["label"]) for e in record["entities"])
        assert [(t.replace(" ", ""), lab) for t, lab in got] == [(t.replace(" ", ""), lab) for t, lab in want]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "label-studio", "-o", "x.jsonl"], "name the output *.json"),
        (["--format", "doccano", "-o", "x.json"], "name the output *.jsonl"),
        (["--format", "brat", "-o", "x.json"], "unknown output format 'brat'"),
        (["--format", "csv", "-o", "x.jsonl"], "name it *.csv"),
    ],
)
def test_format_and_output_name_must_agree(
    tmp_path: Path, model: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [a if a != args[-1] else str(tmp_path / a) for a in args]
    assert main(["predict", str(model), "--text", "Python", *args]) == 2
    assert message in capsys.readouterr().err


def test_suggest_ranks_a_pool_by_the_models_uncertainty(
    tmp_path: Path, model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from nerforge.prediction import Tagger
    from nerforge.prediction.suggest import uncertainty

    pool_texts = [
        "Python and SQL wanted.",
        "Senior Kubernetes engineer in Berlin.",
        "Senior Kubernetes engineer in Berlin!",  # a near-duplicate of the line above
        "Strong communication skills needed 🎉.",
        "",
        "Señora Núñez leads the data team in São Paulo.",
        "Go, Rust and C++ for the trading desk.",
    ]
    pool = tmp_path / "pool.txt"
    pool.write_text("\n".join(pool_texts) + "\n", encoding="utf-8")
    out = tmp_path / "next.jsonl"
    assert main(["suggest", str(model), str(pool), "--count", "4", "-o", str(out), "--no-progress"]) == 0
    assert "suggested 4 of 6 texts (uncertainty)" in capsys.readouterr().out
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    # the scores are the model's own: recompute them with the tagger, independently of the command
    tagger = Tagger.load(model, progress=False)
    expected = {}
    for i, text in enumerate(pool_texts):
        if text:
            words = [w.text for w in tagger.words(text)]
            expected[i] = uncertainty(tagger.predict_words([words])[0].scores)
    assert [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)
    for r in rows:
        assert r["score"] == pytest.approx(expected[r["index"]], abs=1e-6)
        assert r["text"] == pool_texts[r["index"]] and r["line"] == r["index"] + 1
    top = sorted(expected, key=lambda i: -expected[i])
    assert rows[0]["index"] == top[0]
    assert not {1, 2} <= {r["index"] for r in rows}  # never both near-duplicates

    tasks_out = tmp_path / "next.json"
    code = main(["suggest", str(model), str(pool), "-n", "2", "-o", str(tasks_out), "--format", "label-studio",
                 "--strategy", "random", "--no-progress"])  # fmt: skip
    assert code == 0
    tasks = json.loads(tasks_out.read_text(encoding="utf-8"))
    assert len(tasks) == 2 and all("nerforge_uncertainty" in t["data"] for t in tasks)
    for t in tasks:
        for r in t["predictions"][0]["result"]:
            assert t["data"]["text"][r["value"]["start"] : r["value"]["end"]] == r["value"]["text"]
    assert (
        main(["suggest", str(model), str(pool), "-n", "2", "-o", str(tmp_path / "x.json")]) == 2
    )  # jsonl wants .jsonl
    assert main(["suggest", str(model), str(pool), "-n", "2", "-o", str(out), "--strategy", "entropy"]) == 2

    # the library function behind the command: a typed result, the same choice
    from nerforge.errors import UsageError
    from nerforge.prediction.suggest import SuggestOptions, suggest

    result = suggest(model, pool, tmp_path / "lib.jsonl", SuggestOptions(count=4, progress=False))
    assert [c.index for c in result.chosen] == [r["index"] for r in rows] and result.texts == 6
    with pytest.raises(UsageError, match="POOL file"):
        jsonl_pool = tmp_path / "pool.jsonl"
        jsonl_pool.write_text('{"text": "Python wanted."}\n', encoding="utf-8")
        suggest(model, jsonl_pool, jsonl_pool, SuggestOptions(count=1))
