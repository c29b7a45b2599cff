"""Data a run cannot learn from, or cannot be judged on, is refused or named before or after training: all-O
training data, a dev split without entities, types that never occur in train, a model that predicts nothing."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from nerforge.cli import main
from nerforge.evaluation import evaluate
from nerforge.training.output import TrainResult
from nerforge.training.reporting import warn_if_nothing_predicted


def _write(path: Path, sentences: list[list[tuple[str, str]]]) -> Path:
    path.write_text("".join("".join(f"{w}\t{t}\n" for w, t in s) + "\n" for s in sentences), encoding="utf-8")
    return path


TECH = [[("We", "O"), ("use", "O"), (w, "B-TECH"), ("daily", "O")] for w in ("Go", "Rust", "Java", "Python")] * 4
PLAIN = [[("We", "O"), ("met", "O"), ("today", "O")]] * 4


def _train(tmp_path: Path, encoder: Path, train: Path, dev: Path | None = None, *extra: str) -> int:
    args = ["train", "--train", str(train), "--output", str(tmp_path / "m"), "--model", str(encoder),
            "--max-steps", "4", "--batch-size", "8", "--no-tracking", *extra]  # fmt: skip
    if dev is not None:
        args += ["--dev", str(dev)]
    return main(args)


def test_all_o_training_data_is_refused(tmp_path: Path, tiny_encoder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    train = _write(tmp_path / "train.conll", PLAIN)
    assert _train(tmp_path, tiny_encoder, train) == 2
    err = capsys.readouterr().err
    assert f"{train}: the training data has no entities" in err
    assert not (tmp_path / "m").exists() and not (tmp_path / "m.work").exists()


def test_dev_without_entities_picks_the_checkpoint_by_dev_loss(
    tmp_path: Path, tiny_encoder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    train = _write(tmp_path / "train.conll", TECH)
    dev = _write(tmp_path / "dev.conll", PLAIN)
    with caplog.at_level(logging.WARNING):
        assert _train(tmp_path, tiny_encoder, train, dev, "--set", "training.eval_steps=1") == 0
    assert "the dev split has no entities" in caplog.text
    info = json.loads((tmp_path / "m" / "nerforge.json").read_text())["extra"]["training"]
    assert info["best_by"] == "dev loss" and info["best_dev_loss"] is not None and info["best_dev_f1"] is None
    epochs = json.loads((tmp_path / "m" / "epochs.json").read_text())
    losses = {row["step"]: row["eval_loss"] for row in epochs if row["eval_loss"] is not None}
    assert info["best_step"] == min(losses, key=losses.get)  # the lowest dev loss, not the first checkpoint
    assert "best dev loss" in (tmp_path / "m" / "README.md").read_text()


def test_types_only_in_dev_are_named(tmp_path: Path, tiny_encoder: Path, caplog: pytest.LogCaptureFixture) -> None:
    train = _write(tmp_path / "train.conll", TECH)
    dev = _write(tmp_path / "dev.conll", [[("Alice", "B-PER"), ("uses", "O"), ("Go", "B-TECH")]])
    with caplog.at_level(logging.WARNING):
        assert _train(tmp_path, tiny_encoder, train, dev) == 0
    assert "occur only in dev/test, never in train" in caplog.text
    assert f"PER ({dev}:1)" in caplog.text and "TECH (" not in caplog.text


def _result(gold: list[list[str]], pred: list[list[str]]) -> TrainResult:
    scores = evaluate(gold, pred)
    return TrainResult(Path("m"), ["O", "B-X", "I-X"], scores, None, [], 3)


def test_a_model_that_predicts_nothing_is_reported_with_likely_causes(caplog: pytest.LogCaptureFixture) -> None:
    from nerforge.config import TrainConfig

    gold = [["B-X", "O", "O"], ["O", "B-X", "I-X"]]
    config = TrainConfig()
    with caplog.at_level(logging.WARNING):
        assert warn_if_nothing_predicted(_result(gold, [["O"] * 3, ["O"] * 3]), config) == ["dev"]
    assert "predicts no entity at all on dev (2 gold entities)" in caplog.text
    assert "3 were run" in caplog.text and "learning rate" in caplog.text
    assert "dev holds only 2 entities, too few to choose a checkpoint" in caplog.text  # what to change, for small dev
    assert "raise training.epochs" in caplog.text  # no early stopping happened: more steps can help
    caplog.clear()
    with caplog.at_level(logging.WARNING):  # one wrong entity is not "nothing"
        assert warn_if_nothing_predicted(_result(gold, [["O", "O", "B-X"], ["O"] * 3]), config) == []
    assert caplog.text == ""


def test_flat_dev_f1_keeps_the_checkpoint_with_the_lowest_dev_loss(
    tmp_path: Path, tiny_encoder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # dev's only type never occurs in train, so dev F1 is 0 at every evaluation: the Trainer alone keeps the first
    # checkpoint (an untrained model); nerforge breaks the tie by dev loss, and early stopping waits for it.
    train = _write(tmp_path / "train.conll", TECH)
    dev = _write(tmp_path / "dev.conll", [[("Alice", "B-PER"), ("uses", "O"), ("nothing", "O")]] * 3)
    with caplog.at_level(logging.WARNING):
        code = _train(
            tmp_path,
            tiny_encoder,
            train,
            dev,
            "--set",
            "training.eval_steps=1",
            "--set",
            "training.early_stopping_patience=2",
            "--learning-rate",
            "1e-3",
        )
    assert code == 0
    assert "the dev split holds only 3 entities" in caplog.text
    info = json.loads((tmp_path / "m" / "nerforge.json").read_text())["extra"]["training"]
    epochs = json.loads((tmp_path / "m" / "epochs.json").read_text())
    rows = [row for row in epochs if row["eval_f1"] is not None]
    assert len(rows) == 4 and all(row["eval_f1"] == 0 for row in rows)  # early stopping did not stop on flat F1
    losses = {row["step"]: row["eval_loss"] for row in rows}
    assert min(losses.values()) < losses[1]
    assert info["best_step"] == min(losses, key=losses.get) != 1


def test_nothing_predicted_after_early_stopping_says_to_turn_it_off(caplog: pytest.LogCaptureFixture) -> None:
    from nerforge.config import TrainConfig

    gold = [["B-X", "O", "O"], ["O", "B-X", "I-X"]]
    result = _result(gold, [["O"] * 3, ["O"] * 3])
    result.epochs = [{"epoch": e, "eval_f1": 0.0} for e in (1, 2, 3, 4)]  # 4 evaluations of 10 epochs: stopped early
    with caplog.at_level(logging.WARNING):
        assert warn_if_nothing_predicted(result, TrainConfig()) == ["dev"]
    assert "early stopping ended the run after 4 evaluations" in caplog.text
    assert "training.early_stopping_patience = 0" in caplog.text and "raise training.epochs" not in caplog.text


def test_tie_breaks_and_early_stopping_rule() -> None:
    from nerforge.training.trainer import improves

    assert improves({"eval_f1": 0.5, "eval_loss": 9.0}, {"eval_f1": 0.4, "eval_loss": 1.0}, "eval_f1", True)
    assert improves({"eval_f1": 0.0, "eval_loss": 0.9}, {"eval_f1": 0.0, "eval_loss": 1.0}, "eval_f1", True)
    assert not improves({"eval_f1": 0.0, "eval_loss": 1.0}, {"eval_f1": 0.0, "eval_loss": 1.0}, "eval_f1", True)
    assert not improves({"eval_f1": 0.3, "eval_loss": 0.1}, {"eval_f1": 0.4, "eval_loss": 1.0}, "eval_f1", True)
    assert improves({"eval_loss": 0.5}, {"eval_loss": 0.6}, "eval_loss", False)
    assert improves({"eval_f1": 0.0}, None, "eval_f1", True)
