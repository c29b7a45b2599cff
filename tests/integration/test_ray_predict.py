"""``nerforge predict --engine ray``: on a local Ray instance with 2 workers, the output equals the single-process
``nerforge predict`` output byte for byte (JSONL, CSV), in input order; a rerun reuses the parts already written.
Parquet and the input planning are checked without Ray in ``tests/unit/test_distributed_io.py``.

One Ray session serves the whole module (starting Ray takes seconds on 2 cores); ``predict_on_ray`` joins it.
"""

from __future__ import annotations

import csv
import json
import logging
import random
from pathlib import Path

import pytest

from conftest import build_tiny_token_model
from nerforge.cli import main

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'nerforge[ray]'")

ROWS = 300
CHUNK = "32"  # engine chunk; parts are whole chunks, so batches (and scores) match the single-process run
PART = "64"  # 5 parts for 300 rows
WORDS = ["Acme", "Corp", "hired", "Ann", "Smith", "in", "Zürich", "São", "Paulo", "—", "C++", "e-mail", "don't", "東京"]


@pytest.fixture(scope="module", autouse=True)
def ray_session():
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=128 * 1024 * 1024, logging_level=logging.WARNING)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def model_dir(tiny_encoder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_token_model(tiny_encoder, tmp_path_factory.mktemp("model"), max_length=16, stride=4)


def texts(n: int = ROWS) -> list[str]:
    """Texts of 0 to 40 words (some longer than max_length 16, so windows are used), one blank."""
    rng = random.Random(7)
    out = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 40))) for _ in range(n)]
    out[5] = ""
    return out


def single(model: Path, source: Path, output: Path) -> bytes:
    assert main(["predict", str(model), str(source), "--output", str(output), "--chunk-size", CHUNK]) == 0
    return output.read_bytes()


def on_ray(model: Path, source: Path, output: Path, *extra: str) -> None:
    args = ["predict", str(model), str(source), "--output", str(output), "--engine", "ray", "--num-workers", "2"]
    assert main([*args, "--chunk-size", CHUNK, "--part-size", PART, *extra]) == 0


def test_ray_jsonl_equals_single_process(tmp_path: Path, model_dir: Path) -> None:
    source = tmp_path / "in.jsonl"
    lines = []
    for i, text in enumerate(texts()):
        obj = {"text": text, "n": i, **({"id": f"doc-{i}"} if i % 2 else {}), **({"meta": {"k": [i]}} if i % 3 else {})}
        lines.append(json.dumps(obj, ensure_ascii=False) + ("\n\n" if i % 50 == 0 else "\n"))  # blank lines skipped
    source.write_text("".join(lines), encoding="utf-8")

    expected = single(model_dir, source, tmp_path / "single.jsonl")
    on_ray(model_dir, source, tmp_path / "ray.jsonl")
    assert (tmp_path / "ray.jsonl").read_bytes() == expected
    rows = [json.loads(line) for line in expected.decode().splitlines()]
    assert [r["n"] for r in rows] == list(range(ROWS))  # input order
    assert sum(len(r["entities"]) for r in rows) > 0
    assert not (tmp_path / "ray.jsonl.parts").exists()  # merged, then removed


def test_ray_csv_equals_single_process_and_resumes(tmp_path: Path, model_dir: Path) -> None:
    source = tmp_path / "in.csv"
    with source.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["doc", "text", "note"])
        for i, text in enumerate(texts()):
            writer.writerow([f"d{i}", text, "=formula" if i % 7 == 0 else ("two\nlines" if i % 11 == 0 else "")])
    output, parts = tmp_path / "ray.csv", tmp_path / "ray.csv.parts"

    expected = single(model_dir, source, tmp_path / "single.csv")
    on_ray(model_dir, source, output, "--keep-parts")
    assert output.read_bytes() == expected
    assert len(list(parts.glob("part-*.done.json"))) == 5 and len(list(parts.glob("part-*.csv"))) == 5

    # as if the run had been killed while writing part 3: its files are missing, the others are complete
    output.unlink()
    for path in parts.glob("part-000003.*"):
        path.unlink()
    before = {p.name: p.stat().st_mtime_ns for p in parts.glob("part-*")}
    on_ray(model_dir, source, output, "--keep-parts")

    after = {p.name: p.stat().st_mtime_ns for p in parts.glob("part-*")}
    assert {name: after[name] for name in before} == before  # complete parts were not recomputed
    assert sorted(set(after) - set(before)) == ["part-000003.csv", "part-000003.done.json"]
    assert output.read_bytes() == expected


def test_ray_plan_errors_name_the_line_before_any_worker(tmp_path: Path, model_dir: Path, capsys) -> None:
    source = tmp_path / "bad.jsonl"
    source.write_text('{"text": "fine"}\n{"text": 3}\n', encoding="utf-8")
    code = main(["predict", str(model_dir), str(source), "--output", str(tmp_path / "o.jsonl"), "--engine", "ray"])
    assert code == 2
    assert f"{source}:2: field 'text' is a JSON int" in capsys.readouterr().err


def test_ray_part_size_must_be_whole_chunks(tmp_path: Path, model_dir: Path, capsys) -> None:
    source = tmp_path / "in.txt"
    source.write_text("a\nb\n", encoding="utf-8")
    args = ["predict", str(model_dir), str(source), "--output", str(tmp_path / "o.jsonl"), "--engine", "ray"]
    assert main([*args, "--chunk-size", "32", "--part-size", "48"]) == 2
    assert "multiple of --chunk-size" in capsys.readouterr().err


@pytest.fixture(scope="module", params=["layered", "span"])
def overlapping_model(request: pytest.FixtureRequest, tiny_encoder: Path,
                      tmp_path_factory: pytest.TempPathFactory) -> Path:  # fmt: skip
    """A model whose entities overlap: a layered one (outer and inner columns) or a span head (both in one layer)."""
    folder = tmp_path_factory.mktemp(request.param)
    rng = random.Random(3)
    rows = []
    for _ in range(48):
        city, other = rng.choice(["Bonn", "Rome", "Oslo", "Paris"]), rng.choice(["Bonn", "Rome", "Oslo", "Paris"])
        rows.append(f"Students\tO\tO\nof\tO\tO\n{city}\tB-ORG\tB-LOC\nUniversity\tI-ORG\tO\nmet\tO\tO\nin\tO\tO\n"
                    f"{other}\tB-LOC\tO\n.\tO\tO\n")  # fmt: skip
    (folder / "train.conll").write_text("\n".join(rows), encoding="utf-8")
    head = ["--head", "span"] if request.param == "span" else []
    out = folder / "model"
    assert main(["train", "--train", str(folder / "train.conll"), "--output", str(out), "--model", str(tiny_encoder),
                 "--epochs", "10", "--batch-size", "8", "--learning-rate", "3e-3", "--seed", "1", "--no-tracking",
                 "--no-progress", "--tag-columns", "1,2", *head]) == 0  # fmt: skip
    return out


def test_ray_predicts_overlapping_entities_as_one_process_does(tmp_path: Path, overlapping_model: Path) -> None:
    """Nested entities (a span head) and entities of several layers travel through Ray batch prediction intact."""
    source = tmp_path / "in.txt"
    rng = random.Random(5)
    source.write_text("".join(f"Students of {rng.choice(['Bonn', 'Rome', 'Oslo'])} University met in Paris .\n"
                              for _ in range(80)), encoding="utf-8")  # fmt: skip
    expected = single(overlapping_model, source, tmp_path / "single.jsonl")
    on_ray(overlapping_model, source, tmp_path / "ray.jsonl")
    assert (tmp_path / "ray.jsonl").read_bytes() == expected
    first = json.loads(expected.decode().splitlines()[0])["entities"]
    outer = next(e for e in first if e["label"] == "ORG")
    assert any(e["label"] == "LOC" and outer["start"] <= e["start"] < e["end"] <= outer["end"] for e in first)


def test_an_onnx_worker_takes_its_share_of_the_cores(tmp_path: Path, model_dir: Path) -> None:
    """Each actor's ONNX Runtime session takes the actor's threads (its CPUs), not every core of the node: two actors
    on two cores each ran every core's worth of threads before."""
    from nerforge.distributed.ray_predict import PartTagger
    from nerforge.export import ExportOptions, export_onnx

    onnx = tmp_path / "int8"
    export_onnx(model_dir, onnx, ExportOptions(quantize="int8"))
    for options, threads in (({"cpus_per_worker": 1.0}, 1), ({"threads": 3}, 3)):
        worker = PartTagger(model=str(onnx), output=str(tmp_path / "out.jsonl"), columns=["text"], text_column="text",
                            options=options)  # fmt: skip
        backend = worker.tagger.engine.backend
        assert backend.concurrency == threads  # batches at once, one thread each
        assert backend.session.get_session_options().intra_op_num_threads == 1
