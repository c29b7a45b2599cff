"""``nerforge inspect --json`` on the real datasets in ../shared: the quirks and counts their SOURCE.md lists.

Each command runs once per module (the large files once each) and the tests read its JSON.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nerforge.cli import main

pytestmark = pytest.mark.shared

Run = Callable[..., dict[str, Any]]


@pytest.fixture(scope="module")
def inspect(shared_datasets: Path) -> Run:
    """``inspect(*files, flags=[...])`` runs ``nerforge inspect --json`` once per argument list; files are relative
    to the datasets folder."""
    cache: dict[tuple[str, ...], dict[str, Any]] = {}

    def run(*files: str, flags: tuple[str, ...] = ()) -> dict[str, Any]:
        argv = ("inspect", "--json", *flags, *(str(shared_datasets / f) for f in files))
        if argv not in cache:
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main(list(argv))
            assert code == 0, err.getvalue()
            cache[argv] = json.loads(out.getvalue())
        return cache[argv]

    return run


def by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {Path(f["path"]).name: f for f in report["files"]}


def counts(f: dict[str, Any]) -> tuple[int, int, int]:
    return f["sentences"], f["tokens"], f["entities"]


def lines_of(f: dict[str, Any], kind: str) -> list[int | None]:
    return [x["line"] for x in f["findings"] if x["kind"] == kind]


# --- CoNLL-2003 (IOB1) and CoNLL-2002 ------------------------------------------------------------------------------


def test_inspect_shared_conll2003_iob1_starts_are_counted_as_info(inspect: Run) -> None:
    f = inspect("conll2003_iob1/eng.train")["files"][0]
    assert f["scheme"] == "iob1"
    assert counts(f) == (14041, 203621, 23499) and f["documents"] == 946
    assert f["entities_by_type"] == {"LOC": 7140, "MISC": 3438, "ORG": 6321, "PER": 6600}
    assert f["findings_by_kind"]["i-start"] == 23429
    assert {x["severity"] for x in f["findings"] if x["kind"] == "i-start"} == {"info"}
    assert lines_of(f, "i-start")[0] == 1  # EU NNP I-NP I-ORG opens the file
    assert f["findings_by_kind"]["docstart-at-end"] == 1


def test_inspect_shared_conll2002_dutch_docstart_and_spanish_i_start(inspect: Run) -> None:
    files = by_name(inspect("conll2002/ned.testa", "conll2002/esp.testa", "conll2002/esp.testb"))
    ned = files["ned.testa"]
    assert counts(ned) == (2895, 37687, 2616) and ned["documents"] == 74
    assert ned["entities_by_type"] == {"LOC": 479, "MISC": 748, "ORG": 686, "PER": 703}
    assert ned["findings_by_kind"]["docstart-not-followed-by-blank"] == 74
    assert lines_of(ned, "docstart-not-followed-by-blank")[0] == 1
    assert "i-start" not in ned["findings_by_kind"]
    assert counts(files["esp.testa"]) == (1915, 52923, 4352)
    assert counts(files["esp.testb"]) == (1517, 51533, 3559)
    for name in ("esp.testa", "esp.testb"):
        f = files[name]
        assert f["scheme"] == "iob2" and f["documents"] == 0
        assert f["findings_by_kind"]["i-start"] == 1
        (start,) = [x for x in f["findings"] if x["kind"] == "i-start"]
        assert start["severity"] == "warning" and start["line"] > 0


def test_inspect_shared_conll2002_truncation_loses_sentences_and_entities(inspect: Run) -> None:
    report = inspect("conll2002/esp.train", flags=("--tokenizer", "default", "--max-length", "128"))
    f = report["files"][0]
    assert counts(f) == (8323, 264715, 18798)
    assert f["entities_by_type"] == {"LOC": 4914, "MISC": 2173, "ORG": 7390, "PER": 4321}
    assert f["findings_by_kind"]["i-start"] == 1
    words, sub = f["lengths"]["words"], f["lengths"]["subwords"]
    assert words["max"] == 1238 and words["median"] == 34
    assert sub["max_length"] == 128 and sub["max"] > words["max"]
    assert sub["over_max"] > 0 and sub["entities_lost"] > 0 and sub["words_lost"] > 0
    assert f["findings_by_kind"]["too-long"] == sub["over_max"]
    assert report["tokenizer"] == "default" and report["max_length"] == 128


# --- FactRuEval, FiNER-ORD -----------------------------------------------------------------------------------------


def test_inspect_shared_factrueval_i_starts_and_dev_test_overlap(inspect: Run) -> None:
    report = inspect("factrueval_sfds/dev_data.json", "factrueval_sfds/test_data.json")
    dev, test = by_name(report)["dev_data.json"], by_name(report)["test_data.json"]
    assert counts(dev) == (2582, 51186, 5212) and counts(test) == (2582, 53038, 5486)
    assert dev["entities_by_type"] == {"LOC": 1394, "ORG": 1679, "PER": 2139}
    assert test["entities_by_type"] == {"LOC": 1509, "ORG": 1790, "PER": 2187}
    assert dev["findings_by_kind"]["i-start"] == 79 and test["findings_by_kind"]["i-start"] == 94
    assert test["findings_by_kind"]["overlap"] == 23 and "overlap" not in dev["findings_by_kind"]
    assert [(Path(o["path"]).name, Path(o["other"]).name, o["sentences"]) for o in report["overlaps"]] == [
        ("test_data.json", "dev_data.json", 23)
    ]
    assert all(x["line"] for x in test["findings"] if x["kind"] == "overlap")


def test_inspect_shared_finer_ord_i_starts(inspect: Run) -> None:
    names = "O,PER_B,PER_I,LOC_B,LOC_I,ORG_B,ORG_I"
    files = by_name(
        inspect("finer_ord/train.csv", "finer_ord/val.csv", "finer_ord/test.csv", flags=("--label-names", names))
    )
    expected = {
        "train.csv": ((3262, 80531, 3831), 135, {"LOC": 966, "ORG": 2039, "PER": 826}, 18),
        "val.csv": ((402, 10233, 609), 24, {"LOC": 193, "ORG": 278, "PER": 138}, 4),
        "test.csv": ((1075, 25957, 1139), 42, {"LOC": 300, "ORG": 553, "PER": 286}, 11),
    }
    for name, (sizes, docs, by_type, starts) in expected.items():
        f = files[name]
        assert f["scheme"] == "suffix"
        assert counts(f) == sizes and f["documents"] == docs and f["entities_by_type"] == by_type
        assert f["findings_by_kind"]["i-start"] == starts, name


# --- tech terms ----------------------------------------------------------------------------------------------------

TECH = "tech_terms_bert/all_tagged_data"
TECH_TABLE = {  # SOURCE.md: sentences, tokens, entities after collapsing every type to one
    "AI.txt": (73, 4040, 171),
    "aircraft.txt": (6, 560, 34),
    "bio_med_health.txt": (17, 969, 88),
    "blockchain.txt": (238, 18273, 664),
    "cloning.txt": (2, 284, 8),
    "emerging.txt": (169, 11606, 689),
    "genetic.txt": (77, 6536, 232),
    "inventions.txt": (76, 4471, 224),
    "m1.txt": (1064, 37951, 1434),
    "neuro.txt": (24, 1544, 114),
    "p2p.txt": (71, 3785, 93),
    "quantum.txt": (102, 10184, 409),
    "robotics.txt": (98, 4023, 203),
    "routing.txt": (8, 658, 16),
    "transport.txt": (46, 3277, 214),
    "wireless.txt": (78, 5730, 330),
    "train_data_added0.txt": (100, 20397, 654),
    "train_data_added1.txt": (180, 4000, 333),
    "train_data_added3.txt": (164, 6431, 378),
    "train_data_added4.txt": (122, 34988, 1349),
    "train_noise_added.txt": (230, 4974, 116),
}


def test_inspect_shared_tech_terms_corrupt_tags_missing_tag_and_crlf(inspect: Run) -> None:
    files = by_name(
        inspect(f"{TECH}/blockchain.txt", f"{TECH}/emerging.txt", f"{TECH}/genetic.txt", f"{TECH}/routing.txt")
    )
    blockchain, emerging = files["blockchain.txt"], files["emerging.txt"]
    assert [
        (x["line"], "I-blockchainO" in x["message"]) for x in blockchain["findings"] if x["kind"] == "corrupt-tag"
    ] == [(2446, True)]
    assert [
        (x["line"], "I-emergingB-emerging" in x["message"]) for x in emerging["findings"] if x["kind"] == "corrupt-tag"
    ] == [(1661, True)]
    # with the raw suffixes as types the corrupt tags split spans: 665 and 691 spans, 3 more I- starts
    assert blockchain["entities"] == 665 and emerging["entities"] == 691
    assert blockchain["findings_by_kind"]["i-start"] + emerging["findings_by_kind"]["i-start"] == 3
    assert lines_of(files["genetic.txt"], "missing-tag") == [3468]
    assert files["routing.txt"]["findings_by_kind"]["crlf"] == 1
    assert "666 line(s)" in next(x["message"] for x in files["routing.txt"]["findings"] if x["kind"] == "crlf")


def test_inspect_shared_tech_terms_counts_after_collapsing_types(inspect: Run) -> None:
    report = inspect(*(f"{TECH}/{name}" for name in TECH_TABLE), flags=("--label-map", "*=TECH"))
    files = by_name(report)
    assert {name: counts(f) for name, f in files.items()} == TECH_TABLE
    assert (report["total"]["sentences"], report["total"]["tokens"], report["total"]["entities"]) == (
        2945,
        184681,
        7753,
    )
    assert report["total"]["entities_by_type"] == {"TECH": 7753}
    assert "corrupt-tag" not in report["total"]["findings_by_kind"]
    assert report["total"]["findings_by_kind"]["i-start"] == 1
    assert lines_of(files["train_data_added0.txt"], "i-start") == [11327]


# --- job-posting datasets ------------------------------------------------------------------------------------------


def test_inspect_shared_softskill_whitespace_tokens_map_to_no_subword(inspect: Run) -> None:
    report = inspect(
        "softskill_ner/train_ner.json",
        "softskill_ner/test_ner.json",
        flags=("--tokenizer", "default", "--label-names", "O,I-SOFTSKILL"),
    )
    files = by_name(report)
    train, test = files["train_ner.json"], files["test_ner.json"]
    assert counts(train) == (101, 1320, 127) and counts(test) == (19, 227, 24)
    assert train["format"] == "jsonl" and train["scheme"] == "io"
    for f, n in ((train, 13), (test, 4)):
        assert f["findings_by_kind"]["whitespace-token"] == n
        assert f["findings_by_kind"]["no-subword"] == n
        assert lines_of(f, "no-subword") == lines_of(f, "whitespace-token")
        assert f["findings_by_kind"]["crlf"] == 1
        assert {x["severity"] for x in f["findings"] if x["kind"] == "i-start"} == {"info"}  # IO: every span
    assert "subwords" in train["lengths"] and train["lengths"]["subwords"]["max_length"] == 512


def test_inspect_shared_skillspan_control_characters(inspect: Run) -> None:
    files = by_name(
        inspect(
            "skillspan/conll/skillspan_house_train.conll",
            "skillspan/conll/skillspan_tech_test.conll",
            flags=("--tag-column", "1"),
        )
    )
    house, tech = files["skillspan_house_train.conll"], files["skillspan_tech_test.conll"]
    assert counts(house) == (1668, 36986, 984) and counts(tech) == (2349, 20885, 457)
    assert house["unusual_chars"]["U+001A"] == 40
    assert house["findings_by_kind"]["control-char"] >= 40
    assert any("U+001A" in x["message"] for x in house["findings"] if x["kind"] == "control-char")
    assert house["findings_by_kind"]["padded-token"] >= 1  # "         That"
    assert tech["findings_by_kind"]["i-start"] == 1


def test_inspect_shared_green_job_entities_trailing_separators(inspect: Run) -> None:
    f = inspect("green_job_entities/testset.txt")["files"][0]
    assert counts(f) == (336, 8050, 908)
    assert f["entities_by_type"] == {
        "Domain": 60,
        "Experience": 9,
        "Occupation": 137,
        "Qualification": 26,
        "Skill": 676,
    }
    (trailing,) = [x for x in f["findings"] if x["kind"] == "trailing-separator"]
    assert trailing["message"].startswith("8050 line(s)")
    assert "i-start" not in f["findings_by_kind"]


def test_inspect_shared_germeval_five_field_line(inspect: Run) -> None:
    f = inspect("germeval2014/NER-de-test.tsv", flags=("--token-column", "1", "--tag-column", "2"))["files"][0]
    assert counts(f) == (5100, 96499, 6178)
    assert f["entities_by_type"]["LOC"] == 1706 and f["entities_by_type"]["PERderiv"] == 11
    assert lines_of(f, "extra-field") == [19728]
