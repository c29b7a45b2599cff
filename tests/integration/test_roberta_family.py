"""A byte-level BPE encoder (RoBERTa family), built in code: pre-split words keep their word-start mark in training,
prediction and the saved tokenizer, and its positions (which start after the padding index) limit the windows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nerforge.cli import main

WORDS = "We need Paris and Berlin data analysis with Python Go Rust teams skills in the city of London".split()


@pytest.fixture(scope="module")
def roberta(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaConfig, RobertaModel, RobertaTokenizerFast

    directory = tmp_path_factory.mktemp("tiny-roberta")
    bpe = ByteLevelBPETokenizer()  # add_prefix_space=False, as RoBERTa's own tokenizer
    corpus = [" ".join(WORDS[i:] + WORDS[:i]) for i in range(len(WORDS))] * 20
    bpe.train_from_iterator(
        corpus, vocab_size=400, min_frequency=1, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    )
    tokenizer = RobertaTokenizerFast(tokenizer_object=bpe._tokenizer, bos_token="<s>", eos_token="</s>",
                                     sep_token="</s>", cls_token="<s>", unk_token="<unk>", pad_token="<pad>",
                                     mask_token="<mask>")  # fmt: skip
    tokenizer.model_max_length = int(1e30)  # like a checkpoint that does not declare one
    tokenizer.save_pretrained(directory)
    torch.manual_seed(0)
    config = RobertaConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=64, max_position_embeddings=34, pad_token_id=1, bos_token_id=0,
                           eos_token_id=2)  # fmt: skip  # positions 2..33: 32 usable
    RobertaModel(config).save_pretrained(directory)
    return directory


def test_pre_split_words_keep_their_word_start_mark(roberta: Path) -> None:
    from nerforge.model_dir import load_tokenizer

    tokenizer = load_tokenizer(str(roberta))
    pieces = tokenizer.convert_ids_to_tokens(tokenizer(["Paris", "data"], is_split_into_words=True)["input_ids"])
    assert pieces[1].startswith("Ġ") and pieces[-2].startswith("Ġ"), pieces


def test_train_predict_and_the_saved_tokenizer_agree(roberta: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    from nerforge.model_dir import load_tokenizer
    from nerforge.prediction import Tagger

    train = tmp_path / "train.conll"
    lines = []
    for w in ("Paris", "Berlin", "London"):
        lines += ["We\tO", "need", "in\tO", f"{w}\tB-LOC", ""]
    train.write_text("\n".join(x if "\t" in x or not x else f"{x}\tO" for x in lines) + "\n", encoding="utf-8")
    out = tmp_path / "model"
    assert main(["train", "--train", str(train), "--output", str(out), "--model", str(roberta), "--max-steps", "2",
                 "--no-tracking", "--set", "model.max_length=64"]) == 0  # fmt: skip
    meta = json.loads((out / "nerforge.json").read_text())
    assert meta["max_length"] == 32  # 34 positions minus pad_token_id + 1, not 34
    assert json.loads((out / "tokenizer_config.json").read_text()).get("add_prefix_space") is True
    words = ["We", "need", "Paris"]
    ours = load_tokenizer(str(out))(words, is_split_into_words=True)["input_ids"]
    theirs = AutoTokenizer.from_pretrained(out)(words, is_split_into_words=True)["input_ids"]
    assert ours == theirs  # what transformers.pipeline feeds is what nerforge fed in training

    tagger = Tagger.load(out, progress=False)
    text = " ".join(WORDS * 200)  # thousands of words: many 32-piece windows, no position past the table
    entities = tagger.predict_text(text)
    assert all(text[e.start : e.end] == e.text for e in entities)
