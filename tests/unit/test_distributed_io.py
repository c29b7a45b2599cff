"""The parts of a Ray prediction run, without Ray: planning and reading parts gives exactly the records that
``nerforge predict`` reads (for every part size), Parquet inputs and outputs, part files and their merge."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nerforge.distributed.io import plan_parts, read_part
from nerforge.distributed.parts import PartStore, output_columns
from nerforge.errors import DataFormatError, UsageError
from nerforge.prediction.io import read_inputs, write_predictions
from nerforge.types import Entity

FILES = {
    "a.txt": "\ufeffhello world\r\n\nsecond line é\nthird\r\nlast, no newline",
    "b.jsonl": '\ufeff{"text": "a b", "id": "x1"}\n\n   \n{"text": "ü c", "extra": [1, {"k": 2}]}\r\n{"text": ""}\n{"text":"z"}',
    "c.csv": '\ufeffid,text,other\r\n1,"quoted, comma",x\r\n\r\n2,"multi\nline\ntext",y\r\n3,=SUM(A1),"a ""q"""\r\n'
    '4,plain,\r\n5,"lone\rcr",z\r\n',
}


def records(path: Path) -> list[tuple]:
    return [(r.index, r.text, r.line, r.fields) for r in read_inputs(path)]


@pytest.mark.parametrize("name", sorted(FILES))
@pytest.mark.parametrize("part_size", [1, 2, 3, 100])
def test_parts_read_exactly_what_predict_reads(tmp_path: Path, name: str, part_size: int) -> None:
    path = tmp_path / name
    path.write_bytes(FILES[name].encode("utf-8"))
    plan, files = plan_parts(str(path), part_size=part_size)
    assert files == [str(path)]
    assert [p.index for p in plan.parts] == list(range(len(plan.parts)))
    assert all(0 < p.rows <= part_size for p in plan.parts)
    got = [(r.index, r.text, r.line, r.fields) for p in plan.parts for r in read_part(p)]
    assert got == records(path)


def test_a_folder_of_files_is_one_input_with_running_row_indices(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "1.txt").write_text("a\nb\nc\n", encoding="utf-8")
    (tmp_path / "in" / "2.txt").write_text("d\ne\n", encoding="utf-8")
    plan, files = plan_parts(str(tmp_path / "in"), part_size=2)
    assert [Path(f).name for f in files] == ["1.txt", "2.txt"]
    rows = [(r.index, r.text, r.line) for p in plan.parts for r in read_part(p)]
    assert rows == [(0, "a", 1), (1, "b", 2), (2, "c", 3), (3, "d", 1), (4, "e", 2)]
    assert plan_parts(str(tmp_path / "in" / "*.txt"), part_size=2)[0] == plan


def test_plan_errors_name_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n\n{"text": 3}\n', encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"bad.jsonl:3: field 'text' is a JSON int"):
        plan_parts(str(bad), part_size=1)
    with pytest.raises(UsageError, match="input not found"):
        plan_parts(str(tmp_path / "missing.txt"), part_size=1)
    (tmp_path / "mixed").mkdir()
    (tmp_path / "mixed" / "a.txt").write_text("x\n", encoding="utf-8")
    (tmp_path / "mixed" / "b.csv").write_text("text\nx\n", encoding="utf-8")
    with pytest.raises(UsageError, match="several formats"):
        plan_parts(str(tmp_path / "mixed"), part_size=1)


BAD = {
    "json.jsonl": '{"text": "ok"}\n\n{not json\n',
    "list.jsonl": '{"text": "ok"}\n[1, 2]\n',
    "field.jsonl": '{"body": "ok"}\n',
    "int.jsonl": '{"text": "ok"}\n\n{"text": 3}\n',
    "short.csv": "text,n\nfine,1\n\nshort\n",
    "nocol.csv": "body\nhello\n",
    "utf8.txt": b"ok\n\xff\xfe broken\n",
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_plan_rejects_a_bad_record_exactly_as_predict_does(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    content = BAD[name]
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    with pytest.raises(DataFormatError) as expected:
        list(read_inputs(path))
    with pytest.raises(DataFormatError) as got:
        plan_parts(str(path), part_size=1)
    assert str(got.value) == str(expected.value)


def test_parquet_input_parts_span_row_groups(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table(
        {"id": list(range(10)), "text": [f"text {i}" for i in range(10)], "score": [i / 2 for i in range(10)]}
    )
    pq.write_table(table, tmp_path / "in.parquet", row_group_size=4)
    plan, _ = plan_parts(str(tmp_path / "in.parquet"), part_size=3)
    assert [(p.first_row, p.rows) for p in plan.parts] == [(0, 3), (3, 3), (6, 3), (9, 1)]
    assert plan.columns == ("id", "text", "score")
    rows = [r for p in plan.parts for r in read_part(p)]
    assert [(r.index, r.text, r.fields) for r in rows] == [(i, f"text {i}", table.to_pylist()[i]) for i in range(10)]
    assert output_columns(plan) == ["id", "text", "score", "entities_text", "entities"]

    pq.write_table(pa.table({"text": ["a", None]}), tmp_path / "nulls.parquet")
    with pytest.raises(DataFormatError, match="null value"):
        plan_parts(str(tmp_path / "nulls.parquet"), part_size=3)
    pq.write_table(pa.table({"text": [1, 2]}), tmp_path / "ints.parquet")
    with pytest.raises(DataFormatError, match="expected strings"):
        plan_parts(str(tmp_path / "ints.parquet"), part_size=3)


def fake_entities(text: str) -> list[Entity]:
    return [Entity(text[:1], "X", 0, 1, 0.5)] if text else []


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_merged_parts_equal_the_single_file_writer(tmp_path: Path, suffix: str) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"text": t, "k": i}) + "\n" for i, t in enumerate(["ab", "", "=c", "d"])))
    expected = tmp_path / f"single{suffix}"
    write_predictions(expected, ((r, fake_entities(r.text)) for r in read_inputs(source)))

    output = str(tmp_path / f"merged{suffix}")
    plan, _ = plan_parts(str(source), part_size=3)
    store = PartStore(output)
    columns = output_columns(plan)
    for part in reversed(plan.parts):  # parts finish in any order
        result = store.write_part(part.index, ((r, fake_entities(r.text)) for r in read_part(part)), columns)
        store.mark_done(result)
    assert sorted(store.completed()) == [0, 1]
    store.merge(plan.parts, columns)
    assert Path(output).read_bytes() == expected.read_bytes()


def test_parquet_output_unifies_parts_and_keeps_order(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    source = tmp_path / "in.jsonl"
    objects = [{"text": "ab"}, {"text": "cd", "tag": None}, {"text": "", "tag": "t"}, {"text": "e", "n": 1}]
    source.write_text("".join(json.dumps(o) + "\n" for o in objects))
    plan, _ = plan_parts(str(source), part_size=2)
    store = PartStore(str(tmp_path / "out.parquet"))
    for part in plan.parts:
        store.write_part(part.index, ((r, fake_entities(r.text)) for r in read_part(part)), [])
    store.merge(plan.parts, [])
    rows = pq.read_table(tmp_path / "out.parquet").to_pylist()
    assert [r["id"] for r in rows] == [0, 1, 2, 3]
    assert [r["tag"] for r in rows] == [None, None, "t", None] and [r["n"] for r in rows] == [None, None, None, 1]
    assert rows[0]["entities"] == [{"text": "a", "label": "X", "start": 0, "end": 1, "score": 0.5}]
    assert rows[2]["entities"] == []


def test_a_changed_job_discards_old_parts(tmp_path: Path) -> None:
    store = PartStore(str(tmp_path / "out.jsonl"))
    source = tmp_path / "in.txt"
    source.write_text("a\nb\n", encoding="utf-8")
    plan, _ = plan_parts(str(source), part_size=1)
    store.save_plan({"model": "m1"}, plan)
    store.mark_done(store.write_part(0, [], ["id", "text", "entities"]))
    assert store.load_plan({"model": "m1"}) == plan and list(store.completed()) == [0]
    assert store.load_plan({"model": "m2"}) is None
    assert store.completed() == {} and not (tmp_path / "out.jsonl.parts").exists()


def test_fsspec_urls_take_the_remote_path(tmp_path: Path) -> None:
    """``memory://`` stands in for s3:// or gs://: no local paths, writes through temporary names and renames."""
    fsspec = pytest.importorskip("fsspec")
    fs = fsspec.filesystem("memory")
    fs.pipe("/nf-test/in/1.jsonl", b'{"text": "ab"}\n{"text": "c"}\n')
    fs.pipe("/nf-test/in/2.jsonl", b'{"text": "d"}\n')
    try:
        plan, files = plan_parts("memory://nf-test/in/", part_size=2)
        assert [f.split("/nf-test/")[1] for f in files] == ["in/1.jsonl", "in/2.jsonl"]
        assert all(f.startswith("memory://") for f in files)  # URLs that worker processes can open
        store = PartStore("memory://nf-test/out/preds.jsonl")
        store.save_plan({"job": 1}, plan)
        assert store.load_plan({"job": 1}) == plan
        for part in plan.parts:
            store.mark_done(store.write_part(part.index, ((r, fake_entities(r.text)) for r in read_part(part)), []))
        store.merge(plan.parts, output_columns(plan))
        rows = [json.loads(line) for line in fs.cat("/nf-test/out/preds.jsonl").decode().splitlines()]
        assert [(r["id"], r["text"], len(r["entities"])) for r in rows] == [(0, "ab", 1), (1, "c", 1), (2, "d", 1)]
        assert not [p for p in fs.find("/nf-test") if p.endswith(".tmp")]
        store.clear()
        assert not fs.exists("/nf-test/out/preds.jsonl.parts")
    finally:
        fs.rm("/nf-test", recursive=True)
