"""Every command that writes a folder follows one rule (``nerforge.outputs``): a folder is replaced only when
nerforge's record says it wrote it, as the same kind, and it holds nothing a user added; an output is never inside
its own source (a data folder, the encoder or teacher, a folder of shards). Each refusal comes before any work and
changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nerforge.cli import main

MANIFEST = ".nerforge-output.json"  # nerforge.outputs.MANIFEST, written here so the test reads the file itself

CONLL = "".join(f"Alice{i}\tB-PER\nmet\tO\nBob\tB-PER\nin\tO\nParis\tB-LOC\n\n" for i in range(8))


def _data(tmp_path: Path) -> Path:
    path = tmp_path / "train.conll"
    path.write_text(CONLL, encoding="utf-8")
    return path


def _train(data: Path, out: Path, encoder: Path, *extra: str) -> int:
    return main(["train", "--train", str(data), "--output", str(out), "--model", str(encoder), "--max-steps", "1",
                 "--no-tracking", "--no-progress", *extra])  # fmt: skip


def test_report_folder_of_someone_else_is_never_replaced(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _data(tmp_path)
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("my homepage", encoding="utf-8")
    (site / "cv.pdf").write_text("mine", encoding="utf-8")
    assert main(["inspect", str(data), "--report", str(site)]) == 2
    assert "is a non-empty folder that is not a nerforge data report" in capsys.readouterr().err
    assert sorted(p.name for p in site.iterdir()) == ["cv.pdf", "index.html"]
    # a report nerforge wrote is replaced; a file added to it afterwards stops the next run, named
    report = tmp_path / "report"
    assert main(["inspect", str(data), "--report", str(report)]) == 0
    assert json.loads((report / MANIFEST).read_text())["kind"] == "nerforge data report"
    assert main(["inspect", str(data), "--report", str(report)]) == 0
    (report / "notes.txt").write_text("mine", encoding="utf-8")
    capsys.readouterr()
    assert main(["inspect", str(data), "--report", str(report)]) == 2
    assert "holds files nerforge did not write (notes.txt)" in capsys.readouterr().err
    assert (report / "notes.txt").read_text(encoding="utf-8") == "mine"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, tiny_encoder: Path) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("rules")
    data = _data(root)
    model = root / "model"
    assert _train(data, model, tiny_encoder) == 0
    return data, model


def test_evaluation_report_folder_with_a_thesis_is_refused(
    trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, model = trained
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "report.md").write_text("my report", encoding="utf-8")
    (folder / "thesis.tex").write_text("years of work", encoding="utf-8")
    assert main(["evaluate", str(model), str(data), "--output", str(folder), "--no-plots"]) == 2
    assert "is a non-empty folder that is not a nerforge evaluation report" in capsys.readouterr().err
    assert (folder / "thesis.tex").read_text(encoding="utf-8") == "years of work"


def test_retraining_keeps_nothing_of_a_user_silently(
    trained: tuple[Path, Path], tmp_path: Path, tiny_encoder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, _ = trained
    out = tmp_path / "m"
    assert _train(data, out, tiny_encoder) == 0
    assert main(["evaluate", str(out), str(data), "--no-plots"]) == 0  # MODEL/eval-train: a nerforge folder inside
    assert _train(data, out, tiny_encoder) == 0  # its own output, with nerforge's report inside: replaced
    (out / "MY_NOTES.txt").write_text("notes", encoding="utf-8")
    (out / "my_experiments").mkdir()
    capsys.readouterr()
    assert _train(data, out, tiny_encoder) == 2
    err = capsys.readouterr().err
    assert "holds files nerforge did not write (MY_NOTES.txt, my_experiments/)" in err
    assert (out / "MY_NOTES.txt").is_file() and (out / "my_experiments").is_dir()


def test_export_keeps_what_a_user_added(trained: tuple[Path, Path], tmp_path: Path, capsys) -> None:
    pytest.importorskip("onnxruntime")
    _, model = trained
    out = tmp_path / "onnx"
    assert main(["export", str(model), "--onnx", "--output", str(out)]) == 0
    (out / "benchmark.csv").write_text("mine", encoding="utf-8")
    capsys.readouterr()
    assert main(["export", str(model), "--onnx", "--output", str(out)]) == 2
    assert "benchmark.csv" in capsys.readouterr().err and (out / "benchmark.csv").is_file()
    # a model directory is not an ONNX export, and the other way round
    assert main(["export", str(model), "--onnx", "--output", str(tmp_path / "other")]) == 0
    assert _train(Path(trained[0]), tmp_path / "other", model) == 2
    assert "holds a nerforge ONNX export, not a nerforge model directory" in capsys.readouterr().err


def test_outputs_inside_their_source_are_refused(
    trained: tuple[Path, Path], tmp_path: Path, tiny_encoder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, model = trained
    before = sorted(p.name for p in model.iterdir())
    assert main(["distill", str(model), "--train", str(data), "--layers", "1", "--output", str(model / "student"),
                 "--no-tracking"]) == 2  # fmt: skip
    assert "inside the source" in capsys.readouterr().err
    assert _train(data, model / "ft", model) == 2  # fine-tuning a model into a folder inside it
    assert "inside the source" in capsys.readouterr().err
    assert sorted(p.name for p in model.iterdir()) == before  # no ft.work/ or student/ left behind
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "train.conll").write_text(CONLL, encoding="utf-8")
    assert _train(folder, folder / "model", tiny_encoder) == 2
    assert "inside the source" in capsys.readouterr().err
    link = tmp_path / "link"
    link.symlink_to(folder)
    assert _train(folder, link / "model", tiny_encoder) == 2  # through a symlink too
    assert sorted(p.name for p in folder.iterdir()) == ["train.conll"]


def test_convert_into_its_folder_of_shards_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    shards = tmp_path / "shards"
    shards.mkdir()
    table = pa.table({"tokens": [["Alice", "met", "Bob"]], "ner_tags": [["B-PER", "O", "B-PER"]]})
    pq.write_table(table, shards / "train-00001.parquet")
    assert main(["convert", str(shards), str(shards / "train-00002.parquet")]) == 2
    assert "inside the source" in capsys.readouterr().err
    assert sorted(p.name for p in shards.iterdir()) == ["train-00001.parquet"]
