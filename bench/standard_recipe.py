"""The standard recipe that nerforge is measured against, as in transformers' token-classification example.

First-subword labels, a softmax head, ``truncation=True`` at the tokenizer's maximum (words past it are never
seen, and are scored as ``O``), AdamW with linear decay and no warm-up, the plain ``Trainer`` loop, no dev set.
Written here from the recipe's description (not copied), so that both sides share the same data reading and the
same scorer.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from transformers import (
    AutoModelForTokenClassification,
    AutoTokenizer,
    DataCollatorForTokenClassification,
    Trainer,
    TrainingArguments,
)

from nerforge.data.schemes import convert_tags
from nerforge.evaluation import evaluate
from nerforge.types import Example, LabelSet


@dataclass
class RecipeResult:
    f1: float
    precision: float
    recall: float
    train_seconds: float
    train_samples_per_second: float
    steps: int


def _encode(tokenizer, examples: Sequence[Example], label2id: dict[str, int] | None):
    enc = tokenizer([list(e.tokens) for e in examples], is_split_into_words=True, truncation=True)
    rows = []
    for i, ex in enumerate(examples):
        word_ids = enc.word_ids(i)
        row = {"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i]}
        if label2id is not None:
            labels, prev = [], None
            for w in word_ids:
                labels.append(-100 if w is None or w == prev else label2id[ex.tags[w]])
                prev = w
            row["labels"] = labels
        rows.append((row, word_ids))
    return rows


def run_standard_recipe(
    model_name: str,
    train: Sequence[Example],
    test: Sequence[Example],
    labels: LabelSet,
    *,
    batch_size: int = 32,
    learning_rate: float = 5e-5,
    epochs: float = 1.0,
    seed: int = 42,
    work_dir: str,
) -> RecipeResult:
    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(model_name)
    model = AutoModelForTokenClassification.from_pretrained(
        model_name, num_labels=len(labels.tags), id2label=labels.id2label, label2id=labels.label2id
    )
    train_rows = [row for row, _ in _encode(tokenizer, train, labels.label2id)]
    args = TrainingArguments(
        output_dir=work_dir,
        per_device_train_batch_size=batch_size,
        learning_rate=learning_rate,
        num_train_epochs=epochs,
        seed=seed,
        save_strategy="no",
        report_to="none",
        logging_strategy="no",
        disable_tqdm=True,
        use_cpu=not torch.cuda.is_available(),
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_rows,
        data_collator=DataCollatorForTokenClassification(tokenizer),
    )
    start = time.perf_counter()
    out = trainer.train()
    seconds = time.perf_counter() - start
    gold, pred = predict_truncated(model, tokenizer, test, labels)
    result = evaluate(gold, pred)
    return RecipeResult(
        f1=result.micro.f1,
        precision=result.micro.precision,
        recall=result.micro.recall,
        train_seconds=seconds,
        train_samples_per_second=len(train) * epochs / seconds,
        steps=out.global_step,
    )


@torch.inference_mode()
def predict_truncated(model, tokenizer, examples: Sequence[Example], labels: LabelSet, batch_size: int = 64):
    """Word tags from the first subword of each word; words cut off by truncation are tagged ``O``."""
    model.eval()
    collator = DataCollatorForTokenClassification(tokenizer)
    gold, pred = [], []
    for start in range(0, len(examples), batch_size):
        chunk = examples[start : start + batch_size]
        rows = _encode(tokenizer, chunk, None)
        batch = collator([row for row, _ in rows])
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        ids = np.asarray(logits.argmax(-1))
        for k, (ex, (_, word_ids)) in enumerate(zip(chunk, rows, strict=True)):
            tags = ["O"] * len(ex.tokens)
            prev = None
            for pos, w in enumerate(word_ids):
                if w is not None and w != prev:
                    tags[w] = labels.id2label[int(ids[k, pos])]
                prev = w
            gold.append(list(ex.tags))
            pred.append(convert_tags(tags, "iob2"))  # conlleval-style repair, as seqeval's default mode scores
    return gold, pred
