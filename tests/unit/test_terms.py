"""Pre-annotation from a term list (issue 29, item 5): whole words, case- and plural-tolerant, multi-word terms,
longest match first, never overlapping; the three term-list layouts."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nerforge.errors import DataFormatError, UsageError
from nerforge.prediction.terms import TermList, TermTagger, load_terms, singular, term_key


def _tagger(pairs: list[tuple[str, str]]) -> TermTagger:
    terms = TermList()
    for term, label in pairs:
        terms.add(term, label)
    return TermTagger(terms)


def _found(tagger: TermTagger, text: str) -> list[tuple[str, str]]:
    return [(e.text, e.label) for e in tagger.find(text)]


def test_singular_forms() -> None:
    cases = {"APIs": "api", "GPUs": "gpu", "companies": "company", "Boxes": "box", "matches": "match",
             "pipelines": "pipeline", "class": "class", "status": "status", "analysis": "analysis", "Go": "go",
             "skills": "skill", "SQL": "sql"}  # fmt: skip
    assert {w: singular(w) for w in cases} == cases


def test_terms_are_found_as_annotators_mark_them() -> None:
    tagger = _tagger([("Python", "TECH"), ("machine learning", "SKILL"), ("machine learning engineer", "ROLE"),
                      ("API", "TECH"), ("data pipeline", "SKILL"), ("Go", "TECH"), ("C++", "TECH")])  # fmt: skip
    text = "A Machine Learning Engineer 🎉 builds APIs and data pipelines in python, Go and C++; not Google or Gopher."
    assert _found(tagger, text) == [("Machine Learning Engineer", "ROLE"), ("APIs", "TECH"), ("data pipelines", "SKILL"),
                                    ("python", "TECH"), ("Go", "TECH"), ("C++", "TECH")]  # fmt: skip
    for e in tagger.find(text):
        assert text[e.start : e.end] == e.text and e.score == 1.0
    assert _found(tagger, "machine learning, then machine") == [("machine learning", "SKILL")]
    assert _found(tagger, "") == []


def test_a_term_under_two_types_keeps_the_first() -> None:
    terms = TermList()
    terms.add("Python", "TECH")
    terms.add("python", "SKILL")
    terms.add("Pythons", "TECH")  # the same term again under the same type: no conflict
    assert terms.conflicts == [("python", "TECH", "SKILL")] and terms.types == ["TECH"]


@given(st.lists(st.sampled_from(["data", "Data", "pipelines", "pipeline", "machine", "learning", "API", "APIs", ",",
                                 "🎉", "go", "é"]), max_size=30))  # fmt: skip
def test_matches_never_overlap_and_slice_the_text(words: list[str]) -> None:
    tagger = _tagger([("data pipeline", "SKILL"), ("data", "THING"), ("machine learning", "SKILL"), ("API", "TECH"),
                      ("learning", "SKILL")])  # fmt: skip
    text = " ".join(words)
    found = tagger.find(text)
    assert all(text[e.start : e.end] == e.text for e in found)
    assert all(a.end <= b.start for a, b in zip(found, found[1:], strict=False))
    # longest first: wherever "data pipeline(s)" occurs, it is one entity, never "data" alone
    for e in found:
        if e.label == "THING":
            rest = text[e.end :].split()
            assert not rest or singular(rest[0]) != "pipeline"


def test_the_three_layouts(tmp_path: Path) -> None:
    plain = tmp_path / "skills.txt"
    plain.write_text("# soft skills\nteamwork\n\nclear communication\n", encoding="utf-8")
    assert load_terms(plain, "SOFT").terms == {
        ("teamwork",): ("SOFT", "teamwork"),
        ("clear", "communication"): ("SOFT", "clear communication"),
    }
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("Term,Type\nPython,TECH\nteamwork,SOFT\n", encoding="utf-8")
    assert load_terms(pairs).types == ["SOFT", "TECH"]
    quoted = tmp_path / "quoted.csv"
    quoted.write_text('term,label\n"machine\nlearning",SKILL\n"SQL, Postgres",TECH\n', encoding="utf-8")
    assert sorted(load_terms(quoted).terms) == sorted(
        [term_key(["machine", "learning"]), term_key(["SQL", ",", "Postgres"])]
    )
    columns = tmp_path / "columns.csv"
    columns.write_text("TECH,SOFT\nPython,teamwork\nSQL,\n", encoding="utf-8")
    got = load_terms(columns)
    assert {k: v[0] for k, v in got.terms.items()} == {("python",): "TECH", ("sql",): "TECH", ("teamwork",): "SOFT"}


def test_bad_term_lists_are_one_clear_error(tmp_path: Path) -> None:
    plain = tmp_path / "t.txt"
    plain.write_text("Python\n", encoding="utf-8")
    with pytest.raises(UsageError, match="needs their type: give --label"):
        load_terms(plain)
    with pytest.raises(UsageError, match="no such term list"):
        load_terms(tmp_path / "missing.csv")
    empty = tmp_path / "e.txt"
    empty.write_text("# nothing\n\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="no terms found"):
        load_terms(empty, "X")
    row = tmp_path / "r.csv"
    row.write_text("term,label\nPython,\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"r.csv:2: a row without a term or a type"):
        load_terms(row)
    latin = tmp_path / "l.txt"
    latin.write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(DataFormatError, match="not UTF-8"):
        load_terms(latin, "X")


def test_the_version_names_the_terms() -> None:
    a = _tagger([("Python", "TECH")]).model_version
    assert a == _tagger([("python", "TECH")]).model_version and a.startswith("nerforge-terms-")
    assert a != _tagger([("Python", "SKILL")]).model_version
