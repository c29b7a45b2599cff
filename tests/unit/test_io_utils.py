"""Atomic outputs, leftovers of killed runs, the directory swap, locks and the output checks."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from nerforge import io_utils
from nerforge.errors import Interrupted, UsageError
from nerforge.io_utils import atomic_directory, atomic_open, clean_leftovers, leftovers, recover_swap
from nerforge.locking import exclusive, lock_path
from nerforge.outputs import check_free_space, check_output_dir, check_output_file


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_an_interrupted_write_leaves_neither_temp_nor_half_file(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    target.write_text("old\n", encoding="utf-8")
    with pytest.raises(Interrupted), atomic_open(target) as fh:
        fh.write("half")
        raise Interrupted(signal.SIGTERM)
    assert target.read_text(encoding="utf-8") == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]

    with pytest.raises(Interrupted), atomic_directory(tmp_path / "model") as tmp:
        (tmp / "weights").write_bytes(b"x")
        raise Interrupted(signal.SIGINT)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]


def test_only_leftovers_of_dead_writers_are_removed(tmp_path: Path) -> None:
    dead = tmp_path / f".model.nf{_dead_pid()}.abc123.tmp"
    dead.mkdir()
    (dead / "weights").write_bytes(b"x")
    alive = tmp_path / f".model.nf{os.getpid()}.def456.tmp"
    alive.mkdir()
    users = tmp_path / ".model.notes.tmp"  # not our pattern: never touched
    users.write_text("mine", encoding="utf-8")
    other = tmp_path / f".other.nf{_dead_pid()}.x.tmp"  # a leftover of another output: not ours to judge now
    other.write_text("x", encoding="utf-8")

    assert leftovers(tmp_path / "model") == [dead]
    assert clean_leftovers(tmp_path / "model") == [dead]
    assert not dead.exists() and alive.is_dir() and users.read_text(encoding="utf-8") == "mine" and other.exists()


def test_the_next_write_cleans_a_killed_runs_temp_file(tmp_path: Path) -> None:
    stale = tmp_path / f".out.jsonl.nf{_dead_pid()}.zz.tmp"
    stale.write_text("half", encoding="utf-8")
    with atomic_open(tmp_path / "out.jsonl") as fh:
        fh.write("new\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]


def test_replacing_a_directory_keeps_a_model_in_place_at_every_moment(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "v").write_text("1", encoding="utf-8")
    with atomic_directory(model) as tmp:
        (tmp / "v").write_text("2", encoding="utf-8")
        assert (model / "v").read_text(encoding="utf-8") == "1"  # the old one stays until the new one is whole
    assert (model / "v").read_text(encoding="utf-8") == "2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_a_swap_cut_between_its_renames_is_undone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "v").write_text("1", encoding="utf-8")
    monkeypatch.setattr(io_utils, "exchange", lambda a, b: False)  # a file system without RENAME_EXCHANGE

    real_replace = os.replace

    def killed_after_first_rename(src: str | Path, dst: str | Path) -> None:
        real_replace(src, dst)
        if Path(dst).name == ".model.old":
            raise Interrupted(signal.SIGKILL)  # the process dies right here

    monkeypatch.setattr(io_utils.os, "replace", killed_after_first_rename)
    with pytest.raises(Interrupted), atomic_directory(model) as tmp:
        (tmp / "v").write_text("2", encoding="utf-8")
    monkeypatch.setattr(io_utils.os, "replace", real_replace)
    assert not model.exists() and (tmp_path / ".model.old").is_dir()

    assert recover_swap(model)  # what the next run does first
    assert (model / "v").read_text(encoding="utf-8") == "1"
    with atomic_directory(model) as tmp:
        (tmp / "v").write_text("3", encoding="utf-8")
    assert (model / "v").read_text(encoding="utf-8") == "3"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_exchange_swaps_two_directories(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "x").write_text("a", encoding="utf-8")
    (b / "x").write_text("b", encoding="utf-8")
    if not io_utils.exchange(a, b):
        pytest.skip("renameat2(RENAME_EXCHANGE) is not available here (the two-rename path is tested above)")
    assert (a / "x").read_text(encoding="utf-8") == "b" and (b / "x").read_text(encoding="utf-8") == "a"


def test_a_users_file_is_never_replaced_by_a_directory(tmp_path: Path) -> None:
    path = tmp_path / "model"
    path.write_text("mine", encoding="utf-8")
    with pytest.raises(UsageError, match="not a directory"), atomic_directory(path):
        pass
    assert path.read_text(encoding="utf-8") == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_lock_is_exclusive_and_names_the_holder(tmp_path: Path) -> None:
    target = tmp_path / "model"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         f"import time; from nerforge.locking import exclusive\nwith exclusive({str(target)!r}):\n"
         "    print('locked', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(UsageError, match=f"process {holder.pid} is writing"), exclusive(target):
            pass
    finally:
        holder.kill()
        holder.wait()
    with exclusive(target):  # a killed holder's lock is gone with it
        assert lock_path(target).read_text(encoding="ascii").strip() == str(os.getpid())
    assert not lock_path(target).exists()


def test_output_checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "dir.jsonl").mkdir()
    with pytest.raises(UsageError, match="is a folder"):
        check_output_file(tmp_path / "dir.jsonl")
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    with pytest.raises(UsageError, match="is a file, not a folder"):
        check_output_file(blocker / "sub" / "out.jsonl")
    check_output_file(tmp_path / "new" / "deeper" / "out.jsonl")  # folders that can be made are fine

    users = tmp_path / "users"
    users.mkdir()
    (users / "a.txt").write_text("x", encoding="utf-8")
    with pytest.raises(UsageError, match="not a model"):
        check_output_dir(users, ours=lambda p: False, kind="model")
    check_output_dir(users, ours=lambda p: True, kind="model")

    usage = shutil.disk_usage(tmp_path)
    check_free_space(tmp_path / "m", 1024, what="the model")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage._replace(free=10 * 1024 * 1024))
    with pytest.raises(UsageError, match=r"not enough free space for the model in .*: 10.0 MB free, about 1.0 GB"):
        check_free_space(tmp_path / "m", 1024**3, what="the model")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders; the check cannot fail as root")
def test_a_read_only_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(UsageError, match="read-only or not writable"):
            check_output_file(folder / "out.jsonl")
    finally:
        folder.chmod(0o755)


def test_disk_full_is_found_through_library_wrappers() -> None:
    import errno

    from nerforge.io_utils import disk_full

    def chained() -> BaseException:
        try:
            try:
                raise OSError(errno.ENOSPC, "No space left on device")
            except OSError as inner:
                raise RuntimeError("PytorchStreamWriter failed writing file data/0") from inner
        except RuntimeError as outer:
            return outer

    assert disk_full(chained())
    assert disk_full(
        RuntimeError("[enforce fail at inline_container.cc:603] . unexpected pos; No space left on device")
    )
    assert disk_full(OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert disk_full(RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 3917056 vs 3916944"))
    assert not disk_full(RuntimeError("CUDA out of memory"))
    assert not disk_full(RuntimeError("CUDA out of memory"), Path("/"))  # unless the disk is (nearly) full there
    assert not disk_full(OSError(errno.EACCES, "Permission denied"))
