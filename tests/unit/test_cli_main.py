"""How ``nerforge.cli.main`` turns each way a command can end into one exit code and at most one line."""

from __future__ import annotations

import errno
import signal
from pathlib import Path

import pytest

from nerforge.cli import convert_cmd, main
from nerforge.errors import Interrupted


def _raise(exc: BaseException):  # type: ignore[no-untyped-def]
    def command(*args: object, **kwargs: object) -> None:
        raise exc

    return command


@pytest.mark.parametrize(
    ("exc", "code", "line"),
    [
        (
            RuntimeError("boom\nsecond line"),
            1,
            "error: unexpected RuntimeError: boom (a bug in nerforge; rerun with "
            "--verbose for the traceback and report it)",
        ),
        (
            OSError(errno.ENOSPC, "No space left on device", "/data/out.jsonl"),
            1,
            "error: /data/out.jsonl: No space left on device",
        ),
        (Interrupted(signal.SIGINT), 130, "interrupted"),
        (Interrupted(signal.SIGTERM), 143, "terminated (SIGTERM)"),
        (KeyboardInterrupt(), 130, "interrupted"),
    ],
    ids=["bug", "os-error", "sigint", "sigterm", "keyboard-interrupt"],
)
def test_each_ending_is_one_code_and_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path,
    exc: BaseException, code: int, line: str,
) -> None:  # fmt: skip
    monkeypatch.setattr(convert_cmd, "convert_file", _raise(exc))
    assert main(["convert", str(tmp_path / "a.conll"), str(tmp_path / "b.conll")]) == code
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [line]


def test_verbose_adds_the_traceback_of_a_bug(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(convert_cmd, "convert_file", _raise(RuntimeError("boom")))
    assert main(["--verbose", "convert", "a.conll", "b.conll"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("error: unexpected RuntimeError: boom")
