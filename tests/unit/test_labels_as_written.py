"""Labels as users write them: label tables with or without a header, ids that start anywhere, bare IO labels,
junk tags (dropped by the label map or read as O with --lenient), a second tag column, and label lists that drop."""

from __future__ import annotations

from pathlib import Path

import pytest

from nerforge.cli import main
from nerforge.data.normalize import read_examples
from nerforge.data.readers.labels import load_labels_file
from nerforge.data.readers.options import ReadOptions
from nerforge.data.readers.registry import read_corpus
from nerforge.data.schemes import is_bare_type, strict_tags_to_spans
from nerforge.data.splits import listed_types, restrict_types
from nerforge.errors import DataFormatError
from nerforge.types import Example

# FNXL's labelCount.csv: no header, ``id,label,count``, ids from 0, no O row; the data's id 0 is O, id k is row k-1.
FNXL_TABLE = "0,us-gaap:Revenues,128\n1,us-gaap:NetIncomeLoss,50\n2,us-gaap:Assets,7\n"
FNXL_ROWS = [
    (["Revenue", "was", "5.2", "million", "and", "assets", "3.1", "billion"], [0, 0, 1, 0, 0, 0, 3, 0]),
    (["Net", "income", "of", "4", "million"], [0, 0, 0, 2, 0]),
]


def _fnxl(tmp_path: Path) -> tuple[Path, Path]:
    table = tmp_path / "labelCount.csv"
    table.write_text(FNXL_TABLE, encoding="utf-8")
    data = tmp_path / "fnxl_train.csv"
    lines = [",tokens,ner_tags"] + [f'{i},"{t!r}","{g!r}"' for i, (t, g) in enumerate(FNXL_ROWS)]
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return data, table


def test_headerless_id_label_count_table(tmp_path: Path) -> None:
    _, table = _fnxl(tmp_path)
    assert load_labels_file(table) == {0: "us-gaap:Revenues", 1: "us-gaap:NetIncomeLoss", 2: "us-gaap:Assets"}


@pytest.mark.parametrize(
    "text",
    [
        "id,label,count\n5,O,9\n6,B-X,3\n7,I-X,2\n",
        "label,id\nO,5\nB-X,6\nI-X,7\n",
        "5\tO\t9\n6\tB-X\t3\n7\tI-X\t2\n",
        "O,9\nB-X,3\nI-X,2\n",
    ],
    ids=["header", "header-reordered", "headerless-tsv", "label-count"],
)
def test_label_tables_of_every_shape(tmp_path: Path, text: str) -> None:
    path = tmp_path / "labels.csv"
    path.write_text(text, encoding="utf-8")
    table = load_labels_file(path)
    base = min(table) if isinstance(table, dict) else 0
    names = table if isinstance(table, dict) else dict(enumerate(table))
    assert [names[base + i] for i in range(3)] == ["O", "B-X", "I-X"]


def test_fnxl_table_with_offset_reads_bare_xbrl_types(tmp_path: Path) -> None:
    data, table = _fnxl(tmp_path)
    examples = read_examples(data, ReadOptions(labels_file=str(table), label_offset=-1))
    assert examples[0].tags == ("O", "O", "B-us-gaap:Revenues", "O", "O", "O", "B-us-gaap:Assets", "O")
    assert examples[1].tags[3] == "B-us-gaap:NetIncomeLoss"


def test_fnxl_table_without_offset_is_refused_with_the_fix(tmp_path: Path) -> None:
    data, table = _fnxl(tmp_path)
    with pytest.raises(DataFormatError) as err:
        read_examples(data, ReadOptions(labels_file=str(table)))
    assert err.value.line == 2 and "ambiguous" in err.value.problem
    assert "--label-offset -1" in (err.value.expected or "")


def test_readme_fnxl_example_runs_as_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, table = _fnxl(tmp_path)
    out = tmp_path / "fnxl.conll"
    code = main(["convert", str(data), str(out), "--labels-file", str(table), "--label-offset", "-1"])
    assert code == 0, capsys.readouterr().err
    lines = out.read_text(encoding="utf-8").splitlines()
    assert "5.2\tB-us-gaap:Revenues" in lines and "4\tB-us-gaap:NetIncomeLoss" in lines
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert "--labels-file labelCount.csv --label-offset -1" in readme


def test_bare_io_label_names() -> None:
    assert is_bare_type("SOFTSKILL") and is_bare_type("us-gaap:Revenues")
    assert not any(map(is_bare_type, ["O", "B-X", "X_B", "I-", "B", "b-per", "B_PER", "3", "two words", ""]))


def test_label_names_o_softskill(tmp_path: Path) -> None:
    path = tmp_path / "soft.jsonl"
    path.write_text('{"tokens": ["good", "communication", "skills", "and", "teamwork"], "tags": [0, 1, 1, 0, 1]}\n')
    corpus = read_corpus(path, ReadOptions(label_names=("O", "SOFTSKILL")))
    assert corpus.scheme == "io"
    assert "bare-types" in {f.kind for f in corpus.findings}
    examples = read_examples(path, ReadOptions(label_names=("O", "SOFTSKILL")))
    assert [(s.start, s.end, s.label) for s in strict_tags_to_spans(examples[0].tags)] == [
        (1, 3, "SOFTSKILL"),
        (4, 5, "SOFTSKILL"),
    ]


def test_column_file_of_bare_types_is_io(tmp_path: Path) -> None:
    path = tmp_path / "bare.conll"
    path.write_text("Alice\tPER\nSmith\tPER\nin\tO\nParis\tLOC\n", encoding="utf-8")
    examples = read_examples(path, ReadOptions())
    assert examples[0].tags == ("B-PER", "I-PER", "O", "B-LOC")


KOMPETENCER = (
    "We\tO\tO\n"
    "need\tO\tO\n"
    "Python\tB-Skill\tB-Knowledge\n"
    "and\tO\tUdd\n"
    "teamwork\tB-Skill\t\n"  # the knowledge tag is empty: the line ends with a separator
    "\n"
    "Dev\tO\tB-Knowledge\n"
    "Ops\tUdd\tI-Knowledge\n"
    "culture\tO\tO\n"
)


def _komp(tmp_path: Path) -> Path:
    path = tmp_path / "komp.conll"
    path.write_text(KOMPETENCER, encoding="utf-8")
    return path


def test_junk_tag_in_a_prefixed_file_is_an_error_naming_the_flags(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError) as err:
        read_corpus(_komp(tmp_path), ReadOptions(tag_column=1))
    assert err.value.line == 8
    assert "--label-map 'Udd=' drops it" in err.value.problem and "--lenient" in err.value.problem


def test_second_tag_column_with_short_lines_and_junk_tags_lenient(tmp_path: Path) -> None:
    corpus = read_corpus(_komp(tmp_path), ReadOptions(tag_column=1, lenient=True))
    assert [ex.tags for ex in corpus.examples] == [
        ("O", "O", "B-Skill", "O", "B-Skill"),
        ("O", "O", "O"),
    ]
    bad = [f for f in corpus.findings if f.kind == "bad-tag"]
    assert len(bad) == 1 and "1 malformed tag(s)" in bad[0].message and "komp.conll:8" in bad[0].message
    assert any(f.kind == "short-line" and f.line == 5 for f in corpus.findings)


def test_junk_tag_dropped_by_the_label_map(tmp_path: Path) -> None:
    corpus = read_corpus(_komp(tmp_path), ReadOptions(label_map={"Udd": None}))
    assert corpus.examples[0].tags == ("O", "O", "B-Knowledge", "O", "O")
    assert corpus.examples[1].tags == ("B-Knowledge", "I-Knowledge", "O")


def test_several_tag_columns_are_named(tmp_path: Path) -> None:
    rows = ["w\tO\tO"] * 60 + ["x\tB-Skill\tO", "y\tO\tB-Knowledge"]
    path = tmp_path / "two.conll"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    corpus = read_corpus(path, ReadOptions())
    note = [f for f in corpus.findings if f.kind == "tag-columns"]
    assert note and "1 (Skill), 2 (Knowledge); column 2 is read" in note[0].message


def _ex(*tags: str) -> Example:
    return Example(tuple(f"w{i}" for i in range(len(tags))), tuple(tags), source="d.conll", line=1)


def test_label_list_leaves_a_type_out() -> None:
    splits = {"train": [_ex("B-Skill", "O", "B-Knowledge", "I-Knowledge")], "dev": [_ex("B-Skill", "I-Skill")]}
    out = restrict_types(splits, ["Knowledge"])
    assert out["train"][0].tags == ("O", "O", "B-Knowledge", "I-Knowledge")
    assert out["dev"][0].tags == ("O", "O")


def test_label_list_through_the_label_map() -> None:
    assert listed_types(["Knowledge", "Skill"], {"Skill": None}) == ["Knowledge"]
    assert listed_types(["AI", "ML", "PER"], {"AI": "TECH", "ML": "TECH"}) == ["TECH", "PER"]
