"""What a training run shows and writes (issue 15): the per-epoch table (terminal, report.md, model card), the train
loss logged many times an epoch and plotted, early stopping announced, --progress/--no-progress, log lines that never
share a line with a progress bar, and no temporary path in any log line."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest
from test_train import write_corpus

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _train(tmp_path: Path, encoder: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    data = write_corpus(tmp_path, train=48)
    cmd = [sys.executable, "-m", "nerforge", "train", "--train", str(data["train"]), "--dev", str(data["dev"]),
           "--test", str(data["test"]), "--output", str(tmp_path / "model"), "--model", str(encoder),
           "--batch-size", "4", "--no-tracking", *extra]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, tiny_encoder: Path) -> tuple[Path, subprocess.CompletedProcess[str]]:
    tmp = tmp_path_factory.mktemp("reports")
    proc = _train(tmp, tiny_encoder, "--epochs", "3", "--learning-rate", "5e-4", "--progress")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp / "model", proc


def test_the_terminal_shows_the_epoch_table(run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    model, proc = run
    lines = proc.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["epoch", "train"])
    assert lines[header].split() == ["epoch", "train", "loss", "dev", "loss", "dev", "P", "dev", "R", "dev", "F1",
                                     "token", "acc."]  # fmt: skip
    rows = [line.split() for line in lines[header + 1 : header + 4]]
    assert [r[0] for r in rows] == ["1", "2", "3"]
    epochs = json.loads((model / "epochs.json").read_text())
    for row, saved in zip(rows, epochs, strict=True):
        assert float(row[1]) == pytest.approx(saved["train_loss"], abs=1e-4)
        assert float(row[5]) == pytest.approx(saved["eval_f1"], abs=1e-4)
        assert float(row[6]) == pytest.approx(saved["eval_token_accuracy"], abs=1e-4)
        assert 0.0 <= saved["eval_token_accuracy"] <= 1.0 and saved["eval_precision"] is not None


def test_report_and_card_carry_the_epoch_table(run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    model, _ = run
    header = "| epoch | train loss | dev loss | dev P | dev R | dev F1 | token acc. |"
    for doc in (model / "eval" / "report.md", model / "README.md"):
        text = doc.read_text()
        assert header in text, doc
        rows = [line for line in text.splitlines() if re.match(r"\| [123] \| \d", line)]
        assert len(rows) == 3, doc


def test_the_train_loss_is_logged_many_times_an_epoch(run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    model, _ = run
    losses = json.loads((model / "losses.json").read_text())
    epochs = json.loads((model / "epochs.json").read_text())
    assert len(losses) > 3 * len(epochs)
    steps = [p["step"] for p in losses]
    assert steps == sorted(steps) and len(set(steps)) == len(steps)
    # an epoch's row is the mean of the losses logged in it
    first = [p["loss"] for p in losses if p["step"] <= epochs[0]["step"]]
    assert epochs[0]["train_loss"] == pytest.approx(sum(first) / len(first))
    assert (model / "eval" / "training_curves.png").stat().st_size > 10_000


def test_logs_name_final_paths_and_bars_only_when_asked(
    run: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path, tiny_encoder: Path
) -> None:
    _, proc = run
    assert ".tmp" not in proc.stderr, [line for line in proc.stderr.splitlines() if ".tmp" in line]
    assert "it/s]" in proc.stderr or "s/it]" in proc.stderr  # --progress draws bars even off a terminal
    assert "Writing model shards" not in proc.stderr and "PAD/BOS/EOS" not in proc.stderr
    quiet = _train(tmp_path, tiny_encoder, "--max-steps", "2", "--no-progress")
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    assert "it/s]" not in quiet.stderr and "s/it]" not in quiet.stderr and "%|" not in quiet.stderr
    assert "epoch " in quiet.stderr  # the epoch lines stay


def test_early_stopping_is_announced(tmp_path: Path, tiny_encoder: Path) -> None:
    # a learning rate this small learns nothing in a few steps: dev F1 stays where it was and patience 1 ends it
    proc = _train(tmp_path, tiny_encoder, "--epochs", "6", "--learning-rate", "1e-9",
                  "--set", "training.early_stopping_patience=1", "--no-progress")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = next(line for line in proc.stderr.splitlines() if "early stopping" in line)
    assert re.search(
        r"early stopping after epoch 2 \(step \d+ of \d+\): dev f1 did not improve for 1 evaluations", line
    )
    assert "is kept" in line
    meta = json.loads((tmp_path / "model" / "nerforge.json").read_text())
    assert meta["extra"]["training"]["stopped_early"] is True


def test_log_lines_never_share_a_line_with_a_progress_bar(capsys: pytest.CaptureFixture[str]) -> None:
    from tqdm import tqdm

    from nerforge.cli import _BarSafeHandler

    handler = _BarSafeHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    record = logging.LogRecord("nerforge", logging.INFO, __file__, 1, "epoch 1: a log line", None, None)
    with tqdm(total=10, file=sys.stderr, ascii=True) as bar:
        bar.update(3)
        handler.emit(record)
        bar.update(3)
    err = capsys.readouterr().err
    segments = re.split(r"[\r\n]", err)
    assert "epoch 1: a log line" in [s.strip() for s in segments]  # alone on its line, the bar cleared before it


def test_entity_scores_are_calibrated_on_dev_and_applied(
    run: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from nerforge.cli import main
    from nerforge.evaluation.calibration import apply_temperature
    from nerforge.prediction import Tagger
    from nerforge.prediction.tagger import entities_from_words

    model, proc = run
    meta = json.loads((model / "nerforge.json").read_text())
    cal = meta["extra"]["calibration"]
    assert cal["fitted_on"] == "dev" and cal["temperature"] > 0
    assert 0.0 <= cal["ece_before"] <= 1.0 and 0.0 <= cal["ece_after"] <= 1.0
    assert "entity scores calibrated on dev" in proc.stderr
    tagger = Tagger.load(model, progress=False)
    assert tagger.meta.score_calibration == (cal["temperature"], cal.get("shift", 0.0))
    text = "We need Python and data analysis with teamwork ."
    words = tagger.words(text)
    [prediction] = tagger.predict_words([[w.text for w in words]])
    raw = entities_from_words(text, words, prediction)
    calibrated = tagger.predict_text(text)
    assert [(e.start, e.end, e.label) for e in raw] == [(e.start, e.end, e.label) for e in calibrated]
    for r, c in zip(raw, calibrated, strict=True):
        # both scores are rounded to 6 decimals: the raw one's rounding (up to 5e-7) is magnified by the calibration's
        # slope (steep for a small temperature), so the calibrated score lies between the calibrations of its bounds
        bounds = [apply_temperature(r.score + d, cal["temperature"], cal.get("shift", 0.0)) for d in (-5e-7, 5e-7)]
        assert min(bounds) - 1e-6 <= c.score <= max(bounds) + 1e-6, (c.score, bounds)
    # evaluate reports the calibration error raw and calibrated, with a reliability figure
    data = model.parent / "test.conll"
    assert main(["evaluate", str(model), str(data), "--output", str(tmp_path / "ev"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {"ece_before", "ece_after", "bins_before", "bins_after", "temperature"} <= set(doc["calibration"])
    assert 0.0 <= doc["calibration"]["ece_after"] <= 1.0
    assert (tmp_path / "ev" / "reliability.png").stat().st_size > 5000
    assert "## Entity scores" in (tmp_path / "ev" / "report.md").read_text()
