"""Reading is bounded in memory for every input (issue 27, item 4): a data file or a line past its limit is an error
naming the file, the line and the variable that raises the limit, found while reading, not after."""

from __future__ import annotations

from pathlib import Path

import pytest

from nerforge.cli import main
from nerforge.data.readers.registry import read_corpus
from nerforge.data.readers.source import input_limits
from nerforge.errors import DataFormatError, UsageError


def test_an_input_without_line_ends_stops_at_the_line_limit(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("NERFORGE_MAX_LINE_MB", "2")
    assert main(["convert", "/dev/zero", "/tmp/never-written.jsonl"]) == 2
    err = capsys.readouterr().err
    assert "/dev/zero:1: the line is longer than 2 MB" in err and "NERFORGE_MAX_LINE_MB" in err
    assert not Path("/tmp/never-written.jsonl").exists()


def test_a_long_line_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NERFORGE_MAX_LINE_MB", "1")
    path = tmp_path / "d.conll"
    path.write_text("a\tO\nb\tO\n\n" + "x" * (3 * 1024 * 1024) + "\tO\n", encoding="utf-8")
    with pytest.raises(DataFormatError) as err:
        read_corpus(path)
    assert err.value.line == 4


def test_a_minified_json_document_counts_against_the_file_limit_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    monkeypatch.setenv("NERFORGE_MAX_LINE_MB", "0.01")  # 10 KB: far less than the one-line document below
    path = tmp_path / "export.json"
    tasks = [{"data": {"text": f"Alice met Bob {i}"}, "annotations": [{"result": []}]} for i in range(2000)]
    path.write_text(json.dumps(tasks), encoding="utf-8")
    assert len(read_corpus(path).examples) == 2000
    monkeypatch.setenv("NERFORGE_MAX_INPUT_MB", "0.01")
    with pytest.raises(DataFormatError, match="larger than 0.01 MB"):
        read_corpus(path)


@pytest.mark.parametrize("value", ["0", "-3", "lots"])
def test_limits_must_be_positive_numbers(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("NERFORGE_MAX_INPUT_MB", value)
    with pytest.raises(UsageError, match="NERFORGE_MAX_INPUT_MB"):
        input_limits()
