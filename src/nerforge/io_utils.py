"""Atomic writes: an output file or directory appears whole or not at all, and never replaces a user's file.

Temporary names are ``.NAME.nf<pid>.<random>.tmp`` beside the output. A run that was killed (SIGKILL, power loss)
cannot remove its own, so every write first removes the leftovers it can prove are dead: the name pattern of this
module and a pid that no longer runs (:func:`clean_leftovers`). Nothing else is ever deleted.

A directory that already exists is replaced by one atomic exchange of the two names (Linux ``renameat2`` with
``RENAME_EXCHANGE``), so there is no moment without a model. Where the exchange is not available the old directory
is first renamed to ``.NAME.old``; if the process dies between the two renames, the next write (or
:func:`recover_swap`) renames it back.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from nerforge.errors import UsageError
from nerforge.outputs import nearest_existing, write_manifest

logger = logging.getLogger(__name__)

_LEFTOVER = re.compile(r"^\.(?P<name>.+)\.nf(?P<pid>\d+)\.[^.]+\.tmp$")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _tmp_prefix(path: Path) -> str:
    return f".{path.name}.nf{os.getpid()}."


def _old_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.old")


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid runs on this machine (a pid we may not signal counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return True
    return True


def leftovers(path: str | Path) -> list[Path]:
    """Temporary files and folders of dead writers of ``path``: this module's name pattern and a pid that is gone."""
    path = Path(path)
    parent = path.parent
    if not parent.is_dir():
        return []
    found = []
    with contextlib.suppress(OSError):
        for entry in parent.iterdir():
            match = _LEFTOVER.match(entry.name)
            if match and match["name"] == path.name and not pid_alive(int(match["pid"])):
                found.append(entry)
    return sorted(found)


def clean_leftovers(path: str | Path) -> list[Path]:
    """Restore a swap that was cut (:func:`recover_swap`) and remove the leftovers of dead writers of ``path``."""
    recover_swap(path)
    removed = []
    for entry in leftovers(path):
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except OSError as exc:  # not ours to fail on: report and go on
            logger.warning("cannot remove the leftover %s: %s", entry, exc.strerror or exc)
            continue
        removed.append(entry)
    if removed:
        logger.info("removed %d leftover(s) of killed runs beside %s", len(removed), path)
    return removed


def recover_swap(path: str | Path) -> bool:
    """If a directory swap was cut between its two renames (``path`` missing, ``.NAME.old`` present), put the old
    directory back. Returns whether it did."""
    path = Path(path)
    old = _old_name(path)
    if old.is_dir() and not os.path.lexists(path):
        os.replace(old, path)
        logger.warning("restored %s from %s (an earlier run was killed while replacing it)", path, old.name)
        return True
    return False


@contextlib.contextmanager
def atomic_open(
    path: str | Path, mode: str = "w", encoding: str | None = "utf-8", newline: str | None = None
) -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success it replaces ``path``, on error it is removed.

    Raises:
        UsageError: ``path`` is a directory.
    """
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{path} is a directory; give a file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(path)
    fd, tmp = tempfile.mkstemp(prefix=_tmp_prefix(path), suffix=".tmp", dir=path.parent)
    binary = "b" in mode
    try:
        with os.fdopen(fd, mode, encoding=None if binary else encoding, newline=None if binary else newline) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the mode a plain open() would
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_open(path, "w") as fh:
        fh.write(text)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_open(path, "wb") as fh:
        fh.write(data)


def disk_full(exc: BaseException, where: str | Path | None = None) -> bool:
    """Whether ``exc``, or an exception it was raised from, is the disk being full (``ENOSPC``/``EDQUOT``). Libraries
    wrap it in their own types (torch's ``RuntimeError``, safetensors' error, ONNX's), which would otherwise read as
    a bug; torch's writer can even report a short write without the reason. With ``where`` (the folder being
    written), a file system left with less than 1 MB free also counts."""
    if where is not None:
        try:
            if shutil.disk_usage(nearest_existing(Path(where))).free < _NEARLY_FULL:
                return True
        except OSError:
            pass
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        text = str(current)
        if "No space left on device" in text or "Disk quota exceeded" in text:
            return True
        if "inline_container" in text and "unexpected pos" in text:  # torch.save's short write
            return True
        current = current.__cause__ or current.__context__
    return False


_NEARLY_FULL = 1024 * 1024


@contextlib.contextmanager
def atomic_directory(path: str | Path, *, kind: str | None = None) -> Iterator[Path]:
    """Build a directory under a temporary name beside ``path``; put it into place only on success.

    An existing directory ``path`` is replaced only once the new one is complete, by an atomic exchange where the
    system has one. Callers decide whether the existing directory may be replaced (it must be one nerforge wrote:
    :func:`nerforge.outputs.check_output_dir`); with ``kind``, the new directory gets the record that check reads
    (:func:`nerforge.outputs.write_manifest`).

    Raises:
        UsageError: ``path`` exists and is not a directory (a user's file is never moved or deleted).
    """
    path = Path(path)
    if os.path.lexists(path) and (path.is_symlink() or not path.is_dir()):
        raise UsageError(f"{path} exists and is not a directory; choose another output or remove it")
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(path)
    tmp = Path(tempfile.mkdtemp(prefix=_tmp_prefix(path), suffix=".tmp", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
        if kind is not None:
            write_manifest(tmp, kind)
        if path.exists():
            _replace_directory(tmp, path)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _replace_directory(new: Path, path: Path) -> None:
    """Put the directory ``new`` where the directory ``path`` is; the old one is deleted afterwards."""
    if exchange(new, path):
        shutil.rmtree(new, ignore_errors=True)  # ``new`` now holds the old directory
        return
    old = _old_name(path)
    if old.exists():
        shutil.rmtree(old)
    os.replace(path, old)  # a kill right after this is undone by recover_swap on the next run
    os.replace(new, path)
    shutil.rmtree(old, ignore_errors=True)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def exchange(a: Path, b: Path) -> bool:
    """Swap the names ``a`` and ``b`` atomically (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported.

    Raises:
        OSError: the exchange is supported but failed for another reason (permissions, ...).
    """
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return False
    try:
        libc = ctypes.CDLL(libc_name, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))
