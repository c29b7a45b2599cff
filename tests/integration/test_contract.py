"""The train → save → load → predict → evaluate contract, through the CLI, on a tiny encoder and a few dozen sentences.

One model is trained for the module (``nerforge train --no-tracking``); the tests then use it the way a user would.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest

from nerforge.cli import main
from nerforge.model_dir import ModelMeta
from nerforge.prediction import Tagger

TYPES = ("LOC", "ORG", "PER")
NAMES = {"PER": ["Ann Smith", "Bob", "Maria Lopez"], "ORG": ["Acme Corp", "Globex"], "LOC": ["Paris", "New York"]}
TEMPLATES = [
    "{PER} works at {ORG} in {LOC} .",
    "{ORG} hired {PER} last week .",
    "{PER} moved from {LOC} to {LOC} .",
    "the office of {ORG} is near {LOC} .",
    "{PER} and {PER} met at {ORG} .",
]
SENTENCE = "Maria Lopez works at Globex in New York ."


def _sentence(rng: random.Random) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for slot in rng.choice(TEMPLATES).split():
        if slot.startswith("{"):
            label = slot[1:-1]
            words = rng.choice(NAMES[label]).split()
            out += [(w, f"{'B' if k == 0 else 'I'}-{label}") for k, w in enumerate(words)]
        else:
            out.append((slot, "O"))
    return out


def _write_conll(path: Path, n: int, seed: int) -> None:
    rng = random.Random(seed)
    sentences = [_sentence(rng) for _ in range(n)]
    path.write_text("\n\n".join("\n".join(f"{w} {t}" for w, t in s) for s in sentences) + "\n", encoding="utf-8")


@pytest.fixture(scope="module", autouse=True)
def _cpu_threads():
    """Torch threads = idle cores (a loaded 2-core machine otherwise runs tiny models ten times slower)."""
    import torch

    from nerforge.threads import set_torch_threads

    before = torch.get_num_threads()
    set_torch_threads(None)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def workdir(tiny_encoder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("contract")
    _write_conll(d / "train.conll", 36, seed=1)
    _write_conll(d / "dev.conll", 10, seed=2)
    args = ["train", "--train", d / "train.conll", "--dev", d / "dev.conll", "--output", d / "model"]
    args += ["--model", tiny_encoder, "--max-length", "16", "--max-steps", "30", "--batch-size", "8"]
    args += ["--learning-rate", "5e-3", "--seed", "0", "--no-tracking"]
    assert main([str(a) for a in args]) == 0
    return d


@pytest.fixture(scope="module")
def tagger(workdir: Path) -> Tagger:
    return Tagger.load(workdir / "model", progress=False)


def _check(text: str, entities: list) -> None:
    for e in entities:
        assert text[e.start : e.end] == e.text and e.label in TYPES and 0.0 < e.score <= 1.0


def test_contract_model_dir_and_load(workdir: Path, tagger: Tagger) -> None:
    model = workdir / "model"
    for name in ("config.json", "model.safetensors", "nerforge.json", "epochs.json"):
        assert (model / name).is_file(), name
    meta = ModelMeta.load(model)
    assert meta.word_tokenizer == "nerforge.words.v2"
    assert tagger.types == list(TYPES)


def test_contract_predict_sentence_empty_and_long_text(tagger: Tagger) -> None:
    entities = tagger.predict_text(SENTENCE)
    _check(SENTENCE, entities)
    assert entities, "a trained model finds entities in a sentence like its training data"
    assert tagger.predict_text("") == []
    assert tagger.predict_text("   \n ") == []
    long_text = " ".join([SENTENCE] * 600)  # 5,400 words, far past max_length 16
    words = tagger.words(long_text)
    [prediction] = tagger.predict_words([[w.text for w in words]])
    assert len(prediction.tags) == len(words) == 5400
    found = tagger.predict_text(long_text)
    _check(long_text, found)
    assert len(found) >= 300 and found[-1].end > 0.99 * len(long_text)


def test_contract_evaluate_cli_json(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = workdir / "model"
    code = main(["evaluate", str(model), str(workdir / "dev.conll"), "--json", "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 0, err
    doc = json.loads(out)
    assert set(doc["micro"]) >= {"precision", "recall", "f1"}
    for name, scores in doc["per_type"].items():
        assert name in TYPES and set(scores) >= {"precision", "recall", "f1", "support"}
    # the saved and reloaded model scores exactly what training measured on the same dev set
    trained = ModelMeta.load(model).metrics["dev"]["micro"]
    assert {k: doc["micro"][k] for k in ("tp", "fp", "fn")} == {k: trained[k] for k in ("tp", "fp", "fn")}
    assert (model / "eval-dev" / "report.md").is_file()
    assert (model / "eval-dev" / "training_curves.png").is_file()


def test_contract_predict_cli_txt_csv_jsonl(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    texts = [SENTENCE, "", "Bob moved from Paris to New York ."]
    (workdir / "in.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    with (workdir / "in.csv").open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows([["text", "source"], *[[t, f"s{i}"] for i, t in enumerate(texts)]])
    (workdir / "in.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    model = str(workdir / "model")
    for name in ("in.txt", "in.csv", "in.jsonl"):
        out = workdir / f"{name}.out.jsonl"
        assert main(["predict", model, str(workdir / name), "--output", str(out), "--no-progress"]) == 0
        records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        assert [r["id"] for r in records] == [0, 1, 2]
        assert [r["text"] for r in records] == texts
        for r in records:
            assert all(set(e) == {"text", "label", "start", "end", "score"} for e in r["entities"])
            assert all(r["text"][e["start"] : e["end"]] == e["text"] for e in r["entities"])
        assert records[0]["entities"] and records[1]["entities"] == []
    out_csv = workdir / "out.csv"
    assert main(["predict", model, str(workdir / "in.csv"), "--output", str(out_csv), "--no-progress"]) == 0
    with out_csv.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["source"] for r in rows] == ["s0", "s1", "s2"]
    assert json.loads(rows[0]["entities"]) and json.loads(rows[1]["entities"]) == []
    capsys.readouterr()
