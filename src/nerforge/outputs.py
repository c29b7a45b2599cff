"""Checks of an output path made before any expensive work: a command that cannot write its result says so at
once, in one line naming the path, instead of failing after an hour of training or tagging.

Each check raises :class:`~nerforge.errors.UsageError` (exit code 2). What they cannot foresee (a disk that fills up
meanwhile) still fails later, as one line (see :func:`nerforge.cli.main`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

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


def check_output_dir(
    path: str | Path,
    *,
    ours: Callable[[Path], bool],
    kind: str,
    what: str = "--output",
) -> None:
    """``path`` can be written (or replaced) as a directory of ``kind``.

    Args:
        path: the directory to write.
        ours: whether an existing non-empty directory was written by this command (only then is it replaced).
        kind: what the directory is, for messages ("model directory", "ONNX export").

    Raises:
        UsageError: ``path`` is a file, a non-empty directory this command did not write, or not writable.
    """
    path = Path(path)
    if os.path.lexists(path) and (path.is_symlink() or not path.is_dir()):
        raise UsageError(f"{what} {path} exists and is not a folder; choose another {what} (nothing was changed)")
    if path.is_dir() and any(path.iterdir()) and not ours(path):
        raise UsageError(
            f"{what} {path} is a non-empty folder that is not a {kind}; choose another {what} or empty it "
            "(nerforge never deletes files it did not write)"
        )
    check_writable_location(path, what=what)


def check_not_inside(output: str | Path, source: str | Path, *, what: str = "--output") -> None:
    """``output`` is neither ``source`` nor inside it (writing there would replace or pollute the source).

    Raises:
        UsageError: it is.
    """
    out, src = Path(output).resolve(), Path(source).resolve()
    if out == src or src in out.parents:
        raise UsageError(f"{what} {output} is {'the source' if out == src else 'inside the source'} {source}; "
                         f"choose a folder outside it")


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
