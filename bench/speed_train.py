"""Training speed, one recipe per process (started by ``bench/speed.py``; not meant to be run by hand).

Usage: ``python bench/speed_train.py RECIPE --train FILE.conll --out RESULT.json --steps N --batch-size B ...``

RECIPE ``nerforge`` runs ``nerforge train`` (through ``nerforge.cli.main``, no dev split, no tracking);
RECIPE ``plain-trainer`` is the textbook recipe: ``AutoModelForTokenClassification`` + ``Trainer`` +
``DataCollatorForTokenClassification``, labels on each word's first subword, sentences truncated at ``max_length``.
Both use the same encoder, data, steps, batch size, learning rate, seed and torch threads. The number reported is the
Trainer's own ``train_samples_per_second`` (samples = windows for nerforge, sentences for the plain recipe: the same
thing here, since no CoNLL sentence needs a second window at max_length 128), measured around ``Trainer.train``
only, so data reading and model writing do not count.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

RECIPES = ("nerforge", "plain-trainer")


def read_conll(path: str) -> tuple[list[list[str]], list[list[str]]]:
    words, tags, sent_w, sent_t = [], [], [], []
    for line in Path(path).read_text(encoding="utf-8").splitlines() + [""]:
        if not line.strip():
            if sent_w:
                words.append(sent_w)
                tags.append(sent_t)
            sent_w, sent_t = [], []
            continue
        token, tag = line.rsplit(" ", 1)
        sent_w.append(token)
        sent_t.append(tag)
    return words, tags


def run_nerforge(args: argparse.Namespace) -> dict[str, Any]:
    from nerforge.cli import main
    from nerforge.training import trainer as trainer_module

    captured: dict[str, Any] = {}
    original = trainer_module.NerTrainer.train

    def timed_train(self, *a, **kw):  # records the Trainer's own metrics, changes nothing
        output = original(self, *a, **kw)
        captured.update(output.metrics)
        return output

    trainer_module.NerTrainer.train = timed_train
    with tempfile.TemporaryDirectory() as tmp:
        argv = [
            "train",
            "--train", args.train,
            "--output", str(Path(tmp) / "model"),
            "--model", args.model,
            "--max-steps", str(args.steps),
            "--batch-size", str(args.batch_size),
            "--max-length", str(args.max_length),
            "--learning-rate", str(args.learning_rate),
            "--seed", "0",
            "--no-tracking",
            "--set", f"training.num_threads={args.threads}",
        ]  # fmt: skip
        code = main(argv)
    if code != 0 or not captured:
        raise SystemExit(f"nerforge train failed (exit {code})")
    return captured


def run_plain(args: argparse.Namespace) -> dict[str, Any]:
    import torch
    from transformers import (
        AutoModelForTokenClassification,
        AutoTokenizer,
        DataCollatorForTokenClassification,
        Trainer,
        TrainingArguments,
    )

    from nerforge.model_dir import resolve_model

    torch.set_num_threads(args.threads)
    words, tags = read_conll(args.train)
    labels = ["O"] + sorted({t for s in tags for t in s if t != "O"}, key=lambda t: (t[2:], t[0]))
    label2id = {t: i for i, t in enumerate(labels)}
    base = resolve_model(args.model)
    tokenizer = AutoTokenizer.from_pretrained(base)
    features = []
    for sent, sent_tags in zip(words, tags, strict=True):
        enc = tokenizer(sent, is_split_into_words=True, truncation=True, max_length=args.max_length)
        previous, label_ids = None, []
        for word_id in enc.word_ids():
            label_ids.append(-100 if word_id is None or word_id == previous else label2id[sent_tags[word_id]])
            previous = word_id
        features.append({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": label_ids})
    torch.manual_seed(0)
    model = AutoModelForTokenClassification.from_pretrained(
        base, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id=label2id
    )
    with tempfile.TemporaryDirectory() as tmp:
        training_args = TrainingArguments(
            output_dir=tmp,
            per_device_train_batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            max_steps=args.steps,
            save_strategy="no",
            report_to=[],
            use_cpu=True,
            seed=0,
            logging_steps=max(1, args.steps),
            disable_tqdm=True,
        )
        trainer = Trainer(
            model=model,
            args=training_args,
            train_dataset=features,
            data_collator=DataCollatorForTokenClassification(tokenizer),
        )
        return dict(trainer.train().metrics)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recipe", choices=RECIPES)
    parser.add_argument("--train", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--model", default="default")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    metrics = run_nerforge(args) if args.recipe == "nerforge" else run_plain(args)
    result = {
        "recipe": args.recipe,
        "steps": args.steps,
        "batch_size": args.batch_size,
        "max_length": args.max_length,
        "threads": args.threads,
        "train_runtime_s": metrics.get("train_runtime"),
        "samples_per_s": metrics.get("train_samples_per_second"),
        "steps_per_s": metrics.get("train_steps_per_second"),
    }
    Path(args.out).write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
