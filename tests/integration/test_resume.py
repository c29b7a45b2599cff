"""A training run killed mid-way resumes with --resume to the same optimizer step count as an uninterrupted run,
and while it is dead nothing exists at the output path."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from nerforge.cli import main
from nerforge.training.callbacks import CRASH_ENV, CRASH_EXIT_CODE

WORDS = ["Python", "Kubernetes", "Go", "React"]


def write_corpus(directory: Path) -> dict[str, Path]:
    rng = random.Random(1)
    paths = {}
    for name, n in (("train", 32), ("dev", 8)):
        lines = []
        for _ in range(n):
            lines += ["We\tO", "use\tO", f"{rng.choice(WORDS)}\tB-TECH", "daily\tO", ""]
        paths[name] = directory / f"{name}.conll"
        paths[name].write_text("\n".join(lines) + "\n", encoding="utf-8")
    return paths


def args(data: dict[str, Path], out: Path, encoder: Path, *extra: str) -> list[str]:
    return [
        "train", "--train", str(data["train"]), "--dev", str(data["dev"]), "--output", str(out),
        "--model", str(encoder), "--epochs", "3", "--batch-size", "8", "--learning-rate", "5e-4", "--seed", "5",
        "--no-tracking", *extra,
    ]  # fmt: skip


def test_killed_run_resumes_to_the_same_steps(
    tmp_path: Path, tiny_encoder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_corpus(tmp_path)

    # the reference: 32 sentences / batch 8 = 4 steps an epoch, 3 epochs
    reference = tmp_path / "reference"
    assert main(args(data, reference, tiny_encoder)) == 0
    ref_meta = json.loads((reference / "nerforge.json").read_text())
    assert ref_meta["extra"]["training"]["global_step"] == 12

    # killed after step 6 (hard exit, as SIGKILL): epoch 1's checkpoint exists, the model directory does not
    out = tmp_path / "model"
    env = {**os.environ, CRASH_ENV: "6", "HF_HUB_OFFLINE": "1"}
    script = "import sys; from nerforge.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.run(
        [sys.executable, "-c", script, *args(data, out, tiny_encoder)], env=env, capture_output=True, text=True
    )
    assert proc.returncode == CRASH_EXIT_CODE, proc.stderr[-2000:]
    assert not out.exists()
    # no half-built model beside it; only the killed run's lock files (released by the kernel, reused next run)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".model")) == [
        ".model.lock",
        ".model.work.lock",
    ]
    work = tmp_path / "model.work"
    assert sorted(p.name for p in (work / "checkpoints").iterdir()) == ["checkpoint-4"]

    # resuming with a different training config is refused, naming the key
    assert main(args(data, out, tiny_encoder, "--resume", "--learning-rate", "1e-3")) == 2
    assert "training.learning_rate" in capsys.readouterr().err
    assert not out.exists()

    # resumed: same number of optimizer steps, same epochs, a loadable model, work dir cleaned up
    assert main(args(data, out, tiny_encoder, "--resume")) == 0
    assert "resumed from" in capsys.readouterr().out
    meta = json.loads((out / "nerforge.json").read_text())
    assert meta["extra"]["training"]["global_step"] == 12
    assert meta["extra"]["training"]["resumed_from"].endswith("checkpoint-4")
    epochs = json.loads((out / "epochs.json").read_text())
    ref_epochs = json.loads((reference / "epochs.json").read_text())
    assert [r["step"] for r in epochs] == [r["step"] for r in ref_epochs] == [4, 8, 12]
    # RNG states and the (seed, epoch) batch order are restored, so the resumed run retraces the reference
    assert [r["eval_loss"] for r in epochs] == pytest.approx([r["eval_loss"] for r in ref_epochs], rel=1e-4)
    assert not work.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".model")]  # the resumed run removed them

    from nerforge.prediction import Tagger

    found = Tagger.load(out, progress=False).predict_text("We use Go daily")
    assert all(f"B-{e.label}" in meta["tags"] for e in found)  # the resumed model keeps its named labels


def _crash(data: dict[str, Path], out: Path, encoder: Path, step: int, *extra: str) -> None:
    env = {**os.environ, CRASH_ENV: str(step), "HF_HUB_OFFLINE": "1"}
    script = "import sys; from nerforge.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.run(
        [sys.executable, "-c", script, *args(data, out, encoder, *extra)], env=env, capture_output=True, text=True
    )
    assert proc.returncode == CRASH_EXIT_CODE, proc.stderr[-2000:]


@pytest.mark.parametrize(
    ("extra", "crash_after"),
    [
        (("--set", "training.eval_steps=3"), 4),  # resumes mid-epoch from checkpoint-3
        (("--max-steps", "10"), 9),  # resumes from checkpoint-8 at an epoch boundary, stops at max_steps
        (("--set", "training.gradient_accumulation_steps=3", "--batch-size", "4"), 4),  # 8 batches = 3 steps/epoch
    ],
    ids=["mid-epoch", "max-steps", "accumulation"],
)
def test_resumed_run_takes_exactly_the_reference_steps(
    tmp_path: Path, tiny_encoder: Path, extra: tuple[str, ...], crash_after: int
) -> None:
    data = write_corpus(tmp_path)
    reference = tmp_path / "reference"
    assert main(args(data, reference, tiny_encoder, *extra)) == 0
    ref = json.loads((reference / "nerforge.json").read_text())["extra"]["training"]
    out = tmp_path / "model"
    _crash(data, out, tiny_encoder, crash_after, *extra)
    assert main(args(data, out, tiny_encoder, *extra, "--resume")) == 0
    got = json.loads((out / "nerforge.json").read_text())["extra"]["training"]
    assert Path(got["resumed_from"]).name.startswith("checkpoint-")
    assert (got["global_step"], got["max_steps"], got["epochs"]) == (
        ref["global_step"],
        ref["max_steps"],
        ref["epochs"],
    )


def test_resume_after_the_data_changed_is_refused_saying_what_changed(
    tmp_path: Path, tiny_encoder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_corpus(tmp_path)
    out = tmp_path / "model"
    _crash(data, out, tiny_encoder, 6)
    with data["train"].open("a", encoding="utf-8") as fh:
        fh.write("We\tO\nuse\tO\nRust\tB-TECH\n\n")
    assert main(args(data, out, tiny_encoder, "--resume")) == 2
    err = capsys.readouterr().err
    assert "the data changed" in err and f"train: {data['train']} has changed" in err
    assert not out.exists()
    assert (tmp_path / "model.work" / "checkpoints" / "checkpoint-4").is_dir()  # the interrupted run is kept
