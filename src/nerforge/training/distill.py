"""``distill(config)``: a smaller, faster student learns from a trained teacher (``nerforge distill``).

The student is the teacher with fewer transformer layers (:func:`nerforge.modeling.student.shrink`: the kept layers,
the embeddings, the classifier, the shape features and the CRF keep the teacher's weights) and the same head, so it
starts close to the teacher and is an ordinary nerforge model directory at the end (evaluate, predict, export,
serve and Ray use it unchanged). It is trained on

* the teacher's word distributions at a temperature (soft targets: the softmax of the emissions, or each word's
  CRF marginals), computed once before training, over the training sentences and any unlabelled texts;
* the gold tags of the training sentences, with weight ``1 - alpha``

(``alpha · T² · KL(teacher ‖ student) + (1 - alpha) · the head's loss``). Everything else is ``nerforge train``'s:
the run's stages (:func:`nerforge.training.run.train`, handed a ``customise`` step), windows, checkpoints and
``--resume``, early stopping on dev F1, MLflow, the report, the atomic output directory. ``nerforge.json`` says
it is a distilled student (``extra.distillation``: the teacher, its layers and the kept ones, temperature, alpha,
unlabelled sentences) and the model card says so first.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nerforge.alignment import IGNORE_INDEX
from nerforge.config import DistillConfig, TrainConfig
from nerforge.errors import ConfigError, ModelError, UsageError
from nerforge.model_dir import ModelMeta, quiet_transformers
from nerforge.modeling.model import load_trained
from nerforge.modeling.student import (
    distillation_loss,
    ffn_width,
    hidden_loss,
    layer_stack,
    shrink,
    soft_targets,
    spread_layers,
)
from nerforge.prediction.io import read_inputs
from nerforge.prediction.words import tokenize_words
from nerforge.training.collate import PaddingCollator
from nerforge.training.dataset import WindowDataset, build_split
from nerforge.training.output import TrainResult
from nerforge.training.stages import FitInputs, Prepared
from nerforge.training.teacher import load_teacher_meta
from nerforge.training.trainer import NerTrainer
from nerforge.types import Example

logger = logging.getLogger(__name__)

TARGETS_BATCH = 32  # windows per teacher forward pass when computing the soft targets
META_KEY = "distillation"
SMALL_TRANSFER = 5000  # training sentences below which a distillation without unlabelled texts is warned about


def distill(config: TrainConfig, *, resume: bool = False, progress: bool | None = None) -> TrainResult:
    """Train the student of ``config.distill`` and write its model directory ``config.output.dir``.

    ``config``'s model section and labels must be the teacher's (:func:`teacher_settings`; the CLI sets them).

    Raises:
        ConfigError, DataFormatError, ModelError, UsageError: with a message that says what to fix.
    """
    from nerforge.training.run import train

    settings = config.distill
    if settings is None:
        raise ConfigError("no distill section: give the teacher (nerforge distill TEACHER ...)")
    meta = load_teacher_meta(settings.teacher)
    if meta.layers:
        raise UsageError(
            f"{settings.teacher} is a layered model ({', '.join(n for n, _ in meta.layers)}); "
            "distilling one is not supported yet: distill a model of one layer (--layer NAME)"
        )
    if meta.span_head:
        raise UsageError(
            f"{settings.teacher} is a span head (nested entities); distillation learns a tagger's "
            "word distributions and does not support it yet: distill a model of another head"
        )
    if config.model.class_weights:
        raise ConfigError(
            "model.class_weights does not apply to distillation (the teacher's distributions weigh the tags)"
        )
    for path in settings.unlabeled:
        if not Path(path).is_file():
            raise UsageError(f"{path}: no such unlabeled file")
    if config.output.dir is not None and Path(config.output.dir).resolve() == Path(settings.teacher).resolve():
        raise UsageError(f"--output {config.output.dir} is the teacher; choose another directory for the student")
    bars = sys.stderr.isatty() if progress is None else progress
    return train(
        config,
        resume=resume,
        progress=bars,
        customise=lambda prepared: student_inputs(prepared, settings, meta, progress=bars),
    )


def student_inputs(prepared: Prepared, settings: DistillConfig, meta: ModelMeta, *, progress: bool) -> FitInputs:
    """The student, its training items (gold windows and unlabelled windows, each with the teacher's distributions)
    and its Trainer: what ``fit`` trains instead of a fresh model."""
    if list(prepared.tags) != list(meta.tags):
        raise ConfigError(
            f"the data's tags {list(prepared.tags)} differ from the teacher's {list(meta.tags)}; the "
            "student learns the teacher's labels (data.labels)"
        )
    with quiet_transformers():
        teacher = load_trained(settings.teacher, meta).eval()
    _, total = layer_stack(teacher)
    keep = check_student_size(total, settings)
    teacher_ffn = ffn_width(teacher) if settings.ffn_size is not None else None
    student = shrink(teacher, keep, settings.ffn_size)
    student.train()
    sizes = (_parameters(teacher), _parameters(student))
    narrower = f", feed-forward {teacher_ffn} -> {settings.ffn_size} units" if settings.ffn_size is not None else ""
    logger.info(
        "student: %d of the teacher's %d layers (%s)%s, %.1fM -> %.1fM parameters",
        len(keep),
        total,
        ", ".join(map(str, keep)),
        narrower,
        sizes[0] / 1e6,
        sizes[1] / 1e6,
    )

    tokenizer, plan = prepared.tokenizer, prepared.plan
    collator = PaddingCollator(tokenizer.pad_token_id or 0)
    train_split = prepared.features["train"]
    parts = [(train_split.dataset(), True)]
    unlabeled = read_unlabeled(settings.unlabeled, settings.text_column)
    warn_without_unlabeled(len(prepared.splits["train"]), len(unlabeled), augment=settings.augment)
    if settings.augment:
        copies = augmented_copies(
            prepared.splits["train"], settings.augment, settings.augment_rate, seed=prepared.config.training.seed
        )
        logger.info(
            "augmented: %d copies of the training sentences (%.0f%% of words swapped)",
            len(copies),
            100 * settings.augment_rate,
        )
        unlabeled = unlabeled + copies
    if unlabeled:
        label2id = {t: i for i, t in enumerate(meta.tags)}
        features = build_split(
            "unlabeled",
            unlabeled,
            tokenizer,
            label2id,
            plan,
            label_all_subwords=prepared.config.model.label_all_subwords,
        )
        parts.append((features.dataset(), False))
    states = keep if settings.hidden_weight > 0 else None
    targets = [
        teacher_targets(teacher, ds, collator, settings.temperature, layers=states, progress=progress)
        for ds, _ in parts
    ]
    dataset = DistillDataset([(ds, t, gold, h) for (ds, gold), (t, h) in zip(parts, targets, strict=True)])
    del teacher
    extra = {
        META_KEY: {
            "teacher": str(Path(settings.teacher).resolve()),
            "teacher_layers": total,
            "student_layers": len(keep),
            "kept_layers": keep,
            "teacher_ffn_size": teacher_ffn,
            "student_ffn_size": settings.ffn_size,
            "teacher_parameters": sizes[0],
            "student_parameters": sizes[1],
            "temperature": settings.temperature,
            "alpha": settings.alpha,
            "unlabeled_files": [str(p) for p in settings.unlabeled],
            "unlabeled_sentences": len(unlabeled),
            "augment": settings.augment,
            "augment_rate": settings.augment_rate,
            "hidden_weight": settings.hidden_weight,
            "teacher_metrics": meta.metrics,
        }
    }
    teacher_f1 = _test_f1(meta)
    summary = (
        f"A distilled student of `{settings.teacher}` (made by `nerforge distill`): {len(keep)} of its {total} "
        f"transformer layers ({', '.join(map(str, keep))}){narrower}, {sizes[1] / 1e6:.1f}M of its "
        f"{sizes[0] / 1e6:.1f}M "
        f"parameters, starting from its weights."
    )
    note = (
        f"Distillation: the teacher's word distributions at temperature {settings.temperature:g} (weight "
        f"{settings.alpha:g}) and the gold tags (weight {1 - settings.alpha:g})"
        + (
            f", each student layer's token vectors against its teacher layer's (weight {settings.hidden_weight:g})"
            if settings.hidden_weight > 0
            else ""
        )
        + f", over {len(dataset)} windows "
        f"({len(unlabeled)} unlabelled texts)"
        + (f"; the teacher's test F1 was {teacher_f1:.4f}." if teacher_f1 is not None else ".")
    )
    return FitInputs(
        model=student,
        train_dataset=dataset,
        lengths=dataset.lengths,
        collator=DistillCollator(tokenizer.pad_token_id or 0, num_tags=len(meta.tags)),
        trainer_class=DistillTrainer,
        trainer_kwargs={
            "temperature": settings.temperature,
            "alpha": settings.alpha,
            "hidden_weight": settings.hidden_weight,
        },
        extra_meta=extra,
        notes=[note],
        summary=summary,
        base_model=meta.base_model or None,
    )


def warn_without_unlabeled(train_sentences: int, unlabeled_texts: int, *, augment: int = 0) -> bool:
    """Warn (and return ``True``) when a small training set comes without unlabelled texts: measured on three kinds of
    data, a 3-layer student of 800 sentences fell 3-5 F1 points behind its teacher without them, and unlabelled
    texts of the same domain closed most of that (docs/benchmarks.md, *Distillation with the defaults*)."""
    if unlabeled_texts or train_sentences >= SMALL_TRANSFER:
        return False
    logger.warning(
        "distilling from %d training sentences and no unlabelled texts: on data this small students fall 3-5 F1 "
        "points behind their teachers, and 2,000-4,000 unlabelled texts of the same kind brought them within 1.5 "
        "in our benchmarks (docs/benchmarks.md, Distillation); give --unlabeled FILE (texts, one per line)%s",
        train_sentences,
        "" if augment else ", or at least --augment 2",
    )
    return True


def _test_f1(meta: ModelMeta) -> float | None:
    test = meta.metrics.get("test") if isinstance(meta.metrics, dict) else None
    micro = test.get("micro") if isinstance(test, dict) else None
    f1 = micro.get("f1") if isinstance(micro, dict) else None
    return float(f1) if isinstance(f1, (int, float)) else None


def _parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def augmented_copies(examples: Sequence[Example], copies: int, rate: float, *, seed: int = 0) -> list[Example]:
    """``copies`` variants of every sentence of ``examples`` in which each word is, with probability ``rate``,
    swapped for a word drawn from all the words of ``examples`` (seeded): unlabelled texts near the training data,
    on which the student sees more of the teacher's behaviour than the training sentences alone show (TinyBERT's
    augmented transfer set, Jiao et al. 2020, with corpus words in place of a language model's guesses). Tagged
    ``O``: the tags only mark the word positions."""
    import random

    rng = random.Random(seed)
    vocabulary = sorted({w for ex in examples for w in ex.tokens if w.strip()})
    if not vocabulary:
        return []
    out = []
    for _ in range(copies):
        for ex in examples:
            words = tuple(rng.choice(vocabulary) if w.strip() and rng.random() < rate else w for w in ex.tokens)
            out.append(Example(words, ("O",) * len(words)))
    return out


def read_unlabeled(paths: Sequence[Path], text_column: str = "text") -> list[Example]:
    """The words of every non-blank text of ``paths`` (read like ``nerforge predict``'s inputs), all tagged ``O``
    (the tags only mark which positions are words; the student never sees them as gold)."""
    examples = []
    for path in paths:
        for record in read_inputs(path, text_column=text_column):
            words = [w.text for w in tokenize_words(record.text)]
            if words:
                examples.append(Example(tuple(words), ("O",) * len(words)))
    if paths:
        logger.info("unlabeled: %d texts with words from %d file(s)", len(examples), len(paths))
    return examples


@torch.no_grad()
def teacher_targets(
    teacher: torch.nn.Module,
    dataset: WindowDataset,
    collator: PaddingCollator,
    temperature: float,
    *,
    layers: Sequence[int] | None = None,
    progress: bool = False,
) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
    """The teacher's word distributions at ``temperature`` for each window of ``dataset``: an array
    ``(words of the window, num_tags)`` (float16), in the order of the window's word positions; with ``layers``
    (teacher layer indices), also each window's token vectors out of those layers, ``(layers, tokens, hidden)``
    (float16; about 2.3 kB a token for three layers of 384)."""
    from tqdm.auto import tqdm

    order = sorted(range(len(dataset)), key=lambda i: dataset.lengths[i])  # similar lengths: less padding
    out: list[np.ndarray] = [np.zeros((0, 0), dtype=np.float16)] * len(dataset)
    hidden: list[np.ndarray] | None = None if layers is None else [np.zeros((0, 0, 0), dtype=np.float16)] * len(out)
    batches = [order[i : i + TARGETS_BATCH] for i in range(0, len(order), TARGETS_BATCH)]
    for batch_ids in tqdm(batches, desc="teacher targets", unit="batch", disable=not progress, leave=False):
        batch = collator([dataset[i] for i in batch_ids])
        labels = batch.pop("labels")
        outputs = teacher(**batch, output_hidden_states=layers is not None)
        probs, chain_mask = soft_targets(outputs.logits, labels != IGNORE_INDEX, temperature, teacher)
        counts = chain_mask.sum(dim=1).tolist()
        for row, index in enumerate(batch_ids):
            out[index] = probs[row, : counts[row]].to(torch.float16).cpu().numpy()
        if hidden is not None and layers is not None:
            kept = torch.stack([outputs.hidden_states[k + 1] for k in layers], dim=1)  # [0] is the embeddings
            tokens = batch["attention_mask"].sum(dim=1).tolist()
            for row, index in enumerate(batch_ids):
                hidden[index] = kept[row, :, : tokens[row]].to(torch.float16).cpu().numpy()
    return out, hidden


class DistillDataset(torch.utils.data.Dataset):
    """Windows with the teacher's distributions: ``kd_mask`` marks the word positions they are for, and
    ``teacher_probs`` holds them (and ``teacher_hidden`` its kept layers' token vectors, where computed); unlabelled
    windows have no gold ``labels``."""

    def __init__(self, parts: Sequence[tuple[WindowDataset, list[np.ndarray], bool, list[np.ndarray] | None]]) -> None:
        self._index = [(p, i) for p, (dataset, *_) in enumerate(parts) for i in range(len(dataset))]
        self._parts = list(parts)

    def __len__(self) -> int:
        return len(self._index)

    def __getitem__(self, index: int) -> dict[str, Any]:
        part, i = self._index[index]
        dataset, targets, gold, hidden = self._parts[part]
        item = dict(dataset[i])
        item["kd_mask"] = [int(label != IGNORE_INDEX) for label in item["labels"]]
        if not gold:
            item["labels"] = [IGNORE_INDEX] * len(item["input_ids"])
        item["teacher_probs"] = targets[i]
        if hidden is not None:
            item["teacher_hidden"] = hidden[i]
        return item

    @property
    def lengths(self) -> list[int]:
        per_part = [dataset.lengths for dataset, *_ in self._parts]  # from the windows, without building items
        return [per_part[p][i] for p, i in self._index]


class DistillCollator(PaddingCollator):
    """:class:`PaddingCollator`, plus ``teacher_probs`` padded to ``(batch, most words, num_tags)`` floats and, where
    the items have it, ``teacher_hidden`` padded to ``(batch, layers, sequence, hidden)``."""

    def __init__(self, pad_token_id: int, *, num_tags: int) -> None:
        super().__init__(pad_token_id)
        object.__setattr__(self, "num_tags", num_tags)

    def __call__(self, features: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        if "teacher_probs" not in features[0]:  # dev windows: scored by the head's own loss
            return super().__call__(features)
        probs = [f["teacher_probs"] for f in features]
        states = [f["teacher_hidden"] for f in features] if "teacher_hidden" in features[0] else None
        extra = ("teacher_probs", "teacher_hidden")
        batch = super().__call__([{k: v for k, v in f.items() if k not in extra} for f in features])
        most = max([len(p) for p in probs] + [1])
        padded = torch.zeros((len(features), most, self.num_tags), dtype=torch.float32)
        for row, p in enumerate(probs):
            if len(p):
                padded[row, : len(p)] = torch.from_numpy(np.asarray(p, dtype=np.float32))
        batch["teacher_probs"] = padded
        if states is not None:
            layers, _, width = states[0].shape
            stacked = torch.zeros((len(features), layers, batch["input_ids"].shape[1], width), dtype=torch.float32)
            for row, h in enumerate(states):
                stacked[row, :, : h.shape[1]] = torch.from_numpy(np.asarray(h, dtype=np.float32))
            batch["teacher_hidden"] = stacked
        return batch


class DistillTrainer(NerTrainer):
    """The Trainer with the distillation loss on batches that carry the teacher's distributions (training); dev
    batches (without them) get the head's own loss."""

    def __init__(self, *args: Any, temperature: float, alpha: float, hidden_weight: float = 0.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.temperature = temperature
        self.alpha = alpha
        self.hidden_weight = hidden_weight

    def compute_loss(
        self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> Any:
        if "teacher_probs" not in inputs:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        inputs = dict(inputs)
        teacher = inputs.pop("teacher_probs")
        states = inputs.pop("teacher_hidden", None)
        mask = inputs.pop("kd_mask").bool()
        labels = inputs.get("labels")
        gold = labels is not None and bool((labels != IGNORE_INDEX).any())
        if not gold:
            inputs.pop("labels", None)  # a batch of unlabelled windows: no gold loss (and no NaN from an empty mean)
        use_states = states is not None and self.hidden_weight > 0
        outputs = model(**inputs, output_hidden_states=use_states)
        kd = distillation_loss(outputs.logits, mask, teacher, self.temperature, model)
        loss = self.alpha * kd + (1 - self.alpha) * outputs.loss if gold and self.alpha < 1 else kd
        if use_states:
            student_states = outputs.hidden_states[1:]  # [0] is the embeddings
            loss = loss + self.hidden_weight * hidden_loss(student_states, states, inputs["attention_mask"])
        return (loss, outputs) if return_outputs else loss


def check_student_size(total: int, settings: DistillConfig) -> list[int]:
    """The teacher layers the student keeps, or a :class:`ModelError` naming the teacher's size."""
    if settings.keep_layers is not None:
        if settings.keep_layers[-1] >= total:
            raise ModelError(f"distill.keep_layers {settings.keep_layers}: the teacher has layers 0..{total - 1}")
        return list(settings.keep_layers)
    return spread_layers(total, settings.layers or 1)
