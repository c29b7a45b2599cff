"""CSV reading (tolerant, strict about lost data) and spreadsheet-safe writing."""

from __future__ import annotations

import csv
import io
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nerforge.errors import DataFormatError
from nerforge.serving.csvio import (
    FORMULA_STARTS,
    CsvLimitError,
    distinct_csv,
    distinct_entities,
    escape_cell,
    read_csv,
    tagged_csv,
    write_csv,
)
from nerforge.types import Entity


def parse(text: str, delimiter: str = ",") -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))


@pytest.mark.parametrize("value", ["=1+1", "+1", "-2", "@SUM(A1)", "\tx", "\rx", '=HYPERLINK("http://x")', "＝1"])
def test_csvio_escape_formula_cells(value: str) -> None:
    assert escape_cell(value) == "'" + value


@pytest.mark.parametrize("value", ["", "plain", "1+1", "a=b", " =x", "'quoted", "[]", "Paris"])
def test_csvio_escape_leaves_safe_cells(value: str) -> None:
    assert escape_cell(value) == value


@given(st.lists(st.lists(st.text(), min_size=2, max_size=2), max_size=5))
def test_csvio_written_cells_read_back_escaped_and_never_formulas(rows: list[list[str]]) -> None:
    text = write_csv(["a", "b"], rows)
    back = parse(text)
    assert back[0] == ["a", "b"]
    assert back[1:] == [[escape_cell(c) for c in row] for row in rows]
    assert not any(cell.startswith(FORMULA_STARTS) for row in back for cell in row)


def test_csvio_read_bom_and_case_insensitive_column() -> None:
    table = read_csv("\ufeffid, Text \n1,Bob in Paris\n".encode(), max_rows=10)
    assert table.columns == ["id", " Text "] and table.texts == ["Bob in Paris"] and table.delimiter == ","


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_csvio_read_detects_delimiter(delimiter: str) -> None:
    data = f"id{delimiter}text\n1{delimiter}Hello, world\n".encode()
    table = read_csv(data, max_rows=10)
    assert table.delimiter == delimiter and table.texts == ["Hello, world"]


def test_csvio_read_quoted_newlines_short_rows_and_blank_lines() -> None:
    data = b'text,id,note\n"line one\nline two",1\n\n"say ""hi""",2,x\n'
    table = read_csv(data, max_rows=10)
    assert table.rows == [["line one\nline two", "1", ""], ['say "hi"', "2", "x"]]


def test_csvio_missing_text_column_names_columns_found() -> None:
    with pytest.raises(DataFormatError, match=r"no 'text' column; columns found: 'id', 'body'") as info:
        read_csv(b"id,body\n1,x\n", max_rows=10, source="upload.csv")
    assert info.value.path == "upload.csv" and info.value.line == 1


def test_csvio_row_with_extra_cells_is_an_error() -> None:
    with pytest.raises(DataFormatError, match=r"3 cells but the header has 2") as info:
        read_csv(b"id,text\n1,ok\n2,a,b\n", max_rows=10)
    assert info.value.line == 3


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"  \n", "empty"),
        (b"text\n\xff\xfe bad", "not UTF-8"),
        (b"text,entities\nx,[]\n", "already has an 'entities' column"),
    ],
)
def test_csvio_unreadable_files(data: bytes, message: str) -> None:
    with pytest.raises(DataFormatError, match=message):
        read_csv(data, max_rows=10)


def test_csvio_row_limit() -> None:
    data = b"text\n" + b"a\n" * 11
    assert len(read_csv(b"text\n" + b"a\n" * 10, max_rows=10).rows) == 10
    with pytest.raises(CsvLimitError, match="more than 10 data rows"):
        read_csv(data, max_rows=10)


def test_csvio_tagged_csv_adds_entities_column_and_escapes() -> None:
    table = read_csv(b"id;text\n=cmd;=Bob in Paris\n2;nothing\n", max_rows=10)
    per_row = [[Entity("Bob", "PER", 1, 4, 0.9), Entity("Paris", "LOC", 8, 13, 0.8)], []]
    back = parse(tagged_csv(table, per_row), delimiter=";")
    assert back[0] == ["id", "text", "entities"]
    assert back[1][:2] == ["'=cmd", "'=Bob in Paris"]
    entities = json.loads(back[1][2])
    # Offsets count the escaping quote, so they slice the text cell as written.
    assert [(e["text"], e["label"], e["start"], e["end"]) for e in entities] == [
        ("Bob", "PER", 2, 5),
        ("Paris", "LOC", 9, 14),
    ]
    assert all(back[1][1][e["start"] : e["end"]] == e["text"] for e in entities)
    assert back[2] == ["2", "nothing", "[]"]


def test_csvio_distinct_entities_counted_and_ordered() -> None:
    per_row = [
        [Entity("Paris", "LOC", 0, 5, 0.9), Entity("Bob", "PER", 10, 13, 0.9)],
        [Entity("Paris", "LOC", 0, 5, 0.9), Entity("Paris", "ORG", 7, 12, 0.5), Entity("Ann", "PER", 20, 23, 0.9)],
    ]
    assert [(d.text, d.label, d.count) for d in distinct_entities(per_row)] == [
        ("Paris", "LOC", 2),
        ("Paris", "ORG", 1),
        ("Ann", "PER", 1),
        ("Bob", "PER", 1),
    ]
    assert parse(distinct_csv(per_row))[:2] == [["label", "text", "count"], ["LOC", "Paris", "2"]]


def test_one_formula_escaping_for_the_cli_and_the_server() -> None:
    from nerforge.prediction import io as cli_io
    from nerforge.serving import csvio

    assert csvio.escape_cell is cli_io.escape_cell  # one implementation, so they cannot drift apart
    for cell in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx", "＝1+1", "＋1", "－1", "＠SUM(A1)"):
        assert cli_io.escape_cell(cell) == "'" + cell
    assert cli_io.escape_cell("Paris") == "Paris"
