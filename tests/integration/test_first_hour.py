"""The first hour on data nerforge has not seen (issue 32), end to end through ``nerforge train``: FNXL's label
table as the README writes it, and the second tag column of a Kompetencer-shaped file with junk tags."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nerforge.cli import main
from nerforge.model_dir import ModelMeta

FNXL_TABLE = "0,us-gaap:Revenues,128\n1,us-gaap:NetIncomeLoss,50\n2,us-gaap:Assets,7\n"


def _train(tmp_path: Path, encoder: Path, *args: str) -> int:
    return main(["train", *args, "--output", str(tmp_path / "m"), "--model", str(encoder), "--max-steps", "2",
                 "--no-tracking", "--no-progress"])  # fmt: skip


def test_readme_fnxl_command_trains(tmp_path: Path, tiny_encoder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    table = tmp_path / "labelCount.csv"
    table.write_text(FNXL_TABLE, encoding="utf-8")
    rows = [(["Revenue", "was", "5.2", "million"], [0, 0, 1, 0]), (["Net", "income", "of", "4"], [0, 0, 0, 2]),
            (["Total", "assets", "3.1", "billion"], [0, 0, 3, 0])] * 6  # fmt: skip
    lines = [",tokens,ner_tags"] + [f'{i},"{t!r}","{g!r}"' for i, (t, g) in enumerate(rows)]
    for name in ("fnxl_train.csv", "fnxl_dev.csv"):
        (tmp_path / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    command = next(line for line in readme.splitlines() if line.startswith("nerforge train --train fnxl_train.csv"))
    args = command.split()[2:]
    args = [str(tmp_path / a) if a.endswith(".csv") else a for a in args]
    cut = args.index("-o")
    code = _train(tmp_path, tiny_encoder, *(args[:cut] + args[cut + 2 :]))
    assert code == 0, capsys.readouterr().err
    meta = ModelMeta.load(tmp_path / "m")
    assert {t for t in meta.tags if t != "O"} == {f"{p}-us-gaap:{n}" for p in "BI" for n in
                                                  ("Revenues", "NetIncomeLoss", "Assets")}  # fmt: skip


KOMPETENCER = "".join(
    f"Vi\tO\tO\nsøger\tO\tO\n{w}\tB-Skill\tB-Knowledge\nog\tO\tUdd\nsamarbejde\tB-Skill\t\n\n" for w in
    ("Python", "Java", "SQL", "Excel", "Go", "Rust")
) * 3  # fmt: skip


def test_second_tag_column_with_junk_tags_trains_with_lenient(
    tmp_path: Path, tiny_encoder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "kompetencer.conll"
    data.write_text(KOMPETENCER, encoding="utf-8")
    assert _train(tmp_path, tiny_encoder, "--train", str(data), "--tag-column", "2") == 2
    assert "invalid tag 'Udd'" in capsys.readouterr().err
    assert _train(tmp_path, tiny_encoder, "--train", str(data), "--tag-column", "2", "--lenient") == 0
    meta = ModelMeta.load(tmp_path / "m")
    assert [t for t in meta.tags if t != "O"] == ["B-Knowledge", "I-Knowledge"]
    assert meta.reading["lenient"] is True and meta.reading["tag_column"] == 2
    assert json.loads((tmp_path / "m" / "nerforge.json").read_text())["extra"]["data"]["train"]["sentences"] == 18
