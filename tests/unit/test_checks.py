"""The data checks of ``nerforge inspect`` on hand-built examples: exact kinds, counts and lines."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from nerforge.data.checks import (
    FindingLog,
    check_corrupt_types,
    check_duplicates,
    check_extra_fields,
    check_i_starts,
    check_label_consistency,
    check_overlap,
    check_tag_shapes,
    check_tokens,
    check_types_across_files,
    corruption_reason,
    decode_spans,
    inspect_corpora,
    split_docstart,
    token_problems,
)
from nerforge.data.checks.lines import column_separator, file_lines
from nerforge.data.checks.subwords import (
    check_no_subword,
    length_stats,
    piece_counts,
    special_count,
    tokenizer_limit,
)
from nerforge.data.checks.tokens import unusual_chars
from nerforge.errors import ModelError
from nerforge.model_dir import load_tokenizer
from nerforge.types import Corpus, Example, Finding, Span


def ex(pairs: str, line: int = 1, step: int = 1) -> Example:
    """``"EU/B-ORG rejects/O"`` as an example whose tokens sit on lines ``line, line+step, ...``."""
    tokens, tags = zip(*(p.rsplit("/", 1) for p in pairs.split()), strict=True)
    return Example(
        tuple(tokens), tuple(tags), line=line, token_lines=tuple(range(line, line + step * len(tokens), step))
    )


def raw(tokens: list[str], tags: list[str], line: int = 1) -> Example:
    return Example(tuple(tokens), tuple(tags), line=line, token_lines=tuple(range(line, line + len(tokens))))


def kinds(findings: list[Finding]) -> Counter[str]:
    return Counter(f.kind for f in findings)


def where(findings: list[Finding], kind: str | None = None) -> list[tuple[str, int | None]]:
    return [(f.path, f.line) for f in findings if kind is None or f.kind == kind]


# --- common ------------------------------------------------------------------------------------------------------


def test_checks_finding_log_caps_each_kind_but_counts_all() -> None:
    log = FindingLog(limit=2)
    log.extend(Finding("a", "f", i, "m") for i in range(5))
    log.add(Finding("b", "f", 9, "m"))
    assert log.counts == {"a": 5, "b": 1}
    assert [(f.kind, f.line) for f in log.kept] == [("a", 0), ("a", 1), ("b", 9)]


def test_checks_decode_spans_treats_unparseable_tags_as_outside() -> None:
    assert decode_spans(["B-PER", "", "I-LOC", "B"]) == [Span(0, 1, "PER"), Span(2, 3, "LOC")]


def test_checks_split_docstart_drops_markers_and_reports_glued_ones() -> None:
    examples = [
        ex("-DOCSTART-/O", line=1),
        ex("EU/B-ORG rejects/O", line=3),
        ex("-DOCSTART-/O De/O Art/B-MISC", line=6),
    ]
    content, markers, findings = split_docstart(examples, "ned.train")
    assert markers == 2
    assert [e.tokens for e in content] == [("EU", "rejects"), ("De", "Art")]
    assert content[1].line == 7 and content[1].token_lines == (7, 8) and content[1].tags == ("O", "B-MISC")
    assert [(f.kind, f.line) for f in findings] == [("docstart-in-sentence", 6)]


# --- tags --------------------------------------------------------------------------------------------------------


def test_checks_i_starts_counts_every_span_opening_with_i() -> None:
    examples = [
        ex("San/I-LOC Sebastián/I-LOC ,/O", line=10),  # sentence start
        ex("in/O Bonn/I-LOC Peter/I-PER ./O", line=20),  # after O, after another type
        ex("Mr/O Smith/B-PER Jones/I-PER", line=30),  # a proper continuation
        ex("NY/B-LOC Times/I-ORG", line=40),  # I- after B- of another type
    ]
    spans = [decode_spans(e.tags) for e in examples]
    found = list(check_i_starts(examples, spans, "a.conll", "iob2"))
    assert where(found) == [("a.conll", 10), ("a.conll", 21), ("a.conll", 22), ("a.conll", 41)]
    assert {f.severity for f in found} == {"warning"}
    assert "after the sentence start" in found[0].message and "San Sebastián" in found[0].message


def test_checks_i_starts_are_info_in_iob1_and_suffix_notation_counts() -> None:
    examples = [ex("EU/I-ORG rejects/O German/I-MISC", line=1), ex("Peter/PER_I Blackburn/PER_I", line=5)]
    spans = [decode_spans(e.tags) for e in examples]
    iob1 = list(check_i_starts(examples[:1], spans[:1], "eng.train", "iob1"))
    assert [(f.line, f.severity) for f in iob1] == [(1, "info"), (3, "info")]
    suffix = list(check_i_starts(examples[1:], spans[1:], "val.csv", "suffix"))
    assert [(f.line, f.severity) for f in suffix] == [(5, "warning")]


def test_checks_tag_shapes_reports_empty_and_invalid_tags() -> None:
    examples = [raw(["a", "b", "c", "d", "e"], ["O", "", "B-PER", "O\r", " "], line=3)]
    found = list(check_tag_shapes(examples, "t.txt"))
    assert [(f.kind, f.line) for f in found] == [("empty-tag", 4), ("invalid-tag", 6), ("empty-tag", 7)]
    assert {f.severity for f in found} == {"error"}


def test_checks_corruption_reason_spots_glued_tags() -> None:
    known = {"blockchain", "emerging", "PER"}
    assert "stray 'O'" in (corruption_reason("blockchainO", known) or "")
    assert "embeds" in (corruption_reason("emergingB-emerging", known) or "")
    assert "embeds" in (corruption_reason("I-PER", known) or "")  # from the tag B-I-PER
    assert "whitespace" in (corruption_reason("PER\r", known) or "")
    assert "stray 'O'" in (corruption_reason("fooO", set()) or "")  # lower-case word + O
    for fine in ("PER", "RADIO", "LOCderiv", "Vitamin-B-12", "COVID-19", "O"):
        assert corruption_reason(fine, known) is None, fine


def test_checks_corrupt_types_in_a_file_with_their_lines() -> None:
    body = " ".join(["w/B-blockchain x/I-blockchain"] * 3)
    examples = [
        ex(body, line=1),
        ex("digital/B-blockchain currency/I-blockchainO", line=100),
        ex("radio/B-emerging interference/I-emergingB-emerging", line=200),
    ]
    found = list(check_corrupt_types(examples, "blockchain.txt"))
    assert [(f.kind, f.line) for f in found] == [("corrupt-tag", 101), ("corrupt-tag", 201)]
    assert "I-blockchainO" in found[0].message and "currency" in found[0].message


def test_checks_rare_type_only_when_others_are_frequent() -> None:
    frequent = ex(" ".join(["Bonn/B-LOC"] * 20), line=1)
    once = ex("Bob/B-PRE", line=50)
    found = list(check_corrupt_types([frequent, once], "f.conll"))
    assert [(f.kind, f.line) for f in found] == [("rare-type", 50)]
    few = ex(" ".join(["Bonn/B-LOC"] * 19), line=1)
    assert list(check_corrupt_types([few, once], "f.conll")) == []


def test_checks_types_across_files_names_types_of_one_file() -> None:
    a = [ex("AI/B-AI is/O", line=1), ex("x/B-TECH", line=4)]
    b = [ex("m1/B-m1 chip/I-m1 y/B-TECH", line=7)]
    found = list(check_types_across_files([("AI.txt", a), ("m1.txt", b)]))
    assert [(f.path, f.line, f.severity) for f in found] == [("AI.txt", 1, "info"), ("m1.txt", 7, "info")]
    assert list(check_types_across_files([("AI.txt", a)])) == []


# --- tokens ------------------------------------------------------------------------------------------------------


def test_checks_token_problems_by_kind() -> None:
    assert token_problems("Oracle") == []
    assert [k for k, _ in token_problems(" ")] == ["whitespace-token"]
    assert [k for k, _ in token_problems("\xa0")] == ["whitespace-token"]
    assert [k for k, _ in token_problems("")] == ["whitespace-token"]
    assert [k for k, _ in token_problems("\x1a")] == ["control-char"]
    assert [k for k, _ in token_problems("\u200b")] == ["zero-width-char"]
    assert [k for k, _ in token_problems("\u200bBachelor")] == ["zero-width-char"]
    assert [k for k, _ in token_problems("\u202fOracle")] == ["padded-token"]
    assert [k for k, _ in token_problems("  18")] == ["padded-token"]
    assert [k for k, _ in token_problems("New York")] == ["space-in-token"]
    assert [k for k, _ in token_problems("\ue05c")] == ["odd-char"]
    assert "C1 control" in token_problems("We\x92re")[0][1]
    assert "U+001A (control)" in token_problems("\x1a")[0][1]
    assert "U+E05C (private use)" in token_problems("\ue05c")[0][1]


def test_checks_tokens_with_lines_and_unusual_char_counts() -> None:
    examples = [
        raw(["is", " ", "a", "\x1a", "x\x1a"], ["O"] * 5, line=1),
        raw(["\u202fOracle", "ok", "\u200b"], ["O"] * 3, line=10),
    ]
    found = list(check_tokens(examples, "s.conll"))
    assert [(f.kind, f.line) for f in found] == [
        ("whitespace-token", 2),
        ("control-char", 4),
        ("control-char", 5),
        ("padded-token", 10),
        ("zero-width-char", 12),
    ]
    assert unusual_chars(examples) == {"U+001A": 2, "U+200B": 1, "U+202F": 1}


# --- lines -------------------------------------------------------------------------------------------------------


def test_checks_extra_fields_on_tab_files_only() -> None:
    lines = ["#\turl\tdate\t", "1\tEU\tB-ORG\tO", '1\t"\tO\tO\t', "2\tx\tO\tO", "", "3\ty\tO\tO\t\t"]
    found = list(check_extra_fields(lines, "g.tsv", column_separator(lines, None)))
    assert [(f.kind, f.line) for f in found] == [("extra-field", 3), ("extra-field", 6)]
    assert "5 fields, the last 1 empty" in found[0].message and "have 4" in found[0].message
    spaced = ["Proven O ", "skills O ", ""]
    assert column_separator(spaced, None) is None
    assert list(check_extra_fields(spaced, "t.txt", column_separator(spaced, None))) == []


def test_checks_file_lines_strip_bom_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "r.txt"
    path.write_bytes(b"\xef\xbb\xbfa O\r\nb O\r\n")
    assert file_lines(path) == ["a O", "b O", ""]


# --- overlap -----------------------------------------------------------------------------------------------------


def test_checks_duplicates_within_a_file() -> None:
    examples = [
        ex("a/O b/B-X", line=1),
        ex("c/O", line=4),
        ex("a/O b/B-X", line=6),  # same tags
        ex("a/O b/O", line=9),  # other tags
        ex("a/O b/B-X", line=12),
    ]
    found = list(check_duplicates(examples, "d.conll"))
    assert [(f.kind, f.line) for f in found] == [
        ("duplicate-sentence", 6),
        ("conflicting-duplicate", 9),
        ("duplicate-sentence", 12),
    ]
    assert all("repeats line 1" in f.message for f in found)


def test_checks_duplicates_without_lines_name_the_sentence_number() -> None:
    examples = [Example(("a",), ("O",)), Example(("b",), ("O",)), Example(("a",), ("O",))]
    (found,) = check_duplicates(examples, "x.json")
    assert found.line is None and "repeats sentence 1" in found.message


def test_checks_overlap_counts_distinct_sentences_in_the_later_file() -> None:
    dev = [ex("a/O b/O", line=1), ex("c/O", line=4), ex("d/O", line=6)]
    test = [ex("x/O", line=1), ex("a/O b/O", line=3), ex("a/O b/O", line=6), ex("d/O", line=9)]
    extra = [ex("c/O", line=2), ex("a/O b/O", line=5)]
    overlaps, found = check_overlap([("dev", dev), ("test", test), ("extra", extra)])
    assert [(o.path, o.other, o.sentences) for o in overlaps] == [("test", "dev", 2), ("extra", "dev", 2)]
    assert where(found) == [("test", 3), ("test", 9), ("extra", 2), ("extra", 5)]
    assert "dev:1" in found[0].message


def test_checks_label_consistency_types_and_outside() -> None:
    a = [
        ex("in/O New/B-LOC York/I-LOC ./O", line=1),
        ex("New/B-ORG York/I-ORG wins/O", line=10),
        ex("the/O New/B-LOC York/I-LOC Times/I-LOC", line=20),  # inside a longer entity: not counted
    ]
    b = [
        ex("New/O York/O is/O big/O", line=1),
        ex("New/B-LOC York/I-LOC again/O", line=8),
        ex("Bonn/B-LOC ,/O Bonn/B-LOC", line=30),  # consistent
    ]
    spans_a = [decode_spans(e.tags) for e in a]
    spans_b = [decode_spans(e.tags) for e in b]
    found = list(check_label_consistency([("a", a, spans_a), ("b", b, spans_b)]))
    # 'New York' is LOC 2x, ORG 1x, O 1x; rarest label is O (ties broken by name: O < ORG)
    # 'New York Times' is LOC only.
    assert [(f.kind, f.path, f.line) for f in found] == [("inconsistent-label", "b", 1)]
    assert "LOC 2×" in found[0].message and "ORG 1×" in found[0].message and "O 1×" in found[0].message
    assert "ORG first at a:10" in found[0].message


def test_checks_label_consistency_ignores_partial_outside_matches() -> None:
    # 'New York' is never all-O (York is an ORG in the second sentence), and 'York' is never O on its own.
    a = [ex("New/B-LOC York/I-LOC", line=1), ex("New/O York/B-ORG", line=5)]
    assert list(check_label_consistency([("a", a, [decode_spans(e.tags) for e in a])])) == []


# --- subwords ----------------------------------------------------------------------------------------------------


def test_checks_length_stats_in_words_with_truncation_losses() -> None:
    examples = [
        ex("a/B-X b/I-X c/O d/B-Y e/O", line=1),  # 5 words; at 3 the Y entity (word 3) is lost
        ex("f/O g/B-X", line=10),
        ex("h/B-X i/I-X j/I-X k/O", line=20),  # 4 words; the X entity ends at 3: kept
    ]
    spans = [decode_spans(e.tags) for e in examples]
    stats, found = length_stats(examples, spans, "w.conll", max_length=3)
    assert (stats.unit, stats.max, stats.median, stats.over_max) == ("words", 5, 4.0, 2)
    assert (stats.entities_lost, stats.words_lost) == (1, 3)
    assert [(f.kind, f.line) for f in found] == [("too-long", 1), ("too-long", 20)]
    assert "drops 2 of 5 words and 1 of 2 entities" in found[0].message
    no_limit, none = length_stats(examples, spans, "w.conll")
    assert no_limit.over_max == 0 and none == []


def test_checks_length_stats_in_subwords_count_specials_and_cut_entities() -> None:
    pieces = {"a": 1, "bb": 3, "c": 2, "": 0}
    examples = [ex("a/B-X bb/I-X c/B-Y", line=1), ex("c/O a/O", line=5)]
    spans = [decode_spans(e.tags) for e in examples]
    # 1 + 3 + 2 + 2 specials = 8 > 6: budget 4 keeps 'a bb' (4 pieces), loses 'c' and the Y entity
    stats, found = length_stats(examples, spans, "s.conll", pieces=pieces, max_length=6, specials=2)
    assert (stats.unit, stats.max, stats.over_max, stats.entities_lost, stats.words_lost) == ("subwords", 8, 1, 1, 1)
    assert [(f.kind, f.line) for f in found] == [("too-long", 1)]
    # a limit that cuts through the first entity loses both
    stats, _ = length_stats(examples, spans, "s.conll", pieces=pieces, max_length=4, specials=2)
    assert (stats.over_max, stats.entities_lost) == (2, 2)


def test_checks_no_subword_tokens_with_lines() -> None:
    pieces = {"is": 1, " ": 0, "a": 1, "\x1a": 0, "skill": 1}
    examples = [raw(["is", " ", "a"], ["O", "O", "O"], line=1), raw(["\x1a", "skill"], ["B-S", "I-S"], line=7)]
    spans = [decode_spans(e.tags) for e in examples]
    found = list(check_no_subword(examples, spans, "x.json", pieces, "tiny"))
    assert [(f.kind, f.line) for f in found] == [("no-subword", 2), ("no-subword", 7)]
    assert "inside a S entity" in found[1].message


# --- the whole report --------------------------------------------------------------------------------------------


def test_checks_inspect_corpora_counts_and_routes_findings() -> None:
    train = Corpus(
        "train.conll",
        "conll",
        [ex("EU/B-ORG rejects/O German/B-MISC", line=1), ex("Peter/B-PER Blackburn/I-PER", line=5)],
        "iob2",
        [Finding("crlf", "train.conll", 1, "CRLF"), Finding("i-start", "train.conll", 9, "reader's own")],
    )
    test = Corpus(
        "test.conll",
        "conll",
        [ex("Peter/B-PER Blackburn/I-PER", line=1), ex("in/O Bonn/I-LOC", line=4), ex("-DOCSTART-/O", line=7)],
        "iob2",
    )
    report = inspect_corpora([train, test], max_length=2, max_findings=1)
    a, b = report.files
    assert (a.sentences, a.tokens, a.entities, a.entities_by_type) == (2, 5, 3, {"MISC": 1, "ORG": 1, "PER": 1})
    assert (b.sentences, b.tokens, b.entities, b.documents) == (2, 4, 2, 1)
    assert a.findings_by_kind == {"crlf": 1, "too-long": 1, "type-in-one-file": 2}  # the reader's i-start is dropped
    assert b.findings_by_kind == {"i-start": 1, "overlap": 1, "type-in-one-file": 1}
    assert len([f for f in a.findings if f.kind == "type-in-one-file"]) == 1  # capped at 1 per kind
    assert [(o.path, o.other, o.sentences) for o in report.overlaps] == [("test.conll", "train.conll", 1)]
    total = report.to_dict()["total"]
    assert (total["sentences"], total["tokens"], total["entities"]) == (4, 9, 5)
    assert total["entities_by_type"] == {"LOC": 1, "MISC": 1, "ORG": 1, "PER": 2}
    assert report.entities_lost() == 1


# --- a real tokenizer (the embedded MiniLM; offline) -------------------------------------------------------------


@pytest.fixture(scope="module")
def minilm() -> Any:
    return load_tokenizer("default")


def test_checks_piece_counts_with_the_default_tokenizer(minilm: Any) -> None:
    counts = piece_counts(minilm, ["hello", " ", "\xa0", "\x1a", "\u200b", "", "x\x1a", "hello"])
    assert counts == {"hello": 1, " ": 0, "\xa0": 0, "\x1a": 0, "\u200b": 0, "": 0, "x\x1a": 1}
    assert special_count(minilm) == 2 and tokenizer_limit(minilm) == 512


def test_checks_inspect_corpora_with_a_tokenizer_object(minilm: Any) -> None:
    corpus = Corpus("s.jsonl", "jsonl", [raw(["is", "\xa0", "a", "skill"], ["O", "O", "O", "B-S"], line=4)], "iob2")
    report = inspect_corpora([corpus], tokenizer=minilm, max_length=4)
    (f,) = report.files
    assert report.max_length == 4 and report.tokenizer == minilm.name_or_path
    assert f.findings_by_kind["no-subword"] == 1 and f.findings_by_kind["whitespace-token"] == 1
    # [CLS] is a skill [SEP] = 5 > 4: the budget of 2 pieces keeps 'is', '\xa0', 'a' and loses the entity
    sub = f.lengths["subwords"]
    assert (sub.max, sub.over_max, sub.entities_lost, sub.words_lost) == (5, 1, 1, 1)
    assert f.lengths["words"].max_length is None  # with a tokenizer the limit is in subwords only


def test_checks_load_tokenizer_error_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no such model directory"):
        load_tokenizer(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="cannot load a tokenizer"):
        load_tokenizer(str(tmp_path / "empty"))
