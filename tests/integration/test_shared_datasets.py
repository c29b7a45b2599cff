"""Every real dataset in ../shared/datasets, read as its SOURCE.md describes, reproduces the counts SOURCE.md gives.

Counts are sentences, tokens and entities per type, entities decoded conlleval-style
(:func:`nerforge.data.schemes.tags_to_spans`). Skipped when ../shared is absent (see ``shared_datasets``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from nerforge.data.normalize import to_iob2
from nerforge.data.readers.options import ReadOptions
from nerforge.data.readers.registry import read_corpus
from nerforge.data.schemes import tags_to_spans
from nerforge.errors import DataFormatError
from nerforge.types import Corpus

pytestmark = pytest.mark.shared

FINER = ("O", "PER_B", "PER_I", "LOC_B", "LOC_I", "ORG_B", "ORG_I")
TECH = {"*": "TECH"}


@dataclass(frozen=True)
class Expect:
    """What SOURCE.md says about one file read with ``options``."""

    sentences: int
    tokens: int
    entities: dict[str, int]
    docs: int | None = None
    findings: dict[str, int] = field(default_factory=dict)  # exact counts of some finding kinds
    options: ReadOptions = ReadOptions()


def _c03(docs, sents, toks, per, loc, org, misc, **kw):
    return Expect(sents, toks, {"PER": per, "LOC": loc, "ORG": org, "MISC": misc}, docs, **kw)


def _c02(docs, sents, toks, per, org, loc, misc, **kw):
    return Expect(sents, toks, {"PER": per, "ORG": org, "LOC": loc, "MISC": misc}, docs, **kw)


_GERMEVAL_OUTER = {  # dev / test
    "LOC": (763, 1706),
    "PER": (711, 1639),
    "ORG": (496, 1150),
    "OTH": (269, 697),
    "LOCderiv": (235, 561),
    "ORGpart": (91, 172),
    "LOCpart": (52, 109),
    "OTHpart": (18, 42),
    "PERpart": (18, 44),
    "OTHderiv": (16, 39),
    "ORGderiv": (3, 8),
    "PERderiv": (2, 11),
}
_TECH_FILES = {  # file: (sentences, tokens, TECH entities) after collapsing every type to TECH
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
    "test.txt": (100, 21145, 579),
}
_SKILLSPAN_CONLL = {  # file: (sentences, tokens, Skill spans, Knowledge spans)
    "house_train": (1668, 36986, 984, 781),
    "house_dev": (1019, 19172, 525, 287),
    "house_test": (1221, 21923, 634, 345),
    "tech_train": (3133, 56485, 1237, 2188),
    "tech_dev": (2156, 20901, 545, 806),
    "tech_test": (2349, 20885, 457, 829),
}
_SKILLSPAN_JSON = {
    "train": (4800, 93453, 2221, 2969),
    "dev": (3174, 40057, 1070, 1093),
    "test": (3569, 42786, 1091, 1174),
}


def _cases() -> dict[str, Expect]:
    cases: dict[str, Expect] = {
        "conll2003/train.txt": _c03(946, 14041, 203621, 6600, 7140, 6321, 3438),
        "conll2003/valid.txt": _c03(216, 3250, 51362, 1842, 1837, 1341, 922),
        "conll2003/test.txt": _c03(231, 3453, 46435, 1617, 1668, 1661, 702, findings={"i-start": 0}),
        "conll2003_iob1/eng.train": _c03(946, 14041, 203621, 6600, 7140, 6321, 3438, findings={"docstart-at-end": 1}),
        "conll2003_iob1/eng.testa": _c03(216, 3250, 51362, 1842, 1837, 1341, 922),
        "conll2003_iob1/eng.testb": _c03(231, 3453, 46435, 1617, 1668, 1661, 702),
        "conll2002/esp.train": _c02(None, 8323, 264715, 4321, 7390, 4914, 2173, findings={"i-start": 1}),
        "conll2002/esp.testa": _c02(None, 1915, 52923, 1222, 1700, 985, 445, findings={"i-start": 1}),
        "conll2002/esp.testb": _c02(None, 1517, 51533, 735, 1400, 1084, 340, findings={"i-start": 1}),
        "conll2002/ned.train": _c02(
            287, 15806, 202644, 4716, 2082, 3208, 3338, findings={"docstart-not-followed-by-blank": 287}
        ),
        "conll2002/ned.testa": _c02(
            74, 2895, 37687, 703, 686, 479, 748, findings={"docstart-not-followed-by-blank": 74}
        ),
        "conll2002/ned.testb": _c02(
            119, 5195, 68875, 1098, 882, 774, 1187, findings={"docstart-not-followed-by-blank": 119}
        ),
        "green_job_entities/testset.txt": Expect(
            336,
            8050,
            {"Skill": 676, "Occupation": 137, "Domain": 60, "Qualification": 26, "Experience": 9},
            findings={"trailing-separator": 1, "i-start": 0},
        ),
        "factrueval_sfds/dev_data.json": Expect(
            2582, 51186, {"PER": 2139, "ORG": 1679, "LOC": 1394}, findings={"i-start": 79}
        ),
        "factrueval_sfds/test_data.json": Expect(
            2582, 53038, {"PER": 2187, "ORG": 1790, "LOC": 1509}, findings={"i-start": 94}
        ),
        "softskill_ner/train_ner.json": Expect(
            101,
            1320,
            {"SOFTSKILL": 127},
            findings={"whitespace-token": 13, "crlf": 1},
            options=ReadOptions(label_names=("O", "I-SOFTSKILL")),
        ),
        "softskill_ner/test_ner.json": Expect(
            19,
            227,
            {"SOFTSKILL": 24},
            findings={"whitespace-token": 4, "no-final-newline": 1},
            options=ReadOptions(label_names=("O", "I-SOFTSKILL")),
        ),
    }
    for split, docs, sents, toks, per, loc, org, istarts in (
        ("train", 135, 3262, 80531, 826, 966, 2039, 18),
        ("val", 24, 402, 10233, 138, 193, 278, 4),
        ("test", 42, 1075, 25957, 286, 300, 553, 11),
    ):
        cases[f"finer_ord/{split}.csv"] = Expect(
            sents,
            toks,
            {"PER": per, "LOC": loc, "ORG": org},
            docs,
            {"i-start": istarts},
            ReadOptions(label_names=FINER),
        )
    for split, sents, toks, per, org, loc in (
        ("train", 20000, 195387, 9290, 8575, 9778),
        ("dev", 10000, 97805, 4569, 4281, 4968),
        ("test", 10000, 97646, 4750, 4157, 4961),
    ):
        cases[f"wikiann_de/{split}"] = Expect(
            sents, toks, {"PER": per, "ORG": org, "LOC": loc}, options=ReadOptions(strip_token_prefix="de:")
        )
    for i, split in enumerate(("dev", "test")):
        sents, toks, inner = ((2200, 41653, 212), (5100, 96499, 515))[i]
        outer = {t: counts[i] for t, counts in _GERMEVAL_OUTER.items()}
        cases[f"germeval2014/NER-de-{split}.tsv#outer"] = Expect(
            sents, toks, outer, findings={"comment": 1}, options=ReadOptions(token_column=1, tag_column=2)
        )
        cases[f"germeval2014/NER-de-{split}.tsv#inner"] = Expect(
            sents, toks, {"*": inner}, options=ReadOptions(token_column=1, tag_column=3)
        )
    for name, (sents, toks, skill, knowledge) in _SKILLSPAN_CONLL.items():
        istart = {"i-start": 1 if name == "tech_test" else 0}
        cases[f"skillspan/conll/skillspan_{name}.conll#skill"] = Expect(
            sents, toks, {"Skill": skill}, findings=istart, options=ReadOptions(tag_column=1)
        )
        cases[f"skillspan/conll/skillspan_{name}.conll#knowledge"] = Expect(
            sents, toks, {"Knowledge": knowledge}, options=ReadOptions(tag_column=2)
        )
    for split, (sents, toks, skill, knowledge) in _SKILLSPAN_JSON.items():
        cases[f"skillspan/json/{split}.json#skill"] = Expect(
            sents, toks, {"Skill": skill}, options=ReadOptions(tags_field="tags_skill", entity_type="Skill")
        )
        cases[f"skillspan/json/{split}.json#knowledge"] = Expect(
            sents,
            toks,
            {"Knowledge": knowledge},
            options=ReadOptions(tags_field="tags_knowledge", entity_type="Knowledge"),
        )
    for name, (sents, toks, ents) in _TECH_FILES.items():
        extra = {"missing-tag": 1} if name == "genetic.txt" else {}
        extra["i-start"] = 1 if name == "train_data_added0.txt" else 0
        cases[f"tech_terms_bert/all_tagged_data/{name}"] = Expect(
            sents, toks, {"TECH": ents}, findings=extra, options=ReadOptions(label_map=TECH)
        )
    for split, (sents, toks, disease) in {
        "train": (5424, 135701, 5134),
        "devel": (923, 23969, 787),
        "test": (940, 24497, 960),
    }.items():
        cases[f"ncbi_disease/{split}.tsv"] = Expect(sents, toks, {"Disease": disease})
    for split, (sents, toks, chem, dis) in {
        "train": (4560, 118170, 5203, 4182),
        "devel": (4581, 117453, 5347, 4246),
        "test": (4797, 124750, 5385, 4424),
    }.items():
        cases[f"bc5cdr/{split}.tsv"] = Expect(sents, toks, {"Chemical": chem, "Disease": dis})
    return cases


CASES = _cases()
_CACHE: dict[tuple[str, str], Corpus] = {}


def read(root: Path, name: str, options: ReadOptions = ReadOptions()) -> Corpus:
    """Read ``name`` (``folder/file``, an optional ``#variant`` ignored) once per test session."""
    key = (name, repr(options))
    if key not in _CACHE:
        _CACHE[key] = read_corpus(root / name.split("#")[0], options)
    return _CACHE[key]


def entity_counts(corpus: Corpus) -> Counter[str]:
    """Entities per type, decoded conlleval-style (each distinct tag sequence decoded once)."""
    out: Counter[str] = Counter()
    for tags, n in Counter(ex.tags for ex in corpus.examples).items():
        for span in tags_to_spans(tags):
            out[span.label] += n
    return out


@pytest.mark.parametrize("name", sorted(CASES))
def test_counts_match_source_md(shared_datasets, name):
    exp = CASES[name]
    corpus = read(shared_datasets, name, exp.options)
    assert len(corpus.examples) == exp.sentences
    assert sum(len(ex) for ex in corpus.examples) == exp.tokens
    counts = entity_counts(corpus)
    if "*" in exp.entities:
        assert sum(counts.values()) == exp.entities["*"]
    else:
        assert dict(counts) == exp.entities
    if exp.docs is not None:
        assert len({ex.doc_id for ex in corpus.examples}) == exp.docs
        assert all(ex.doc_id is not None for ex in corpus.examples)
    kinds = Counter(f.kind for f in corpus.findings)
    for kind, n in exp.findings.items():
        assert kinds[kind] == n, (kind, corpus.findings[:5])
    assert all(f.line is None or f.line >= 1 for f in corpus.findings)


def test_every_dataset_folder_is_covered(shared_datasets):
    folders = {p.name for p in shared_datasets.iterdir() if p.is_dir()}
    covered = {name.split("/")[0] for name in CASES} | {"galal_job_skills_spacy"}
    assert folders <= covered, folders - covered


@pytest.mark.parametrize("split", [("train.txt", "eng.train"), ("valid.txt", "eng.testa"), ("test.txt", "eng.testb")])
def test_conll2003_iob1_to_iob2_equals_the_iob2_copy(shared_datasets, split):
    iob2_name, iob1_name = split
    iob2 = read(shared_datasets, f"conll2003/{iob2_name}")
    iob1 = read(shared_datasets, f"conll2003_iob1/{iob1_name}")
    assert iob1.scheme == "iob1" and iob2.scheme == "iob2"
    converted = to_iob2(iob1)
    assert [ex.tokens for ex in converted.examples] == [ex.tokens for ex in iob2.examples]
    assert [ex.tags for ex in converted.examples] == [ex.tags for ex in iob2.examples]
    # documents line up too, although the markers sit at opposite ends of each document
    assert [ex.doc_id for ex in converted.examples] == [ex.doc_id for ex in iob2.examples]


def test_wikiann_prefix_is_stripped(shared_datasets):
    corpus = read(shared_datasets, "wikiann_de/test", ReadOptions(strip_token_prefix="de:"))
    assert not any(tok.startswith("de:") for ex in corpus.examples for tok in ex.tokens)
    assert not [f for f in corpus.findings if f.kind == "prefix-missing"]


GALAL = {
    "Data_Annotation_1 .json": (100, 1, 1327),
    "Data_Annotation_2.json": (101, 0, 1839),
    "Data_Annotation_3.json": (101, 0, 860),
}


def test_galal_documents_nulls_and_all_4026_spans_survive(shared_datasets):
    docs = nulls = spans = cuts = 0
    for name, (n_docs, n_nulls, n_spans) in GALAL.items():
        corpus = read(shared_datasets, f"galal_job_skills_spacy/{name}")
        kinds = Counter(f.kind for f in corpus.findings)
        # each file ends with one empty text: a document with no tokens, skipped with an empty-record finding
        assert len(corpus.examples) + kinds["empty-record"] == n_docs
        assert kinds["null-entry"] == n_nulls
        assert entity_counts(corpus) == {"SKILL": n_spans}
        docs += n_docs
        nulls += kinds["null-entry"]
        spans += sum(entity_counts(corpus).values())
        cuts += kinds["span-cuts-token"]
        for ex in corpus.examples:
            assert ex.text is not None and ex.offsets is not None
            assert all(ex.text[s:e] == t for t, (s, e) in zip(ex.tokens, ex.offsets, strict=True))
    assert (docs, nulls, spans) == (302, 1, 4026)
    # nerforge.words.v2 splits the possessive 's, so "restful api" in "api's" (Data_Annotation_3.json) no longer
    # cuts a token: no span of the SOURCE.md-checked files cuts through a word.
    assert cuts == 0
    longest = max(len(ex) for name in GALAL for ex in read(shared_datasets, f"galal_job_skills_spacy/{name}").examples)
    assert longest > 1484  # long texts stay one example (punctuation split off makes more tokens than whitespace)


def test_tech_terms_project_totals_and_raw_suffix_variant(shared_datasets):
    root = "tech_terms_bert/all_tagged_data/"
    train = [n for n in _TECH_FILES if n != "test.txt"]
    corpora = [read(shared_datasets, root + n, ReadOptions(label_map=TECH)) for n in train]
    assert sum(len(c.examples) for c in corpora) == 2945
    assert sum(len(ex) for c in corpora for ex in c.examples) == 184681
    assert sum(sum(entity_counts(c).values()) for c in corpora) == 7753
    istart = [f for c in corpora for f in c.findings if f.kind == "i-start"]
    assert [(Path(f.path).name, f.line) for f in istart] == [("train_data_added0.txt", 11327)]
    raw = {n: read(shared_datasets, root + n) for n in ("blockchain.txt", "emerging.txt")}
    assert sum(entity_counts(raw["blockchain.txt"]).values()) == 665
    assert sum(entity_counts(raw["emerging.txt"]).values()) == 691
    assert sum(1 for c in raw.values() for f in c.findings if f.kind == "i-start") == 3
    genetic = read(shared_datasets, root + "genetic.txt", ReadOptions(label_map=TECH))
    assert [f.line for f in genetic.findings if f.kind == "missing-tag"] == [3468]
    with pytest.raises(DataFormatError) as err:
        read_corpus(shared_datasets / root / "genetic.txt", ReadOptions(missing_tag="error"))
    assert err.value.line == 3468


def test_skillspan_control_and_whitespace_tokens_are_kept(shared_datasets):
    for split in ("train", "dev"):
        name = f"skillspan/conll/skillspan_house_{split}.conll"
        corpus = read(shared_datasets, name + "#skill", ReadOptions(tag_column=1))
        # every U+001A of the file (SOURCE.md: 40 tokens in train, 23 in dev) is still in a token
        in_tokens = sum(t.count("\x1a") for ex in corpus.examples for t in ex.tokens)
        assert in_tokens == (shared_datasets / name).read_bytes().count(b"\x1a") > 0
    tokens = {
        t
        for c in CASES
        if c.startswith("skillspan/conll") and c.endswith("#skill")
        for ex in read(shared_datasets, c, CASES[c].options).examples
        for t in ex.tokens
    }
    assert any(t.startswith("\u202f") for t in tokens) and any(t.startswith("  ") for t in tokens)
    assert any("\u200b" in t for t in tokens)


def test_files_that_are_not_annotated_tokens_raise_data_format_errors(shared_datasets):
    for name in (
        "softskill_ner/raw_training_sentences.csv",
        "tech_terms_bert/all_tagged_data/train_data_added2.csv",
        "conll2002/README",
    ):
        with pytest.raises(DataFormatError):
            read_corpus(shared_datasets / name)
