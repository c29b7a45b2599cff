"""Model heads end to end on the tiny encoder: shape features + CRF + document context trained, loaded by nerforge,
evaluated, served, exported to ONNX (same tags as PyTorch); a plain head with class weights and context stays a
Hugging Face directory that ``transformers.pipeline`` loads."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nerforge.cli import main
from nerforge.model_dir import ModelMeta
from nerforge.modeling.context import sentence_contexts
from nerforge.prediction import Tagger

TECH = ["Python", "Kubernetes", "PostgreSQL", "Go", "React", "AWS"]
SKILL = [["data", "analysis"], ["code", "review"], ["testing"], ["system", "design"]]
TRAIN_ARGS = ["--epochs", "2", "--batch-size", "8", "--learning-rate", "5e-4", "--seed", "3", "--no-tracking"]
HEAD_SETTINGS = ["model.features=[shape]", "model.crf=true", "model.context_sentences=1", "model.max_length=48"]


def sentence(rng: random.Random) -> list[tuple[str, str]]:
    skill = rng.choice(SKILL)
    out = [(rng.choice(["We", "They", "You"]), "O"), ("need", "O"), (rng.choice(TECH), "B-TECH"), ("and", "O")]
    out += [(w, "B-SKILL" if i == 0 else "I-SKILL") for i, w in enumerate(skill)]
    return out + [(".", "O")]


def write_documents(
    path: Path, sentences: int, *, seed: int, per_doc: int = 4, make: Callable[[random.Random], Any] = sentence
) -> Path:
    """A CoNLL file of documents (``-DOCSTART-`` every ``per_doc`` sentences) of ``make(rng)`` sentences."""
    rng = random.Random(seed)
    blocks = []
    for i in range(sentences):
        if i % per_doc == 0:
            blocks.append("-DOCSTART-\tO")
        blocks.append("\n".join(f"{w}\t{t}" for w, t in make(rng)))
    path.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("docs")
    return {
        "train": write_documents(root / "train.conll", 24, seed=0),
        "dev": write_documents(root / "dev.conll", 8, seed=1),
    }


def train(corpus: dict[str, Path], encoder: Path, out: Path, settings: list[str]) -> Path:
    args = ["train", "--train", str(corpus["train"]), "--dev", str(corpus["dev"]), "--test", str(corpus["dev"])]
    args += ["--output", str(out), "--model", str(encoder), *TRAIN_ARGS]
    for item in settings:
        args += ["--set", item]
    assert main(args) == 0
    return out


@pytest.fixture(scope="module")
def head_model(corpus: dict[str, Path], tiny_encoder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train(corpus, tiny_encoder, tmp_path_factory.mktemp("head") / "model", HEAD_SETTINGS)


def read_docs(path: Path) -> tuple[list[list[str]], list[list[str]], list[str | None]]:
    from nerforge.data.normalize import read_examples
    from nerforge.data.readers.options import ReadOptions

    examples = read_examples(path, ReadOptions())
    return [list(e.tokens) for e in examples], [list(e.tags) for e in examples], [e.doc_id for e in examples]


def test_head_model_directory_is_nerforge_only(head_model: Path) -> None:
    meta = json.loads((head_model / "nerforge.json").read_text())
    assert meta["head"] == "shape+crf+context1"
    assert meta["extra"]["head"] == {"features": ["shape"], "crf": True, "context_sentences": 1, "shape_dim": 16}
    n = len(meta["tags"])
    crf = meta["extra"]["crf"]
    assert len(crf["start"]) == n and np.asarray(crf["transitions"]).shape == (n, n)
    assert (head_model / "model.safetensors").is_file() and not (head_model / "encoder").exists()
    config = json.loads((head_model / "config.json").read_text())  # a transformers config of nerforge's own type
    assert config["model_type"] == "nerforge_token_classifier" and config["head"] == meta["extra"]["head"]
    assert config["encoder"]["model_type"] == "bert" and config["id2label"]["0"] == "O"
    assert not list(head_model.glob("*.bin")) and not list(head_model.glob("*.pt"))
    card = (head_model / "README.md").read_text()
    assert "shape+crf+context1" in card and "does **not** load in `transformers.pipeline`" in card
    assert "library_name: nerforge" in card

    from transformers import pipeline

    with pytest.raises((OSError, ValueError), match="nerforge_token_classifier"):  # refused, never a random head
        pipeline("token-classification", model=str(head_model))


def test_a_head_model_of_the_first_layout_still_loads(
    head_model: Path, corpus: dict[str, Path], tmp_path: Path
) -> None:
    """Directories written before the head became a PreTrainedModel: encoder/config.json, no config.json."""
    import shutil

    old = tmp_path / "old"
    shutil.copytree(head_model, old)
    config = json.loads((old / "config.json").read_text())
    (old / "encoder").mkdir()
    (old / "encoder" / "config.json").write_text(json.dumps(config["encoder"]))
    (old / "config.json").unlink()
    words, _, docs = read_docs(corpus["dev"])
    now = Tagger.load(head_model, progress=False).predict_words(words, doc_ids=docs)
    assert Tagger.load(old, progress=False).predict_words(words, doc_ids=docs) == now


def test_head_model_loads_and_predicts_with_context(head_model: Path, corpus: dict[str, Path]) -> None:
    tagger = Tagger.load(head_model, progress=False)
    assert tagger.context_width == 1 and tagger.plan.spec.crf
    words, _, docs = read_docs(corpus["dev"])
    with_context = tagger.predict_words(words, doc_ids=docs)
    alone = tagger.predict_words(words)
    assert [len(p) for p in with_context] == [len(w) for w in words] == [len(p) for p in alone]
    # the context is really there: the first sentence's window holds its neighbour's pieces, labelled nowhere
    plan, tokenizer = tagger.plan, tagger.engine.tokenizer
    contexts = sentence_contexts(words[:2], docs[:2], 1)
    assert plan.contexts(words[:2], docs[:2]) == contexts
    first = plan.encode(tokenizer, words[:2], contexts=contexts).windows[0]
    bare = plan.encode(tokenizer, words[:2]).windows[0]
    assert len(first.input_ids) > len(bare.input_ids) and first.first_piece_of.keys() == bare.first_piece_of.keys()
    # predictions are valid IOB2 and the same as through the in-memory model
    for p in with_context:
        for prev, tag in zip(("O", *p.tags), p.tags, strict=False):
            assert not tag.startswith("I-") or prev[2:] == tag[2:]
    # serving goes through the same Tagger
    from nerforge.serving.predictor import load_predictor

    served = load_predictor(head_model)
    assert served.predict(["We need Go and code review ."])[0] == tagger.predict(["We need Go and code review ."])[0]


def test_evaluate_cli_uses_documents(head_model: Path, corpus: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "eval"
    assert main(["evaluate", str(head_model), str(corpus["dev"]), "--output", str(out), "--no-plots"]) == 0
    scores = json.loads((out / "metrics.json").read_text())
    from nerforge.evaluation import evaluate

    words, gold, docs = read_docs(corpus["dev"])
    tagger = Tagger.load(head_model, progress=False)
    expected = evaluate(gold, [list(p.tags) for p in tagger.predict_words(words, doc_ids=docs)])
    assert scores["micro"]["f1"] == pytest.approx(expected.micro.f1)
    assert scores["micro"]["f1"] == pytest.approx(ModelMeta.load(head_model).metrics["test"]["micro"]["f1"])


def test_onnx_export_of_head_model_matches_torch(head_model: Path, corpus: dict[str, Path], tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    out = tmp_path / "onnx"
    assert main(["export", str(head_model), "--onnx", "--output", str(out), "--exporter", "torchscript"]) == 0
    from nerforge.model_dir import FEATURES_INPUT

    onnx_tagger = Tagger.load(out, progress=False)
    assert FEATURES_INPUT in {i.name for i in onnx_tagger.engine.backend.session.get_inputs()}
    assert json.loads((out / "parity.json").read_text())["tag_agreement"] == 1.0
    torch_tagger = Tagger.load(head_model, progress=False)
    words, _, docs = read_docs(corpus["dev"])
    long = [w for ws in words for w in ws] * 3  # longer than one 48-piece window
    for kwargs in ({"doc_ids": docs}, {}):
        expected = [p.tags for p in torch_tagger.predict_words([*words, long], **kwargs | _pad(kwargs))]
        got = [p.tags for p in onnx_tagger.predict_words([*words, long], **kwargs | _pad(kwargs))]
        assert got == expected
    again = Tagger.load(out, progress=False)  # a reload decodes alike (CRF scores from nerforge.json)
    assert [p.tags for p in again.predict_words(words, doc_ids=docs)] == [
        p.tags for p in torch_tagger.predict_words(words, doc_ids=docs)
    ]


def _pad(kwargs: dict[str, list[str | None]]) -> dict[str, list[str | None]]:
    return {"doc_ids": [*kwargs["doc_ids"], None]} if "doc_ids" in kwargs else {}


def test_plain_head_with_class_weights_and_context_stays_a_transformers_model(
    corpus: dict[str, Path], tiny_encoder: Path, tmp_path: Path
) -> None:
    out = train(
        corpus,
        tiny_encoder,
        tmp_path / "plain",
        ["model.class_weights=balanced", "model.context_sentences=1", "model.features=[]"],
    )
    meta = ModelMeta.load(out)
    assert meta.head == "softmax+context1" and "crf" not in meta.extra
    assert (out / "config.json").is_file() and not (out / "encoder").exists()
    assert "library_name: transformers" in (out / "README.md").read_text()
    from transformers import pipeline

    found = pipeline("token-classification", model=str(out))("We need Python .")
    assert all(e["entity"] in meta.tags for e in found)
    tagger = Tagger.load(out, progress=False)
    assert tagger.context_width == 1
    words, _, docs = read_docs(corpus["dev"])
    assert len(tagger.predict_words(words, doc_ids=docs)) == len(words)
