"""Every tokenizer family users bring, as a tiny random encoder built in code (tests/encoder_families.py): train
(plain and shape+CRF heads) → evaluate → predict text in many scripts and of any length → ONNX fp32 and int8 with
parity → transformers.pipeline loads the plain-head model and feeds it the same ids as nerforge."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from encoder_families import FAMILIES
from nerforge.cli import main

TEXTS = [
    "We met in Zürich at the café, naïve as we were.",
    "Встреча прошла в Москве и Санкт-Петербурге.",
    "我们在東京和北京见面。",
    "🎉🎉 Joe met Anna in Paris 🇫🇷 with Apple people",
    " ".join(["Paris and Berlin data analysis with Python"] * 430),  # 3,010 words
]


def _corpus(path: Path) -> Path:
    lines = []
    for city in ("Paris", "Berlin", "London", "Zürich", "Москва", "東京"):
        lines += [f"We\tO\nmet\tO\nin\tO\n{city}\tB-LOC\n"]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@pytest.mark.parametrize("family", list(FAMILIES))
def test_encoder_family_end_to_end(family: str, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from transformers import pipeline

    from nerforge.model_dir import load_tokenizer
    from nerforge.prediction import Tagger

    base = FAMILIES[family](tmp_path / "base")
    data = _corpus(tmp_path / "train.conll")
    common = [
        "--train",
        str(data),
        "--dev",
        str(data),
        "--model",
        str(base),
        "--max-steps",
        "3",
        "--no-tracking",
        "--head",
        "plain",
    ]
    plain, head = tmp_path / "plain", tmp_path / "head"
    assert main(["train", *common, "--output", str(plain)]) == 0
    assert (
        main(["train", *common, "--output", str(head), "--set", "model.features=[shape]", "--set", "model.crf=true"])
        == 0
    )
    assert main(["evaluate", str(plain), str(data), "--output", str(tmp_path / "eval"), "--no-plots"]) == 0

    for model in (plain, head):
        tagger = Tagger.load(model, progress=False)
        for text in TEXTS:
            words = tagger.words(text)
            assert all(text[w.start : w.end] == w.text for w in words)
            assert len(tagger.predict_words([[w.text for w in words]])[0]) == len(words)  # no word lost
            for entity in tagger.predict_text(text):
                assert text[entity.start : entity.end] == entity.text

    for model in (plain, head):
        for quantize in ([], ["--quantize", "int8"]):
            out = tmp_path / f"{model.name}-onnx{'-int8' if quantize else ''}"
            assert main(["export", str(model), "--onnx", "--output", str(out), *quantize]) == 0
            parity = json.loads((out / "parity.json").read_text())
            if not quantize:
                assert parity["tag_agreement"] == 1.0

    words = ["We", "met", "in", "Zürich", "and", "Москва", "東京"]
    ner = pipeline("token-classification", model=str(plain))
    assert (
        ner.tokenizer(words, is_split_into_words=True)["input_ids"]
        == load_tokenizer(str(plain))(words, is_split_into_words=True)["input_ids"]
    )
    assert all(e["entity"] in json.loads((plain / "nerforge.json").read_text())["tags"] for e in ner(" ".join(words)))


@pytest.mark.parametrize("family", ["distilbert", "xlm-roberta", "deberta-v3"])
@pytest.mark.parametrize("head", ["layered", "span"])
def test_layered_and_span_heads_on_other_encoder_families(family: str, head: str, tmp_path: Path) -> None:
    """The heads of overlapping entities on encoders without token type ids (DistilBERT), with SentencePiece
    (XLM-R) and with relative positions (DeBERTa-v3): train, export to ONNX (tags agree with torch on every window)
    and tag text with accents and emoji alike on both backends, each entity's text at its offsets."""
    pytest.importorskip("onnxruntime")
    from test_layered_model import _write

    from nerforge.prediction import Tagger

    base = FAMILIES[family](tmp_path / "base")
    train = _write(tmp_path / "train.conll", 16, 1)
    columns = ["--tag-column", "1", "--tag-column", "2"]
    extra = ["--layer-names", "skill,knowledge"] if head == "layered" else ["--head", "span"]
    model, onnx = tmp_path / "model", tmp_path / "onnx"
    assert main(["train", "--train", str(train), "--dev", str(train), "--model", str(base), "--max-steps", "3",
                 "--no-tracking", "--no-progress", "--output", str(model), *columns, *extra]) == 0  # fmt: skip
    meta = json.loads((model / "nerforge.json").read_text(encoding="utf-8"))["extra"]["head"]
    assert meta.get("span", False) is (head == "span") and bool(meta.get("layers")) is (head == "layered")
    assert main(["export", str(model), "--onnx", "--output", str(onnx)]) == 0
    assert json.loads((onnx / "parity.json").read_text(encoding="utf-8"))["tag_agreement"] == 1.0
    for text in ("We like deploying Go services and Java 🎉 in Zürich .", TEXTS[1]):
        found = Tagger.load(model, progress=False).predict_text(text)
        assert all(text[e.start : e.end] == e.text for e in found)
        onnx_found = Tagger.load(onnx, backend="onnx", progress=False).predict_text(text)
        assert [(e.start, e.end, e.label, e.layer) for e in onnx_found] == [
            (e.start, e.end, e.label, e.layer) for e in found
        ]
