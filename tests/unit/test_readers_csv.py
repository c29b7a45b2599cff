"""Token-per-row CSV (FiNER-ORD layout) read with the csv module."""

from __future__ import annotations

from pathlib import Path

import pytest

from nerforge.data.normalize import to_iob2
from nerforge.data.readers.options import ReadOptions
from nerforge.data.readers.registry import read_corpus
from nerforge.errors import DataFormatError

FORMATS = Path(__file__).resolve().parents[1] / "data" / "formats"
FINER = ("O", "PER_B", "PER_I", "LOC_B", "LOC_I", "ORG_B", "ORG_I")


def test_csv_finer_layout_sentences_docs_and_suffix_labels():
    c = read_corpus(FORMATS / "finer.csv", ReadOptions(label_names=FINER))
    assert c.format == "csv" and c.scheme == "suffix"
    assert [ex.tokens for ex in c.examples] == [
        ("H", "ave", "Apple", ",", "Tim", "Cook", "."),
        ("York", "rose"),
        ("Paris", "\u2019re"),
    ]
    assert [ex.doc_id for ex in c.examples] == ["0", "0", "1"]
    assert c.examples[0].token_lines == (2, 3, 4, 5, 6, 7, 8)
    assert c.examples[0].tags[2:6] == ("ORG_B", "O", "PER_B", "PER_I")
    assert [(f.kind, f.line) for f in c.findings] == [("i-start", 9)]
    assert to_iob2(c).examples[1].tags == ("B-LOC", "O")


def test_csv_labels_file_and_explicit_sentence_columns():
    c = read_corpus(
        FORMATS / "finer.csv", ReadOptions(labels_file=str(FORMATS / "finer.labels.txt"), sentence_columns=("doc_idx",))
    )
    assert [len(ex) for ex in c.examples] == [9, 2]
    with pytest.raises(DataFormatError) as err:
        read_corpus(FORMATS / "finer.csv", ReadOptions(label_names=FINER, sentence_columns=("nope",)))
    assert err.value.line == 1 and "nope" in str(err.value)


def test_csv_physical_lines_with_quoted_newlines(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text('token,label,sentence\n"multi\nline",O,1\nx,B-X,1\ny,BAD!,1\n', encoding="utf-8")
    with pytest.raises(DataFormatError) as err:
        read_corpus(p)
    assert err.value.line == 5  # the physical line of the bad row, after a 2-line record


def test_csv_kaggle_sentence_column_and_string_tags(tmp_path):
    p = tmp_path / "k.csv"
    p.write_text(
        "\ufeffSentence #,Word,POS,Tag\r\nSentence: 1,Thousands,NNS,O\r\n,of,IN,O\r\n,London,NNP,B-geo\r\n"
        "Sentence: 2,Iranian,JJ,B-gpe\r\n",
        encoding="utf-8",
    )
    c = read_corpus(p)
    assert [ex.tokens for ex in c.examples] == [("Thousands", "of", "London"), ("Iranian",)]
    assert c.examples[0].tags[2] == "B-geo"
    assert {"bom", "crlf"} <= {f.kind for f in c.findings}


def test_csv_headerless_and_blank_row_sentences(tmp_path):
    p = tmp_path / "h.csv"
    p.write_text("EU,B-ORG\nrejects,O\n\nGerman,B-MISC\n", encoding="utf-8")
    c = read_corpus(p)
    assert [ex.tokens for ex in c.examples] == [("EU", "rejects"), ("German",)]
    assert c.examples[1].line == 4


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("tok,label\na,O\nb,O,extra\n", 3, "3 fields"),
        ("tok,label\na,O\nb\n", 3, "1 fields"),
        ("foo,bar\na,b\n", 1, "cannot tell"),
        ('tok,label\na,O\n"b,O\n', 3, "invalid CSV"),
        ("tok,label\na,\n", 2, None),
    ],
)
def test_csv_errors_carry_lines(tmp_path, text, line, problem):
    p = tmp_path / "e.csv"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(DataFormatError) as err:
        read_corpus(p, ReadOptions(missing_tag="error"))
    assert err.value.line == line
    if problem:
        assert problem in str(err.value)


def test_csv_missing_label_is_o_with_finding(tmp_path):
    p = tmp_path / "m.csv"
    p.write_text("tok,label\na,\nb,B-X\n", encoding="utf-8")
    c = read_corpus(p)
    assert c.examples[0].tags == ("O", "B-X")
    assert [(f.kind, f.line) for f in c.findings] == [("missing-tag", 2)]


def test_csv_column_overrides(tmp_path):
    p = tmp_path / "o.csv"
    p.write_text("a,b,c\nx,EU,B-ORG\ny,is,O\n", encoding="utf-8")
    c = read_corpus(p, ReadOptions(token_column=1, tag_column=2))
    assert c.examples[0].tokens == ("EU", "is")
    with pytest.raises(DataFormatError):
        read_corpus(p, ReadOptions(token_column=7))
