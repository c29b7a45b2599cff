"""Writers (IOB2 CoNLL, JSON Lines), reader -> writer -> reader round trips, and ``nerforge convert``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nerforge.cli import main
from nerforge.data.normalize import tags_to_iob2
from nerforge.data.readers.options import ReadOptions
from nerforge.data.readers.registry import read_corpus
from nerforge.data.schemes import SCHEMES, spans_to_tags
from nerforge.data.writers import output_format, write_conll, write_examples, write_jsonl
from nerforge.errors import DataFormatError, UsageError
from nerforge.types import Example, Span

FORMATS = Path(__file__).resolve().parents[1] / "data" / "formats"

FIXTURES = {
    "docstart_start.conll": ReadOptions(),
    "docstart_end.iob1": ReadOptions(),
    "docstart_noblank.ned": ReadOptions(),
    "crlf_bom.tsv": ReadOptions(),
    "germeval.tsv": ReadOptions(token_column=1, tag_column=2),
    "trailing_space.txt": ReadOptions(),
    "missing_tag.txt": ReadOptions(label_map={"*": "TECH"}),
    "whitespace_tokens.tsv": ReadOptions(),
    "wikiann.tsv": ReadOptions(strip_token_prefix="de:"),
    "int_tags.jsonl": ReadOptions(label_names=("O", "I-SOFTSKILL")),
    "bare_tags.jsonl": ReadOptions(tags_field="tags_skill", entity_type="Skill"),
    "records.json": ReadOptions(),
    "records_list.json": ReadOptions(),
    "spacy.json": ReadOptions(),
    "doccano.jsonl": ReadOptions(),
    "labelstudio.json": ReadOptions(),
    "finer.csv": ReadOptions(labels_file=str(FORMATS / "finer.labels.txt")),
}


def doc_groups(examples) -> list[int]:
    """The document index of each example, counted from its changes (ids themselves are renumbered)."""
    out, n, prev = [], -1, object()
    for ex in examples:
        if ex.doc_id != prev:
            n, prev = n + 1, ex.doc_id
        out.append(n if ex.doc_id is not None else -1)
    return out


def test_write_conll_layout(tmp_path):
    exs = [
        Example(("EU", "rejects"), ("I-ORG", "O"), doc_id="d1"),
        Example(("Peter",), ("B-PER",), doc_id="d1"),
        Example(("Paris",), ("LOC_B",), doc_id="d2"),
    ]
    p = tmp_path / "out.conll"
    assert write_conll(exs, p) == 3
    assert p.read_bytes() == (
        b"-DOCSTART-\tO\n\nEU\tB-ORG\nrejects\tO\n\nPeter\tB-PER\n\n-DOCSTART-\tO\n\nParis\tB-LOC\n\n"
    )
    write_conll([Example(("a",), ("O",))], p)
    assert p.read_text(encoding="utf-8") == "a\tO\n\n"


def test_write_jsonl_layout(tmp_path):
    p = tmp_path / "out.jsonl"
    write_jsonl([Example(("Zürich", "x"), ("I-LOC", "O"), doc_id="7"), Example(("y",), ("O",))], p)
    lines = p.read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0]) == {"tokens": ["Zürich", "x"], "ner_tags": ["B-LOC", "O"], "doc_id": "7"}
    assert json.loads(lines[1]) == {"tokens": ["y"], "ner_tags": ["O"]}
    assert "Zürich" in lines[0]  # not \u-escaped


@pytest.mark.parametrize("bad", ["a\tb", "a\nb", "a\rb", "-DOCSTART-", "-DOCSTART- x"])
def test_write_conll_refuses_unwritable_tokens_and_leaves_old_file(tmp_path, bad):
    p = tmp_path / "out.conll"
    p.write_text("old\n", encoding="utf-8")
    with pytest.raises(DataFormatError):
        write_conll([Example(("ok",), ("O",)), Example((bad,), ("O",), source="in.json", line=3)], p)
    assert p.read_text(encoding="utf-8") == "old\n"
    assert list(tmp_path.iterdir()) == [p]  # no temporary file left behind


def test_output_format_from_extension_or_flag():
    assert output_format("x.conll") == "conll" and output_format("x.TSV") == "conll"
    assert output_format("x.jsonl") == "jsonl" and output_format("x.json") == "jsonl"
    assert output_format("x.bin", "jsonl") == "jsonl"
    with pytest.raises(UsageError):
        output_format("x.bin")
    with pytest.raises(UsageError):
        output_format("x.conll", "csv")
    with pytest.raises(UsageError):
        write_examples([], "x.conll", "csv")


@pytest.mark.parametrize("name", sorted(FIXTURES))
@pytest.mark.parametrize("fmt", ["conll", "jsonl"])
def test_round_trip_reader_writer_reader(tmp_path, name, fmt):
    first = read_corpus(FORMATS / name, FIXTURES[name])
    out = tmp_path / f"out.{fmt}"
    write_examples(first.examples, out, fmt)
    second = read_corpus(out)
    assert second.format == fmt and second.scheme == "iob2"
    assert [ex.tokens for ex in second.examples] == [ex.tokens for ex in first.examples]
    assert [ex.tags for ex in second.examples] == [tags_to_iob2(ex.tags) for ex in first.examples]
    if fmt == "conll":
        assert doc_groups(second.examples) == doc_groups(first.examples)
    else:
        assert [ex.doc_id for ex in second.examples] == [ex.doc_id for ex in first.examples]
    assert not [f for f in second.findings if f.kind != "whitespace-token"]


_TOKEN = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\t\n\r"), min_size=0, max_size=6
).filter(lambda t: not t.lstrip().startswith("-DOCSTART-"))


@st.composite
def examples(draw):
    out = []
    with_docs = draw(st.booleans())
    for k in range(draw(st.integers(1, 5))):
        n = draw(st.integers(1, 8))
        tokens = tuple(draw(st.lists(_TOKEN, min_size=n, max_size=n)))
        cuts = sorted(draw(st.sets(st.integers(0, n), max_size=6)))
        spans = [
            Span(a, b, draw(st.sampled_from(["PER", "LOC", "X-Y", "a_b"])))
            for a, b in zip(cuts, cuts[1:], strict=False)
            if draw(st.booleans())
        ]
        scheme = draw(st.sampled_from([s for s in SCHEMES if s != "io"]))
        tags = tuple(spans_to_tags(spans, n, scheme))
        out.append(Example(tokens, tags, doc_id=f"d{k // 2}" if with_docs else None))
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(examples(), st.sampled_from(["conll", "jsonl"]))
def test_generated_round_trips(tmp_path, exs, fmt):
    out = tmp_path / f"gen.{fmt}"
    write_examples(exs, out, fmt)
    back = read_corpus(out, ReadOptions(format=fmt))
    assert [ex.tokens for ex in back.examples] == [ex.tokens for ex in exs]
    assert [ex.tags for ex in back.examples] == [tags_to_iob2(ex.tags) for ex in exs]
    assert doc_groups(back.examples) == doc_groups(exs)


# ---- nerforge convert -------------------------------------------------------------------------------------------


def test_convert_cli_conll_to_jsonl(tmp_path, capsys):
    out = tmp_path / "out.jsonl"
    code = main(["convert", str(FORMATS / "docstart_end.iob1"), str(out)])
    assert code == 0
    stdout = capsys.readouterr().out
    assert "3 sentences, 8 tokens, 5 entities (LOC 2, MISC 1, ORG 1, PER 1)" in stdout
    assert "2 findings (docstart-at-end 1, tag-columns 1)" in stdout  # the chunk column holds IOB tags too
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert records[2] == {"tokens": ["BRUSSELS", "Paris", "and"], "ner_tags": ["B-LOC", "B-LOC", "O"], "doc_id": "1"}


def test_convert_cli_data_flags(tmp_path, capsys):
    out = tmp_path / "out.txt"
    code = main(["convert", str(FORMATS / "missing_tag.txt"), str(out), "--label-map", "*=TECH", "--missing-tag", "o"])
    assert code == 0
    assert "TECH 3" in capsys.readouterr().out
    assert out.read_text(encoding="utf-8").startswith("Sequencing\tB-TECH\nmachines\tI-TECH\n(\tO\n")

    out2 = tmp_path / "o2"
    args = ["convert", str(FORMATS / "finer.csv"), str(out2), "--to", "conll", "--sentence-columns", "doc_idx"]
    code = main(args + ["--label-names", "O,PER_B,PER_I,LOC_B,LOC_I,ORG_B,ORG_I"])
    assert code == 0 and "2 sentences" in capsys.readouterr().out

    out3 = tmp_path / "o3.conll"
    code = main(["convert", str(FORMATS / "germeval.tsv"), str(out3), "--token-column", "1", "--tag-column", "3"])
    assert code == 0 and "1 entities (LOCderiv 1)" in capsys.readouterr().out

    out4 = tmp_path / "o4.conll"
    code = main(
        ["convert", str(FORMATS / "bare_tags.jsonl"), str(out4), "--tags-field", "tags_skill", "--entity-type", "Skill"]
    )
    assert code == 0 and "Skill 1" in capsys.readouterr().out

    out5 = tmp_path / "o5.conll"
    code = main(
        ["convert", str(FORMATS / "wikiann.tsv"), str(out5), "--strip-token-prefix", "de:", "--separator", "tab"]
    )
    assert code == 0 and "de:" not in out5.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("name", "extra", "where"),
    [
        ("bad_tag.conll", [], "bad_tag.conll:3: "),
        ("bad_json.jsonl", [], "bad_json.jsonl:2: "),
        ("missing_tag.txt", ["--missing-tag", "error"], "missing_tag.txt:3: "),
        ("int_tags.jsonl", [], "int_tags.jsonl:1: "),
    ],
)
def test_convert_cli_bad_input_exit_2_without_traceback(tmp_path, capsys, name, extra, where):
    out = tmp_path / "out.conll"
    code = main(["convert", str(FORMATS / name), str(out), *extra])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and where in err
    assert "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize(
    "extra",
    [["--format", "xml"], ["--scheme", "bio"], ["--missing-tag", "skip"], ["--to", "csv"], ["--separator", ""]],
)
def test_convert_cli_bad_flags_exit_2(tmp_path, capsys, extra):
    code = main(["convert", str(FORMATS / "wikiann.tsv"), str(tmp_path / "o.conll"), *extra])
    assert code == 2 and capsys.readouterr().err.startswith("error: ")


def test_convert_cli_unknown_output_extension(tmp_path, capsys):
    code = main(["convert", str(FORMATS / "wikiann.tsv"), str(tmp_path / "o.xyz")])
    assert code == 2 and "--to" in capsys.readouterr().err


def test_a_token_that_is_a_byte_order_mark_survives_at_the_start_of_a_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from nerforge.data.readers.registry import read_corpus
    from nerforge.data.writers import write_examples
    from nerforge.types import Example

    path = tmp_path / "bom.conll"
    write_examples([Example(("\ufeff", "x"), ("O", "O"))], path, "conll")
    assert read_corpus(path).examples[0].tokens == ("\ufeff", "x")
