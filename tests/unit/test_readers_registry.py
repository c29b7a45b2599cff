"""Format detection, the reader registry, read_corpus's contract and IOB2 normalisation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nerforge.data.normalize import read_examples, tags_to_iob2, to_iob2
from nerforge.data.readers.options import FORMATS as FORMAT_NAMES
from nerforge.data.readers.options import ReadOptions
from nerforge.data.readers.registry import (
    FORMAT_READERS,
    READERS,
    detect_format,
    get_reader,
    read_corpus,
    register_reader,
    sniff_format,
)
from nerforge.data.schemes import SCHEMES, spans_to_tags, tags_to_spans
from nerforge.errors import DataFormatError, UsageError
from nerforge.types import Corpus, Example, Span

FORMATS = Path(__file__).resolve().parents[1] / "data" / "formats"


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("docstart_start.conll", "conll"),
        ("docstart_noblank.ned", "conll"),
        ("germeval.tsv", "conll"),
        ("wikiann.tsv", "conll"),
        ("int_tags.jsonl", "jsonl"),
        ("bare_tags.jsonl", "jsonl"),
        ("records.json", "json"),
        ("records_list.json", "json"),
        ("spacy.json", "spacy"),
        ("doccano.jsonl", "doccano"),
        ("labelstudio.json", "labelstudio"),
        ("finer.csv", "csv"),
    ],
)
def test_detect_format_of_fixtures(name, fmt):
    assert detect_format(FORMATS / name) == fmt
    assert read_corpus(FORMATS / name, _options_for(name)).format == fmt


def _options_for(name: str) -> ReadOptions:
    return {
        "germeval.tsv": ReadOptions(token_column=1, tag_column=2),
        "int_tags.jsonl": ReadOptions(label_names=("O", "I-SOFTSKILL")),
        "bare_tags.jsonl": ReadOptions(tags_field="tags_skill", entity_type="Skill"),
        "finer.csv": ReadOptions(labels_file=str(FORMATS / "finer.labels.txt")),
    }.get(name, ReadOptions())


def test_sniff_format_edge_cases():
    assert sniff_format('{"tokens": ["a"], "ner_tags": ["O"]}\n') == "jsonl"
    assert sniff_format('{"data": [{"tokens": ["a"], "ner_tags": ["O"]}]}') == "json"
    assert sniff_format('{"classes": ["X"], "annotations": [["a b", {"entities": []}]]}') == "spacy"
    assert sniff_format('[["a b", {"entities": [[0, 1, "X"]]}]]') == "spacy"
    assert sniff_format('{\n "annotations": [\n  null,') == "spacy"
    assert sniff_format('[\n {"id": 1, "data": {"text": "x"}, "annotations": []}') == "labelstudio"
    assert sniff_format("EU B-ORG\n") == "conll"
    assert sniff_format("garbage", ".jsonl") == "jsonl"
    assert sniff_format("") == "conll"


def test_registry_names_are_versioned_and_extensible(tmp_path):
    assert set(FORMAT_READERS) >= set(FORMAT_NAMES)
    assert all(name.startswith("nerforge.") and name.endswith(".v1") for name in READERS)
    assert get_reader("conll") is get_reader("nerforge.conll.v1")
    with pytest.raises(UsageError):
        get_reader("brat")

    def read_words(source, options):
        words = source.text.split()
        return [Example(tuple(words), ("O",) * len(words), source=source.path, line=1)], []

    register_reader("test.words.v1", read_words)
    try:
        p = tmp_path / "w.txt"
        p.write_text("a b c", encoding="utf-8")
        c = read_corpus(p, ReadOptions(format="test.words.v1"))
        assert c.examples[0].tokens == ("a", "b", "c") and c.scheme == "iob2"
    finally:
        READERS.pop("test.words.v1")


def test_read_corpus_rejects_unknown_format_and_scheme():
    with pytest.raises(UsageError):
        read_corpus(FORMATS / "wikiann.tsv", ReadOptions(format="nope"))
    with pytest.raises(UsageError):
        read_corpus(FORMATS / "wikiann.tsv", ReadOptions(scheme="bio"))


def test_given_scheme_wins_and_reports_violations(tmp_path):
    p = tmp_path / "b.txt"
    p.write_text("a B-X\nb E-X\nc I-X\n", encoding="utf-8")
    c = read_corpus(p)
    assert c.scheme == "bioes"
    assert {(f.kind, f.line) for f in c.findings} == {("scheme-violation", 3)}
    assert read_corpus(p, ReadOptions(scheme="iob2")).scheme == "iob2"


def test_read_examples_returns_iob2():
    examples = read_examples(FORMATS / "docstart_end.iob1")
    assert examples[0].tags == ("B-ORG", "O", "B-MISC")
    assert examples[2].tags == ("B-LOC", "B-LOC", "O")
    suffix = read_examples(FORMATS / "finer.csv", ReadOptions(labels_file=str(FORMATS / "finer.labels.txt")))
    assert suffix[0].tags[2:6] == ("B-ORG", "O", "B-PER", "I-PER")
    assert suffix[1].tags == ("B-LOC", "O")  # the I- start becomes B-


def test_to_iob2_on_corpus_and_example():
    corpus = read_corpus(FORMATS / "docstart_end.iob1")
    converted = to_iob2(corpus)
    assert isinstance(converted, Corpus) and converted.scheme == "iob2"
    assert converted.findings == corpus.findings and converted.examples[0].doc_id == "0"
    ex = Example(("a", "b", "c", "d"), ("S-X", "B-Y", "E-Y", "O"))
    assert to_iob2(ex).tags == ("B-X", "B-Y", "I-Y", "O")
    assert tags_to_iob2(["U-X", "B-Y", "L-Y", "I-Z"]) == ("B-X", "B-Y", "I-Y", "B-Z")
    assert tags_to_iob2(["I-X", "I-X", "O", "I-X"]) == ("B-X", "I-X", "O", "B-X")


_TYPES = st.sampled_from(["PER", "LOC", "ORG"])


@st.composite
def spans_and_length(draw):
    length = draw(st.integers(1, 20))
    cuts = sorted(draw(st.sets(st.integers(0, length), max_size=8)))
    spans = []
    for a, b in zip(cuts, cuts[1:], strict=False):
        if a < b and draw(st.booleans()):
            spans.append(Span(a, b, draw(_TYPES)))
    return spans, length


@settings(max_examples=150, deadline=None)
@given(spans_and_length(), st.sampled_from([s for s in SCHEMES if s != "io"]))
def test_to_iob2_keeps_the_spans_of_every_scheme(data, scheme):
    spans, length = data
    tags = spans_to_tags(spans, length, scheme)
    iob2 = tags_to_iob2(tags)
    assert tags_to_spans(iob2) == sorted(spans)
    assert tags_to_iob2(iob2) == iob2


def test_read_corpus_json_list_of_non_records_raises(tmp_path):
    p = tmp_path / "l.json"
    p.write_text(json.dumps([1, 2, 3]), encoding="utf-8")
    with pytest.raises(DataFormatError) as err:
        read_corpus(p)
    assert err.value.line == 1


@pytest.mark.parametrize("token", ["{", "[", "{a", "[]", "[citation]"])
def test_a_column_file_whose_first_token_opens_a_bracket_is_not_json(tmp_path: Path, token: str) -> None:
    path = tmp_path / "data.conll"
    path.write_text(f"{token}\tO\nPython\tB-TECH\n", encoding="utf-8")
    corpus = read_corpus(path, ReadOptions())
    assert corpus.format == "conll"
    assert [(ex.tokens, ex.tags) for ex in corpus.examples] == [((token, "Python"), ("O", "B-TECH"))]


def test_the_format_flags_help_names_every_format_read() -> None:
    """--format's help lists every format name that reads (BRAT and DocBin were read but not named), and names
    nothing that does not."""
    from nerforge.data.readers.brat import BRAT_FORMAT
    from nerforge.data.readers.docbin import DOCBIN_FORMAT
    from nerforge.data.readers.options import FORMATS, OTHER_FORMATS, ReadOptions
    from nerforge.data.readers.registry import ARROW_FORMATS, FORMAT_READERS

    help_text = ReadOptions.__dataclass_fields__["format"].metadata["help"]
    named = help_text.split(": ", 1)[1].split(" (")[0].split(", ")
    assert set(OTHER_FORMATS) == {*ARROW_FORMATS, DOCBIN_FORMAT, BRAT_FORMAT}
    assert sorted(named) == sorted({*FORMATS, *ARROW_FORMATS, DOCBIN_FORMAT, BRAT_FORMAT})
    assert set(FORMATS) <= set(FORMAT_READERS)  # each text format has its reader
