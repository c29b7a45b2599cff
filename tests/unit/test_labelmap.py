"""Label maps: glob keys, exact-key precedence, dropping types, CLI strings and JSON/YAML files."""

from __future__ import annotations

import json

import pytest

from nerforge.data.labelmap import LabelMap, apply_label_map, load_label_map, parse_label_map
from nerforge.errors import DataFormatError, TagSchemeError, UsageError


def test_apply_label_map_glob_merge_and_drop():
    tags = ["B-AI", "I-m1", "O", "B-MISC", "I-MISC", "I-blockchainO"]
    assert apply_label_map(tags, {"MISC": None, "*": "TECH"}) == ["B-TECH", "I-TECH", "O", "O", "O", "I-TECH"]


def test_exact_keys_win_over_earlier_globs():
    lm = {"*": "TECH", "MISC": None, "AI": "ML"}
    assert apply_label_map(["B-MISC", "B-AI", "B-x"], lm) == ["O", "B-ML", "B-TECH"]


def test_first_matching_glob_wins_and_unmatched_types_are_kept():
    lm = {"LOC*": "LOC", "*deriv": "DERIV", "ORG?art": "ORG"}
    tags = ["B-LOCderiv", "I-PERderiv", "B-ORGpart", "B-PER", "O"]
    assert apply_label_map(tags, lm) == ["B-LOC", "I-DERIV", "B-ORG", "B-PER", "O"]


def test_matching_is_case_sensitive():
    assert apply_label_map(["B-per"], {"PER": "PERSON"}) == ["B-per"]


def test_suffix_notation_and_other_schemes_keep_their_shape():
    assert apply_label_map(["PER_B", "PER_I", "LOC_B"], {"PER": "P", "LOC": None}) == ["P_B", "P_I", "O"]
    assert apply_label_map(["S-A", "E-B", "U-C", "L-C"], {"*": "X"}) == ["S-X", "E-X", "U-X", "L-X"]
    assert apply_label_map(["B", "I", "O"], {"*": "X"}) == ["B", "I", "O"]  # bare tags have no type


def test_invalid_tags_raise_a_nerforge_error():
    with pytest.raises(TagSchemeError):
        apply_label_map(["B_"], {"*": "X"})


def test_label_map_object_caches_and_compiles():
    lm = LabelMap.from_mapping({"A*": "X", "B": ""})
    assert lm.map_type("Apple") == "X" and lm.map_type("Apple") == "X"
    assert lm.map_type("B") is None and lm.map_type("C") == "C"
    assert apply_label_map(["B-Apple", "B-B"], lm) == ["B-X", "O"]


def test_parse_label_map_cli_string():
    assert parse_label_map("AI=TECH,*=TECH,MISC=") == {"AI": "TECH", "*": "TECH", "MISC": None}
    assert parse_label_map(" a = b , ,c=") == {"a": "b", "c": None}
    assert list(parse_label_map("z=1,a=2")) == ["z", "a"]  # order is kept: globs match in order
    for bad in ("AI", "=X", "", ","):
        with pytest.raises(UsageError):
            parse_label_map(bad)


def test_load_label_map_from_string_json_and_yaml(tmp_path):
    assert load_label_map("A=B") == {"A": "B"}
    j = tmp_path / "m.json"
    j.write_text(json.dumps({"*": "TECH", "MISC": None}), encoding="utf-8")
    assert load_label_map(j) == {"*": "TECH", "MISC": None}
    y = tmp_path / "m.yaml"
    y.write_text("AI: TECH\nMISC: null\n'*': OTHER\nEMPTY: ''\n", encoding="utf-8")
    assert load_label_map(str(y)) == {"AI": "TECH", "MISC": None, "*": "OTHER", "EMPTY": None}


@pytest.mark.parametrize(
    ("name", "text", "line"),
    [
        ("bad.json", '{"a": "b",\n "c": }', 2),
        ("bad.yaml", "a: b\n  c: [\n", 2),
        ("list.json", '["a", "b"]', None),
        ("nested.yaml", "a:\n  b: c\n", None),
    ],
)
def test_load_label_map_file_errors(tmp_path, name, text, line):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    with pytest.raises(DataFormatError) as err:
        load_label_map(p)
    assert err.value.line == line
    with pytest.raises(DataFormatError):
        load_label_map(tmp_path / "missing.json")
