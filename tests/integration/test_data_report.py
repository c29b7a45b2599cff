"""``nerforge inspect DATA --report DIR``: a self-contained HTML page with the data's plots (issue 15)."""

from __future__ import annotations

import base64
import re
import shutil
from pathlib import Path

import pytest

from nerforge.cli import main

TRAIN = """Senior\tO
Python\tB-TECH
developer\tO
with\tO
data\tB-SKILL
analysis\tI-SKILL
.\tO

Knows\tO
<script>alert(1)</script>\tB-TECH
and\tO
SQL\tB-TECH

Python\tB-TECH
again\tO
"""
TEST = """Python\tB-TECH
again\tO

Uses\tO
Go\tB-TECH
"""


@pytest.fixture
def data(tmp_path: Path) -> list[Path]:
    train, test = tmp_path / "train.conll", tmp_path / "test.conll"
    train.write_text(TRAIN, encoding="utf-8")
    test.write_text(TEST, encoding="utf-8")
    return [train, test]


def test_report_page_holds_every_figure_and_the_counts(
    data: list[Path], tmp_path: Path, tiny_encoder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report"
    code = main(["inspect", *map(str, data), "--report", str(out), "--tokenizer", str(tiny_encoder)])
    assert code == 0
    assert f"report: {out / 'index.html'}" in capsys.readouterr().out
    page = (out / "index.html").read_text(encoding="utf-8")
    for figure in ("entities", "lengths", "entity_lengths", "top_entities", "overlap"):
        png = (out / f"{figure}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 3000
        # embedded in the page too: it opens without the PNG files
        assert f'src="data:image/png;base64,{base64.b64encode(png).decode()}"' in page
    rows = re.findall(
        r"<tr><td>([^<]*)</td><td>conll</td><td>iob2</td><td>–</td><td>(\d+)</td><td>(\d+)</td><td>(\d+)</td>", page
    )
    assert rows == [(str(data[0]), "3", "13", "5"), (str(data[1]), "2", "4", "2")]
    # most frequent entities: Python 3x over both files; data text is escaped, never markup
    assert "<tr><td>Python</td><td>3</td></tr>" in page
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "duplicate" in page or "overlap" in page  # the shared sentence is a finding


def test_report_replaces_only_its_own_directory(data: list[Path], tmp_path: Path, tiny_encoder: Path) -> None:
    mine = tmp_path / "notes"
    mine.mkdir()
    (mine / "todo.txt").write_text("keep me")
    assert main(["inspect", *map(str, data), "--report", str(mine), "--tokenizer", str(tiny_encoder)]) == 2
    assert (mine / "todo.txt").read_text() == "keep me"
    out = tmp_path / "report"
    for _ in range(2):  # a second run replaces the first report as a whole
        assert main(["inspect", *map(str, data), "--report", str(out), "--tokenizer", str(tiny_encoder)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [
            "index.html",
            "entities.png",
            "lengths.png",
            "entity_lengths.png",
            "top_entities.png",
            "overlap.png",
            ".nerforge-output.json",
        ]  # the record of what nerforge wrote there
    )


def test_report_renders_in_chromium(data: list[Path], tmp_path: Path, tiny_encoder: Path) -> None:
    if shutil.which("chromium") is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    playwright = pytest.importorskip("playwright.sync_api")
    out = tmp_path / "report"
    assert main(["inspect", *map(str, data), "--report", str(out), "--tokenizer", str(tiny_encoder)]) == 0
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page()
            page.goto((out / "index.html").as_uri())
            assert page.evaluate("document.images.length") == 5
            assert page.evaluate("[...document.images].every(i => i.complete && i.naturalWidth > 300)")
            assert page.evaluate("window.__xss === undefined")
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            browser.close()


def test_report_of_hundreds_of_types_stays_readable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # XBRL-tagged filings have hundreds of types: the figures show the most frequent, the summary counts the rest
    from PIL import Image

    lines = []
    for k in range(300):
        lines += [f"amount{k}\tB-us-gaap:Item{k:03d}"] * (1 + k % 3) + ["of\tO", ""]
    data = tmp_path / "xbrl.conll"
    data.write_text("\n".join(lines), encoding="utf-8")
    out = tmp_path / "site"
    assert main(["inspect", str(data), "--report", str(out)]) == 0
    text = capsys.readouterr()
    summary = next(line for line in text.out.splitlines() if line.startswith(str(data)))
    assert "and 292 more types (300 in all" in summary and len(summary) < 400
    assert "Tight layout" not in text.err
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "The 50 most frequent of 300 types" in page
    assert page.count("<h3>") == 50
    width, height = Image.open(out / "entities.png").size
    assert width <= 1600 and height <= 600
    assert Image.open(out / "top_entities.png").size[1] <= 2500


def test_inspect_is_a_library_function_with_a_typed_result(data: list[Path], tmp_path: Path) -> None:
    from nerforge.config.inspect import inspect_data

    plain = inspect_data(data)
    assert plain.page is None and [Path(f.path) for f in plain.report.files] == data
    assert all(f.sentences > 0 for f in plain.report.files)
    result = inspect_data(data, report_dir=tmp_path / "site")
    assert result.page == tmp_path / "site" / "index.html" and result.page.is_file()
    assert result.report.tokenizer == "default"  # subwords counted with the embedded tokenizer for the page
