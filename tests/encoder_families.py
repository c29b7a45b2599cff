"""Tiny random encoders of every tokenizer family users bring, built in code (no download): each function writes a
model directory (tokenizer files + random weights) the way its family's hub checkpoints look."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

WORDS = (
    "We need Paris and Berlin data analysis with Python Go Rust teams skills in the city of London "
    "Zürich café naïve Москва Санкт-Петербург 東京 北京 Apple apple ÉCOLE"
).split()
CORPUS = [" ".join(WORDS[i:] + WORDS[:i]) for i in range(len(WORDS))] * 20
SPECIALS_BERT = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}


def _wordpiece(directory: Path, *, lowercase: bool, tokenizer_cls: str) -> object:
    import transformers
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=lowercase, strip_accents=lowercase, handle_chinese_chars=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(CORPUS, trainers.WordPieceTrainer(vocab_size=300, special_tokens=SPECIALS_BERT))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    tok.decoder = decoders.WordPiece()
    fast = getattr(transformers, tokenizer_cls)(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]", do_lower_case=lowercase,
    )  # fmt: skip
    fast.model_max_length = 64
    fast.save_pretrained(directory)
    return fast


def _save(directory: Path, config_cls: str, model_cls: str, vocab: int, **extra: object) -> Path:
    import torch
    import transformers

    torch.manual_seed(0)
    config = getattr(transformers, config_cls)(vocab_size=vocab, **extra)
    getattr(transformers, model_cls)(config).save_pretrained(directory)
    return directory


def bert_cased(directory: Path) -> Path:
    tok = _wordpiece(directory, lowercase=False, tokenizer_cls="BertTokenizerFast")
    return _save(directory, "BertConfig", "BertModel", len(tok), max_position_embeddings=64, **TINY)


def multilingual_wordpiece(directory: Path) -> Path:
    tok = _wordpiece(directory, lowercase=False, tokenizer_cls="BertTokenizerFast")
    return _save(directory, "BertConfig", "BertModel", len(tok), max_position_embeddings=96, **TINY)


def distilbert(directory: Path) -> Path:
    tok = _wordpiece(directory, lowercase=True, tokenizer_cls="DistilBertTokenizerFast")
    return _save(directory, "DistilBertConfig", "DistilBertModel", len(tok), max_position_embeddings=64, dim=32,
                 n_layers=2, n_heads=2, hidden_dim=64)  # fmt: skip


def electra(directory: Path) -> Path:
    tok = _wordpiece(directory, lowercase=True, tokenizer_cls="ElectraTokenizerFast")
    return _save(directory, "ElectraConfig", "ElectraModel", len(tok), max_position_embeddings=64, embedding_size=16,
                 **TINY)  # fmt: skip


def roberta(directory: Path) -> Path:
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaTokenizerFast

    bpe = ByteLevelBPETokenizer()
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    bpe.train_from_iterator(CORPUS, vocab_size=500, min_frequency=1, special_tokens=specials)
    tok = RobertaTokenizerFast(tokenizer_object=bpe._tokenizer, bos_token="<s>", eos_token="</s>", sep_token="</s>",
                               cls_token="<s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>")  # fmt: skip
    tok.model_max_length = int(1e30)  # not declared: the limit must come from the positions
    tok.save_pretrained(directory)
    return _save(directory, "RobertaConfig", "RobertaModel", len(tok), max_position_embeddings=66, pad_token_id=1,
                 bos_token_id=0, eos_token_id=2, **TINY)  # fmt: skip  # 64 usable positions


def _sentencepiece(specials: list[str], **ids: int) -> bytes:
    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS), model_writer=model, vocab_size=90, model_type="unigram",
        user_defined_symbols=specials, minloglevel=2, character_coverage=1.0, hard_vocab_limit=False, **ids,
    )  # fmt: skip
    return model.getvalue()


def xlm_roberta(directory: Path) -> Path:
    from tokenizers import SentencePieceUnigramTokenizer, processors
    from transformers import XLMRobertaTokenizerFast

    unigram = SentencePieceUnigramTokenizer()
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    unigram.train_from_iterator(CORPUS, vocab_size=200, special_tokens=specials, unk_token="<unk>")
    backend = unigram._tokenizer
    backend.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    tok = XLMRobertaTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>", sep_token="</s>",
                                  cls_token="<s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>")  # fmt: skip
    tok.model_max_length = 64
    tok.save_pretrained(directory)
    return _save(directory, "XLMRobertaConfig", "XLMRobertaModel", len(tok), max_position_embeddings=66,
                 pad_token_id=1, bos_token_id=0, eos_token_id=2, **TINY)  # fmt: skip


def deberta_v3(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "spm.model").write_bytes(
        _sentencepiece(["[CLS]", "[SEP]", "[MASK]"], pad_id=0, unk_id=3, bos_id=1, eos_id=2)
    )
    specials = {"bos_token": "[CLS]", "eos_token": "[SEP]", "unk_token": "<unk>", "sep_token": "[SEP]",
                "pad_token": "<pad>", "cls_token": "[CLS]", "mask_token": "[MASK]"}  # fmt: skip
    config = {"tokenizer_class": "DebertaV2Tokenizer", "do_lower_case": False, **specials}  # no model_max_length
    (directory / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return _save(directory, "DebertaV2Config", "DebertaV2Model", 128, max_position_embeddings=64, pad_token_id=0,
                 **TINY)  # fmt: skip


FAMILIES: dict[str, Callable[[Path], Path]] = {
    "bert-cased": bert_cased,
    "distilbert": distilbert,
    "electra": electra,
    "multilingual-wordpiece": multilingual_wordpiece,
    "roberta": roberta,
    "xlm-roberta": xlm_roberta,
    "deberta-v3": deberta_v3,
}
