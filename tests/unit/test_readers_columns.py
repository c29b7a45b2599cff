"""Column-file reader: every quirk of the real data, on tiny fixtures in tests/data/formats/."""

from __future__ import annotations

from pathlib import Path

import pytest

from nerforge.data.readers.options import ReadOptions
from nerforge.data.readers.registry import read_corpus
from nerforge.errors import DataFormatError, UsageError

FORMATS = Path(__file__).resolve().parents[1] / "data" / "formats"


def kinds(corpus) -> list[str]:
    return [f.kind for f in corpus.findings]


def test_columns_docstart_at_start_is_no_token_and_gives_doc_ids():
    c = read_corpus(FORMATS / "docstart_start.conll")
    assert c.format == "conll" and c.scheme == "iob2"
    assert [ex.tokens for ex in c.examples] == [
        ("EU", "rejects", "German", "call"),
        ("Peter", "Blackburn"),
        ("BRUSSELS", "1996-08-22"),
    ]
    assert [ex.doc_id for ex in c.examples] == ["0", "0", "1"]
    assert [ex.line for ex in c.examples] == [3, 8, 13]
    assert c.examples[0].token_lines == (3, 4, 5, 6)
    assert c.examples[0].tags == ("B-ORG", "O", "B-MISC", "O")
    # no newline after the last line: the last sentence is still read, and noted
    assert "no-final-newline" in kinds(c)
    assert all("-DOCSTART-" not in ex.tokens for ex in c.examples)


def test_columns_docstart_at_end_of_documents():
    c = read_corpus(FORMATS / "docstart_end.iob1")
    assert c.scheme == "iob1"
    assert [ex.doc_id for ex in c.examples] == ["0", "0", "1"]
    assert len(c.examples) == 3
    found = [f for f in c.findings if f.kind == "docstart-at-end"]
    assert len(found) == 1 and found[0].line == 14


def test_columns_docstart_without_blank_line_after_it():
    c = read_corpus(FORMATS / "docstart_noblank.ned")
    assert [ex.tokens[0] for ex in c.examples] == ["De", "In", "Het"]
    assert [ex.doc_id for ex in c.examples] == ["0", "0", "1"]
    lines = [f.line for f in c.findings if f.kind == "docstart-not-followed-by-blank"]
    assert lines == [1, 10]
    # the mixed TAB/space line is split on whitespace runs
    assert c.examples[2].tokens == ("Het", "EU", ".")


def test_columns_bom_crlf_and_cr_only_lines():
    c = read_corpus(FORMATS / "crlf_bom.tsv")
    assert [ex.tokens for ex in c.examples] == [("Backpressure", "routing", "is"), ("It", "works")]
    assert c.examples[0].tags == ("B-TECH", "I-TECH", "O")  # not "O\r"
    assert c.examples[1].line == 6
    assert {"bom", "crlf"} <= set(kinds(c))


def test_columns_germeval_comments_columns_and_trailing_tab():
    outer = read_corpus(FORMATS / "germeval.tsv", ReadOptions(token_column=1, tag_column=2))
    inner = read_corpus(FORMATS / "germeval.tsv", ReadOptions(token_column=1, tag_column=3))
    assert len(outer.examples) == 2
    assert outer.examples[1].tokens == ('"', "Deutsche", "Bank", "#")  # '#<TAB>O<TAB>O' is a token line
    assert outer.examples[1].tags == ("O", "B-ORG", "I-ORG", "O")
    assert inner.examples[1].tags == ("O", "B-LOCderiv", "O", "O")
    comment = next(f for f in outer.findings if f.kind == "comment")
    assert comment.line == 1 and "2 comment" in comment.message
    assert "trailing-separator" in kinds(outer)
    # default tag column (-1) is the last non-empty field: the inner layer, even on the 5-field line
    assert read_corpus(FORMATS / "germeval.tsv", ReadOptions(token_column=1)).examples[1].tags[0] == "O"


def test_columns_trailing_space_and_blank_line_runs():
    c = read_corpus(FORMATS / "trailing_space.txt")
    assert [len(ex) for ex in c.examples] == [4, 2]
    assert c.examples[0].tags[-1] == "B-Skill"
    f = next(f for f in c.findings if f.kind == "trailing-separator")
    assert f.line == 2 and f.message.startswith("6 ")


def test_columns_missing_tag_is_o_with_a_finding_or_an_error():
    c = read_corpus(FORMATS / "missing_tag.txt")
    assert c.examples[0].tokens[2] == "(" and c.examples[0].tags[2] == "O"
    missing = [f for f in c.findings if f.kind == "missing-tag"]
    assert [f.line for f in missing] == [3]
    with pytest.raises(DataFormatError) as err:
        read_corpus(FORMATS / "missing_tag.txt", ReadOptions(missing_tag="error"))
    assert err.value.line == 3


def test_columns_label_map_collapses_batch_named_tags():
    raw = read_corpus(FORMATS / "missing_tag.txt")
    assert raw.examples[0].tags[-1] == "I-blockchainO"
    merged = read_corpus(FORMATS / "missing_tag.txt", ReadOptions(label_map={"*": "TECH"}))
    assert merged.examples[0].tags == ("B-TECH", "I-TECH", "O", "O", "B-TECH", "I-TECH")
    assert merged.examples[1].tags == ("B-TECH", "I-TECH")
    assert "i-start" not in kinds(merged)
    assert [f.line for f in raw.findings if f.kind == "i-start"] == [6, 9]


def test_columns_tab_keeps_whitespace_inside_tokens():
    c = read_corpus(FORMATS / "whitespace_tokens.tsv")
    ex = c.examples[0]
    assert ex.tokens == ("  18", "\u202fOracle", "DB", "\u200b", " ", "#", "end")
    assert ex.tags[1:3] == ("B-Knowledge", "I-Knowledge")
    ws = [f for f in c.findings if f.kind == "whitespace-token"]
    assert [f.line for f in ws] == [5]


def test_columns_strip_token_prefix():
    c = read_corpus(FORMATS / "wikiann.tsv", ReadOptions(strip_token_prefix="de:"))
    assert c.examples[0].tokens == ("Anton", "Wilhelm", "in", "Bern")
    assert c.examples[1].tokens == ("Savoyer",)
    assert not any(t.startswith("de:") for ex in c.examples for t in ex.tokens)


def test_columns_wrong_column_count_raises_with_line():
    with pytest.raises(DataFormatError) as err:
        read_corpus(FORMATS / "bad_columns.conll")
    assert err.value.line == 4 and "4 column" in str(err.value)


def test_columns_invalid_tag_raises_with_line():
    with pytest.raises(DataFormatError) as err:
        read_corpus(FORMATS / "bad_tag.conll")
    assert err.value.line == 3 and "MISC!" in str(err.value)


def test_columns_bad_utf8_raises_with_line():
    with pytest.raises(DataFormatError) as err:
        read_corpus(FORMATS / "bad_utf8.conll")
    assert err.value.line == 4 and "UTF-8" in str(err.value)


def test_columns_integer_tags_need_label_names(tmp_path):
    p = tmp_path / "ints.tsv"
    p.write_text("a\t0\nb\t1\nc\t2\n", encoding="utf-8")
    with pytest.raises(DataFormatError) as err:
        read_corpus(p)
    assert err.value.line == 1 and "label names" in str(err.value)
    c = read_corpus(p, ReadOptions(label_names=("O", "B-X", "I-X")))
    assert c.examples[0].tags == ("O", "B-X", "I-X")
    with pytest.raises(DataFormatError) as err:
        read_corpus(p, ReadOptions(label_names=("O", "B-X")))
    assert err.value.line == 3 and "out of range" in str(err.value)


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("a O\nb\n", None),  # a missing tag is fine (finding), see above
        ("a O\nb O O\n", 2),  # more columns than the rest
        ("a x O\nb O\nc x O\n", 2),  # fewer columns and the tag column still exists: ambiguous
    ],
)
def test_columns_column_count_rules(tmp_path, text, line):
    p = tmp_path / "f.txt"
    p.write_text(text, encoding="utf-8")
    if line is None:
        assert read_corpus(p).examples[0].tags == ("O", "O")
        return
    with pytest.raises(DataFormatError) as err:
        read_corpus(p, ReadOptions(tag_column=1) if text.startswith("a x") else ReadOptions())
    assert err.value.line == line


def test_columns_explicit_separator_and_bad_options(tmp_path):
    p = tmp_path / "f.txt"
    p.write_text("New York|B-LOC\nis|O\n", encoding="utf-8")
    c = read_corpus(p, ReadOptions(separator="|"))
    assert c.examples[0].tokens == ("New York", "is")
    with pytest.raises(DataFormatError):
        read_corpus(p, ReadOptions(separator="|", tag_column=5))
    with pytest.raises(UsageError):
        read_corpus(p, ReadOptions(separator=""))
    with pytest.raises(UsageError):
        read_corpus(p, ReadOptions(separator="|", missing_tag="skip"))


def test_columns_hash_lines_comment_or_token(tmp_path):
    p = tmp_path / "f.txt"
    p.write_text("# sent_id = 1\n# O\nx B-X\n\n#hashtag B-TAG\n", encoding="utf-8")
    c = read_corpus(p)
    assert [ex.tokens for ex in c.examples] == [("#", "x"), ("#hashtag",)]
    assert c.examples[1].tags == ("B-TAG",)


def test_columns_empty_or_markers_only_file_raises(tmp_path):
    for text in ("", "\n\n", "-DOCSTART- -X- O O\n\n"):
        p = tmp_path / "f.txt"
        p.write_text(text, encoding="utf-8")
        with pytest.raises(DataFormatError):
            read_corpus(p, ReadOptions(format="conll"))


def test_columns_missing_file_raises_data_format_error(tmp_path):
    with pytest.raises(DataFormatError) as err:
        read_corpus(tmp_path / "nope.conll")
    assert err.value.line is None and "cannot read" in str(err.value)


def test_columns_whitespace_mode_splits_on_ascii_whitespace_only(tmp_path):
    p = tmp_path / "nbsp.txt"
    p.write_text("New\u00a0York B-LOC\n\u00a0 O\nis\tO\n\u3000\nx O\n", encoding="utf-8")
    c = read_corpus(p)
    assert [ex.tokens for ex in c.examples] == [("New\u00a0York", "\u00a0", "is"), ("x",)]
    assert c.examples[0].tags == ("B-LOC", "O", "O")


# --- line ends, encodings and lines that hold a whole sentence ----------------------------------------------------


def _write_bytes(tmp_path: Path, data: bytes, name: str = "d.conll") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("end", [b"\r", b"\r\n", b"\n"])
def test_every_line_end_reads_the_same_sentences(tmp_path: Path, end: bytes) -> None:
    lines = [b"EU B-ORG", b"rejects O", b"German B-MISC", b"", b"Peter B-PER", b"Blackburn I-PER", b""]
    corpus = read_corpus(_write_bytes(tmp_path, end.join(lines)))
    assert [ex.tokens for ex in corpus.examples] == [("EU", "rejects", "German"), ("Peter", "Blackburn")]
    assert [ex.tags for ex in corpus.examples] == [("B-ORG", "O", "B-MISC"), ("B-PER", "I-PER")]
    assert [ex.line for ex in corpus.examples] == [1, 5]  # line numbers count CR line ends as editors do
    if end == b"\r":
        assert "cr-line-end" in kinds(corpus)


@pytest.mark.parametrize(
    ("line", "expected"),
    [("w O w O w O w B-X", "4 token/tag pairs"), (" ".join(["w O"] * 100), "200 columns")],
)
def test_a_sentence_on_one_line_is_refused_with_its_line(tmp_path: Path, line: str, expected: str) -> None:
    path = _write_bytes(tmp_path, f"a O\n\n{line}\n".encode())
    with pytest.raises(DataFormatError, match=expected) as info:
        read_corpus(path)
    assert info.value.line == 3


def test_multi_column_conll_is_not_mistaken_for_pairs(tmp_path: Path) -> None:
    path = _write_bytes(tmp_path, b"EU NNP B-NP B-ORG\nrejects VBZ B-VP O\n")
    assert read_corpus(path).examples[0].tags == ("B-ORG", "O")


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_without_bom_is_named(tmp_path: Path, codec: str) -> None:
    path = _write_bytes(tmp_path, "EU B-ORG\nrejects O\n".encode(codec))
    with pytest.raises(
        DataFormatError, match=f"looks like {codec[:6].upper()} {codec[-2:].upper()} without a byte-order"
    ):
        read_corpus(path)


@pytest.mark.parametrize("codec", ["utf-16", "utf-32", "utf-8-sig"])
def test_a_byte_order_mark_decodes_the_file(tmp_path: Path, codec: str) -> None:
    corpus = read_corpus(_write_bytes(tmp_path, "Zürich B-LOC\nrejects O\n".encode(codec)))
    assert corpus.examples[0].tokens == ("Zürich", "rejects")


def test_error_lines_quote_at_most_about_80_characters_of_a_token(tmp_path: Path) -> None:
    token = "x" * 5000
    path = _write_bytes(tmp_path, f"{token}\tB-\n".encode(), "d.tsv")
    with pytest.raises(DataFormatError) as info:
        read_corpus(path)
    message = str(info.value)
    assert len(message) < 300, message
    assert "5,000 characters" in message
