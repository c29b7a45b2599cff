"""The reading options of the training data are kept in the model directory and reused by ``evaluate`` and
``export --parity-data`` (issue 15): integer-tagged data needs ``--label-names`` once, at training."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from nerforge.cli import main
from nerforge.model_dir import ModelMeta

NAMES = "O,B-TECH,I-TECH,B-SKILL,I-SKILL"
TECH = ["Python", "Kubernetes", "PostgreSQL", "Go", "React"]
SKILL = [["data", "analysis"], ["code", "review"]]


def write_int_jsonl(path: Path, n: int, seed: int) -> Path:
    """JSONL with integer tags (ids into NAMES) under a non-default field name."""
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        skill = rng.choice(SKILL)
        tokens = ["We", "use", rng.choice(TECH), "for", *skill, "."]
        tags = [0, 0, 1, 0, 3, *([4] * (len(skill) - 1)), 0]
        lines.append(json.dumps({"words": tokens, "labels": tags}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, tiny_encoder: Path) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("saved-reading")
    train = write_int_jsonl(root / "train.jsonl", 24, 0)
    test = write_int_jsonl(root / "test.jsonl", 8, 1)
    model = root / "model"
    code = main(
        ["train", "--train", str(train), "--output", str(model), "--model", str(tiny_encoder), "--epochs", "1",
         "--no-tracking", "--label-names", NAMES, "--tokens-field", "words", "--tags-field", "labels",
         "--no-progress"]
    )  # fmt: skip
    assert code == 0
    return model, test


def test_reading_options_are_saved(trained: tuple[Path, Path]) -> None:
    model, _ = trained
    reading = ModelMeta.load(model).reading
    assert reading["label_names"] == NAMES.split(",")
    assert (reading["tokens_field"], reading["tags_field"]) == ("words", "labels")
    assert "token_column" not in reading  # defaults are not written
    assert ModelMeta.load(model).head == "shape+crf"  # flags-only training gets the default head


def test_evaluate_reads_data_as_training_did(trained: tuple[Path, Path], tmp_path: Path, capsys) -> None:
    model, test = trained
    out = tmp_path / "eval"
    assert main(["evaluate", str(model), str(test), "--output", str(out), "--json", "--no-plots"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["micro"]["support"] == 16  # 8 sentences x (TECH + SKILL): the integer tags were named
    # a flag given now replaces the kept value: other names make the data unreadable for this model
    code = main(["evaluate", str(model), str(test), "--output", str(out), "--label-names", "O,B-X,I-X,B-Y,I-Y"])
    assert code == 2
    assert "not known to the model" in capsys.readouterr().err


def test_export_parity_reads_data_as_training_did(trained: tuple[Path, Path], tmp_path: Path, capsys) -> None:
    pytest.importorskip("onnxruntime")
    model, test = trained
    out = tmp_path / "onnx"
    assert main(["export", str(model), "--onnx", "--output", str(out), "--parity-data", str(test)]) == 0
    parity = json.loads((out / "parity.json").read_text())
    assert parity["gold"]["sentences"] == 8, parity
    # the exported directory keeps the options too, so evaluating it needs no flags either
    assert ModelMeta.load(out).reading["label_names"] == NAMES.split(",")


def test_reports_of_two_files_with_one_name_do_not_replace_each_other(
    trained: tuple[Path, Path], tmp_path: Path
) -> None:
    model, test = trained
    other = tmp_path / "other"
    other.mkdir()
    second = write_int_jsonl(other / test.name, 4, 5)
    assert main(["evaluate", str(model), str(test), "--no-plots"]) == 0
    assert main(["evaluate", str(model), str(second), "--no-plots"]) == 0
    first_dir, second_dir = model / f"eval-{test.stem}", model / f"eval-{test.stem}-2"
    assert json.loads((first_dir / "source.json").read_text())["data"] == str(test.resolve())
    assert json.loads((second_dir / "source.json").read_text())["data"] == str(second.resolve())
    assert json.loads((first_dir / "metrics.json").read_text())["micro"]["support"] == 16
    assert json.loads((second_dir / "metrics.json").read_text())["micro"]["support"] == 8
    # the same file again replaces its own report, and the figures of an earlier run do not stay behind
    assert main(["evaluate", str(model), str(test)]) == 0
    assert list(first_dir.glob("*.png"))
    assert main(["evaluate", str(model), str(test), "--no-plots"]) == 0
    assert not list(first_dir.glob("*.png"))
    assert not (model / f"eval-{test.stem}-3").exists()


def test_distill_reads_data_as_the_teacher_s_training_did(trained: tuple[Path, Path], tmp_path: Path, capsys) -> None:
    # the teacher was trained on integer tags in 'labels' with --label-names: its student needs none of those flags
    model, test = trained
    student = tmp_path / "student"
    code = main(["distill", str(model), "--train", str(test), "--layers", "1", "--output", str(student),
                 "--max-steps", "2", "--no-tracking", "--no-progress"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert ModelMeta.load(student).reading["label_names"] == NAMES.split(",")
    assert ModelMeta.load(student).reading["tags_field"] == "labels"
