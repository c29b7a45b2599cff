"""``Tagger`` on raw text and ``nerforge predict`` on .txt/.csv/.jsonl/--text, with a tiny untrained model."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from conftest import build_tiny_token_model
from nerforge.cli import main
from nerforge.errors import ModelError
from nerforge.model_dir import ModelMeta
from nerforge.prediction import Tagger
from nerforge.prediction.io import escape_cell, render_inline
from nerforge.types import Entity

TYPES = ("LOC", "ORG", "PER")
TRICKY = [
    "Ünïcödé  naïve café — “quoted” text in Zürich, 東京 and São Paulo 🙂",
    "multiple   spaces\tand\ttabs\n\nnew\r\nlines\u00a0nbsp",
    "punctuation!!! (Acme Corp.) [brackets] e-mail don't C++ $1,000.50 end.",
    "combining: Cafe\u0301 re\u0301sume\u0301; zero\u200bwidth \x00 nul",
]


@pytest.fixture(scope="module", autouse=True)
def _cpu_threads():
    """Torch threads = idle cores (a loaded 2-core machine otherwise runs tiny models ten times slower)."""
    import torch

    from nerforge.threads import set_torch_threads

    before = torch.get_num_threads()
    set_torch_threads(None)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def model_dir(tiny_encoder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_token_model(tiny_encoder, tmp_path_factory.mktemp("model"), types=TYPES, max_length=16, stride=4)


@pytest.fixture(scope="module")
def tagger(model_dir: Path) -> Tagger:
    return Tagger.load(model_dir, progress=False)


def _check_entities(text: str, entities: list[Entity]) -> None:
    end = 0
    for e in entities:
        assert text[e.start : e.end] == e.text
        assert e.start >= end, "entities are in order and do not overlap"
        assert e.label in TYPES
        assert 0.0 < e.score <= 1.0
        assert e.text == e.text.strip()
        end = e.end


# -- Python API ----------------------------------------------------------------------------------------------------


def test_predict_entity_offsets_roundtrip_on_tricky_text(tagger: Tagger) -> None:
    results = tagger.predict(TRICKY)
    assert len(results) == len(TRICKY)
    for text, entities in zip(TRICKY, results, strict=True):
        _check_entities(text, entities)
    assert sum(len(r) for r in results) > 5  # the random head does find entities, so the checks above bite


def test_predict_entities_agree_with_word_predictions(tagger: Tagger) -> None:
    from nerforge.data.schemes import tags_to_spans

    text = TRICKY[2]
    words = tagger.words(text)
    [prediction] = tagger.predict_words([[w.text for w in words]])
    spans = tags_to_spans(prediction.tags)
    entities = tagger.predict_text(text)
    assert [(e.start, e.end, e.label) for e in entities] == [
        (words[s.start].start, words[s.end - 1].end, s.label) for s in spans
    ]
    for e, s in zip(entities, spans, strict=True):
        assert e.score == pytest.approx(sum(prediction.scores[s.start : s.end]) / (s.end - s.start), abs=1e-6)


def test_predict_empty_and_very_long_text(tagger: Tagger) -> None:
    assert tagger.predict_text("") == []
    assert tagger.predict_text(" \n\t ") == []
    text = " ".join(["Acme hired Ann Smith in Paris ."] * 800)  # 5,600 words
    entities = tagger.predict_text(text)
    _check_entities(text, entities)
    assert entities and entities[-1].end > 0.95 * len(text)


def test_predict_load_rejects_what_is_not_a_model(tmp_path: Path, model_dir: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        Tagger.load(tmp_path / "missing")
    with pytest.raises(ModelError, match="nerforge.json"):
        Tagger.load(tmp_path)
    ModelMeta(tags=["O", "B-X", "I-X"], max_length=16, stride=4).save(tmp_path)
    with pytest.raises(ModelError, match="safetensors"):
        Tagger.load(tmp_path)


def test_predict_load_rejects_metadata_that_disagrees_with_the_model(tmp_path: Path, model_dir: Path) -> None:
    import shutil

    copy = Path(shutil.copytree(model_dir, tmp_path / "copy"))
    ModelMeta(tags=["O", "B-X", "I-X"], max_length=16, stride=4).save(copy)
    with pytest.raises(ModelError, match="3 tags"):
        Tagger.load(copy)


# -- CLI -----------------------------------------------------------------------------------------------------------


def _run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main(["predict", *map(str, args), "--no-progress"])
    out, err = capsys.readouterr()
    return code, out, err


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _check_record(record: dict, text: str) -> None:
    assert record["text"] == text
    for e in record["entities"]:
        assert set(e) >= {"text", "label", "start", "end", "score"}
        assert text[e["start"] : e["end"]] == e["text"]


def test_predict_cli_txt_to_jsonl(tmp_path: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = ["Ann Smith works at Acme Corp in Paris.", "", "Zürich — naïve café, 東京"]
    src = tmp_path / "in.txt"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    code, stdout, _ = _run(capsys, model_dir, src, "--output", out)
    assert code == 0
    records = _read_jsonl(out)
    assert [r["id"] for r in records] == [0, 1, 2]
    for record, text in zip(records, lines, strict=True):
        _check_record(record, text)
    assert records[1]["entities"] == []
    assert "tagged 3 texts" in stdout and str(out) in stdout


def test_predict_cli_whole_file_is_one_text(
    tmp_path: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = "First line about Acme.\nSecond line about Paris.\n"
    src = tmp_path / "doc.txt"
    src.write_text(text, encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert _run(capsys, model_dir, src, "--whole-file", "-o", out)[0] == 0
    [record] = _read_jsonl(out)
    _check_record(record, text)


def test_predict_cli_csv_to_csv_keeps_rows_and_escapes(
    tmp_path: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "in.csv"
    rows = [
        {"doc": "a", "body": 'Ann said "hi",\nthen left Paris', "n": "1"},
        {"doc": "b", "body": "=HYPERLINK(evil) Acme", "n": "-2"},
        {"doc": "c", "body": "", "n": "@3"},
    ]
    with src.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["doc", "body", "n"])
        writer.writeheader()
        writer.writerows(rows)
    out = tmp_path / "out.csv"
    assert _run(capsys, model_dir, src, "--text-column", "body", "-o", out)[0] == 0
    with out.open(encoding="utf-8", newline="") as fh:
        got = list(csv.DictReader(fh))
    assert list(got[0]) == ["doc", "body", "n", "entities_text", "entities"]
    assert [r["doc"] for r in got] == ["a", "b", "c"]
    assert got[0]["body"] == rows[0]["body"]
    assert got[1]["body"] == "'=HYPERLINK(evil) Acme" and got[1]["n"] == "'-2" and got[2]["n"] == "'@3"
    assert json.loads(got[1]["entities"]), "the tiny model tags something in every text; the check below needs it"
    for row in got:
        entities = json.loads(row["entities"])
        # The offsets slice the text cell as written: an escaped cell's quote counts.
        _check_record({"text": row["body"], "entities": entities}, row["body"])
        readable = "; ".join(f"{' '.join(e['text'].split())} [{e['label']}]" for e in entities)
        assert row["entities_text"] in (readable, "'" + readable)  # spreadsheet-escaped like every cell


def test_predict_csv_has_a_readable_entities_column() -> None:
    from nerforge.prediction.io import readable_entities
    from nerforge.types import Entity

    entities = [Entity("Power BI", "TECH", 0, 8, 0.9), Entity("SQL", "TECH", 13, 16, 0.8),
                Entity("data\nanalysis", "SKILL", 20, 33, 0.7)]  # fmt: skip
    assert readable_entities(entities) == "Power BI [TECH]; SQL [TECH]; data analysis [SKILL]"
    assert readable_entities([]) == ""


@pytest.fixture
def web_page(tmp_path: Path):
    """A real HTTP server on 127.0.0.1 serving one HTML page."""
    import functools
    import http.server
    import threading

    (tmp_path / "job.html").write_text(
        "<html><head><title>Data engineer</title></head><body><article><h1>Data engineer</h1>"
        + "<p>Ann Smith at Acme Corp in Zürich wants Python, SQL and Kubernetes experience. 🎉 Apply now.</p>" * 5
        + "</article></body></html>",
        encoding="utf-8",
    )
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/job.html"
    server.shutdown()
    server.server_close()


def test_predict_cli_tags_a_web_page(
    web_page: str, tmp_path: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("trafilatura")
    out = tmp_path / "page.jsonl"
    # the server's SSRF rules: a loopback address is refused unless allowed
    code, _, err = _run(capsys, model_dir, web_page, "-o", out)
    assert code == 2 and "127.0.0.1" in err and "not fetched" in err
    assert not out.exists()
    code, stdout, err = _run(capsys, model_dir, web_page, "-o", out, "--allow-private-urls")
    assert code == 0, err
    [record] = _read_jsonl(out)
    assert record["url"] == web_page and record["title"] == "Data engineer"
    assert "Ann Smith at Acme Corp in Zürich" in record["text"] and "<p>" not in record["text"]
    _check_record(record, record["text"])
    assert "tagged 1 text" in stdout
    # the library function behind it takes a URL too (URL fetching sits below prediction, not in the server)
    from nerforge.errors import UsageError
    from nerforge.prediction.files import PredictSource, RunOptions, predict

    seen: list[object] = []
    summary = predict(
        model_dir,
        PredictSource(input_path=web_page, allow_private_urls=True),
        options=RunOptions(progress=False),
        on_result=lambda record, entities: seen.append(record),
    )
    assert summary.texts == 1 and seen[0].fields["title"] == "Data engineer"  # type: ignore[attr-defined]
    with pytest.raises(UsageError, match="not fetched"):
        predict(model_dir, PredictSource(input_path=web_page))


def test_predict_cli_jsonl_and_csv_to_jsonl(
    tmp_path: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text('{"id": "x1", "text": "Acme hired Ann.", "lang": "en"}\n\n{"text": "Paris"}\n', encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert _run(capsys, model_dir, src, "-o", out)[0] == 0
    records = _read_jsonl(out)
    assert [r["id"] for r in records] == ["x1", 1]
    assert records[0]["lang"] == "en"
    _check_record(records[0], "Acme hired Ann.")
    _check_record(records[1], "Paris")

    csv_src = tmp_path / "in.csv"
    csv_src.write_text("text,extra\nAcme hired Ann.,1\n", encoding="utf-8")
    assert _run(capsys, model_dir, csv_src, "-o", out)[0] == 0
    [record] = _read_jsonl(out)
    assert record["id"] == 0 and record["extra"] == "1"
    _check_record(record, "Acme hired Ann.")


def test_predict_cli_text_and_show(tmp_path: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, stdout, _ = _run(capsys, model_dir, "--text", TRICKY[2], "--show")
    assert code == 0
    assert stdout.startswith("[0] ")
    entities = Tagger.load(model_dir, progress=False).predict_text(TRICKY[2])
    assert render_inline(TRICKY[2], entities) in stdout
    assert "tagged 1 text" in stdout


@pytest.mark.parametrize(
    ("name", "content", "where", "message"),
    [
        ("bad.jsonl", '{"text": "ok"}\n{"text": 3}\n', "bad.jsonl:2:", "field 'text'"),
        ("bad2.jsonl", '{"text": "ok"}\n{not json\n', "bad2.jsonl:2:", "invalid JSON"),
        ("bad3.jsonl", '["a list"]\n', "bad3.jsonl:1:", "JSON list"),
        ("bad.csv", "text,n\nfine,1\nshort\n", "bad.csv:3:", "1 fields but the header has 2"),
        ("nocol.csv", "body\nhello\n", "nocol.csv:1:", "no column 'text'"),
        ("bad.txt", b"ok\n\xff\xfe broken\n", "bad.txt:2:", "not UTF-8"),
        ("utf16.txt", "Alice met Bob in Paris\nSecond line\n".encode("utf-16-le"), "utf16.txt:", "UTF-16 LE"),
        ("utf16be.csv", "text\nAlice met Bob\n".encode("utf-16-be"), "utf16be.csv:", "UTF-16 BE"),
    ],
)
def test_predict_cli_bad_input_is_path_line_error(
    tmp_path: Path,
    model_dir: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    content: str | bytes,
    where: str,
    message: str,
) -> None:
    src = tmp_path / name
    src.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    out = tmp_path / "out.jsonl"
    code, _, err = _run(capsys, model_dir, src, "-o", out)
    assert code == 2
    assert err.startswith("error: ") and where in err and message in err
    assert not out.exists(), "a failed run leaves no partial output"
    assert not list(tmp_path.glob(".out.jsonl.*")), "nor a temporary file"


@pytest.mark.parametrize(
    "args",
    [
        ["--text", "x", "in.txt"],  # both INPUT and --text
        [],  # neither
        ["in.xml"],  # unknown input suffix
        ["--text", "x", "-o", "out.parquet"],  # unknown output suffix
        ["missing.txt"],  # no such file
    ],
)
def test_predict_cli_usage_errors(
    tmp_path: Path, model_dir: Path, capsys: pytest.CaptureFixture[str], args: list[str], monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.txt").write_text("x\n", encoding="utf-8")
    (tmp_path / "in.xml").write_text("<x/>", encoding="utf-8")
    code, _, err = _run(capsys, model_dir, *args)
    assert code == 2 and err.startswith("error: ")


def test_predict_cli_not_a_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, tmp_path, "--text", "hello")
    assert code == 2 and "nerforge.json" in err


def test_predict_escape_cell() -> None:
    assert [escape_cell(v) for v in ["=1", "+1", "-1", "@a", "\tx", "a=1", ""]] == [
        "'=1",
        "'+1",
        "'-1",
        "'@a",
        "'\tx",
        "a=1",
        "",
    ]


def test_a_bad_record_deep_in_the_input_stops_the_run_before_any_tagging(tmp_path: Path, model_dir: Path) -> None:
    from nerforge.errors import DataFormatError
    from nerforge.prediction.files import PredictOutput, PredictSource, RunOptions, predict

    source = tmp_path / "in.txt"
    source.write_bytes(b"Alice met Bob in Paris.\n" * 3000 + b"caf\xe9 au lait\n" + b"more text\n")
    out = tmp_path / "out.jsonl"
    tagged: list[object] = []
    with pytest.raises(DataFormatError, match=r"in\.txt:3001: not UTF-8") as info:
        predict(
            model_dir,
            PredictSource(input_path=source),
            PredictOutput(path=out),
            RunOptions(progress=False),
            on_result=lambda r, e: tagged.append(r),
        )
    assert info.value.line == 3001
    assert tagged == []  # found by the pre-scan, not after tagging 3,000 texts
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["in.txt"]


def test_progress_shows_the_total(tmp_path: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from nerforge.prediction.files import PredictSource, RunOptions, predict

    source = tmp_path / "in.jsonl"
    source.write_text("".join(f'{{"text": "Alice met Bob {i}"}}\n' for i in range(7)), encoding="utf-8")
    predict(model_dir, PredictSource(input_path=source), options=RunOptions(progress=True))
    assert "0/7 " in capsys.readouterr().err  # the bar knows the total (without it tqdm shows "0it")


def test_local_predict_reads_parquet_like_the_ray_engine(tmp_path: Path, model_dir: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from nerforge.distributed.io import plan_parts, read_part
    from nerforge.prediction.files import PredictOutput, PredictSource, RunOptions, predict

    source = tmp_path / "in.parquet"
    texts = ["Alice met Bob in Paris.", "Zürich 🎉 was calm.", "Nothing here."]
    pq.write_table(pa.table({"id": ["a", "b", "c"], "text": texts, "when": pa.array([1, 2, 3], pa.int64())}), source)
    out = tmp_path / "out.jsonl"
    summary = predict(model_dir, PredictSource(input_path=source), PredictOutput(path=out), RunOptions(progress=False))
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert summary.texts == 3 and [r["text"] for r in rows] == texts and [r["id"] for r in rows] == ["a", "b", "c"]
    plan, _ = plan_parts(str(source), part_size=2)
    on_ray = [r for part in plan.parts for r in read_part(part)]
    assert [(r.index, r.text, r.fields) for r in on_ray] == [
        (i, t, {"id": k, "text": t, "when": i + 1}) for i, (k, t) in enumerate(zip("abc", texts, strict=True))
    ]  # the same records through the one Parquet reader

    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"text": ["ok", None]}), bad)
    from nerforge.errors import DataFormatError

    with pytest.raises(DataFormatError, match=r"column 'text' has 1 null value\(s\) in row group 0"):
        predict(
            model_dir,
            PredictSource(input_path=bad),
            PredictOutput(path=tmp_path / "o.jsonl"),
            RunOptions(progress=False),
        )


def test_predict_stops_at_a_line_past_the_limit_before_tagging(
    tmp_path: Path, model_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NERFORGE_MAX_LINE_MB", "1")
    src = tmp_path / "big.txt"
    src.write_text("Alice met Bob\n" + "word " * 400_000 + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    code, _, err = _run(capsys, model_dir, src, "-o", out)
    assert code == 2 and "big.txt:2: the line is longer than 1 MB" in err and "NERFORGE_MAX_LINE_MB" in err
    assert not out.exists()
