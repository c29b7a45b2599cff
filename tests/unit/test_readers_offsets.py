"""Character-offset formats (spaCy/tecoholic JSON, doccano, Label Studio) and the word tokenizer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nerforge.data.readers.offsets import CharSpan, char_spans_to_example
from nerforge.data.readers.options import ReadOptions
from nerforge.data.readers.registry import read_corpus
from nerforge.data.readers.tokenize import tokenize, tokenize_v2
from nerforge.data.schemes import tags_to_spans
from nerforge.errors import DataFormatError
from nerforge.types import Span

FORMATS = Path(__file__).resolve().parents[1] / "data" / "formats"


def test_tokenize_words_punctuation_and_offsets():
    text = "Python/Django dev, e-commerce.  don't\u00a0c++\r"
    toks = tokenize(text)
    assert [t for t, _, _ in toks] == ["Python", "/", "Django", "dev", ",", "e-commerce", ".", "don't", "c", "+", "+"]
    assert all(text[s:e] == t for t, s, e in toks)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_tokenize_offsets_always_slice_the_text(text):
    toks = tokenize(text)
    assert all(text[s:e] == t and t.strip() == t and t for t, s, e in toks)
    assert [s for _, s, _ in toks] == sorted(s for _, s, _ in toks)


def test_spacy_json_null_entry_and_punctuation():
    c = read_corpus(FORMATS / "spacy.json")
    assert c.format == "spacy"
    first, second = c.examples
    # nerforge.words.v2: the possessive 's is its own word, so "restful api" no longer cuts through "api's"
    assert first.tokens == ("we", "need", "mysql", ".", "and", "restful", "api", "'s", "skills")
    assert first.tags == ("O", "O", "B-SKILL", "I-SKILL", "O", "B-SKILL", "I-SKILL", "O", "O")
    assert first.text is not None and first.offsets is not None
    assert all(first.text[s:e] == t for t, (s, e) in zip(first.tokens, first.offsets, strict=True))
    assert second.tokens == ("python", "/", "django", "developer", ",", "c++")
    assert second.tags == ("B-SKILL", "O", "B-SKILL", "O", "O", "B-SKILL")
    kinds = sorted(f.kind for f in c.findings)
    assert kinds == ["empty-record", "null-entry"]
    assert [ex.doc_id for ex in c.examples] == ["0", "2"]


def test_span_that_cuts_a_token_tags_the_whole_token_and_is_reported():
    findings: list = []
    ex = char_spans_to_example(
        "restful apis here", [CharSpan(0, 11, "SKILL")], path="t", line=3, doc_id=None, findings=findings
    )
    assert ex is not None and ex.tags == ("B-SKILL", "I-SKILL", "O")
    assert [f.kind for f in findings] == ["span-cuts-token"] and findings[0].line == 3
    assert "restful api" in findings[0].message and "apis" in findings[0].message


def test_doccano_old_and_new_span_layouts():
    c = read_corpus(FORMATS / "doccano.jsonl")
    assert c.format == "doccano"
    assert [len(tags_to_spans(ex.tags)) for ex in c.examples] == [2, 2]
    assert c.examples[0].tags == ("B-PER", "I-PER", "O", "B-LOC", "O")
    assert c.examples[1].tags == ("B-ORG", "O", "B-PER", "I-PER")
    assert [ex.doc_id for ex in c.examples] == ["7", "8"]
    assert [ex.line for ex in c.examples] == [1, 2]


def test_labelstudio_export():
    c = read_corpus(FORMATS / "labelstudio.json")
    assert c.format == "labelstudio"
    assert c.examples[0].tags == ("B-PER", "I-PER", "O", "B-PER", "O", "B-LOC", "O")
    assert c.examples[1].tags == ("O", "O", "O")  # annotated, no spans
    assert {f.kind for f in c.findings} == {"non-span-result", "unannotated-task"}
    assert [ex.doc_id for ex in c.examples] == ["1", "2"]


def test_labelstudio_json_min_and_text_mismatch(tmp_path):
    p = tmp_path / "min.json"
    p.write_text(json.dumps([{"id": 4, "text": "Tim Cook", "label": [{"start": 0, "end": 8, "labels": ["PER"]}]}]))
    assert read_corpus(p).examples[0].tags == ("B-PER", "I-PER")
    bad = [
        {
            "data": {"text": "Tim Cook"},
            "annotations": [{"result": [{"value": {"start": 0, "end": 3, "text": "Cook", "labels": ["PER"]}}]}],
        }
    ]
    p.write_text(json.dumps(bad, indent=1))
    with pytest.raises(DataFormatError) as err:
        read_corpus(p, ReadOptions(format="labelstudio"))
    assert err.value.line == 2 and "not 'Cook'" in str(err.value)


def test_overlapping_spans_are_read_with_a_flat_view_of_the_outermost():
    # issue 28: "New York" and "York City" cross; both are kept, the tags hold the longer (in words; of two as
    # long, the first)
    (ex,) = read_corpus(FORMATS / "bad_overlap.jsonl").examples
    assert ex.spans == (Span(0, 2, "LOC"), Span(1, 3, "LOC")) and ex.tags == ("B-LOC", "I-LOC", "O")
    nested = char_spans_to_example("The Bonn University", [CharSpan(4, 19, "ORG"), CharSpan(4, 8, "LOC")],
                                   path="x", line=1, doc_id=None, findings=[])  # fmt: skip
    assert nested is not None and nested.tags == ("O", "B-ORG", "I-ORG")
    assert nested.spans == (Span(1, 2, "LOC"), Span(1, 3, "ORG"))


@pytest.mark.parametrize(
    ("spans", "problem"),
    [
        ([[0, 40, "X"]], "outside the text"),
        ([[-1, 2, "X"]], "outside the text"),
        ([[3, 3, "X"]], "outside the text"),
        ([[0, "2", "X"]], "not an integer"),
        ([[0, 2, ""]], "label"),
        ([[0, 2]], "a span is"),
        ([[3, 4, "X"]], "covers no token"),
        ([[0, 1, "X"], [1, 2, "Y"]], "share the token"),
    ],
)
def test_doccano_bad_spans_raise_with_line(tmp_path, spans, problem):
    p = tmp_path / "f.jsonl"
    good = json.dumps({"text": "ok", "label": []})
    p.write_text(good + "\n" + json.dumps({"text": "ab  cd", "label": spans}) + "\n", encoding="utf-8")
    with pytest.raises(DataFormatError) as err:
        read_corpus(p, ReadOptions(format="doccano"))
    assert err.value.line == 2
    assert problem in str(err.value)


@settings(max_examples=100, deadline=None)
@given(
    words=st.lists(st.text(alphabet="abcXYZ0.,/-'", min_size=1, max_size=6), min_size=1, max_size=12),
    picks=st.lists(st.tuples(st.integers(0, 11), st.integers(1, 3), st.sampled_from(["A", "B"])), max_size=4),
)
def test_spans_on_word_boundaries_survive_tokenisation(words, picks):
    """Spans that start and end on tokens of our tokenizer come back exactly, with their labels."""
    text = " ".join(words)
    toks = tokenize_v2(text)  # the readers' tokenizer (nerforge.words.v2)
    spans: list[CharSpan] = []
    used: set[int] = set()
    for start, length, label in picks:
        idx = list(range(start, min(start + length, len(toks))))
        if not idx or used & set(idx):
            continue
        used |= set(idx)
        spans.append(CharSpan(toks[idx[0]][1], toks[idx[-1]][2], label))
    findings: list = []
    ex = char_spans_to_example(text, spans, path="t", line=1, doc_id=None, findings=findings)
    if not toks:
        assert ex is None
        return
    assert ex is not None and not findings
    got = [(ex.offsets[s.start][0], ex.offsets[s.end - 1][1], s.label) for s in tags_to_spans(ex.tags)]
    assert got == sorted((s.start, s.end, s.label) for s in spans)


# --- offset units: code points (Python) vs UTF-16 code units (JavaScript front ends) ---------------------------------

EMOJI_TEXT = "🎉🎉 Joe Biden met Emmanuel Macron in Paris 🇫🇷 today"
EMOJI_SPANS = [("Joe Biden", "PER"), ("Emmanuel Macron", "PER"), ("Paris", "LOC")]


def _offsets(text: str, unit: str) -> list[list]:
    out = []
    for piece, label in EMOJI_SPANS:
        start = text.index(piece)
        end = start + len(piece)
        if unit == "utf16":
            start, end = (len(text[:i].encode("utf-16-le")) // 2 for i in (start, end))
        out.append([start, end, label])
    return out


def _entities(corpus) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    ex = corpus.examples[0]
    return [(" ".join(ex.tokens[s.start : s.end]), s.label) for s in tags_to_spans(list(ex.tags))]


def _unit_finding(corpus) -> str:  # type: ignore[no-untyped-def]
    return next(f.message for f in corpus.findings if f.kind == "offset-unit")


@pytest.mark.parametrize("unit", ["codepoint", "utf16"])
def test_doccano_offsets_in_either_unit_read_the_same_entities(tmp_path: Path, unit: str) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"text": EMOJI_TEXT, "label": _offsets(EMOJI_TEXT, unit)}) + "\n", encoding="utf-8")
    corpus = read_corpus(path, ReadOptions(format="doccano"))
    assert _entities(corpus) == [("Joe Biden", "PER"), ("Emmanuel Macron", "PER"), ("Paris", "LOC")]
    assert ("UTF-16" if unit == "utf16" else "code points") in _unit_finding(corpus)


@pytest.mark.parametrize("unit", ["codepoint", "utf16"])
def test_label_studio_without_value_text_in_either_unit(tmp_path: Path, unit: str) -> None:
    results = [
        {"from_name": "label", "to_name": "text", "type": "labels", "value": {"start": s, "end": e, "labels": [lab]}}
        for s, e, lab in _offsets(EMOJI_TEXT, unit)
    ]
    task = {"id": 1, "data": {"text": EMOJI_TEXT}, "annotations": [{"result": results}]}
    path = tmp_path / "ls.json"
    path.write_text(json.dumps([task]), encoding="utf-8")
    corpus = read_corpus(path, ReadOptions(format="labelstudio"))
    assert _entities(corpus) == [("Joe Biden", "PER"), ("Emmanuel Macron", "PER"), ("Paris", "LOC")]


def test_label_studio_quoted_text_decides_the_unit(tmp_path: Path) -> None:
    results = [
        {"value": {"start": s, "end": e, "labels": [lab], "text": piece}}
        for (s, e, lab), (piece, _) in zip(_offsets(EMOJI_TEXT, "utf16"), EMOJI_SPANS, strict=True)
    ]
    path = tmp_path / "ls.json"
    path.write_text(json.dumps([{"id": 1, "data": {"text": EMOJI_TEXT}, "annotations": [{"result": results}]}]))
    corpus = read_corpus(path, ReadOptions(format="labelstudio"))
    assert _entities(corpus)[0] == ("Joe Biden", "PER")
    assert "UTF-16" in _unit_finding(corpus)


def test_no_astral_characters_no_unit_finding(tmp_path: Path) -> None:
    text = "Joe Biden met Macron in Paris"
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"text": text, "label": [[0, 9, "PER"]]}) + "\n", encoding="utf-8")
    corpus = read_corpus(path, ReadOptions(format="doccano"))
    assert not [f for f in corpus.findings if f.kind == "offset-unit"]
    assert _entities(corpus) == [("Joe Biden", "PER")]
