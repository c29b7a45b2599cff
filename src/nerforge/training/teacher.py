"""What a student takes from its teacher before anything is trained: the teacher's ``nerforge.json`` (refused when it
cannot teach) and the config keys it fixes. Light, so that ``nerforge distill`` checks its arguments before torch is
imported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nerforge.errors import UsageError
from nerforge.model_dir import META_FILE, ModelMeta
from nerforge.modeling.head import HeadSpec

__all__ = ["load_teacher_meta", "teacher_settings"]


def load_teacher_meta(teacher: Path) -> ModelMeta:
    """The teacher's ``nerforge.json``; refuses what cannot teach (not a model directory, an ONNX export)."""
    if not (Path(teacher) / META_FILE).is_file():
        raise UsageError(
            f"{teacher}: not a nerforge model directory (no {META_FILE}); the teacher is the output "
            "directory of 'nerforge train'"
        )
    meta = ModelMeta.load(teacher)
    if meta.backend != "torch":
        raise UsageError(
            f"{teacher}: holds a {meta.backend!r} export; distill from the PyTorch model directory it was exported from"
        )
    return meta


def teacher_settings(meta: ModelMeta, teacher: Path) -> dict[str, Any]:
    """The config keys a student takes from its teacher: the encoder files, windows, head and labels."""
    spec = HeadSpec.from_meta(meta)
    return {
        "model.name": str(Path(teacher).resolve()),
        "model.max_length": meta.max_length,
        "model.stride": meta.stride,
        "model.label_all_subwords": meta.label_all_subwords,
        **{f"model.head.{key}": value for key, value in spec.to_dict().items()},
        "data.labels": meta.types,
    }
