"""``nerforge inspect`` through ``nerforge.cli.main``: the JSON contract, the text report and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nerforge.cli import main

TRAIN = """\
EU B-ORG
rejects O
German B-MISC
call O

Peter B-PER
Blackburn I-PER

in O
Bonn I-LOC
"""

TEST = """\
Peter B-PER
Blackburn I-PER

currency I-blockchainO
\u200bthe O
"""


@pytest.fixture()
def files(tmp_path: Path) -> tuple[Path, Path]:
    train, test = tmp_path / "train.conll", tmp_path / "test.conll"
    train.write_text(TRAIN, encoding="utf-8")
    test.write_text(TEST, encoding="utf-8")
    return train, test


def test_inspect_cli_json_contract(files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    train, test = files
    assert main(["inspect", str(train), str(test), "--json", "--max-length", "3"]) == 0
    out = capsys.readouterr().out
    report = json.loads(out)  # exactly one JSON object, nothing else on stdout
    assert set(report) >= {"files", "total"}
    assert set(report["total"]) >= {"sentences", "tokens", "entities", "entities_by_type"}
    a, b = report["files"]
    for f in (a, b):
        assert set(f) >= {"path", "format", "scheme", "sentences", "tokens", "entities", "entities_by_type", "findings"}
        for finding in f["findings"]:
            assert set(finding) >= {"kind", "path", "line", "message"}
    assert (a["path"], a["format"], a["scheme"]) == (str(train), "conll", "iob2")
    assert (a["sentences"], a["tokens"], a["entities"]) == (3, 8, 4)
    assert a["entities_by_type"] == {"LOC": 1, "MISC": 1, "ORG": 1, "PER": 1}
    assert report["total"]["sentences"] == 5 and report["total"]["entities"] == 6
    found = {(x["kind"], x["line"]) for x in a["findings"]}
    assert ("i-start", 10) in found  # Bonn/I-LOC after O
    assert ("too-long", 1) in found  # 4 words > 3
    assert a["lengths"]["words"]["entities_lost"] == 0 and a["lengths"]["words"]["over_max"] == 1
    found_b = {(x["kind"], x["line"]) for x in b["findings"]}
    assert {("overlap", 1), ("corrupt-tag", 4), ("zero-width-char", 5)} <= found_b
    assert b["findings_by_kind"]["overlap"] == 1
    assert report["overlaps"] == [{"path": str(test), "other": str(train), "sentences": 1}]


def test_inspect_cli_text_report(files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    train, test = files
    assert main(["inspect", str(train), str(test), "--max-findings", "1"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["file", "format", "scheme", "docs"]
    assert any(line.startswith(str(train)) and "conll" in line and "iob2" in line for line in lines)
    assert any(line.startswith("total") for line in lines)
    assert "corrupt-tag (error): 1" in out
    assert f"  {test}:4: tag 'I-blockchainO'" in out
    assert "overlap (warning): 1" in out


def test_inspect_cli_shows_the_first_few_per_kind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "many.conll"
    path.write_text("".join(f"w{i} O\nX I-LOC\n\n" for i in range(9)), encoding="utf-8")
    assert main(["inspect", str(path), "--scheme", "iob2"]) == 0  # detection alone would say IO (info)
    out = capsys.readouterr().out
    assert "i-start (warning): 9" in out
    assert f"  {path}:2: I-LOC opens a span after O: 'X'" in out
    assert "  ... and 4 more" in out


def test_inspect_cli_garbled_file_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "garbled.conll"
    path.write_text("EU B-ORG\nrejects O\nthis line has far too many columns O\n", encoding="utf-8")
    assert main(["inspect", str(path), "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {path}:3: ")
    assert "Traceback" not in captured.err


def test_inspect_cli_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(tmp_path / "nope.conll")]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'nope.conll'}: no such file"


def test_inspect_cli_unknown_tokenizer_exits_2(files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    train, _ = files
    missing = train.parent / "no-model"
    assert main(["inspect", str(train), "--tokenizer", str(missing)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "no such model directory" in err[0]
