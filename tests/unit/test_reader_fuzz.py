"""Fuzzing the readers: random bytes, truncated files and garbled lines raise only NerforgeError subclasses (or
read), and a DataFormatError about a line names that line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nerforge.data.readers.options import FORMATS as FORMAT_NAMES
from nerforge.data.readers.options import ReadOptions
from nerforge.data.readers.registry import read_corpus
from nerforge.errors import DataFormatError, NerforgeError

FORMATS = Path(__file__).resolve().parents[1] / "data" / "formats"
FIXTURES = sorted(p for p in FORMATS.iterdir() if not p.name.startswith("bad_") and ".labels." not in p.name)
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
# A mix of options so integer ids, bare tags and label maps are exercised too.
OPTION_SETS = [
    ReadOptions(),
    ReadOptions(label_names=("O", "B-X", "I-X"), entity_type="T", label_map={"*": "Y"}),
    ReadOptions(token_column=1, tag_column=2, missing_tag="error", strip_token_prefix="de:"),
]


def read_or_nerforge_error(path: Path, options: ReadOptions) -> None:
    try:
        read_corpus(path, options)
    except NerforgeError as exc:
        if isinstance(exc, DataFormatError):
            assert exc.line is None or exc.line >= 1
            assert str(exc).startswith(str(path))


@FUZZ
@given(data=st.binary(max_size=300), fmt=st.sampled_from([None, *FORMAT_NAMES]), opts=st.sampled_from(OPTION_SETS))
def test_random_bytes(tmp_path, data, fmt, opts):
    p = tmp_path / "random.dat"
    p.write_bytes(data)
    read_or_nerforge_error(p, ReadOptions(**{**opts.__dict__, "format": fmt}))


_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 300) | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "tokens",
                    "ner_tags",
                    "text",
                    "label",
                    "entities",
                    "data",
                    "annotations",
                    "result",
                    "value",
                    "start",
                    "end",
                    "labels",
                    "classes",
                    "id",
                ]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)


@FUZZ
@given(value=_JSONISH, fmt=st.sampled_from([None, "json", "jsonl", "spacy", "doccano", "labelstudio"]))
def test_random_json_shapes(tmp_path, value, fmt):
    p = tmp_path / "random.json"
    p.write_text(json.dumps(value), encoding="utf-8")
    read_or_nerforge_error(p, ReadOptions(format=fmt, label_names=("O", "B-X")))


@FUZZ
@given(fixture=st.sampled_from(FIXTURES), cut=st.floats(0, 1), fmt=st.sampled_from([None, *FORMAT_NAMES]))
def test_truncated_files(tmp_path, fixture, cut, fmt):
    data = fixture.read_bytes()
    p = tmp_path / fixture.name
    p.write_bytes(data[: int(len(data) * cut)])
    read_or_nerforge_error(p, ReadOptions(format=fmt, label_names=("O", "I-SOFTSKILL")))


@FUZZ
@given(
    fixture=st.sampled_from(FIXTURES),
    where=st.floats(0, 1),
    garbage=st.text(max_size=40) | st.binary(max_size=20).map(lambda b: b.decode("latin-1")),
    opts=st.sampled_from(OPTION_SETS),
)
def test_garbled_lines(tmp_path, fixture, where, garbage, opts):
    lines = fixture.read_bytes().split(b"\n")
    k = int(where * (len(lines) - 1))
    lines[k] = garbage.encode("utf-8", errors="surrogatepass")
    p = tmp_path / fixture.name
    p.write_bytes(b"\n".join(lines))
    read_or_nerforge_error(p, opts)


# A bad line placed at line k must be reported at line k.
LINE_FORMATS = {
    "conll": (
        "tok B-X\nnext O\n",
        ["a b c d e", "tok NOT_A_TAG!", "tok 7"],
    ),
    "jsonl": (
        '{"tokens": ["a"], "ner_tags": ["O"]}\n',
        ['{"tokens": ["a"', '{"tokens": ["a", "b"], "ner_tags": ["O"]}', '{"tokens": ["a"], "ner_tags": ["??"]}', "[]"],
    ),
    "csv": (
        "x,O,1\ny,B-X,2\n",
        ["a,O,1,extra", "a,XX!,3", '"a,O,4'],
    ),
    "doccano": (
        '{"text": "ab cd", "label": [[0, 2, "X"]]}\n',
        ['{"text": "ab", "label": [[0, 9, "X"]]}', '{"text": "a b", "label": [[1, 2, "X"]]}', "{oops"],
    ),
}


@pytest.mark.parametrize("fmt", sorted(LINE_FORMATS))
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_bad_line_is_reported_at_its_line(tmp_path, fmt, data):
    good, bad_lines = LINE_FORMATS[fmt]
    header = "tok,label,sent\n" if fmt == "csv" else ""
    body = good * data.draw(st.integers(1, 4))
    lines = (header + body).splitlines()
    k = data.draw(st.integers(len(header.splitlines()), len(lines)))
    lines.insert(k, data.draw(st.sampled_from(bad_lines)))
    p = tmp_path / f"f.{fmt}"
    p.write_text("\n".join(lines) + data.draw(st.sampled_from(["", "\n", "\r\n"])), encoding="utf-8")
    with pytest.raises(DataFormatError) as err:
        read_corpus(p, ReadOptions(format=fmt, missing_tag="error"))
    assert err.value.line == k + 1, str(err.value)


HUGE = "9" * 5000


@pytest.mark.parametrize(
    ("name", "text", "fmt", "line"),
    [
        ("big.jsonl", '{"tokens": ["a"], "ner_tags": ["O"]}\n{"tokens": ["a"], "ner_tags": [' + HUGE + "]}\n", None, 2),
        ("big.json", '[\n {"tokens": ["a"], "ner_tags": [' + HUGE + "]}]", None, 2),
        ("big_span.jsonl", '{"text": "ab", "label": [[0, ' + HUGE + ', "X"]]}\n', "doccano", 1),
        ("big.conll", "a O\nb " + HUGE + "\n", None, 2),
        ("big.csv", "tok,label\na,O\nb," + HUGE + "\n", None, 3),
        ("deep.json", "[" * 100_000 + "]" * 100_000, None, 1),
        ("deep.jsonl", "[" * 100_000 + "]" * 100_000 + "\n", "jsonl", 1),
    ],
)
def test_huge_numbers_and_deep_nesting(tmp_path, name, text, fmt, line):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    with pytest.raises(DataFormatError) as err:
        read_corpus(p, ReadOptions(format=fmt, label_names=("O", "B-X")))
    assert err.value.line == line


# --- what a reader must give back, not only what it must not raise ------------------------------------------------

_WORD = st.text(
    alphabet=st.characters(categories=("L", "N", "P", "S"), exclude_characters="\u2028\u2029"), min_size=1, max_size=8
)
_TYPE = st.sampled_from(["PER", "ORG", "LOC", "TECH"])


@st.composite
def _iob2_sentence(draw: st.DrawFn) -> tuple[tuple[str, ...], tuple[str, ...]]:
    words = tuple(draw(st.lists(_WORD, min_size=1, max_size=12)))
    tags: list[str] = []
    for _ in words:
        kind = draw(st.sampled_from(["O", "B", "I"]))
        if kind == "I" and tags and tags[-1] != "O":
            tags.append("I-" + tags[-1][2:])
        elif kind == "O":
            tags.append("O")
        else:
            tags.append("B-" + draw(_TYPE))
    return words, tuple(tags)


@FUZZ
@given(sentences=st.lists(_iob2_sentence(), min_size=1, max_size=8), fmt=st.sampled_from(["conll", "jsonl"]))
def test_written_examples_read_back_identical(tmp_path: Path, sentences, fmt: str) -> None:  # type: ignore[no-untyped-def]
    """A reader that drops, merges, reorders or alters anything (or reads nothing) fails here."""
    from nerforge.data.writers import write_examples
    from nerforge.types import Example

    words = [w for s, _ in sentences for w in s]
    if any(w.startswith("#") or w == "-DOCSTART-" for w in words):
        return  # comment and document markers are column-file syntax, tested on their own
    path = tmp_path / f"round.{fmt}"
    write_examples([Example(s, t) for s, t in sentences], path, fmt)
    corpus = read_corpus(path, ReadOptions())
    assert [(ex.tokens, ex.tags) for ex in corpus.examples] == list(sentences)
