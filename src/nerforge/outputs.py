"""Checks of an output path made before any expensive work: a command that cannot write its result says so at
once, in one line naming the path, instead of failing after an hour of training or tagging.

Each check raises :class:`~nerforge.errors.UsageError` (exit code 2). What they cannot foresee (a disk that fills up
meanwhile) still fails later, as one line (see :func:`nerforge.cli.main`).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nerforge.errors import UsageError


def nearest_existing(path: Path) -> Path:
    """``path`` itself or its closest ancestor that exists."""
    path = Path(os.path.abspath(path))
    while not os.path.lexists(path) and path != path.parent:
        path = path.parent
    return path


def check_writable_location(path: str | Path, *, what: str = "--output") -> None:
    """The folder that will hold ``path`` exists or can be made, and can be written.

    Raises:
        UsageError: an ancestor is a file, or the folder is read-only / not writable.
    """
    path = Path(path)
    base = nearest_existing(path.parent)
    if not base.is_dir():
        raise UsageError(f"cannot write {what} {path}: {base} is a file, not a folder")
    if not os.access(base, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write {what} {path}: {base} is read-only or not writable by this user")


def check_output_file(path: str | Path, *, what: str = "--output") -> None:
    """``path`` can be written as a file: not a folder, not a read-only file, in a writable folder.

    Raises:
        UsageError: naming ``path`` and what is wrong.
    """
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{what} {path} is a folder; give a file name")
    if path.exists() and not os.access(path, os.W_OK):
        raise UsageError(f"{what} {path} is read-only")
    check_writable_location(path, what=what)


# The kinds of folder nerforge writes, as their records name them.
MODEL_DIR = "nerforge model directory"
ONNX_EXPORT = "nerforge ONNX export"
EVALUATION_REPORT = "nerforge evaluation report"
DATA_REPORT = "nerforge data report"

MANIFEST = ".nerforge-output.json"
"""Written into every folder nerforge builds (:func:`nerforge.io_utils.atomic_directory`): its kind and every entry
nerforge put there. The one record of what nerforge may replace: a folder is replaced only when it has one, of the
same kind, and holds nothing beyond what it lists."""


def write_manifest(folder: str | Path, kind: str) -> None:
    """Record ``kind`` and the top-level entries of ``folder`` (a complete output, before it is put into place)."""
    folder = Path(folder)
    entries = sorted(p.name for p in folder.iterdir() if p.name != MANIFEST)
    (folder / MANIFEST).write_text(json.dumps({"kind": kind, "entries": entries}, indent=1) + "\n", encoding="utf-8")


def read_manifest(folder: str | Path) -> dict[str, Any] | None:
    """The record of a folder nerforge wrote, or ``None`` (no record, or one that does not read)."""
    try:
        data = json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("kind"), str) or not isinstance(data.get("entries"), list):
        return None
    return data


def unrecorded_entries(folder: str | Path, manifest: dict[str, Any]) -> list[str]:
    """Entries of ``folder`` its record does not list: a user's files (a nested folder that nerforge wrote, such as
    an evaluation report inside a model directory, has a record of its own and is not one of them)."""
    listed = set(manifest["entries"]) | {MANIFEST}
    out = []
    for entry in sorted(Path(folder).iterdir(), key=lambda p: p.name):
        if entry.name in listed or (entry.is_dir() and read_manifest(entry) is not None):
            continue
        out.append(entry.name + ("/" if entry.is_dir() else ""))
    return out


def check_output_dir(
    path: str | Path,
    *,
    kind: str,
    what: str = "--output",
    ours: Callable[[Path], bool] | None = None,
) -> None:
    """``path`` can be written (or replaced) as a directory of ``kind``: it does not exist, is empty, or is a folder
    nerforge wrote as that kind (its :data:`MANIFEST` says so) holding nothing that nerforge did not write.

    Args:
        path: the directory to write.
        kind: what the directory is ("nerforge model directory", "nerforge ONNX export"), as its record names it.
        ours: for folders nerforge keeps without a record (a training run's work directory): whether this one is.

    Raises:
        UsageError: ``path`` is a file, a folder nerforge did not write (or wrote as another kind), a folder holding
            files a user added (named), or not writable. Nothing is changed.
    """
    path = Path(path)
    if os.path.lexists(path) and (path.is_symlink() or not path.is_dir()):
        raise UsageError(f"{what} {path} exists and is not a folder; choose another {what} (nothing was changed)")
    if path.is_dir() and any(path.iterdir()):
        manifest = read_manifest(path)
        if manifest is None and not (ours is not None and ours(path)):
            raise UsageError(
                f"{what} {path} is a non-empty folder that is not a {kind} (it has no {MANIFEST}, nerforge's record of "
                f"the files it wrote); choose another {what} or empty it (nerforge never deletes files it did not write)"
            )
        if manifest is not None:
            if manifest["kind"] != kind:
                raise UsageError(f"{what} {path} holds a {manifest['kind']}, not a {kind}; choose another {what}")
            extra = unrecorded_entries(path, manifest)
            if extra:
                shown = ", ".join(extra[:4]) + (f" and {len(extra) - 4} more" if len(extra) > 4 else "")
                raise UsageError(
                    f"{what} {path} holds files nerforge did not write ({shown}); move them out or choose another "
                    f"{what} (replacing the {kind} would delete them)"
                )
    check_writable_location(path, what=what)


def check_not_inside(output: str | Path, source: str | Path, *, what: str = "--output") -> None:
    """``output`` is neither ``source`` nor inside it (writing there would replace or pollute the source).

    Raises:
        UsageError: it is.
    """
    out, src = Path(output).resolve(), Path(source).resolve()
    if out == src or src in out.parents:
        raise UsageError(
            f"{what} {output} is {'the source' if out == src else 'inside the source'} {source}; "
            f"choose a folder outside it"
        )


def check_free_space(path: str | Path, needed: int, *, what: str) -> None:
    """At least ``needed`` bytes are free on the file system that will hold ``path``.

    Raises:
        UsageError: fewer are, with both figures.
    """
    base = nearest_existing(Path(path).parent)
    try:
        free = shutil.disk_usage(base).free
    except OSError:
        return  # cannot tell; the write itself will report a full disk
    if free < needed:
        raise UsageError(
            f"not enough free space for {what} in {base}: {_size(free)} free, about {_size(needed)} needed"
        )


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"  # pragma: no cover


def weights_bytes(model_dir: str | Path) -> int | None:
    """Bytes of the weight files in a local model directory (safetensors or bin), or ``None`` if not local."""
    directory = Path(model_dir)
    if not directory.is_dir():
        return None
    total = sum(p.stat().st_size for pattern in ("*.safetensors", "*.bin") for p in directory.glob(pattern))
    return total or None
