"""Fine-tuning: examples -> windows -> the Hugging Face Trainer -> an atomic model directory.

``dataset`` builds labelled windows, ``collate`` batches them, ``trainer`` sets up the Trainer, ``callbacks`` and
``tracking`` hook into it, ``model_card`` writes the README, ``preflight`` checks inputs and outputs before anything
heavy is imported, and ``run.train`` ties them together. ``train`` and ``TrainResult`` are imported on first use, so
that ``nerforge.training.preflight`` stays light.
"""

from __future__ import annotations

from typing import Any

__all__ = ["TrainResult", "train"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from nerforge.training import run

        return getattr(run, name)
    raise AttributeError(f"module 'nerforge.training' has no attribute {name!r}")
