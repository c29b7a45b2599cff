"""``nerforge evaluate``: whole sentences tagged (nothing cut), report files, --json contract, label errors."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from conftest import build_tiny_token_model
from nerforge.cli import main
from nerforge.evaluation import evaluate_tags
from nerforge.prediction import Tagger

TYPES = ("LOC", "ORG", "PER")
NAMES = {
    "PER": ["Ann Smith", "Bob", "Maria Garcia Lopez"],
    "ORG": ["Acme Corp", "Globex"],
    "LOC": ["Paris", "New York"],
}
FILLER = "the team said that it will meet again soon after the long and busy week of work".split()


def _sentence(rng: random.Random, length: int, entity_at_end: bool) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    while len(out) < length:
        if rng.random() < 0.2:
            label = rng.choice(TYPES)
            for k, word in enumerate(rng.choice(NAMES[label]).split()):
                out.append((word, f"{'B' if k == 0 else 'I'}-{label}"))
        else:
            out.append((rng.choice(FILLER), "O"))
    if entity_at_end:
        out += [("in", "O"), ("New", "B-LOC"), ("York", "I-LOC"), (".", "O")]
    return out


def write_conll(path: Path, n: int, *, seed: int = 0, long_every: int = 4) -> list[list[tuple[str, str]]]:
    """``n`` sentences; every ``long_every``-th is ~60 words with an entity at its very end (past 16 subwords)."""
    rng = random.Random(seed)
    sentences = [
        _sentence(rng, 60 if i % long_every == 0 else rng.randint(3, 9), i % long_every == 0) for i in range(n)
    ]
    path.write_text("\n\n".join("\n".join(f"{w}\t{t}" for w, t in s) for s in sentences) + "\n", encoding="utf-8")
    return sentences


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
def model_dir(tiny_encoder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_token_model(tiny_encoder, tmp_path_factory.mktemp("model"), types=TYPES, max_length=16, stride=4)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[list[tuple[str, str]]]]:
    path = tmp_path_factory.mktemp("data") / "test.conll"
    return path, write_conll(path, 12)


def _run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main(["evaluate", *map(str, args), "--no-progress"])
    out, err = capsys.readouterr()
    return code, out, err


def test_evaluate_cli_json_contract_counts_every_gold_entity(
    model_dir: Path, data, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, sentences = data
    code, out, _ = _run(capsys, model_dir, path, "--json", "--output", tmp_path / "ev")
    assert code == 0
    doc = json.loads(out)  # exactly one JSON object on stdout, nothing else
    assert set(doc["micro"]) >= {"precision", "recall", "f1"}
    assert set(doc["per_type"]) <= set(TYPES)
    for scores in doc["per_type"].values():
        assert set(scores) >= {"precision", "recall", "f1", "support"}
    gold_entities = sum(t.startswith("B-") for s in sentences for _, t in s)
    assert doc["micro"]["support"] == gold_entities  # entities at the end of long sentences count too
    assert doc["n_tokens"] == sum(len(s) for s in sentences)
    assert doc["n_sentences"] == len(sentences)

    # the scores are those of the engine's predictions on the whole sentences
    tagger = Tagger.load(model_dir, progress=False)
    tokens = [[w for w, _ in s] for s in sentences]
    pred = [list(p.tags) for p in tagger.predict_words(tokens)]
    result, _ = evaluate_tags([[t for _, t in s] for s in sentences], pred, tokens)
    assert doc["micro"]["f1"] == pytest.approx(result.micro.f1)
    assert doc["micro"]["support"] == result.micro.support


def test_evaluate_cli_writes_report_into_model_dir_by_default(
    model_dir: Path, data, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = data
    epochs = [
        {"epoch": 1, "train_loss": 1.2, "eval_loss": 1.0, "eval_f1": 0.2},
        {"epoch": 2, "train_loss": 0.8, "eval_loss": 0.9, "eval_f1": 0.4},
    ]
    (model_dir / "epochs.json").write_text(json.dumps(epochs), encoding="utf-8")
    try:
        code, out, _ = _run(capsys, model_dir, path)
    finally:
        (model_dir / "epochs.json").unlink()
    assert code == 0
    out_dir = model_dir / "eval-test"
    for name in ("report.md", "metrics.json", "confusion.png", "per_type_f1.png", "training_curves.png"):
        assert (out_dir / name).is_file(), name
    metrics = json.loads((out_dir / "metrics.json").read_text(encoding="utf-8"))
    assert len(metrics["epochs"]) == 2
    assert "micro" in out and str(out_dir / "report.md") in out
    assert "strict IOB2" in out
    # the terminal table has a row per entity type, with the scores of metrics.json
    for name, scores in metrics["per_type"].items():
        row = re.search(rf"^{re.escape(name)}\s+(\d\.\d{{4}})\s+(\d\.\d{{4}})\s+(\d\.\d{{4}})\s+(\d+)$", out, re.M)
        assert row is not None, (name, out)
        assert float(row.group(3)) == pytest.approx(scores["f1"], abs=1e-4) and int(row.group(4)) == scores["support"]
    assert metrics["per_type"]


def test_evaluate_cli_unknown_label_is_an_error_naming_it(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "odd.conll"
    path.write_text("Ann\tB-PER\n\nuses\tO\nPython\tB-LANG\n", encoding="utf-8")
    code, out, err = _run(capsys, model_dir, path, "--output", tmp_path / "ev")
    assert code == 2 and out == ""
    assert err.startswith(f"error: {path}:4: ") and "'LANG'" in err and "--label-map" in err
    assert not (tmp_path / "ev").exists()
    # dropping the type with the data flag makes it evaluable
    code, out, err = _run(capsys, model_dir, path, "--output", tmp_path / "ev", "--label-map", "LANG=", "--json")
    assert code == 0, err
    assert json.loads(out)["micro"]["support"] == 1


def test_evaluate_cli_bad_data_is_path_line_error(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"tokens": ["a"], "tags": ["O"]}\n{"tokens": ["a", "b"], "tags": ["O"]}\n', encoding="utf-8")
    code, _, err = _run(capsys, model_dir, path)
    assert code == 2
    assert err.startswith(f"error: {path}:2: ")


def test_evaluate_cli_not_a_model(tmp_path: Path, data, capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = data
    code, _, err = _run(capsys, tmp_path, path)
    assert code == 2 and "nerforge.json" in err


def test_evaluate_cli_scores_several_files_as_one_split(
    model_dir: Path, data, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A test split published as two files (SkillSpan's house and tech) is scored as one: the same counts as the
    files joined into one, and each file's own line numbers in errors."""
    path, _ = data
    blocks = path.read_text(encoding="utf-8").strip().split("\n\n")
    first, second = tmp_path / "part_a.conll", tmp_path / "part_b.conll"
    first.write_text("\n\n".join(blocks[:5]) + "\n", encoding="utf-8")
    second.write_text("\n\n".join(blocks[5:]) + "\n", encoding="utf-8")
    code, whole, _ = _run(capsys, model_dir, path, "--json", "--no-plots", "--output", tmp_path / "whole")
    assert code == 0
    code, parts, _ = _run(capsys, model_dir, first, second, "--json", "--no-plots", "--output", tmp_path / "parts")
    assert code == 0
    whole_doc, parts_doc = json.loads(whole), json.loads(parts)
    assert parts_doc["n_sentences"] == whole_doc["n_sentences"] == len(blocks)
    assert parts_doc["micro"] == whole_doc["micro"] and parts_doc["micro"]["support"] > 0
    assert parts_doc["data"] == f"{first} + {second}"
    code, alone, _ = _run(capsys, model_dir, first, "--json", "--no-plots", "--output", tmp_path / "first")
    assert code == 0 and json.loads(alone)["n_sentences"] == 5  # the second file was read above, not ignored
    bad = tmp_path / "bad.conll"
    bad.write_text("Paris\tB-LOC\nis\tB-XYZ\n", encoding="utf-8")
    code, _, err = _run(capsys, model_dir, first, bad)
    assert code != 0 and f"{bad}:2" in err and "XYZ" in err
