"""One writer per output: a training or an export holds an exclusive lock on its output (and work) directory.

The lock is ``flock`` on a hidden file beside the directory, ``.NAME.lock``, holding the owner's pid. The kernel
releases it when the process ends however it ends, so a killed run never leaves a stale lock; a second writer is
refused at once with one line naming the holder's pid. The file is removed on release; a waiter that locked a file
that was removed meanwhile notices (the inode changed) and tries again.

On systems without ``fcntl`` (Windows) no lock is taken.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from nerforge.errors import UsageError

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX
    fcntl = None  # type: ignore[assignment]


def lock_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(f".{path.name}.lock")


def lock_holder(path: str | Path) -> int | None:
    """The pid written in the lock file of ``path``, if there is one."""
    try:
        text = lock_path(path).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


@contextlib.contextmanager
def exclusive(path: str | Path, *, what: str = "output") -> Iterator[None]:
    """Hold the lock of ``path`` for the block.

    Raises:
        UsageError: another process holds it (names its pid).
    """
    if fcntl is None:  # pragma: no cover
        yield
        return
    path = Path(path).absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = lock_path(path)
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = lock_holder(path)
            who = f"process {holder}" if holder else "another process"
            raise UsageError(
                f"{path} is in use: {who} is writing this {what}; wait for it to finish or choose another --output"
            ) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the holder removed the file between our open and our lock: take the new one
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock)
        os.close(fd)  # closing releases the lock
