"""One sentence per row with list columns, as pandas' to_csv() writes a Hugging Face dataset (Python list literals)
or as JSON lists; integer tags decoded through a separate label table whose ids start at 1 (--label-offset)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nerforge.cli import main
from nerforge.data.readers.options import ReadOptions
from nerforge.data.readers.registry import read_corpus
from nerforge.errors import DataFormatError

TABLE = "id,label,count\n1,O,100\n2,B-AMOUNT,7\n3,I-AMOUNT,4\n"  # ids start at 1; the data's ids at 0
ROWS = [(["The", "amount", "was", "$", "12.5", "million"], [0, 0, 0, 1, 2, 2]), (["No", "figures", "."], [0, 0, 0])]


def _pandas_csv(path: Path, rows: list[tuple[list[str], list[int]]] = ROWS) -> Path:
    lines = [",id,tokens,ner_tags"] + [f'{i},doc{i},"{t!r}","{g!r}"' for i, (t, g) in enumerate(rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _options(table: Path) -> ReadOptions:
    return ReadOptions(labels_file=str(table), label_offset=1)


def test_python_literal_lists_with_an_offset_label_table(tmp_path: Path) -> None:
    (tmp_path / "labels.csv").write_text(TABLE, encoding="utf-8")
    corpus = read_corpus(_pandas_csv(tmp_path / "sec.csv"), _options(tmp_path / "labels.csv"))
    assert corpus.format == "csv-lists"
    assert corpus.examples[0].tokens == ("The", "amount", "was", "$", "12.5", "million")
    assert corpus.examples[0].tags == ("O", "O", "O", "B-AMOUNT", "I-AMOUNT", "I-AMOUNT")
    assert [ex.line for ex in corpus.examples] == [2, 3]


def test_json_lists_and_string_tags(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text('tokens,tags\n"[""Anna"", ""met"", ""Bob""]","[""B-PER"", ""O"", ""B-PER""]"\n', encoding="utf-8")
    corpus = read_corpus(path)
    assert (corpus.examples[0].tokens, corpus.examples[0].tags) == (("Anna", "met", "Bob"), ("B-PER", "O", "B-PER"))


def test_token_per_row_csv_is_still_told_apart(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text("sentence_id,token,tag\n1,Anna,B-PER\n1,met,O\n", encoding="utf-8")
    assert (
        read_corpus(path, ReadOptions(sentence_columns=("sentence_id",), token_column=1, tag_column=2)).format == "csv"
    )


@pytest.mark.parametrize(
    ("rows", "message", "line"),
    [
        ([(["a", "b"], [0])], "2 tokens but 1 tags", 2),
        ([(["a"], [0]), (["b"], [3])], r"tag id 3 \+ label offset 1 = 4 is out of range", 3),
    ],
)
def test_bad_rows_name_file_and_line(
    tmp_path: Path, rows: list[tuple[list[str], list[int]]], message: str, line: int
) -> None:
    (tmp_path / "labels.csv").write_text(TABLE, encoding="utf-8")
    with pytest.raises(DataFormatError, match=message) as info:
        read_corpus(_pandas_csv(tmp_path / "bad.csv", rows), _options(tmp_path / "labels.csv"))
    assert info.value.line == line


def test_a_malformed_literal_is_refused_without_running_it(tmp_path: Path) -> None:
    path = tmp_path / "evil.csv"
    path.write_text("tokens,ner_tags\n\"[__import__('os').system('touch pwned')]\",\"[0]\"\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="not a list literal"):
        read_corpus(path, ReadOptions(label_names=("O",)))
    assert not Path("pwned").exists()


def test_trains_end_to_end(tmp_path: Path, tiny_encoder: Path) -> None:
    (tmp_path / "labels.csv").write_text(TABLE, encoding="utf-8")
    data = _pandas_csv(tmp_path / "sec.csv", ROWS * 4)
    out = tmp_path / "model"
    assert main(["train", "--train", str(data), "--labels-file", str(tmp_path / "labels.csv"), "--label-offset", "1",
                 "--output", str(out), "--model", str(tiny_encoder), "--max-steps", "2", "--no-tracking"]) == 0  # fmt: skip
    assert json.loads((out / "nerforge.json").read_text())["tags"] == ["O", "B-AMOUNT", "I-AMOUNT"]


def test_other_columns_are_kept_as_metadata(tmp_path: Path) -> None:
    (tmp_path / "labels.csv").write_text(TABLE, encoding="utf-8")
    corpus = read_corpus(_pandas_csv(tmp_path / "sec.csv"), _options(tmp_path / "labels.csv"))
    assert corpus.examples[1].metadata == (("id", "doc1"),)  # pandas' unnamed index column is dropped


def test_a_csv_written_by_pandas_itself(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")  # an mlflow dependency, so present wherever nerforge is
    frame = pd.DataFrame({"id": ["d0", "d1"], "tokens": [t for t, _ in ROWS], "ner_tags": [g for _, g in ROWS]})
    frame.to_csv(tmp_path / "pandas.csv")  # list cells become Python literals, the index an unnamed column
    (tmp_path / "labels.csv").write_text(TABLE, encoding="utf-8")
    corpus = read_corpus(tmp_path / "pandas.csv", _options(tmp_path / "labels.csv"))
    assert corpus.format == "csv-lists"
    assert [ex.tags for ex in corpus.examples] == [("O", "O", "O", "B-AMOUNT", "I-AMOUNT", "I-AMOUNT"), ("O", "O", "O")]
    assert corpus.examples[0].metadata == (("id", "d0"),)
