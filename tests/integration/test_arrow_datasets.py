"""Hugging Face datasets as stored on the hub (Parquet, with ClassLabel names in the schema metadata as `datasets`
writes them; a folder of shards) and as `save_to_disk` writes them (Arrow stream files + dataset_info.json): read,
inspected, converted and trained end to end; bad rows are named by file and row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nerforge.cli import main
from nerforge.data.readers.options import ReadOptions
from nerforge.data.readers.registry import read_corpus
from nerforge.errors import DataFormatError

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

NAMES = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
ROWS = [
    (["Anna", "Smith", "visited", "Paris", "."], [1, 2, 0, 3, 0]),
    (["We", "met", "in", "New", "York"], [0, 0, 0, 3, 4]),
    (["Zürich", "\u200bis", "calm"], [3, 0, 0]),  # a zero-width space inside a token is kept
]
FEATURES = {  # as `datasets` describes a token-classification dataset
    "id": {"dtype": "string", "_type": "Value"},
    "tokens": {"feature": {"dtype": "string", "_type": "Value"}, "_type": "Sequence"},
    "ner_tags": {"feature": {"names": NAMES, "_type": "ClassLabel"}, "_type": "Sequence"},
}


def _table(rows: list[tuple[list[str], list[int]]]) -> object:
    table = pa.table({
        "id": [str(i) for i in range(len(rows))],
        "tokens": [r[0] for r in rows],
        "ner_tags": [r[1] for r in rows],
    })  # fmt: skip
    meta = {b"huggingface": json.dumps({"info": {"features": FEATURES}}).encode()}
    return table.replace_schema_metadata(meta)


def _parquet(path: Path, rows: list[tuple[list[str], list[int]]] = ROWS) -> Path:
    pq.write_table(_table(rows), path)
    return path


def _save_to_disk(folder: Path) -> Path:
    folder.mkdir()
    table = _table(ROWS).replace_schema_metadata(None)
    with pa.OSFile(str(folder / "data-00000-of-00001.arrow"), "wb") as sink:
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
    (folder / "dataset_info.json").write_text(json.dumps({"features": FEATURES}), encoding="utf-8")
    (folder / "state.json").write_text(json.dumps({"_data_files": [{"filename": "data-00000-of-00001.arrow"}]}))
    return folder


def _expected() -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    return [(tuple(t), tuple(NAMES[i] for i in ids)) for t, ids in ROWS]


def test_parquet_with_class_label_names(tmp_path: Path) -> None:
    corpus = read_corpus(_parquet(tmp_path / "train.parquet"))
    assert corpus.format == "parquet"
    assert [(ex.tokens, ex.tags) for ex in corpus.examples] == _expected()


def test_a_folder_of_shards_and_a_save_to_disk_folder(tmp_path: Path) -> None:
    shards = tmp_path / "data" / "train"
    shards.mkdir(parents=True)
    pq.write_table(_table(ROWS[:2]), shards / "train-00000-of-00002.parquet")
    pq.write_table(_table(ROWS[2:]), shards / "train-00001-of-00002.parquet")
    assert [(ex.tokens, ex.tags) for ex in read_corpus(tmp_path / "data").examples] == _expected()
    saved = read_corpus(_save_to_disk(tmp_path / "saved"))
    assert saved.format == "arrow" and [(ex.tokens, ex.tags) for ex in saved.examples] == _expected()


def test_label_names_given_by_the_user_win(tmp_path: Path) -> None:
    corpus = read_corpus(_parquet(tmp_path / "t.parquet"), ReadOptions(label_names=("O", "B-X", "I-X", "B-Y", "I-Y")))
    assert corpus.examples[0].tags == ("B-X", "I-X", "O", "B-Y", "O")


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([(["a", "b"], [0])], "row 1: 2 tokens but 1 tags"),
        ([(["a"], [0]), (["b"], [9])], "row 2: tag id 9 is outside the dataset's 5 label names"),
    ],
)
def test_bad_rows_are_named(tmp_path: Path, rows: list[tuple[list[str], list[int]]], message: str) -> None:
    path = _parquet(tmp_path / "bad.parquet", rows)
    with pytest.raises(DataFormatError, match=message) as info:
        read_corpus(path)
    assert str(info.value).startswith(str(path))


def test_inspect_convert_and_train_take_parquet(
    tmp_path: Path, tiny_encoder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train = _parquet(tmp_path / "train.parquet", ROWS * 4)
    assert main(["inspect", str(train)]) == 0
    assert "parquet" in capsys.readouterr().out
    out = tmp_path / "train.conll"
    assert main(["convert", str(train), str(out)]) == 0
    assert out.read_text(encoding="utf-8").startswith("Anna\tB-PER\nSmith\tI-PER\n")
    model = tmp_path / "model"
    assert main(["train", "--train", str(train), "--dev", str(_save_to_disk(tmp_path / "dev")), "--output", str(model),
                 "--model", str(tiny_encoder), "--max-steps", "2", "--no-tracking"]) == 0  # fmt: skip
    assert set(json.loads((model / "nerforge.json").read_text())["tags"]) == set(NAMES)
    assert main(["evaluate", str(model), str(train), "--output", str(tmp_path / "eval"), "--no-plots"]) == 0
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["micro"]["support"] == 4 * 4  # 4 entities x 4


def test_split_folders_need_a_split_and_get_the_one_chosen(tmp_path: Path) -> None:
    hub = tmp_path / "hub" / "data"
    hub.mkdir(parents=True)
    pq.write_table(_table(ROWS[:2]), hub / "train-00000-of-00001.parquet")
    pq.write_table(_table(ROWS[2:]), hub / "validation-00000-of-00001.parquet")
    with pytest.raises(DataFormatError, match="holds the splits train, validation"):
        read_corpus(tmp_path / "hub")
    picked = read_corpus(tmp_path / "hub", ReadOptions(dataset_split="validation"))
    assert [ex.tokens for ex in picked.examples] == [tuple(ROWS[2][0])]
    with pytest.raises(DataFormatError, match=r"no split 'test' here \(splits: train, validation\)"):
        read_corpus(tmp_path / "hub", ReadOptions(dataset_split="test"))

    saved = tmp_path / "dict"  # DatasetDict.save_to_disk: one folder per split
    saved.mkdir()
    _save_to_disk(saved / "train")
    _save_to_disk(saved / "test")
    (saved / "dataset_dict.json").write_text(json.dumps({"splits": ["train", "test"]}))
    assert len(read_corpus(saved, ReadOptions(dataset_split="test")).examples) == len(ROWS)
    assert main(["inspect", str(saved), "--split", "train"]) == 0


def test_convert_to_parquet_round_trips(tmp_path: Path) -> None:
    source = _parquet(tmp_path / "in.parquet", [*ROWS, (["a", " ", "b"], [0, 0, 3])])  # a whitespace-only token
    out = tmp_path / "out.parquet"
    assert main(["convert", str(source), str(out)]) == 0
    back = read_corpus(out)
    assert [(ex.tokens, ex.tags) for ex in back.examples] == [
        (ex.tokens, ex.tags) for ex in read_corpus(source).examples
    ]
    assert back.examples[-1].tokens == ("a", " ", "b")
    assert any(f.kind == "whitespace-token" for f in back.findings)


def test_other_columns_are_kept_as_metadata_and_written_back(tmp_path: Path) -> None:
    table = _table(ROWS).append_column("url", pa.array(["http://a", "http://b", None]))
    pq.write_table(table, tmp_path / "meta.parquet")
    corpus = read_corpus(tmp_path / "meta.parquet")
    assert corpus.examples[0].metadata == (("id", "0"), ("url", "http://a"))
    assert corpus.examples[2].metadata == (("id", "2"),)  # a missing value is no metadata
    assert main(["convert", str(tmp_path / "meta.parquet"), str(tmp_path / "out.jsonl")]) == 0
    first = json.loads((tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert first["metadata"] == {"id": "0", "url": "http://a"}
    assert main(["convert", str(tmp_path / "meta.parquet"), str(tmp_path / "out.parquet")]) == 0
    assert read_corpus(tmp_path / "out.parquet").examples[0].metadata == (("id", "0"), ("url", "http://a"))
