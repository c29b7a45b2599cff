"""``nerforge bench``: every batch size timed over the right sentences, the timed tags scored like ``evaluate`` scores
them, the JSON written atomically, ONNX int8 models named as such, and bad input as one line."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from nerforge.cli import main

TECH = ["Python", "Kubernetes", "Go", "React", "Rust", "Docker"]
CITY = ["Paris", "Berlin", "Madrid", "Oslo"]


def write_corpus(path: Path, n: int, seed: int) -> int:
    """``n`` sentences in CoNLL columns; returns how many words they hold."""
    rng = random.Random(seed)
    blocks, words = [], 0
    for _ in range(n):
        sentence = [
            ("We", "O"),
            (rng.choice(["use", "like", "need"]), "O"),
            (rng.choice(TECH), "B-TECH"),
            ("in", "O"),
            (rng.choice(CITY), "B-LOC"),
        ] + [("daily", "O")] * rng.randint(0, 3)
        blocks.append("\n".join(f"{w}\t{t}" for w, t in sentence))
        words += len(sentence)
    path.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    return words


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("bench-data")
    paths = {name: directory / f"{name}.conll" for name in ("train", "test")}
    write_corpus(paths["train"], 48, 1)
    write_corpus(paths["test"], 30, 2)
    return paths


@pytest.fixture(scope="module")
def model(corpus: dict[str, Path], tiny_encoder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench-model") / "model"
    assert (
        main(
            [
                "train",
                "--train",
                str(corpus["train"]),
                "--model",
                str(tiny_encoder),
                "--epochs",
                "8",
                "--batch-size",
                "8",
                "--learning-rate",
                "3e-3",
                "--seed",
                "1",
                "--no-tracking",
                "--output",
                str(out),
            ]
        )
        == 0
    )
    return out


def bench_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    capsys.readouterr()
    assert main(["bench", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_bench_times_each_batch_size_and_scores_what_it_timed(
    model: Path, corpus: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    words = write_corpus(tmp_path / "check.conll", 30, 2)  # the same sentences as the test file
    out = tmp_path / "speed.json"
    report = bench_json(
        capsys,
        str(model),
        str(corpus["test"]),
        "--batch-sizes",
        "1,4",
        "--latency-sentences",
        "5",
        "--threads",
        "1",
        "-o",
        str(out),
    )
    assert json.loads(out.read_text()) == report
    assert report["backend"] == "torch" and report["threads"] == 1
    batch4, batch1 = report["timings"]
    assert (batch4["batch_size"], batch4["sentences"], batch4["words"]) == (4, 30, words)
    assert (batch1["batch_size"], batch1["sentences"]) == (1, 5)
    assert batch1["p50_ms"] <= batch1["p95_ms"] and batch4["p50_ms"] is None
    for t in report["timings"]:
        assert t["seconds"] > 0 and t["words_per_s"] == pytest.approx(t["words"] / t["seconds"], rel=1e-3)

    assert (
        main(["evaluate", str(model), str(corpus["test"]), "--json", "--no-plots", "--output", str(tmp_path / "eval")])
        == 0
    )
    scores = json.loads(capsys.readouterr().out)
    assert report["f1"] == pytest.approx(scores["micro"]["f1"]) and report["f1"] > 0.8  # the timed tags are real


def test_bench_prints_a_table_and_names_an_int8_export(
    model: Path, corpus: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    onnx = tmp_path / "int8"
    assert main(["export", str(model), "--onnx", "--quantize", "int8", "--output", str(onnx)]) == 0
    capsys.readouterr()
    assert main(["bench", str(onnx), str(corpus["test"]), "--sentences", "10", "--batch-sizes", "8"]) == 0
    table = capsys.readouterr().out
    assert "(onnx int8," in table and "10 sentences" in table
    assert "words/CPU-s" in table and "F1 of the batch-8 tags (strict IOB2):" in table
    row = next(line for line in table.splitlines() if line.strip().startswith("8 "))
    assert row.split()[-2:] == ["-", "-"]  # no latency percentiles for a batch run
    for how, shown in (("batches", "2 threads, a batch each"), ("intra", "2 threads, each batch split over them")):
        args = ["bench", str(onnx), str(corpus["test"]), "--sentences", "10", "--batch-sizes", "2", "--threads", "2"]
        assert main([*args, "--parallel", how]) == 0
        assert shown in capsys.readouterr().out
        assert main([*args, "--parallel", how, "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["parallel"] == how
    assert "ONNX Runtime graph rewrites left out: SkipLayerNormFusion" in table  # the measured default, named
    base = ["bench", str(onnx), str(corpus["test"]), "--sentences", "10", "--batch-sizes", "2", "--json"]
    assert main([*base, "--all-fusions"]) == 0
    assert json.loads(capsys.readouterr().out)["unfused"] == []
    assert main(base) == 0
    assert json.loads(capsys.readouterr().out)["unfused"] == ["SkipLayerNormFusion"]
    assert main(["bench", str(model), str(corpus["test"]), "--sentences", "4", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["unfused"] is None  # a torch model has no ONNX Runtime session


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--batch-sizes", "0,8"], "expected batch sizes of 1 or more"),
        (["--batch-sizes", "a"], "expected batch sizes of 1 or more"),
        (["--sentences", "0"], "--sentences"),
        (["--output", "."], "is a folder"),
        (["--parallel", "both"], "expected batches or intra, got 'both'"),
    ],
)
def test_bench_bad_values_are_one_line(
    model: Path, corpus: dict[str, Path], capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["bench", str(model), str(corpus["test"]), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_bench_missing_inputs_are_one_line(model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", str(model), str(tmp_path / "nope.conll")]) != 0
    assert "nope.conll" in capsys.readouterr().err
    (tmp_path / "empty.conll").write_text("\n", encoding="utf-8")
    assert main(["bench", str(model), str(tmp_path / "empty.conll")]) != 0
    err = capsys.readouterr().err
    assert "empty.conll" in err and "Traceback" not in err
    assert main(["bench", str(tmp_path), str(tmp_path / "empty.conll")]) != 0
    err = capsys.readouterr().err
    assert str(tmp_path) in err and "nerforge.json" in err and "Traceback" not in err
