"""JSON token records: JSON Lines, {"data": [...]}, top-level lists, integer tags with label names, bare tags."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nerforge.data.readers.labels import load_labels_file
from nerforge.data.readers.options import ReadOptions
from nerforge.data.readers.registry import read_corpus
from nerforge.errors import DataFormatError

FORMATS = Path(__file__).resolve().parents[1] / "data" / "formats"


@pytest.mark.parametrize("sidecar", ["int_tags.labels.json", "int_tags.labels.txt"])
def test_jsonl_integer_tags_through_a_labels_file(sidecar):
    c = read_corpus(FORMATS / "int_tags.jsonl", ReadOptions(labels_file=str(FORMATS / sidecar)))
    assert c.format == "jsonl" and c.scheme == "io"
    assert c.examples[0].tags == ("I-SOFTSKILL", "O", "O", "I-SOFTSKILL", "I-SOFTSKILL")
    assert c.examples[1].tokens == ("is", "\u00a0", "a", "test")  # space before ':' and TAB inside: still JSON
    assert [ex.line for ex in c.examples] == [1, 2, 3]
    kinds = {f.kind: f for f in c.findings}
    assert {"crlf", "no-final-newline", "whitespace-token"} <= set(kinds)
    assert kinds["whitespace-token"].line == 2


def test_jsonl_integer_tags_through_label_names_and_without():
    c = read_corpus(FORMATS / "int_tags.jsonl", ReadOptions(label_names=("O", "I-SOFTSKILL")))
    assert c.examples[2].tags == ("O", "I-SOFTSKILL")
    with pytest.raises(DataFormatError) as err:
        read_corpus(FORMATS / "int_tags.jsonl")
    assert err.value.line == 1 and "label names" in err.value.problem


def test_jsonl_bare_tags_need_an_entity_type():
    c = read_corpus(FORMATS / "bare_tags.jsonl", ReadOptions(tags_field="tags_skill", entity_type="Skill"))
    assert c.examples[1].tags[:3] == ("B-Skill", "I-Skill", "I-Skill")
    k = read_corpus(FORMATS / "bare_tags.jsonl", ReadOptions(tags_field="tags_knowledge", entity_type="Knowledge"))
    assert k.examples[1].tags[4] == "B-Knowledge"
    with pytest.raises(DataFormatError) as err:
        read_corpus(FORMATS / "bare_tags.jsonl", ReadOptions(tags_field="tags_knowledge"))
    assert err.value.line == 1 and "entity type" in err.value.problem
    with pytest.raises(DataFormatError) as err:
        read_corpus(FORMATS / "bare_tags.jsonl")  # no ner_tags/tags/labels field
    assert err.value.line == 1 and "tags_skill" in str(err.value)


def test_json_data_object_prefers_string_tags_and_gives_record_lines():
    c = read_corpus(FORMATS / "records.json")
    assert c.format == "json"
    assert c.examples[0].tags == ("B-ORG", "I-ORG", "O")
    assert [ex.line for ex in c.examples] == [3, 22]
    assert [(f.kind, f.line) for f in c.findings] == [("i-start", 22)]
    ints = read_corpus(
        FORMATS / "records.json",
        ReadOptions(tags_field="ner_tags", label_names=("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")),
    )
    assert [ex.tags for ex in ints.examples] == [ex.tags for ex in c.examples]


def test_json_top_level_list_skips_nulls():
    c = read_corpus(FORMATS / "records_list.json")
    assert [ex.tokens for ex in c.examples] == [("a", "b"), ("c",)]
    assert [ex.line for ex in c.examples] == [2, 4]
    assert [(f.kind, f.line) for f in c.findings] == [("null-entry", 3)]


def test_jsonl_invalid_json_raises_with_line():
    with pytest.raises(DataFormatError) as err:
        read_corpus(FORMATS / "bad_json.jsonl")
    assert err.value.line == 2 and "invalid JSON" in err.value.problem


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        ({"tokens": ["a", "b"], "ner_tags": ["O"]}, "2 tokens but 1 tags"),
        ({"tokens": "ab", "ner_tags": "OO"}, "must be lists"),
        ({"tokens": ["a", 3], "ner_tags": ["O", "O"]}, "not a string"),
        ({"tokens": ["a"], "ner_tags": [1.5]}, "tag 1 is 1.5"),
        ({"tokens": ["a"], "ner_tags": [True]}, "tag 1 is True"),
        ({"tokens": ["a"], "ner_tags": ["B_"]}, "invalid tag"),
        ({"text": "a b", "ner_tags": ["O"]}, "--format doccano"),
        ([1, 2], "a record is a list"),
    ],
)
def test_jsonl_wrong_shapes_raise_on_their_line(tmp_path, record, problem):
    p = tmp_path / "f.jsonl"
    good = json.dumps({"tokens": ["x"], "ner_tags": ["O"]})
    p.write_text(f"{good}\n\n{json.dumps(record)}\n", encoding="utf-8")
    with pytest.raises(DataFormatError) as err:
        read_corpus(p, ReadOptions(format="jsonl"))
    assert err.value.line == 3
    assert problem in str(err.value)


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ('{"data": [\n  {"tokens": ["a"], "ner_tags": ["O"]},\n  {"tokens": ["b"], "ner_tags": ["O"]}\n  oops]}', 4),
        ('{"data": [\n  {"tokens": ["a"], "ner_tags": ["O"]}\n]}\n{"x": 1}', 4),
        ('{"other": [1, 2]}', 1),
        ('{"data": [\n  {"tokens": ["a"],\n   "ner_tags": ["O", ]}]}', 3),
        ("[" * 5000, 1),
        ("", None),
    ],
)
def test_json_document_errors_carry_lines(tmp_path, text, line):
    p = tmp_path / "f.json"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(DataFormatError) as err:
        read_corpus(p, ReadOptions(format="json"))
    assert err.value.line == line


def test_labels_file_shapes(tmp_path):
    cases = {
        "list.json": json.dumps(["O", "B-X", "I-X"]),
        "id2name.json": json.dumps({"0": "O", "1": "B-X", "2": "I-X"}),
        "name2id.json": json.dumps({"O": 0, "I-X": 2, "B-X": 1}),
        "config.json": json.dumps({"id2label": {"0": "O", "1": "B-X", "2": "I-X"}, "model_type": "bert"}),
        "names.txt": "O\nB-X\n\nI-X\n",
    }
    for name, text in cases.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
        assert load_labels_file(tmp_path / name) == ("O", "B-X", "I-X"), name
    (tmp_path / "gap.json").write_text(json.dumps({"0": "O", "2": "B-X"}), encoding="utf-8")
    with pytest.raises(DataFormatError):
        load_labels_file(tmp_path / "gap.json")
    (tmp_path / "bad.txt").write_text("O\nnot a tag\n", encoding="utf-8")
    with pytest.raises(DataFormatError):
        load_labels_file(tmp_path / "bad.txt")
    with pytest.raises(DataFormatError):
        load_labels_file(tmp_path / "missing.json")


def test_labels_file_with_absurd_ids(tmp_path):
    p = tmp_path / "big.json"
    p.write_text('{"0": "O", "' + "9" * 5000 + '": "B-X"}', encoding="utf-8")
    with pytest.raises(DataFormatError):
        load_labels_file(p)
