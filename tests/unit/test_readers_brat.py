"""BRAT standoff (issue 28, item 1): ``.ann`` beside ``.txt``, a folder of pairs; T lines read, other lines skipped
and counted, discontinuous, nested and crossing entities handled by the documented rules, each stated with the
first ``file:line``; offsets checked against the text."""

from __future__ import annotations

from pathlib import Path

import pytest

from nerforge.data.readers.options import ReadOptions
from nerforge.data.readers.registry import read_corpus
from nerforge.data.schemes import strict_tags_to_spans
from nerforge.errors import DataFormatError

DOC = "Die Bonner Universität 🎉 liegt in Bonn.\nIL-2 gene expression and NF-kappa B activation.\n\nEnde.\n"


def _span(text: str, word: str, nth: int = 0) -> tuple[int, int]:
    start = -1
    for _ in range(nth + 1):
        start = text.index(word, start + 1)
    return start, start + len(word)


def _ann(text: str) -> str:
    uni = _span(text, "Bonner Universität")
    bonn = _span(text, "Bonner")
    city = _span(text, "Bonn", 1)
    il2 = _span(text, "IL-2 gene")
    nfkb = _span(text, "NF-kappa B")
    act = _span(text, "activation")
    return "\n".join([
        f"T1\tORG {uni[0]} {uni[1]}\tBonner Universität",
        f"T2\tLOCderiv {bonn[0]} {bonn[1]}\tBonner",  # nested inside T1
        f"T3\tLOC {city[0]} {city[1]}\tBonn",
        f"T4\tDNA {il2[0]} {il2[1]}\tIL-2 gene",
        f"T5\tProtein {nfkb[0]} {nfkb[0] + 8};{nfkb[1] - 1} {nfkb[1]}\tNF-kappa B",  # discontinuous
        f"T6\tProtein {nfkb[0]} {act[1]}\tNF-kappa B activation",  # crosses nothing: same start, longer -> outer
        "R1\tPart-of Arg1:T2 Arg2:T1",
        "E1\tExpression:T4",
        "A1\tNegation E1",
        "#1\tAnnotatorNotes T1\tchecked",
        "",
    ])  # fmt: skip


def _write(folder: Path, name: str = "doc1") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.txt").write_text(DOC, encoding="utf-8")
    ann = folder / f"{name}.ann"
    ann.write_text(_ann(DOC), encoding="utf-8")
    return ann


def _entities(corpus) -> list[list[tuple[str, str]]]:  # type: ignore[no-untyped-def]
    return [[(" ".join(ex.tokens[s.start : s.end]), s.label) for s in strict_tags_to_spans(ex.tags)]
            for ex in corpus.examples]  # fmt: skip


def test_a_document_reads_as_its_lines_with_the_outer_entities(tmp_path: Path) -> None:
    ann = _write(tmp_path)
    corpus = read_corpus(ann, ReadOptions())
    assert corpus.format == "brat"
    assert _entities(corpus) == [
        [("Bonner Universität", "ORG"), ("Bonn", "LOC")],
        [("IL-2 gene", "DNA"), ("NF-kappa B activation", "Protein")],
        [],
    ]
    assert [ex.doc_id for ex in corpus.examples] == ["doc1"] * 3
    assert [ex.line for ex in corpus.examples] == [1, 2, 4]
    for ex in corpus.examples:  # offsets point into the line's text
        assert all(ex.text[a:b] == t for (a, b), t in zip(ex.offsets, ex.tokens, strict=True))
    found = {f.kind: f for f in corpus.findings}
    assert "4 relation, event, attribute, normalization and note lines skipped" in found["brat-skipped"].message
    assert found["brat-nested"].message.startswith("2 entities inside another")  # T2 in T1, T5 in T6
    assert f"{ann}:2" in found["brat-nested"].message
    assert (
        found["brat-discontinuous"].message.startswith("1 discontinuous")
        and f"{ann}:5" in found["brat-discontinuous"].message
    )


def test_a_folder_of_documents_and_detection(tmp_path: Path) -> None:
    _write(tmp_path / "corpus", "a")
    _write(tmp_path / "corpus" / "sub", "b")
    corpus = read_corpus(tmp_path / "corpus", ReadOptions())
    assert corpus.format == "brat" and len(corpus.examples) == 6
    assert sorted({ex.doc_id for ex in corpus.examples}) == ["a", "b"]
    assert not any(f.kind == "brat-no-ann" for f in corpus.findings)


def test_a_document_without_its_ann_is_reported_and_an_empty_ann_reads(tmp_path: Path) -> None:
    """A .txt alone in a BRAT folder is not read, and said (it was skipped silently); beside an empty .ann it reads
    as a document of no entities."""
    _write(tmp_path / "corpus", "a")
    (tmp_path / "corpus" / "lonely.txt").write_text("No annotations here.\n", encoding="utf-8")
    corpus = read_corpus(tmp_path / "corpus", ReadOptions())
    assert {ex.doc_id for ex in corpus.examples} == {"a"}
    found = [f for f in corpus.findings if f.kind == "brat-no-ann"]
    assert len(found) == 1 and "1 .txt documents without an .ann" in found[0].message
    assert "lonely.txt" in found[0].message
    (tmp_path / "corpus" / "lonely.ann").write_text("", encoding="utf-8")
    corpus = read_corpus(tmp_path / "corpus", ReadOptions())
    lonely = [ex for ex in corpus.examples if ex.doc_id == "lonely"]
    assert len(lonely) == 1 and set(lonely[0].tags) == {"O"}
    assert not any(f.kind == "brat-no-ann" for f in corpus.findings)


def test_an_entity_across_a_line_end_joins_the_lines(tmp_path: Path) -> None:
    (tmp_path / "d.txt").write_text("New\nYork is big.\nOther line.\n", encoding="utf-8")
    (tmp_path / "d.ann").write_text("T1\tLOC 0 8\tNew York\n", encoding="utf-8")  # the line end as a space
    corpus = read_corpus(tmp_path / "d.ann", ReadOptions())
    assert _entities(corpus) == [[("New York", "LOC")], []]


@pytest.mark.parametrize("end", ["\r\n", "\r"])
@pytest.mark.parametrize("raw", [True, False])
def test_windows_line_ends_are_read_as_the_offsets_count_them(tmp_path: Path, end: str, raw: bool) -> None:
    """A .txt with \\r\\n (or old Mac \\r) line ends: brat's own server counts each as the characters it is,
    tools that read the file in text mode count one; the quoted texts say which, and both read the same entities
    (the untranslated count was read one character off per line: 'the offsets cover ...' on line 2)."""
    lines = ["Anna works in Berlin.", "IL-2 binds the receptor.", "", "Ende in Wien."]
    document = end.join(lines) + end
    counted = document if raw else "\n".join(lines) + "\n"
    ann = "".join(f"T{i}\t{label} {a} {b}\t{counted[a:b]}\n" for i, (label, (a, b)) in enumerate(
        [("LOC", _span(counted, "Berlin")), ("Protein", _span(counted, "IL-2")), ("LOC", _span(counted, "Wien"))],
        start=1))  # fmt: skip
    (tmp_path / "d.txt").write_bytes(document.encode("utf-8"))
    (tmp_path / "d.ann").write_text(ann, encoding="utf-8")
    corpus = read_corpus(tmp_path / "d.ann", ReadOptions())
    assert _entities(corpus) == [[("Berlin", "LOC")], [("IL-2", "Protein")], [("Wien", "LOC")]]
    assert [ex.line for ex in corpus.examples] == [1, 2, 4]
    assert all("\r" not in tok for ex in corpus.examples for tok in ex.tokens)
    # a lone \\r is one character either way: only \\r\\n tells the two countings apart
    assert any(f.kind == "brat-raw-line-ends" for f in corpus.findings) is (raw and end == "\r\n")


def test_crossing_entities_keep_the_first(tmp_path: Path) -> None:
    (tmp_path / "d.txt").write_text("alpha beta gamma\n", encoding="utf-8")
    (tmp_path / "d.ann").write_text("T1\tA 0 10\talpha beta\nT2\tB 6 16\tbeta gamma\n", encoding="utf-8")
    corpus = read_corpus(tmp_path / "d.ann", ReadOptions())
    assert _entities(corpus) == [[("alpha beta", "A")]]
    assert any(f.kind == "brat-crossing" and f"{tmp_path / 'd.ann'}:2" in f.message for f in corpus.findings)


@pytest.mark.parametrize(
    ("ann", "message"),
    [
        ("T1\tLOC 0 4\tBonX\n", r"d.ann:1: the offsets cover 'Bonn' but the line says 'BonX'"),
        ("T1\tLOC 0 400\tBonn\n", r"d.ann:1: entity 'LOC 0 400' has no type or offsets outside the text"),
        ("T1\tLOC a b\tBonn\n", r"d.ann:1: entity 'LOC a b'"),
        ("\nX1\tfoo\n", r"d.ann:2: a line that starts with 'X'"),
    ],
)
def test_bad_annotations_name_the_ann_line(tmp_path: Path, ann: str, message: str) -> None:
    (tmp_path / "d.txt").write_text("Bonn is a city.\n", encoding="utf-8")
    (tmp_path / "d.ann").write_text(ann, encoding="utf-8")
    with pytest.raises(DataFormatError, match=message):
        read_corpus(tmp_path / "d.ann", ReadOptions())


def test_an_ann_without_its_text_is_named(tmp_path: Path) -> None:
    (tmp_path / "d.ann").write_text("T1\tLOC 0 4\tBonn\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"d.ann: no d.txt beside it"):
        read_corpus(tmp_path / "d.ann", ReadOptions())


def test_inspect_and_convert_take_a_folder_of_documents(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from nerforge.cli import main

    _write(tmp_path / "corpus", "a")
    assert main(["inspect", str(tmp_path / "corpus")]) == 0
    out = capsys.readouterr().out
    assert "brat" in out and "brat-nested" in out
    assert main(["convert", str(tmp_path / "corpus"), str(tmp_path / "out.conll")]) == 0
    assert "Bonner\tB-ORG\nUniversität\tI-ORG" in (tmp_path / "out.conll").read_text(encoding="utf-8")


def test_findings_in_a_folder_name_the_document_they_are_in(tmp_path: Path) -> None:
    from nerforge.data.checks.report import inspect_files

    folder = tmp_path / "corpus"
    folder.mkdir()
    for name in ("a", "b"):
        (folder / f"{name}.txt").write_text("Bonn is big.\nOther words here.\nBonn is big.\n", encoding="utf-8")
        (folder / f"{name}.ann").write_text("T1\tLOC 0 4\tBonn\nT2\tLOC 31 35\tBonn\n", encoding="utf-8")
    report = inspect_files([folder])
    duplicates = [f for f in report.files[0].findings if f.kind == "duplicate-sentence"]
    assert sorted(str(f).split(": ")[0] for f in duplicates) == [f"{folder / 'a.txt'}:3", f"{folder / 'b.txt'}:3"]


def test_convert_writes_brat_that_reads_back(tmp_path: Path) -> None:
    import json

    from nerforge.data.convert import convert_file
    from nerforge.errors import UsageError

    src = tmp_path / "in.jsonl"  # doccano with an emoji and two documents' worth of offsets
    rows = [{"text": "Ann 🎉 flew to Zürich.", "label": [[0, 3, "PER"], [14, 20, "LOC"]]},
            {"text": "Acme  Corp hired Bob.", "label": [[0, 10, "ORG"], [17, 20, "PER"]]}]  # fmt: skip
    src.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "brat"
    result = convert_file(src, out, to="brat")
    assert result.output_format == "brat"
    [txt] = sorted(out.glob("*.txt"))
    assert txt.read_text(encoding="utf-8") == "Ann 🎉 flew to Zürich.\nAcme  Corp hired Bob.\n"  # the texts as written
    text = txt.read_text(encoding="utf-8")
    for line in txt.with_suffix(".ann").read_text(encoding="utf-8").splitlines():
        _, kind_range, quoted = line.split("\t")
        _, start, end = kind_range.split()
        assert text[int(start) : int(end)] == quoted
    back = read_corpus(out, ReadOptions())
    original = read_corpus(src, ReadOptions())
    assert _entities(back) == _entities(original)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(UsageError):
        convert_file(src, tmp_path / "mine", to="brat")  # a folder nerforge did not write is never replaced
    assert (tmp_path / "mine" / "notes.txt").read_text(encoding="utf-8") == "mine"
    convert_file(src, out, to="brat")  # its own export: replaced


def test_token_data_becomes_documents_by_doc_id(tmp_path: Path) -> None:
    from nerforge.data.writers import write_brat
    from nerforge.types import Example

    examples = [Example(("Ann", "met", "Bob", "."), ("B-PER", "O", "B-PER", "O"), doc_id="news 1"),
                Example(("In", "New", "York", "."), ("O", "B-LOC", "I-LOC", "O"), doc_id="news 1"),
                Example(("Acme", "Corp"), ("B-ORG", "I-ORG"), doc_id="news/2")]  # fmt: skip
    assert write_brat(examples, tmp_path / "out") == 3
    assert sorted(p.name for p in (tmp_path / "out").glob("*.txt")) == ["00001-news_1.txt", "00002-news_2.txt"]
    assert (tmp_path / "out" / "00001-news_1.txt").read_text(encoding="utf-8") == "Ann met Bob .\nIn New York .\n"
    assert (tmp_path / "out" / "00001-news_1.ann").read_text(encoding="utf-8").splitlines()[
        -1
    ] == "T3\tLOC 17 25\tNew York"
    back = read_corpus(tmp_path / "out", ReadOptions())
    assert [ex.tags for ex in back.examples] == [ex.tags for ex in examples]


def test_empty_entities_are_counted_not_lost_silently(tmp_path: Path) -> None:
    (tmp_path / "d.txt").write_text("Bonn is big.\nParis too.\n", encoding="utf-8")
    (tmp_path / "d.ann").write_text("T1\tLOC 0 4\tBonn\nT2\tLOC 5 5\t\nT3\tLOC 12 13\t \nT4\tLOC 13 18\tParis\n",
                                    encoding="utf-8")  # fmt: skip
    corpus = read_corpus(tmp_path / "d.ann", ReadOptions())
    assert _entities(corpus) == [[("Bonn", "LOC")], [("Paris", "LOC")]]
    [empty] = [f for f in corpus.findings if f.kind == "brat-empty"]
    assert empty.message.startswith("2 entities of no characters") and f"{tmp_path / 'd.ann'}:2" in empty.message


@pytest.mark.parametrize("counted", [True, False])
def test_a_byte_order_mark_is_counted_as_the_ann_counts_it(tmp_path: Path, counted: bool) -> None:
    """A .txt that starts with a byte-order mark: brat counts it as a character, tools reading with utf-8-sig do not;
    both read (the mark not counted was 'the offsets cover '\\ufeffBerli'')."""
    (tmp_path / "d.txt").write_text("\ufeffBerlin is big.\nSo is Wien.\n", encoding="utf-8")
    shift = 1 if counted else 0
    ann = f"T1\tLOC {shift} {shift + 6}\tBerlin\nT2\tLOC {shift + 21} {shift + 25}\tWien\n"
    (tmp_path / "d.ann").write_text(ann, encoding="utf-8")
    corpus = read_corpus(tmp_path / "d.ann", ReadOptions())
    assert _entities(corpus) == [[("Berlin", "LOC")], [("Wien", "LOC")]]
    assert corpus.examples[0].tokens[0] == "Berlin"
    assert any(f.kind == "brat-bom" for f in corpus.findings) is not counted
