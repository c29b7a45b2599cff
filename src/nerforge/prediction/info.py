"""``nerforge info MODEL``: what a model directory holds, read from its files without loading the weights.

Encoder (family, layers, width), head, labels, how its training data was read and how much of it there was, the
training run (steps, epochs, early stop, threads), dev and test scores, backend and files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from nerforge.errors import ModelError
from nerforge.model_dir import RESOLVED_CONFIG_FILE, ModelMeta

_ENCODER_KEYS = (
    "model_type",
    "num_hidden_layers",
    "hidden_size",
    "intermediate_size",
    "num_attention_heads",
    "vocab_size",
)


@dataclass
class ModelInfo:
    """The facts of one model directory (see the module docstring); :meth:`to_dict` is ``info --json``."""

    path: Path
    meta: ModelMeta
    encoder: dict[str, Any] = field(default_factory=dict)
    data_files: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        m = self.meta
        training = m.training
        return {
            "path": str(self.path),
            "base_model": m.base_model,
            "encoder": self.encoder,
            "head": m.head,
            "backend": m.backend,
            "types": m.types,
            "tags": list(m.tags),
            "layers": [{"name": name, "tags": tags} for name, tags in m.layers],
            "span_width": (m.extra.get("head") or {}).get("max_width") if m.span_head else None,
            "max_length": m.max_length,
            "stride": m.stride,
            "reading": m.reading,
            "data": m.extra.get("data", {}),
            "data_files": self.data_files,
            "training": None if training is None else {k: v for k, v in vars(training).items() if v is not None},
            "metrics": {
                split: {k: m.metrics[split]["micro"][k] for k in ("precision", "recall", "f1", "support")}
                for split in ("dev", "test")
                if isinstance(m.metrics.get(split), dict) and "micro" in m.metrics[split]
            },
            "nerforge_version": m.nerforge_version,
            "model_version": m.model_version,
            "files": self.files,
            "distillation": _distillation(m),
        }


def model_info(path: str | Path) -> ModelInfo:
    """Read the facts of the model directory ``path``.

    Raises:
        ModelError: not a model directory (no readable ``nerforge.json``).
    """
    path = Path(path)
    if not path.is_dir():
        raise ModelError(f"{path}: no such model directory")
    meta = ModelMeta.load(path)
    info = ModelInfo(path, meta)
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        config = {}
    encoder = config.get("encoder") if isinstance(config.get("encoder"), dict) else config
    info.encoder = {k: encoder[k] for k in _ENCODER_KEYS if k in encoder}
    try:
        resolved = yaml.safe_load((path / RESOLVED_CONFIG_FILE).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        resolved = {}
    data = resolved.get("data") if isinstance(resolved, dict) else None
    for split in ("train", "dev", "test"):
        value = data.get(split) if isinstance(data, dict) else None
        carved = data.get("split") if isinstance(data, dict) else None
        if value:
            info.data_files[split] = [str(v) for v in value] if isinstance(value, list) else [str(value)]
        elif isinstance(carved, dict) and carved.get(split):
            info.data_files[split] = [
                f"{carved[split]:.0%} of the training {carved.get('by', 'document')}s (data.split, seed "
                f"{carved.get('seed', '?')})"
            ]
    info.files = {p.name: p.stat().st_size for p in sorted(path.iterdir()) if p.is_file()}
    return info


def _distillation(meta: ModelMeta) -> dict[str, Any] | None:
    """What ``nerforge distill`` recorded of a student (teacher, layers, temperature, alpha), or ``None``."""
    section = meta.extra.get("distillation")
    if not isinstance(section, dict):
        return None
    keys = (
        "teacher",
        "teacher_layers",
        "student_layers",
        "kept_layers",
        "teacher_ffn_size",
        "student_ffn_size",
        "temperature",
        "alpha",
        "unlabeled_sentences",
    )
    return {k: section[k] for k in keys if k in section}


def _plain(value: Any) -> str:
    """A reading option as a user writes it on the command line: ``Skill=,AI=TECH``, ``O,B-X``, ``tab``."""
    if isinstance(value, dict):
        return ",".join(f"{k}={v or ''}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    if value == "\t":
        return "tab"
    return str(value)


def render_info(info: ModelInfo) -> list[str]:
    """The text of ``nerforge info``."""
    d = info.to_dict()
    enc = d["encoder"]
    shape = ", ".join(f"{k.replace('num_', '').replace('_', ' ')} {v}" for k, v in enc.items() if k != "model_type")
    lines = [
        f"model:     {d['path']} (version {d['model_version']}; backend {d['backend']}, nerforge "
        f"{d['nerforge_version'] or '?'})",
        f"encoder:   {d['base_model'] or '?'}" + (f" ({enc.get('model_type', '?')}; {shape})" if enc else ""),
        f"head:      {d['head']}"
        + (
            f" (nested entities in one layer: every span of up to {d['span_width']} words scored per type)"
            if d["span_width"]
            else ""
        )
        + f"; windows of {d['max_length']} subwords, stride {d['stride']}",
        f"labels:    {', '.join(d['types']) or 'none'} ({len(d['tags'])} tags)"
        if not d["layers"]
        else "layers:    "
        + "; ".join(f"{x['name']}: {', '.join(t[2:] for t in x['tags'][1::2])}" for x in d["layers"])
        + " (one encoder, a tagger per layer; their entities may overlap)",
    ]
    for split in sorted(
        d["data"], key=lambda s: ("train", "dev", "test").index(s) if s in ("train", "dev", "test") else 3
    ):
        counts = d["data"][split]
        files = ", ".join(d["data_files"].get(split, [])) or "?"
        entities = sum(counts.get("entities", {}).values())
        lines.append(f"{split + ':':<10} {counts.get('sentences', '?')} sentences, {entities} entities from {files}")
    if d["reading"]:
        lines.append("read with: " + "; ".join(f"{k}={_plain(v)}" for k, v in d["reading"].items()))
    distilled = d["distillation"]
    if distilled:
        kept = ", ".join(str(i) for i in distilled.get("kept_layers") or [])
        lines.append(
            f"distilled: from {distilled.get('teacher', '?')}, {distilled.get('student_layers', '?')} of its "
            f"{distilled.get('teacher_layers', '?')} layers ({kept}), "
            + (
                f"feed-forward {distilled.get('teacher_ffn_size')} -> {distilled['student_ffn_size']} units, "
                if distilled.get("student_ffn_size")
                else ""
            )
            + f"temperature {distilled.get('temperature', '?')}, "
            f"alpha {distilled.get('alpha', '?')}"
        )
    t = d["training"]
    if t:
        stop = ", stopped early" if t.get("stopped_early") else ""
        lines.append(
            f"training:  {t.get('global_step')} steps, {t.get('epochs')} epochs{stop}, {t.get('threads')} threads"
        )
    for split, m in d["metrics"].items():
        lines.append(
            f"{split + ' F1:':<10} {m['f1']:.4f} (P {m['precision']:.4f}, R {m['recall']:.4f}; {m['support']} entities, "
            "strict IOB2)"
        )
    size = sum(d["files"].values())
    lines.append(f"files:     {len(d['files'])}, {size / 1e6:.1f} MB")
    return lines
