"""Exit codes as the README's table says them: an unusable model file is 2 naming the file, a machine fault is 1
without "bug" wording, and no case ends in a traceback (issue 27, item 5)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import build_tiny_token_model
from nerforge.cli import main

CONLL = "".join(f"Alice{i}\tB-PER\nmet\tO\nBob\tB-PER\nin\tO\nParis\tB-LOC\n\n" for i in range(8))


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory, tiny_encoder: Path) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("exit-codes")
    data = root / "train.conll"
    data.write_text(CONLL, encoding="utf-8")
    head = root / "head"
    assert main(["train", "--train", str(data), "--output", str(head), "--model", str(tiny_encoder),
                 "--max-steps", "1", "--no-tracking", "--no-progress"]) == 0  # fmt: skip
    return {"plain": build_tiny_token_model(tiny_encoder, root / "plain"), "shape+crf": head}


def _damage(model: Path, to: Path, how: str) -> Path:
    copy = Path(shutil.copytree(model, to))
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    if how == "truncated":
        data = data[: len(data) // 2]
    else:
        data[:8] = b"\xff" * 8  # a header length no file has
    weights.write_bytes(bytes(data))
    return copy


@pytest.mark.parametrize("head", ["plain", "shape+crf"])
@pytest.mark.parametrize("how", ["truncated", "garbled"])
def test_a_damaged_weights_file_is_exit_2_naming_it(
    models: dict[str, Path], tmp_path: Path, head: str, how: str, capsys: pytest.CaptureFixture[str]
) -> None:
    damaged = _damage(models[head], tmp_path / "m", how)
    for args in (["predict", str(damaged), "--text", "Alice met Bob"], ["evaluate", str(damaged), str(tmp_path)]):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert f"{damaged / 'model.safetensors'}: the weights file is damaged or truncated" in err, err
        assert "bug" not in err and len(err.strip().splitlines()) == 1


def test_serve_on_a_port_in_use_is_exit_1_before_announcing_anything(models: dict[str, Path]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "nerforge", "serve", str(models["plain"]), "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 1, proc.stderr
    assert "serving at" not in proc.stdout + proc.stderr
    assert f"127.0.0.1:{port}" in proc.stderr and "in use" in proc.stderr and "bug" not in proc.stderr
    assert "Traceback" not in proc.stderr


SCRIPT = Path(sys.executable).parent / "nerforge"


def test_two_quick_ctrl_c_during_training_are_as_quiet_as_one(tmp_path: Path, tiny_encoder: Path) -> None:
    import os
    import signal
    import time

    if not SCRIPT.exists():
        pytest.skip(f"console script not installed at {SCRIPT}")
    data = tmp_path / "train.conll"
    data.write_text(CONLL * 8, encoding="utf-8")
    proc = subprocess.Popen(
        [str(SCRIPT), "train", "--train", str(data), "--output", str(tmp_path / "m"), "--model", str(tiny_encoder),
         "--max-steps", "100000", "--batch-size", "2", "--no-tracking", "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not (tmp_path / "m.work" / "resume.json").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err[-2000:]
    assert err.strip().splitlines()[-1].startswith("interrupted")


def test_ctrl_c_while_the_command_starts_is_quiet() -> None:
    import signal
    import time

    if not SCRIPT.exists():
        pytest.skip(f"console script not installed at {SCRIPT}")
    for delay in (0.15, 0.3):
        proc = subprocess.Popen([str(SCRIPT), "info", "--help"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)  # fmt: skip
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode in (0, 130), err  # 0: it had finished already
        assert "Traceback" not in err and "KeyboardInterrupt" not in err, err


def test_a_disk_that_fills_up_during_training_is_exit_1_and_leaves_no_half_checkpoint(
    tmp_path: Path, tiny_encoder: Path
) -> None:
    import os
    import time

    if not SCRIPT.exists():
        pytest.skip(f"console script not installed at {SCRIPT}")
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200m", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.decode(errors='replace').strip()}")
    try:
        data = tmp_path / "train.conll"
        data.write_text(CONLL * 4, encoding="utf-8")
        work = disk / "work"
        proc = subprocess.Popen(
            [str(SCRIPT), "train", "--train", str(data), "--output", str(tmp_path / "m"), "--model", str(tiny_encoder),
             "--epochs", "50", "--batch-size", "4", "--no-tracking", "--no-progress",
             "--set", f"output.work_dir='{work}'"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )  # fmt: skip
        deadline = time.monotonic() + 180
        while not list(work.glob("checkpoints/checkpoint-*/trainer_state.json")) and proc.poll() is None:
            assert time.monotonic() < deadline, "no checkpoint was written"
            time.sleep(0.05)
        with open(disk / "filler", "wb") as fh:  # the disk fills up (another program, a log...)
            try:
                while True:
                    fh.write(b"\0" * (1 << 20))
                    fh.flush()
            except OSError:
                pass
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 1, err[-2000:]
        last = err.strip().splitlines()[-1]
        assert last.startswith("error: ") and "space" in last and "bug" not in last, err[-2000:]
        assert "Traceback" not in err
        unfinished = [p for p in work.glob("checkpoints/checkpoint-*") if not (p / "trainer_state.json").exists()]
        assert unfinished == []
        assert not (tmp_path / "m").exists()
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def test_a_run_that_would_not_fit_in_memory_is_refused_before_training(
    tmp_path: Path, tiny_encoder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 27, item 8: the estimate and what would fit, exit 2, before any weight is loaded or folder written."""
    data = tmp_path / "train.conll"
    data.write_text(CONLL, encoding="utf-8")
    monkeypatch.setenv("NERFORGE_MEMORY_MB", "100")
    out = tmp_path / "model"
    assert main(["train", "--train", str(data), "--output", str(out), "--model", str(tiny_encoder),
                 "--max-steps", "1", "--no-tracking", "--no-progress"]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "training would need about" in err and "the memory available is 100 MB" in err, err
    assert "no batch size fits" in err and "NERFORGE_MEMORY_MB" in err
    assert "Traceback" not in err and not out.exists()


def test_training_leaves_the_caller_s_config_as_it_was(tmp_path: Path, tiny_encoder: Path) -> None:
    """The library's ``train`` records the threads it used in config.resolved.yaml, in a copy (issue 26: the validated
    config was changed after validation)."""
    from nerforge.config import load_config
    from nerforge.training import train

    data = tmp_path / "train.conll"
    data.write_text(CONLL, encoding="utf-8")
    config = load_config(
        None,
        flags={
            "data.train": str(data),
            "data.dev": str(data),
            "output.dir": str(tmp_path / "m"),
            "model.name": str(tiny_encoder),
            "training.max_steps": 1,
            "tracking.enabled": False,
        },
    )
    before = config.model_dump()
    result = train(config, progress=False)
    assert config.model_dump() == before and config.training.num_threads is None
    resolved = (result.output_dir / "config.resolved.yaml").read_text(encoding="utf-8")
    assert "num_threads: null" not in resolved
    meta = json.loads((result.output_dir / "nerforge.json").read_text(encoding="utf-8"))
    assert "calibration" in meta["extra"]  # the calibration stage ran on dev
