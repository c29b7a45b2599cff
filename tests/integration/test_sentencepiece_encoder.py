"""A SentencePiece-only checkpoint (the DeBERTa-v3 layout: spm.model, no tokenizer.json, no model_max_length),
built in code, loads as a fast tokenizer and trains, and a text of thousands of words is tagged in windows."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from nerforge.cli import main

WORDS = "We need Paris and Berlin data analysis with Python Go Rust teams skills in the city of London".split()


@pytest.fixture(scope="module")
def deberta(tmp_path_factory: pytest.TempPathFactory) -> Path:
    spm = pytest.importorskip("sentencepiece")
    import torch
    from transformers import DebertaV2Config, DebertaV2Model

    directory = tmp_path_factory.mktemp("tiny-deberta")
    corpus = [" ".join(WORDS[i:] + WORDS[:i]) for i in range(len(WORDS))] * 30
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus), model_writer=model, vocab_size=48, model_type="unigram", pad_id=0, unk_id=3,
        bos_id=1, eos_id=2, user_defined_symbols=["[CLS]", "[SEP]", "[MASK]"], minloglevel=2,
    )  # fmt: skip
    (directory / "spm.model").write_bytes(model.getvalue())
    specials = {"bos_token": "[CLS]", "eos_token": "[SEP]", "unk_token": "<unk>", "sep_token": "[SEP]",
                "pad_token": "<pad>", "cls_token": "[CLS]", "mask_token": "[MASK]"}  # fmt: skip
    (directory / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": "DebertaV2Tokenizer", "do_lower_case": False, **specials})
    )
    torch.manual_seed(0)
    config = DebertaV2Config(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                             intermediate_size=64, max_position_embeddings=64, pad_token_id=0)  # fmt: skip
    DebertaV2Model(config).save_pretrained(directory)
    return directory


def test_spm_only_checkpoint_trains_and_tags_long_text(deberta: Path, tmp_path: Path) -> None:
    from nerforge.model_dir import load_tokenizer
    from nerforge.prediction import Tagger

    tokenizer = load_tokenizer(str(deberta))
    assert tokenizer.is_fast
    pieces = tokenizer.convert_ids_to_tokens(tokenizer(["Paris", "data"], is_split_into_words=True)["input_ids"])
    assert pieces[1].startswith("▁") and pieces[2].startswith("▁"), pieces

    train = tmp_path / "train.conll"
    train.write_text("".join(f"We\tO\nmet\tO\nin\tO\n{w}\tB-LOC\n\n" for w in ("Paris", "Berlin", "London")))
    out = tmp_path / "model"
    assert main(["train", "--train", str(train), "--output", str(out), "--model", str(deberta), "--max-steps", "2",
                 "--no-tracking"]) == 0  # fmt: skip
    assert json.loads((out / "nerforge.json").read_text())["max_length"] == 64  # the positions, not 10**30
    text = " ".join(WORDS * 200)
    entities = Tagger.load(out, progress=False).predict_text(text)
    assert all(text[e.start : e.end] == e.text for e in entities)
