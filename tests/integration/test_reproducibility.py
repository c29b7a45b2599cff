"""Same data, seed and thread count give the same weights; the thread count is recorded and never follows load."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from nerforge import threads
from nerforge.cli import main


def test_default_threads_do_not_follow_the_machine_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "getloadavg", lambda: (64.0, 64.0, 64.0))
    assert threads.training_threads() == threads.usable_cpus()


def _train(tmp_path: Path, encoder: Path, name: str, *extra: str) -> Path:
    train = tmp_path / "train.conll"
    if not train.exists():
        words = ["Go", "Rust", "Java", "Python", "Kotlin", "Scala"]
        train.write_text("".join(f"We\tO\nuse\tO\n{w}\tB-TECH\ndaily\tO\n\n" for w in words * 3), encoding="utf-8")
    out = tmp_path / name
    assert main(["train", "--train", str(train), "--output", str(out), "--model", str(encoder), "--max-steps", "6",
                 "--batch-size", "4", "--seed", "7", "--no-tracking", *extra]) == 0  # fmt: skip
    return out


def _weights(model: Path) -> dict[str, object]:
    from safetensors.torch import load_file

    return load_file(str(model / "model.safetensors"))


def test_same_seed_and_threads_give_identical_weights(tmp_path: Path, tiny_encoder: Path) -> None:
    import torch

    a = _train(tmp_path, tiny_encoder, "a", "--set", "training.num_threads=2")
    b = _train(tmp_path, tiny_encoder, "b", "--set", "training.num_threads=2")
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)  # type: ignore[arg-type]
    c = _train(tmp_path, tiny_encoder, "c", "--seed", "8", "--set", "training.num_threads=2")
    assert not all(torch.equal(wa[k], _weights(c)[k]) for k in wa)  # type: ignore[arg-type]  # the check can fail

    for model in (a, b):
        assert json.loads((model / "nerforge.json").read_text())["extra"]["training"]["threads"] == 2
        assert yaml.safe_load((model / "config.resolved.yaml").read_text())["training"]["num_threads"] == 2


def test_the_default_thread_count_is_recorded(tmp_path: Path, tiny_encoder: Path) -> None:
    model = _train(tmp_path, tiny_encoder, "d")
    count = json.loads((model / "nerforge.json").read_text())["extra"]["training"]["threads"]
    assert count == threads.usable_cpus()
    assert yaml.safe_load((model / "config.resolved.yaml").read_text())["training"]["num_threads"] == count
