"""``nerforge init``: a commented training config for the user's data files, with what ``inspect`` detected.

The model and training sections are the defaults of :class:`~nerforge.config.TrainConfig`, written out with each
key's description, so the file shows every setting a user may change and nothing in it differs from a flags-only
run. TOML is written by hand here (the standard library reads TOML but does not write it), only for the value types
the schema has: strings, numbers, booleans and lists of strings.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nerforge.config.schema import ModelConfig, TrackingConfig, TrainingConfig
from nerforge.errors import UsageError
from nerforge.modeling.head import HeadSpec

SPLIT_NAMES = ("train", "dev", "test")
# File-name words that say which split a file is (CoNLL's testa/testb, HF's validation...).
_SPLIT_WORDS = {
    "train": ("train", "training"),
    "dev": ("dev", "devel", "valid", "validation", "val", "testa", "development"),
    "test": ("test", "testb", "eval"),
}


@dataclass(frozen=True)
class DetectedFile:
    """What ``inspect`` found in one data file."""

    path: Path
    format: str
    scheme: str
    sentences: int
    entities: int
    entities_by_type: Mapping[str, int]
    documents: int = 0
    notes: tuple[str, ...] = ()
    """Findings worth a comment in the config (several tag columns: which one is read)."""


def split_of(path: Path) -> str | None:
    """``train``, ``dev`` or ``test`` from a file name's words (``esp.testa`` is dev), or ``None``."""
    words = [w for w in re.split(r"[^a-z]+", path.name.lower()) if w]
    for split in ("dev", "test", "train"):  # "testa" before "test"; "train" last ("training_dev" is dev)
        if any(w in _SPLIT_WORDS[split] for w in words):
            return split
    return None


def assign_splits(paths: Sequence[Path]) -> dict[str, list[Path]]:
    """Files per split, by name; files whose names say nothing are training files (in the order given).

    Raises:
        UsageError: no file left for training.
    """
    out: dict[str, list[Path]] = {name: [] for name in SPLIT_NAMES}
    for path in paths:
        out[split_of(path) or "train"].append(path)
    if not out["train"]:
        raise UsageError(
            "no training file: the file names all look like dev or test splits; rename one, or give a file whose "
            "name does not say dev/test"
        )
    return {name: files for name, files in out.items() if files}


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{_key(k)} = {_toml(v)}" for k, v in value.items() if v is not None) + " }"
    raise TypeError(f"cannot write {value!r} as TOML")


def _key(key: str) -> str:
    """A TOML key: bare where TOML allows it, else quoted (a label map's ``*`` or ``B-MISC``'s glob ``B-*``)."""
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key, ensure_ascii=False)


def _line(key: str, value: Any, comment: str | None) -> str:
    if key == "label_map" and isinstance(value, Mapping):  # a dropped type (None) is "" in TOML, which has no null
        value = {k: "" if v is None else v for k, v in value.items()}
    text = f"{_key(key)} = {_toml(value)}"
    return f"{text:<40} # {comment}" if comment else text


def _section(model: type[Any], skip: Sequence[str] = (), defaults: Any = None) -> list[str]:
    lines = []
    defaults = model() if defaults is None else defaults
    for name, field in model.model_fields.items():
        value = getattr(defaults, name)
        if name in skip:
            continue
        if value is None:
            lines.append(f"{'# ' + name + ' = ...':<40} # {field.description or 'unset'}")
            continue
        lines.append(_line(name, value, field.description))
    return lines


def _relative(path: Path, base: Path) -> str:
    try:
        return os.path.relpath(path.resolve(), base.resolve())
    except ValueError:  # another drive (Windows)
        return str(path.resolve())


def render_config(
    splits: Mapping[str, Sequence[Path]],
    detected: Sequence[DetectedFile],
    *,
    config_path: Path,
    read_options: Mapping[str, Any] | None = None,
    output_dir: str = "model",
) -> str:
    """The commented TOML config (see the module docstring); data paths relative to ``config_path``'s folder."""
    base = config_path.parent
    by_path = {d.path.resolve(): d for d in detected}
    types: dict[str, int] = {}
    for d in detected:
        for name, n in d.entities_by_type.items():
            types[name] = types.get(name, 0) + n
    lines = [
        f"# nerforge training config, written by `nerforge init` on {time.strftime('%Y-%m-%d')}.",
        f"#   nerforge train {config_path.name}",
        "# Every key below is at its default except the data; change any of them, or override one for a run with",
        "#   --set training.epochs=20",
        "",
        "[data]",
    ]
    for split in SPLIT_NAMES:
        files = list(splits.get(split, ()))
        if not files:
            continue
        rel = [_relative(p, base) for p in files]
        facts = []
        for p in files:
            d = by_path.get(p.resolve())
            if d is not None:
                facts.append(f"{d.format}, {d.scheme}, {d.sentences} sentences, {d.entities} entities")
        value: Any = rel[0] if len(rel) == 1 else rel
        lines.append(_line(split, value, "; ".join(facts) or None))
        for p in files:
            d = by_path.get(p.resolve())
            for note in d.notes if d is not None else ():
                lines.append(f"# {p.name}: {note}")
    if "dev" not in splits or "test" not in splits:
        missing = [name for name in ("dev", "test") if name not in splits]
        train = [by_path.get(p.resolve()) for p in splits["train"]]
        by = "document" if train and all(d is not None and d.documents > 1 for d in train) else "sentence"
        lines.append(
            _line("split", {**{name: 0.1 for name in missing}, "seed": 13, "by": by},
                  f"no {' or '.join(missing)} file: 10% of the training {by}s moved to each")
        )  # fmt: skip
    if types:
        ordered = sorted(types, key=lambda t: (-types[t], t))
        counts = ", ".join(f"{t} {types[t]}" for t in ordered)
        lines.append(
            _line(
                "labels",
                sorted(types),
                f"entity types found ({counts}); remove one from the list and its "
                "entities are read as O and not learned; label_map renames or merges types",
            )
        )
    for name, value in (read_options or {}).items():
        lines.append(_line(name, value, "as given to nerforge init"))
    formats = sorted({d.format for d in detected})
    schemes = sorted({d.scheme for d in detected})
    lines.append(
        f"# format and tag scheme are detected when read ({', '.join(formats)}; {', '.join(schemes)}); "
        'set format = "..." or scheme = "..." to force them'
    )
    lines += ["", "[model]", *_section(ModelConfig, skip=("head",))]
    lines += ["", "[model.head]", *_section(HeadSpec, defaults=ModelConfig().head)]
    lines += ["", "[training]", *_section(TrainingConfig)]
    lines += ["", "[tracking]", *_section(TrackingConfig)]
    lines += ["", "[output]", _line("dir", output_dir, "the model directory (relative to this file)")]
    return "\n".join(lines) + "\n"


def config_toml(values: Mapping[str, Any], header: str = "") -> str:
    """A resolved config (``TrainConfig.model_dump(mode="json")``) as TOML: a table per section, unset keys left out,
    nested keys (``model.head``) as inline tables; ``nerforge train`` reads it back to the same config."""
    lines = [f"# {line}" for line in header.splitlines()]
    for section, keys in values.items():
        if not isinstance(keys, Mapping):
            if keys is not None:
                lines.insert(len(header.splitlines()), _line(section, keys, None))
            continue
        lines += ["", f"[{section}]"]
        lines += [_line(key, value, None) for key, value in keys.items() if value is not None]
    return "\n".join(lines).lstrip("\n") + "\n"
