"""Training windows: every word's label sits on its first subword, in exactly one window, for tricky input."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from nerforge.alignment import IGNORE_INDEX
from nerforge.data.convert import corpus_stats
from nerforge.errors import ConfigError, DataFormatError
from nerforge.modeling.head import HeadSpec
from nerforge.modeling.plan import HeadPlan
from nerforge.training.callbacks import epoch_table
from nerforge.training.collate import EpochLengthGroupedSampler, PaddingCollator
from nerforge.training.dataset import (
    DROPPED_WINDOWS,
    UNSEEN_ENTITIES,
    build_split,
    continuation_tag,
    resolve_labels,
    split_predictions,
)
from nerforge.types import Example, LabelSet

LABELS = LabelSet.from_types(["SKILL", "TECH"])
GIANT = "supercalifragilisticexpialidocious"


@pytest.fixture(scope="module")
def tokenizer(tiny_encoder: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_encoder)


def ex(pairs: list[tuple[str, str]], line: int = 1) -> Example:
    return Example(tuple(w for w, _ in pairs), tuple(t for _, t in pairs), source="mem.conll", line=line)


def plan(max_length: int, stride: int) -> HeadPlan:
    return HeadPlan(HeadSpec(), LABELS.tags, max_length, stride)


def word_tags(split) -> list[list[str]]:
    """Decode the window labels themselves, as if the model had predicted them perfectly, through the plan."""
    num = len(LABELS.tags)
    logits = []
    for enc in split.inputs.windows:
        row = np.zeros((len(enc.labels), num))
        for pos, label in enumerate(enc.labels):
            if label != IGNORE_INDEX:
                row[pos, label] = 10.0
        logits.append(row)
    return [list(p.tags) for p in split_predictions(split, plan(8, 2), logits)]


def owned_labels(split) -> list[dict[int, int]]:
    """Per example: word index -> the label id on its first subword, collected over all windows."""
    out: list[dict[int, int]] = [{} for _ in split.examples]
    for enc in split.inputs.windows:
        for word, pos in enc.first_piece_of.items():
            assert word not in out[enc.window.example], "a word is labelled by two windows"
            out[enc.window.example][word] = enc.labels[pos]
    return out


def test_labels_sit_on_first_subword(tokenizer) -> None:
    example = ex([("Kubernetes", "B-TECH"), ("and", "O"), ("data", "B-SKILL"), ("kubernetes", "I-SKILL")])
    split = build_split("train", [example], tokenizer, LABELS.label2id, plan(64, 8))
    (enc,) = split.inputs.windows
    pieces = tokenizer.convert_ids_to_tokens(enc.input_ids)
    assert pieces[0] == "[CLS]" and pieces[-1] == "[SEP]"
    labelled = [(pieces[i], LABELS.id2label[label]) for i, label in enumerate(enc.labels) if label != IGNORE_INDEX]
    assert labelled == [("ku", "B-TECH"), ("and", "O"), ("data", "B-SKILL"), ("ku", "I-SKILL")]
    assert len(enc.labels) == len(enc.input_ids)


def test_label_all_subwords_turns_b_into_i_on_continuations(tokenizer) -> None:
    example = ex([("Kubernetes", "B-TECH"), ("rocks", "O")])
    split = build_split("train", [example], tokenizer, LABELS.label2id, plan(64, 8), label_all_subwords=True)
    labels = [LABELS.id2label[x] for x in split.inputs.windows[0].labels if x != IGNORE_INDEX]
    assert labels == ["B-TECH", "I-TECH", "I-TECH", "I-TECH", "O"]
    assert continuation_tag("B-X") == "I-X" and continuation_tag("I-X") == "I-X" and continuation_tag("O") == "O"


def test_words_without_subwords_are_counted_and_filled(tokenizer) -> None:
    example = ex(
        [("Python", "B-TECH"), ("\x1a", "O"), (" ", "O"), ("data", "B-SKILL"), ("\x1a", "I-SKILL"), ("work", "I-SKILL")]
    )
    alone = ex([("\x1a", "B-TECH")], line=9)  # an entity the model can never see
    split = build_split("dev", [example, alone], tokenizer, LABELS.label2id, plan(64, 8))
    assert split.stats.empty_words == 4
    assert split.stats.extra[UNSEEN_ENTITIES] == 1
    assert split.stats.extra[DROPPED_WINDOWS] == 1  # the sentence with no piece at all has no window
    labels = owned_labels(split)
    assert sorted(labels[0]) == [0, 3, 5]  # only words with pieces are labelled
    assert [LABELS.id2label[labels[0][w]] for w in (0, 3, 5)] == ["B-TECH", "B-SKILL", "I-SKILL"]
    # perfect predictions come back as the gold tags; the empty word inside the entity continues it
    assert word_tags(split) == [list(example.tags), ["O"]]


def test_long_sentence_is_windowed_without_losing_a_word(tokenizer) -> None:
    rng = random.Random(3)
    vocab = [("Python", "B-TECH"), ("and", "O"), ("team", "O"), ("Kubernetes", "B-TECH"), ("with", "O")]
    pairs = [rng.choice(vocab) for _ in range(300)]
    pairs[100:103] = [("data", "B-SKILL"), ("analysis", "I-SKILL"), ("skills", "I-SKILL")]
    example = ex(pairs)
    split = build_split("train", [example], tokenizer, LABELS.label2id, plan(32, 8))
    assert split.stats.windowed_examples == 1
    assert len(split.inputs.windows) == split.stats.windows > 10
    assert all(len(enc.input_ids) <= 32 for enc in split.inputs.windows)
    labels = owned_labels(split)[0]
    assert sorted(labels) == list(range(300))  # every word labelled exactly once
    assert [LABELS.id2label[labels[i]] for i in range(300)] == list(example.tags)
    assert word_tags(split) == [list(example.tags)]


def test_giant_word_is_clipped_and_counted(tokenizer) -> None:
    example = ex([("a", "O"), (GIANT, "B-SKILL"), ("b", "O")])
    assert len(tokenizer.tokenize(GIANT)) > 6
    split = build_split("train", [example], tokenizer, LABELS.label2id, plan(8, 2))
    assert split.stats.long_words == 1
    assert all(len(enc.input_ids) <= 8 for enc in split.inputs.windows)
    labels = owned_labels(split)[0]
    assert [LABELS.id2label[labels[i]] for i in range(3)] == ["O", "B-SKILL", "O"]
    assert word_tags(split) == [list(example.tags)]


def test_unknown_tag_names_file_and_line(tokenizer) -> None:
    example = Example(("a", "b"), ("O", "B-PERSON"), source="dev.conll", line=4, token_lines=(4, 5))
    with pytest.raises(DataFormatError, match=r"^dev.conll:5: tag 'B-PERSON' is not among"):
        build_split("dev", [example], tokenizer, LABELS.label2id, plan(16, 2))


def test_labels_are_the_union_of_all_splits() -> None:
    train = [ex([("a", "B-TECH")])]
    dev = [ex([("b", "B-SOFTSKILL")], line=7)]
    assert resolve_labels({"train": train, "dev": dev}).types == ("SOFTSKILL", "TECH")
    assert resolve_labels({"train": train}, ["TECH", "SKILL"]).types == ("SKILL", "TECH")
    with pytest.raises(ConfigError, match=r"mem.conll:7: entity type 'SOFTSKILL' is not in data.labels"):
        resolve_labels({"train": train, "dev": dev}, ["TECH"])


def test_data_summary_counts_entities() -> None:
    summary = corpus_stats([ex([("a", "B-TECH"), ("b", "I-TECH"), ("c", "B-SKILL")])])
    assert summary.to_dict() == {"sentences": 1, "tokens": 3, "entities": {"SKILL": 1, "TECH": 1}}


def test_collator_pads_right_with_ignored_labels() -> None:
    batch = PaddingCollator(pad_token_id=0)(
        [{"input_ids": [101, 5, 102], "labels": [-100, 1, -100]}, {"input_ids": [101, 102], "labels": [-100, -100]}]
    )
    assert batch["input_ids"].tolist() == [[101, 5, 102], [101, 102, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert batch["labels"].tolist() == [[-100, 1, -100], [-100, -100, -100]]
    assert PaddingCollator(0, pad_to_multiple_of=8)([{"input_ids": [1]}])["input_ids"].shape == (1, 8)


def test_length_grouped_order_depends_only_on_seed_and_epoch() -> None:
    lengths = [random.Random(0).randint(3, 60) for _ in range(200)]
    a, b = EpochLengthGroupedSampler(lengths, 8, seed=1), EpochLengthGroupedSampler(lengths, 8, seed=1)
    torch.manual_seed(123)  # the global RNG plays no part
    first = list(a)
    torch.manual_seed(999)
    assert list(b) == first and sorted(first) == list(range(200))
    a.set_epoch(1)
    assert list(a) != first


def test_epoch_table_merges_train_and_eval_logs() -> None:
    history = [
        {"loss": 1.5, "learning_rate": 1e-4, "epoch": 1.0, "step": 5},
        {"eval_loss": 1.2, "eval_f1": 0.3, "eval_precision": 0.4, "eval_recall": 0.25, "epoch": 1.0, "step": 5},
        {"loss": 0.9, "learning_rate": 5e-5, "epoch": 2.0, "step": 10},
        {"eval_loss": 1.0, "eval_f1": 0.5, "epoch": 2.0, "step": 10},
        {"train_runtime": 3.0, "train_loss": 1.2, "epoch": 2.0, "step": 10},
    ]
    rows = epoch_table(history)
    assert [(r["epoch"], r["train_loss"], r["eval_f1"]) for r in rows] == [(1.0, 1.5, 0.3), (2.0, 0.9, 0.5)]
