"""``nerforge init`` as a library function: inspect data files, write a commented training config for them, and
check that it reads back (:func:`init_config`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nerforge.errors import UsageError


@dataclass(frozen=True)
class InitResult:
    """What :func:`init_config` wrote: the config file, the files of each split, the entity types found."""

    output: Path
    splits: dict[str, list[Path]]
    types: list[str]


def init_config(
    paths: Sequence[Path],
    output: Path,
    *,
    read_options: Mapping[str, Any] | None = None,
    model_dir: str = "model",
    force: bool = False,
) -> InitResult:
    """Inspect ``paths`` and write a commented TOML config for training on them to ``output`` (atomically).

    Args:
        paths: annotated files (names with train/dev/valid/test pick the split) or folders.
        output: the ``*.toml`` to write.
        read_options: reader options given by the user (``--format``, ``--tag-column``...), kept in the config.
        model_dir: ``output.dir`` of the config, relative to it.
        force: replace ``output`` if it exists.

    Raises:
        UsageError: a wrong suffix, an existing config without ``force``, a missing data file.
        DataFormatError, ConfigError: unreadable data; a config that does not read back (a bug).
    """
    from nerforge.config.loader import load_config
    from nerforge.config.template import DetectedFile, assign_splits, render_config
    from nerforge.data.checks import inspect_files
    from nerforge.data.readers.options import ReadOptions
    from nerforge.io_utils import atomic_write_text

    if output.suffix.lower() != ".toml":
        raise UsageError(f"--output {output}: name the config *.toml")
    if output.exists() and not force:
        raise UsageError(f"{output} exists; choose another --output or pass --force to replace it")
    missing = [str(p) for p in paths if not p.is_file() and not p.is_dir()]
    if missing:
        raise UsageError(f"no such data file: {', '.join(missing)}")
    options = dict(read_options or {})
    report = inspect_files(paths, ReadOptions(**options))
    detected = [
        DetectedFile(
            Path(f.path),
            f.format,
            f.scheme,
            f.sentences,
            f.entities,
            f.entities_by_type,
            f.documents,
            tuple(x.message for x in f.findings if x.kind == "tag-columns"),
        )
        for f in report.files
    ]
    splits = assign_splits(paths)
    saved = {k: list(v) if isinstance(v, tuple) else v for k, v in options.items() if k != "labels_file"}
    if "labels_file" in options:
        saved["labels_file"] = str(Path(options["labels_file"]).resolve())
    text = render_config(splits, detected, config_path=output.resolve(), read_options=saved, output_dir=model_dir)
    atomic_write_text(output, text)
    load_config(output)  # what was written reads back (a bug here must not reach the user's first train)
    types = sorted({t for d in detected for t in d.entities_by_type})
    return InitResult(output, {k: list(v) for k, v in splits.items()}, types)
