"""``nerforge export --onnx``: a tiny model exported to fp32 and int8, compared with PyTorch, loaded like any model."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from nerforge.cli import main  # noqa: E402
from nerforge.errors import MissingDependencyError, ModelError, UsageError  # noqa: E402
from nerforge.export import PARITY_FILE, ExportOptions, export_onnx  # noqa: E402
from nerforge.model_dir import (
    ONNX_FILE,  # noqa: E402
    ModelMeta,  # noqa: E402
)
from nerforge.prediction.engine import TorchBackend  # noqa: E402
from nerforge.prediction.onnx_backend import OnnxBackend  # noqa: E402
from nerforge.prediction.tagger import Tagger  # noqa: E402
from nerforge.types import LabelSet  # noqa: E402

LABELS = LabelSet.from_types(["LOC", "ORG", "PER"])
MAX_LENGTH = 32  # small, so that a long text needs several windows
LONG_TEXT = " ".join(["Ann Smith of Acme Corp flew from Paris to New York on Monday ."] * 12)
TEXTS = [
    "Ann Smith works for Acme Corp in Paris.",
    "",
    "the river bank",
    LONG_TEXT,
    "Dr. O'Neill-Smith (CEO) said: \"We'll open in Zürich!\"",
    "   ",
    "IBM",
]
HAS_ONNXSCRIPT = importlib.util.find_spec("onnxscript") is not None


def build_model_dir(encoder: Path, directory: Path) -> Path:
    """A nerforge model directory over ``encoder`` with a random (not near-zero) token-classification head."""
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    torch.manual_seed(0)
    model = AutoModelForTokenClassification.from_pretrained(
        encoder, num_labels=len(LABELS.tags), id2label=LABELS.id2label, label2id=LABELS.label2id
    )
    torch.nn.init.normal_(model.classifier.weight, std=1.0)
    model.save_pretrained(directory)
    AutoTokenizer.from_pretrained(encoder).save_pretrained(directory)
    (directory / "README.md").write_text("# tiny model\n", encoding="utf-8")
    ModelMeta(tags=list(LABELS.tags), max_length=MAX_LENGTH, stride=8, base_model=str(encoder)).save(directory)
    return directory


@pytest.fixture(scope="module")
def model_dir(tiny_encoder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_model_dir(tiny_encoder, tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def gold_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gold") / "gold.conll"
    rows = "Ann B-PER\nSmith I-PER\nvisited O\nParis B-LOC\n. O\n\nAcme B-ORG\nCorp I-ORG\nhired O\nBob B-PER\n"
    path.write_text(rows, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def fp32_dir(model_dir: Path, gold_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export") / "fp32"
    export_onnx(model_dir, out, ExportOptions(parity_data=str(gold_file)))
    return out


@pytest.fixture(scope="module")
def int8_dir(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export") / "int8"
    export_onnx(model_dir, out, ExportOptions(quantize="int8"))
    return out


@pytest.fixture(scope="module")
def torch_tagger(model_dir: Path) -> Tagger:
    return Tagger.load(model_dir, batch_size=4, progress=False)


def _spans(entities) -> list[tuple[str, int, int, str]]:
    return [(e.label, e.start, e.end, e.text) for e in entities]


def test_export_writes_a_complete_onnx_model_dir(fp32_dir: Path, int8_dir: Path) -> None:
    import onnx

    for directory, quantized in ((fp32_dir, False), (int8_dir, True)):
        names = {p.name for p in directory.iterdir()}
        assert {ONNX_FILE, "config.json", "nerforge.json", PARITY_FILE, "tokenizer.json", "README.md"} <= names
        hidden = {n for n in names if n.startswith(".")}
        assert hidden == {".nerforge-output.json"}  # the record of the export, no temporary file
        assert not any(n.endswith(".safetensors") or "fp32" in n for n in names)
        config = json.loads((directory / "config.json").read_text())
        assert config["id2label"] == {str(i): t for i, t in LABELS.id2label.items()}
        meta = ModelMeta.load(directory)
        assert meta.backend == "onnx" and meta.tags == list(LABELS.tags) and meta.max_length == MAX_LENGTH
        info = meta.extra["onnx"]
        assert info["file"] == ONNX_FILE and info["opset"] == 18 and info["exporter"] == "torchscript"
        assert (info["quantization"] is not None) == quantized
        if quantized:
            assert info["quantization"]["weight_type"] == "QInt8" and "MatMul" in info["quantization"]["op_types"]
        graph = onnx.load(str(directory / ONNX_FILE))
        assert {o.domain: o.version for o in graph.opset_import}.get("", 0) == 18
        for value in graph.graph.input:
            dims = value.type.tensor_type.shape.dim
            assert len(dims) == 2 and all(d.dim_param and not d.dim_value for d in dims), value  # dynamic axes
        ops = {n.op_type for n in graph.graph.node}
        assert ("MatMulInteger" in ops or "DynamicQuantizeLinear" in ops) == quantized


def test_fp32_logits_match_torch_within_1e_4(fp32_dir: Path, model_dir: Path) -> None:
    torch_backend = Tagger.load(model_dir, progress=False).engine.backend
    assert isinstance(torch_backend, TorchBackend)
    onnx_backend = OnnxBackend(fp32_dir / ONNX_FILE)
    rng = np.random.default_rng(0)
    for batch, length in [(1, 2), (1, 9), (4, 17), (16, 32), (3, 64)]:
        ids, mask = _random_padded(rng, batch, length)
        batch_inputs = {"input_ids": ids, "attention_mask": mask}
        expected, got = torch_backend.logits(batch_inputs), onnx_backend.logits(batch_inputs)
        real = mask.astype(bool)
        np.testing.assert_allclose(got[real], expected[real], atol=1e-4, rtol=0, err_msg=f"batch {batch} x {length}")


def test_onnx_tagger_finds_the_torch_entities(fp32_dir: Path, torch_tagger: Tagger) -> None:
    onnx_tagger = Tagger.load(fp32_dir, batch_size=4, progress=False)  # backend picked from nerforge.json
    assert type(onnx_tagger.engine.backend).__name__ == "OnnxBackend"
    expected = torch_tagger.predict(TEXTS)
    got = onnx_tagger.predict(TEXTS)
    assert [_spans(e) for e in got] == [_spans(e) for e in expected]
    assert got[1] == [] and got[5] == []
    assert sum(1 for _ in got[3]) > 0 and onnx_tagger.engine.stats.windowed_examples >= 1  # several windows
    words = [[w.text for w in torch_tagger.words(t)] for t in TEXTS]
    assert [p.tags for p in onnx_tagger.predict_words(words)] == [p.tags for p in torch_tagger.predict_words(words)]


def _random_padded(rng: np.random.Generator, batch: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    ids = rng.integers(1000, 20000, size=(batch, length), dtype=np.int64)
    mask = np.ones_like(ids)
    for row in range(1, batch):
        keep = int(rng.integers(1, length + 1))
        ids[row, keep:], mask[row, keep:] = 0, 0
    return ids, mask


@pytest.mark.skipif(not HAS_ONNXSCRIPT, reason="the dynamo exporter needs onnxscript")
def test_dynamo_exporter_matches_torch_too(model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "dynamo"
    result = export_onnx(model_dir, out, ExportOptions(exporter="dynamo"))
    assert result.exporter == "dynamo" and ModelMeta.load(out).extra["onnx"]["exporter"] == "dynamo"
    assert result.parity.tag_agreement == 1.0 and result.parity.max_abs_logit_diff < 1e-4
    torch_backend = Tagger.load(model_dir, progress=False).engine.backend
    ids, mask = _random_padded(np.random.default_rng(1), 5, 40)
    real = mask.astype(bool)
    batch_inputs = {"input_ids": ids, "attention_mask": mask}
    got, expected = OnnxBackend(out / ONNX_FILE).logits(batch_inputs), torch_backend.logits(batch_inputs)
    np.testing.assert_allclose(got[real], expected[real], atol=1e-4, rtol=0)


def test_fp32_parity_report_is_saved(fp32_dir: Path) -> None:
    report = json.loads((fp32_dir / PARITY_FILE).read_text())
    assert report["candidate"] == "onnx fp32" and report["reference"] == "torch"
    assert report["tag_agreement"] == 1.0 and report["entity_f1_vs_reference"] == 1.0
    assert report["max_abs_logit_diff"] < 1e-4
    assert report["mode"] == "strict" and report["scheme"] == "IOB2"
    assert report["gold"]["sentences"] == 2 and report["gold"]["f1_diff_points"] == 0.0
    assert report["sentences"] > 2 and report["words"] > 100


def test_int8_reports_tag_agreement_and_stays_close(int8_dir: Path, torch_tagger: Tagger) -> None:
    report = json.loads((int8_dir / PARITY_FILE).read_text())
    assert report["candidate"] == "onnx int8"
    assert 0.9 <= report["tag_agreement"] <= 1.0
    assert report["extra"]["fp32"]["max_abs_logit_diff"] < 1e-4
    int8 = Tagger.load(int8_dir, batch_size=4, progress=False)
    words = [[w.text for w in torch_tagger.words(t)] for t in TEXTS]
    got = [t for p in int8.predict_words(words) for t in p.tags]
    expected = [t for p in torch_tagger.predict_words(words) for t in p.tags]
    assert sum(a == b for a, b in zip(got, expected, strict=True)) / len(expected) >= 0.9


def test_backend_override_and_clear_errors(fp32_dir: Path, model_dir: Path) -> None:
    with pytest.raises(ModelError, match="backend='onnx'"):
        Tagger.load(fp32_dir, backend="torch")
    with pytest.raises(ModelError, match="nerforge export"):
        Tagger.load(model_dir, backend="onnx")
    with pytest.raises(Exception, match="unknown backend"):
        Tagger.load(model_dir, backend="tensorrt")


def test_cli_export_then_predict(model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "onnx"
    assert main(["export", str(model_dir), "--onnx", "--output", str(out), "--exporter", "torchscript"]) == 0
    printed = capsys.readouterr().out
    assert "tag agreement 100.0000%" in printed and "parity.json" in printed
    assert (out / PARITY_FILE).is_file() and ModelMeta.load(out).backend == "onnx"
    inputs = tmp_path / "texts.txt"
    inputs.write_text("Ann Smith works for Acme Corp in Paris.\n\n" + LONG_TEXT + "\n", encoding="utf-8")
    result = tmp_path / "out.jsonl"
    assert main(["predict", str(out), str(inputs), "--output", str(result), "--batch-size", "4"]) == 0
    rows = [json.loads(line) for line in result.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 3 and all("entities" in r for r in rows)
    expected = Tagger.load(model_dir, progress=False).predict([r["text"] for r in rows])
    assert [[(e["label"], e["start"], e["end"]) for e in r["entities"]] for r in rows] == [
        [(e.label, e.start, e.end) for e in ents] for ents in expected
    ]


def test_cli_export_errors(model_dir: Path, tmp_path: Path, monkeypatch, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "x"
    assert main(["export", str(model_dir), "--output", str(out)]) == 2
    assert "--onnx" in capsys.readouterr().err
    assert main(["export", str(model_dir), "--onnx", "--quantize", "int4", "--output", str(out)]) == 2
    assert "int8" in capsys.readouterr().err
    monkeypatch.setitem(__import__("sys").modules, "onnxruntime", None)
    assert main(["export", str(model_dir), "--onnx", "--output", str(out)]) == 2
    assert "pip install 'nerforge[onnx]'" in capsys.readouterr().err
    assert not out.exists()
    with pytest.raises(MissingDependencyError):
        export_onnx(model_dir, out)


def test_failed_export_leaves_nothing_behind(model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "refused"
    options = ExportOptions(exporter="torchscript", max_logit_diff=0.0)  # no real graph is that exact
    with pytest.raises(ModelError, match="disagrees with PyTorch"):
        export_onnx(model_dir, out, options)
    assert os.listdir(tmp_path) == []


def test_serving_follows_the_model_backend(fp32_dir: Path, model_dir: Path, torch_tagger: Tagger) -> None:
    from nerforge.serving.predictor import load_predictor

    served = load_predictor(fp32_dir)  # no --backend: the exported directory's own (onnx)
    assert served.info.backend == "onnx"
    texts = ["Ada Lovelace met Charles Babbage in London .", ""]
    assert [_spans(e) for e in served.predict(texts)] == [_spans(e) for e in torch_tagger.predict(texts)]
    assert load_predictor(model_dir).info.backend == "torch"


def test_a_served_onnx_model_takes_its_share_of_threads(int8_dir: Path) -> None:
    """``serve --threads T`` and each ``--workers`` process's share reach ONNX Runtime (they set torch's threads
    only, so two workers on two cores each ran ONNX Runtime with two threads: four threads on two cores)."""
    from nerforge.serving.predictor import load_predictor

    for threads in (1, 3):
        predictor = load_predictor(int8_dir, backend="onnx", threads=threads)
        session = predictor._tagger.engine.backend.session  # noqa: SLF001 - the one place that says it
        assert session.get_session_options().intra_op_num_threads == threads
        assert isinstance(predictor.predict(["Ann Smith visited Paris."])[0], list)


def test_threads_run_batches_of_their_own_by_default_and_tag_as_one_thread_does(int8_dir: Path) -> None:
    """``SessionSettings(parallel="batches")``, the default: each of the threads tags batches of its own on a
    one-thread session (ONNX Runtime's run is thread-safe), so a second thread costs no coordination; ``"intra"``
    splits each batch over the threads (the server's way). Both tag exactly as one thread does."""
    import threading
    import time

    from nerforge.prediction.onnx_backend import SessionSettings

    texts = [f"{text} Then {i} more." for i in range(12) for text in TEXTS[:2]]
    expected = [_spans(found) for found in Tagger.load(int8_dir, batch_size=2, progress=False,
                                                       onnx_settings=SessionSettings(threads=1)).predict(texts)]  # fmt: skip
    for how, workers, intra in (("batches", 2, 1), ("intra", 1, 2)):
        tagger = Tagger.load(int8_dir, batch_size=2, progress=False,
                             onnx_settings=SessionSettings(threads=2, parallel=how))  # fmt: skip
        backend = tagger.engine.backend
        assert backend.concurrency == workers
        assert backend.session.get_session_options().intra_op_num_threads == intra
        seen: set[int] = set()
        real = backend.logits

        def spy(inputs, real=real, seen=seen):
            seen.add(threading.get_ident())
            time.sleep(0.02)  # long enough for the other thread to take the next batch
            return real(inputs)

        backend.logits = spy
        assert [_spans(found) for found in tagger.predict(texts)] == expected and any(expected)
        assert len(seen) == workers, (how, len(seen))
    with pytest.raises(UsageError, match="unknown ONNX Runtime parallelism 'both'"):
        Tagger.load(int8_dir, progress=False, onnx_settings=SessionSettings(threads=2, parallel="both"))
    assert SessionSettings(threads=3).concurrent_batches == 3
    assert (
        SessionSettings(threads=3, providers=("CUDAExecutionProvider", "CPUExecutionProvider")).concurrent_batches == 1
    )
