"""The ONNX Runtime backend and the parity check, on a tiny random model and on hand-built graphs (no speed)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from nerforge.errors import MissingDependencyError, ModelError, UsageError  # noqa: E402
from nerforge.export.graph import export_graph  # noqa: E402
from nerforge.export.onnx import ExportOptions, require_onnx  # noqa: E402
from nerforge.export.parity import check_parity, sample_texts  # noqa: E402
from nerforge.model_dir import ModelMeta  # noqa: E402
from nerforge.prediction.engine import TorchBackend  # noqa: E402
from nerforge.prediction.onnx_backend import (  # noqa: E402
    OnnxBackend,
    SessionSettings,
    _providers_for,
    import_onnxruntime,
    physical_cores,
)
from nerforge.prediction.tagger import Tagger  # noqa: E402
from nerforge.types import Example, LabelSet  # noqa: E402

LABELS = LabelSet.from_types(["LOC", "ORG", "PER"])
TAGS = list(LABELS.tags)


@pytest.fixture(scope="module")
def torch_model(tiny_encoder: Path):
    import torch
    from transformers import AutoModelForTokenClassification

    torch.manual_seed(0)
    model = AutoModelForTokenClassification.from_pretrained(
        tiny_encoder, num_labels=len(TAGS), id2label=LABELS.id2label, label2id=LABELS.label2id
    )
    torch.nn.init.normal_(model.classifier.weight, std=1.0)  # a random head that is not near zero
    return model.eval()


@pytest.fixture(scope="module")
def tokenizer(tiny_encoder: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_encoder)


@pytest.fixture(scope="module")
def meta(tiny_encoder: Path) -> ModelMeta:
    return ModelMeta(tags=TAGS, max_length=24, stride=6, base_model=str(tiny_encoder))


@pytest.fixture(scope="module")
def graph(torch_model, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("graph") / "model.onnx"
    export_graph(torch_model, path, opset=18, exporter="torchscript", max_length=128)
    return path


def _random_batch(rng: np.random.Generator, batch: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    ids = rng.integers(1000, 20000, size=(batch, length), dtype=np.int64)
    mask = np.ones_like(ids)
    for row in range(1, batch):  # every row but the first is padded at a different length
        keep = int(rng.integers(1, length + 1))
        ids[row, keep:] = 0
        mask[row, keep:] = 0
    return ids, mask


# -- backend ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("batch,length", [(1, 1), (1, 7), (3, 16), (8, 33), (2, 128)])
def test_onnx_backend_logits_match_torch_on_padded_batches(graph: Path, torch_model, batch: int, length: int) -> None:
    rng = np.random.default_rng(batch * 1000 + length)
    ids, mask = _random_batch(rng, batch, length)
    inputs = {"input_ids": ids, "attention_mask": mask}
    expected = TorchBackend(torch_model).logits(inputs)
    got = OnnxBackend(graph).logits(inputs)
    assert got.shape == (batch, length, len(TAGS)) and got.dtype == np.float32
    real = mask.astype(bool)
    np.testing.assert_allclose(got[real], expected[real], atol=1e-4, rtol=0)


def test_onnx_backend_uses_one_thread_per_physical_core_by_default(graph: Path) -> None:
    """By default each physical core's thread tags batches of its own (a one-thread session run that many times at
    once); ``parallel="intra"`` splits each batch over them instead."""
    cores = physical_cores()
    assert 1 <= cores <= (os.cpu_count() or 1)
    backend = OnnxBackend(graph)
    assert backend.concurrency == cores
    assert backend.session.get_session_options().intra_op_num_threads == 1
    split = OnnxBackend(graph, SessionSettings(parallel="intra"))
    assert split.concurrency == 1 and split.session.get_session_options().intra_op_num_threads == cores
    single = OnnxBackend(graph, SessionSettings(threads=1))
    assert single.concurrency == 1 and single.session.get_session_options().intra_op_num_threads == 1


def test_idle_threads_sleep_when_asked(graph: Path) -> None:
    entry = "session.intra_op.allow_spinning"
    sleeping = OnnxBackend(graph, SessionSettings(threads=2, spinning=False)).session.get_session_options()
    assert sleeping.get_session_config_entry(entry) == "0"
    default = OnnxBackend(graph, SessionSettings(threads=2)).session.get_session_options()
    with pytest.raises(RuntimeError, match="does not have configuration"):  # ONNX Runtime's default: spinning
        default.get_session_config_entry(entry)


def _op_counts(path: Path) -> dict[str, int]:
    import collections

    import onnx

    return collections.Counter(node.op_type for node in onnx.load(str(path), load_external_data=False).graph.node)


def test_the_slow_fused_layer_norm_is_left_out_on_cpu(graph: Path, torch_model, tmp_path: Path) -> None:
    """ONNX Runtime's SkipLayerNormalization rewrite, measured slower than what it replaces on CPU, is left out of a
    CPU session by default (the graph keeps Add + LayerNormalization) and kept when asked (``unfused=()``); the
    logits stay those of torch either way; other providers keep every rewrite."""
    from nerforge.export.graph import quantize_int8

    int8 = tmp_path / "int8.onnx"
    quantize_int8(graph, int8)
    seen = {}
    for name, unfused in (("default", None), ("all", ())):
        for source in (graph, int8):
            out = tmp_path / f"{name}-{source.stem}.optimized.onnx"
            OnnxBackend(source, SessionSettings(threads=1, unfused=unfused, optimized_path=str(out)))
            seen[name, source.stem] = _op_counts(out)
    assert seen["all", "int8"]["SkipLayerNormalization"] > 0  # the rewrite applies to this int8 graph ...
    assert seen["default", "int8"]["SkipLayerNormalization"] == 0  # ... and is left out by default
    assert seen["default", "int8"]["LayerNormalization"] > seen["all", "int8"]["LayerNormalization"]
    assert seen["default", "model"]["SkipLayerNormalization"] == 0
    rng = np.random.default_rng(5)
    ids, mask = _random_batch(rng, 3, 16)
    inputs = {"input_ids": ids, "attention_mask": mask}
    expected = TorchBackend(torch_model).logits(inputs)
    got = OnnxBackend(graph, SessionSettings(threads=1)).logits(inputs)
    np.testing.assert_allclose(got[mask.astype(bool)], expected[mask.astype(bool)], atol=1e-4, rtol=0)
    assert SessionSettings().disabled_optimizers == ("SkipLayerNormFusion",)
    assert SessionSettings(unfused=()).disabled_optimizers == ()
    assert SessionSettings(providers=("CUDAExecutionProvider", "CPUExecutionProvider")).disabled_optimizers == ()


def test_a_profiled_session_records_every_operator(graph: Path, tmp_path: Path) -> None:
    """``profile_prefix`` turns on ONNX Runtime's per-operator profile: after a run, ``end_profiling()`` writes a
    JSON file under the prefix with a kernel-time event per operator run; without it no profile is kept."""
    import json

    rng = np.random.default_rng(7)
    ids, mask = _random_batch(rng, 2, 8)
    inputs = {"input_ids": ids, "attention_mask": mask}
    profiled = OnnxBackend(graph, SessionSettings(threads=1, profile_prefix=str(tmp_path / "prof")))
    profiled.logits(inputs)
    written = Path(profiled.session.end_profiling())
    assert written.parent == tmp_path and written.name.startswith("prof")
    kernels = [e for e in json.loads(written.read_text(encoding="utf-8"))
               if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")]  # fmt: skip
    assert {e["args"]["op_name"] for e in kernels} >= {"MatMul", "Softmax"}
    plain = OnnxBackend(graph, SessionSettings(threads=1))
    plain.logits(inputs)
    assert plain.session.end_profiling() == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == [written.name]


def test_onnx_backend_rejects_bad_settings(graph: Path) -> None:
    with pytest.raises(UsageError, match="optimisation level"):
        OnnxBackend(graph, SessionSettings(optimization="max"))
    with pytest.raises(UsageError, match="at least 1"):
        OnnxBackend(graph, SessionSettings(threads=0))
    with pytest.raises(UsageError, match="not available"):
        OnnxBackend(graph, SessionSettings(providers=("NoSuchExecutionProvider",)))
    with pytest.raises(UsageError, match="'cpu' or 'cuda'"):
        _providers_for("mps")


def test_onnx_backend_rejects_a_file_that_is_not_a_graph(tmp_path: Path) -> None:
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"not a graph")
    with pytest.raises(ModelError, match="cannot load the graph"):
        OnnxBackend(bad)


def _hand_graph(path: Path, inputs: list[str], output: str = "logits") -> Path:
    """A graph whose ``output`` is the sum of its int64 inputs as float, shape (batch, seq, 1)."""
    import onnx
    from onnx import TensorProto, helper

    nodes, last = [], inputs[0]
    for k, name in enumerate(inputs[1:]):
        nodes.append(helper.make_node("Add", [last, name], [f"sum{k}"]))
        last = f"sum{k}"
    nodes.append(helper.make_node("Cast", [last], ["as_float"], to=TensorProto.FLOAT))
    nodes.append(helper.make_node("Constant", [], ["axis"], value=helper.make_tensor("a", TensorProto.INT64, [1], [2])))
    nodes.append(helper.make_node("Unsqueeze", ["as_float", "axis"], [output]))
    graph = helper.make_graph(
        nodes,
        "hand",
        [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "seq"]) for n in inputs],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, ["batch", "seq", 1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    onnx.save(model, str(path))
    return path


def test_onnx_backend_feeds_zero_token_type_ids(tmp_path: Path) -> None:
    path = _hand_graph(tmp_path / "g.onnx", ["input_ids", "attention_mask", "token_type_ids"])
    ids = np.array([[5, 6, 7]], dtype=np.int64)
    mask = np.zeros_like(ids)
    out = OnnxBackend(path).logits({"input_ids": ids, "attention_mask": mask})
    np.testing.assert_array_equal(out[..., 0], ids.astype(np.float32))  # token_type_ids were all zero


def test_onnx_backend_rejects_graphs_it_cannot_drive(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not those of a nerforge export"):
        OnnxBackend(_hand_graph(tmp_path / "a.onnx", ["input_ids", "attention_mask"], output="scores"))
    odd = _hand_graph(tmp_path / "b.onnx", ["input_ids", "attention_mask", "pixel_values"])
    with pytest.raises(ModelError, match="the model's head gives"):
        OnnxBackend(odd, inputs=("input_ids", "attention_mask"))  # checked at load against the plan's inputs
    ids = np.array([[5, 6]], dtype=np.int64)
    with pytest.raises(ModelError, match=r"takes inputs \['input_ids', 'attention_mask', 'pixel_values'\]"):
        OnnxBackend(odd).logits({"input_ids": ids, "attention_mask": ids})  # or at the first batch
    plain = _hand_graph(tmp_path / "c.onnx", ["input_ids", "attention_mask"])
    with pytest.raises(ModelError, match="re-export"):  # a head with word features, a graph without them
        OnnxBackend(plain, inputs=("input_ids", "attention_mask", "word_features"))


def test_onnx_backend_feeds_a_head_s_inputs_by_name(tmp_path: Path) -> None:
    """A new head's input reaches the graph with no change to the backend: inputs are fed by name."""
    path = _hand_graph(tmp_path / "g.onnx", ["input_ids", "attention_mask", "span_starts"])
    ids = np.array([[5, 6, 7]], dtype=np.int64)
    starts = np.array([[1, 0, 9]], dtype=np.int64)
    backend = OnnxBackend(path, inputs=("input_ids", "attention_mask", "span_starts"))
    out = backend.logits({"input_ids": ids, "attention_mask": np.ones_like(ids), "span_starts": starts})
    np.testing.assert_array_equal(out[..., 0], (ids + 1 + starts).astype(np.float32))


def test_missing_onnxruntime_raises_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` raise ImportError
    with pytest.raises(MissingDependencyError, match=r"pip install 'nerforge\[onnx\]'"):
        import_onnxruntime()
    with pytest.raises(MissingDependencyError, match="onnxruntime"):
        require_onnx("torchscript")


def test_export_options_are_checked() -> None:
    with pytest.raises(UsageError, match="quantization"):
        ExportOptions(quantize="int4").check()
    with pytest.raises(UsageError, match="exporter"):
        ExportOptions(exporter="tf2onnx").check()
    with pytest.raises(UsageError, match="opset"):
        ExportOptions(opset=9).check()


# -- through the engine ----------------------------------------------------------------------------------------


def test_onnx_tagger_gives_the_torch_tags(graph: Path, torch_model, tokenizer, meta: ModelMeta) -> None:
    onnx_tagger = Tagger.from_backend(OnnxBackend(graph), tokenizer, meta, batch_size=3, progress=False)
    torch_tagger = Tagger.from_backend(TorchBackend(torch_model), tokenizer, meta, batch_size=3, progress=False)
    texts = ["", *sample_texts(repeat_long=2)]
    words = [[w.text for w in torch_tagger.words(t)] for t in texts]
    got = onnx_tagger.predict_words(words)
    expected = torch_tagger.predict_words(words)
    assert [p.tags for p in got] == [p.tags for p in expected]
    np.testing.assert_allclose([s for p in got for s in p.scores], [s for p in expected for s in p.scores], atol=1e-4)
    assert onnx_tagger.engine.stats.windowed_examples >= 1  # the long text was cut into windows
    assert got[0].tags == ()


# -- parity ----------------------------------------------------------------------------------------------------


class ShiftedBackend:
    """Another backend's logits with ``delta`` added to one tag's column (a controlled disagreement)."""

    def __init__(self, inner, column: int, delta: float) -> None:
        self.inner, self.column, self.delta = inner, column, delta

    def logits(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        out = np.array(self.inner.logits(inputs), copy=True)
        out[..., self.column] += self.delta
        return out


def test_parity_of_a_backend_with_itself_is_perfect(torch_model, tokenizer, meta: ModelMeta) -> None:
    backend = TorchBackend(torch_model)
    report = check_parity(backend, backend, tokenizer, meta, texts=sample_texts(repeat_long=2), batch_size=4)
    assert report.tag_agreement == 1.0 and report.sentence_agreement == 1.0
    assert report.max_abs_logit_diff == 0.0 and report.mean_abs_logit_diff == 0.0
    assert report.entity_f1_vs_reference == 1.0 and report.disagreements == ()
    assert report.words == sum(len(Tagger.from_backend(backend, tokenizer, meta).words(t)) for t in sample_texts(2))


def test_parity_counts_disagreements_and_gold_f1(torch_model, tokenizer, meta: ModelMeta) -> None:
    reference = TorchBackend(torch_model)
    candidate = ShiftedBackend(reference, column=0, delta=1e4)  # "O" wins everywhere: no entities at all
    texts = ["Ann Smith works at Acme in Paris .", "the river bank"]
    tagger = Tagger.from_backend(reference, tokenizer, meta, progress=False)
    ref_tags = [list(p.tags) for p in tagger.predict_words([["Paris", "is", "big"]])]
    gold = [Example(("Paris", "is", "big"), tuple(ref_tags[0]))]  # gold = what the reference predicts
    report = check_parity(reference, candidate, tokenizer, meta, texts=texts, gold=gold, gold_path="g.conll")
    n_words = 8 + 3 + 3
    ref_o = sum(t == "O" for t in ref_tags[0]) + sum(
        t == "O" for p in tagger.predict_words([t.split() for t in texts]) for t in p.tags
    )
    assert report.words == n_words and report.sentences == 3
    assert report.tag_agreement == pytest.approx(ref_o / n_words)
    assert report.candidate_entities == 0 and report.entity_f1_vs_reference == 0.0
    assert report.max_abs_logit_diff == pytest.approx(1e4, rel=1e-6)
    assert len(report.disagreements) == n_words - ref_o
    assert all(d.candidate == "O" and d.reference != "O" for d in report.disagreements)
    assert report.gold is not None and report.gold.sentences == 1
    if any(t != "O" for t in ref_tags[0]):
        assert report.gold.reference_f1 == 1.0 and report.gold.candidate_f1 == 0.0
        assert report.gold.f1_diff_points == -100.0
    assert report.sources == ("built-in samples", "g.conll")
    assert report.to_dict()["gold"]["f1_diff_points"] == report.gold.f1_diff_points
