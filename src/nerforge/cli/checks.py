"""Checks every command runs on its arguments before it imports torch, transformers or ONNX Runtime, so that a
wrong path is one line within a fraction of a second (loading those libraries takes seconds)."""

from __future__ import annotations

from pathlib import Path

from nerforge.errors import UsageError
from nerforge.model_dir import ModelMeta


def check_model(path: str | Path) -> None:
    """``path`` is a nerforge model directory (its ``nerforge.json`` reads).

    Raises:
        ModelError: naming the path and what is missing.
    """
    ModelMeta.load(Path(path))


def check_inputs(*paths: str | Path | None, what: str = "input file") -> None:
    """Each given path exists (a URL or another ``scheme://`` location is left to the command).

    Raises:
        UsageError: naming the first missing path.
    """
    for path in paths:
        if path is None or "://" in str(path):
            continue
        if not Path(path).exists():
            raise UsageError(f"{path}: no such {what}")
