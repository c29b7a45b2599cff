"""Examples -> model features: word pieces, windows with a stride, one label per word on its first subword.

Nothing is truncated silently. A sentence longer than the model's maximum becomes several overlapping windows
(:func:`nerforge.alignment.windows_for`); each word is labelled (and later predicted) by exactly one window. A word
with more pieces than a window holds keeps its first pieces, and a word the tokenizer maps to no piece at all
(U+001A, a lone space) gets no label; both are counted in the split's :class:`~nerforge.alignment.WindowStats`,
together with the gold entities made only of such words, which the model can never see.

Predictions come back to words through the same windows (:func:`word_tags`), so dev scores are computed on whole
sentences against the gold tags of every word.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from nerforge.alignment import (
    IGNORE_INDEX,
    EncodedWindow,
    SpecialTokens,
    WindowStats,
    encode_window,
    fill_empty_words,
    special_tokens,
    windows_for,
    word_pieces,
)
from nerforge.data.schemes import OUTSIDE, convert_tags, parse_tag, strict_tags_to_spans
from nerforge.errors import ConfigError, DataFormatError
from nerforge.modeling.context import encode_in_context, sentence_contexts
from nerforge.modeling.features import feature_row, shape_ids
from nerforge.types import Example, LabelSet

logger = logging.getLogger(__name__)

# WindowStats.extra keys
DROPPED_WINDOWS = "windows_without_labels"  # windows that own no word with a piece (empty sentences)
UNSEEN_ENTITIES = "entities_without_pieces"  # gold entities whose words all have no piece


@dataclass(frozen=True)
class DataSummary:
    """Counts of one split for logs and the model card."""

    sentences: int
    tokens: int
    entities: dict[str, int]

    @classmethod
    def from_examples(cls, examples: Sequence[Example]) -> DataSummary:
        counts: Counter[str] = Counter()
        for ex in examples:
            counts.update(span.label for span in strict_tags_to_spans(ex.tags))
        return cls(len(examples), sum(len(ex) for ex in examples), dict(sorted(counts.items())))

    def to_dict(self) -> dict[str, Any]:
        return {"sentences": self.sentences, "tokens": self.tokens, "entities": dict(self.entities)}


@dataclass
class SplitFeatures:
    """The model inputs of one split and what it took to build them.

    Attributes:
        name: ``train``, ``dev`` or ``test``.
        examples: the sentences, in file order.
        encoded: one entry per window that labels at least one word, in example order.
        stats: windowing counts (see :class:`~nerforge.alignment.WindowStats`; ``extra`` holds
            :data:`DROPPED_WINDOWS` and :data:`UNSEEN_ENTITIES`).
    """

    name: str
    examples: list[Example]
    encoded: list[EncodedWindow]
    stats: WindowStats = field(default_factory=WindowStats)
    word_features: list[list[int]] | None = None  # per example, per word: shape ids (model.features = ["shape"])

    def dataset(self) -> WindowDataset:
        return WindowDataset(self.encoded, self.word_features)

    def describe(self) -> str:
        """One line for logs."""
        s = self.stats
        return (
            f"{self.name}: {s.examples} sentences -> {len(self.encoded)} windows "
            f"({s.windowed_examples} sentences split into several windows, {s.long_words} long words clipped, "
            f"{s.empty_words} words without subwords, {s.extra.get(UNSEEN_ENTITIES, 0)} entities without subwords)"
        )


class WindowDataset(torch.utils.data.Dataset):
    """Windows as ``{"input_ids": [...], "labels": [...]}`` items (plus ``word_features`` when the examples have
    them, see :mod:`nerforge.modeling.features`); padding is the collator's job."""

    def __init__(self, encoded: Sequence[EncodedWindow], word_features: Sequence[Sequence[int]] | None = None) -> None:
        self._encoded = list(encoded)
        self._word_features = word_features

    def __len__(self) -> int:
        return len(self._encoded)

    def __getitem__(self, index: int) -> dict[str, list[int]]:
        enc = self._encoded[index]
        labels = enc.labels if enc.labels is not None else [IGNORE_INDEX] * len(enc.input_ids)
        item = {"input_ids": list(enc.input_ids), "labels": list(labels)}
        if self._word_features is not None:
            ids = self._word_features[enc.window.example]
            item["word_features"] = feature_row(enc.first_piece_of, len(enc.input_ids), ids)
        return item

    @property
    def lengths(self) -> list[int]:
        return [len(enc.input_ids) for enc in self._encoded]


def continuation_tag(tag: str) -> str:
    """The tag of a word's later subwords: ``B-X`` becomes ``I-X``; others are unchanged."""
    return "I-" + tag[2:] if tag.startswith("B-") else tag


def entity_types(examples: Sequence[Example]) -> dict[str, Example]:
    """Each entity type of ``examples`` with the first example that has it."""
    out: dict[str, Example] = {}
    for ex in examples:
        for tag in ex.tags:
            if tag != OUTSIDE:
                out.setdefault(parse_tag(tag).type or "", ex)
    return out


def resolve_labels(splits: Mapping[str, Sequence[Example]], configured: Sequence[str] | None = None) -> LabelSet:
    """The label set: ``configured`` types, or the union of the types of *all* splits (never train alone).

    Raises:
        ConfigError: a split has a type that ``configured`` lacks (names the type and where it is).
    """
    found: dict[str, Example] = {}
    for examples in splits.values():
        for type_, ex in entity_types(examples).items():
            found.setdefault(type_, ex)
    if configured is None:
        return LabelSet.from_types(found)
    allowed = set(configured)
    for type_, ex in found.items():
        if type_ not in allowed:
            where = f"{ex.source}:{ex.line}" if ex.line is not None else str(ex.source or "data")
            raise ConfigError(
                f"{where}: entity type '{type_}' is not in data.labels ({', '.join(sorted(allowed))}); "
                "add it there or rename/drop it with data.label_map"
            )
    return LabelSet.from_types(configured)


def _label_ids(example: Example, label2id: Mapping[str, int], continuation: bool) -> tuple[list[int], list[int] | None]:
    ids: list[int] = []
    for i, tag in enumerate(example.tags):
        if tag not in label2id:
            raise DataFormatError(
                example.source or "data",
                example.line_of(i),
                f"tag {tag!r} is not among the model's labels",
                expected=", ".join(label2id),
            )
        ids.append(label2id[tag])
    cont = [label2id[continuation_tag(t)] for t in example.tags] if continuation else None
    return ids, cont


def _unseen_entities(example: Example, pieces: Sequence[Sequence[int]]) -> int:
    return sum(
        1 for span in strict_tags_to_spans(example.tags) if all(not pieces[w] for w in range(span.start, span.end))
    )


def build_split(
    name: str,
    examples: Sequence[Example],
    tokenizer: Any,
    label2id: Mapping[str, int],
    *,
    max_length: int,
    stride: int,
    label_all_subwords: bool = False,
    specials: SpecialTokens | None = None,
    context_sentences: int = 0,
    features: Sequence[str] = (),
) -> SplitFeatures:
    """Encode a split into labelled windows.

    Args:
        name: the split's name, for logs.
        examples: sentences with IOB2 tags.
        tokenizer: a Hugging Face *fast* tokenizer.
        label2id: tag -> id (every tag of ``examples`` must be there).
        max_length: subwords per window, special tokens included.
        stride: subwords shared by consecutive windows.
        label_all_subwords: label every subword of a word (continuations get ``I-``), not only the first.
        specials: the tokenizer's special tokens (found from the tokenizer when ``None``).
        context_sentences: neighbouring sentences of the same document (``doc_id``) on each side, added to the
            windows as unlabelled context (:mod:`nerforge.modeling.context`).
        features: word features to compute (``"shape"``: :func:`nerforge.modeling.features.shape_ids`).

    Raises:
        DataFormatError: a tag outside ``label2id`` (with the file and line).
    """
    specials = specials if specials is not None else special_tokens(tokenizer)
    if max_length - specials.count < 1:
        raise ConfigError(f"model.max_length {max_length} leaves no room beside {specials.count} special tokens")
    examples = list(examples)
    pieces = word_pieces(tokenizer, [ex.tokens for ex in examples])
    windows, stats = windows_for(pieces, max_length, stride, specials)
    stats.extra[UNSEEN_ENTITIES] = sum(_unseen_entities(ex, p) for ex, p in zip(examples, pieces, strict=True))
    labels = [_label_ids(ex, label2id, label_all_subwords) for ex in examples]
    encode = _context_encoder(tokenizer, examples, context_sentences) if context_sentences else None
    encoded: list[EncodedWindow] = []
    dropped = 0
    for window in windows:
        ids, cont = labels[window.example]
        if encode is not None:
            enc = encode(window, pieces[window.example], specials, max_length, ids, cont)
        else:
            enc = encode_window(window, pieces[window.example], specials, max_length, ids, cont)
        if enc.first_piece_of:
            encoded.append(enc)
        else:
            dropped += 1
    stats.extra[DROPPED_WINDOWS] = dropped
    shape = [shape_ids(ex.tokens) for ex in examples] if "shape" in features else None
    split = SplitFeatures(name, examples, encoded, stats, shape)
    logger.info("%s", split.describe())
    if stats.long_words:
        logger.warning(
            "%s: %d words have more subwords than a window holds (%d); only their first subwords are used",
            name,
            stats.long_words,
            max_length - specials.count,
        )
    if stats.extra[UNSEEN_ENTITIES]:
        logger.warning(
            "%s: %d gold entities consist only of words the tokenizer maps to no subword; the model cannot see them",
            name,
            stats.extra[UNSEEN_ENTITIES],
        )
    return split


def _context_encoder(tokenizer: Any, examples: Sequence[Example], n: int) -> Any:
    """``encode_window`` with each example's neighbouring sentences as context (see :mod:`nerforge.modeling.context`)."""
    contexts = sentence_contexts([ex.tokens for ex in examples], [ex.doc_id for ex in examples], n)
    left = word_pieces(tokenizer, [c.left for c in contexts])
    right = word_pieces(tokenizer, [c.right for c in contexts])
    with_context = sum(1 for c in contexts if c.left or c.right)
    logger.info("%d of %d sentences have document context (%d each side)", with_context, len(examples), n)

    def encode(window: Any, pieces: Any, specials: Any, max_length: int, ids: Any, cont: Any) -> EncodedWindow:
        k = window.example
        return encode_in_context(window, pieces, left[k], right[k], specials, max_length, ids, cont)

    return encode


def word_tags(split: SplitFeatures, predictions: Any, id2label: Mapping[int, str]) -> list[list[str]]:
    """Per-word tags of every example of ``split`` from per-position label ids of its windows.

    ``predictions[k][p]`` is the label id at position ``p`` of window ``k`` (in ``split.encoded`` order). Each word
    takes the prediction at its first subword in the window that owns it; words with no subword take a tag from
    their neighbours (:func:`nerforge.alignment.fill_empty_words`). The tags are then repaired into valid IOB2 by
    conlleval-style decoding, as the prediction engine does, so dev scores match what the saved model predicts.
    """
    tags: list[list[str]] = [[""] * len(ex) for ex in split.examples]
    for k, enc in enumerate(split.encoded):
        row = predictions[k]
        sentence = tags[enc.window.example]
        for word, position in enc.first_piece_of.items():
            sentence[word] = id2label[int(row[position])]
    return [convert_tags(fill_empty_words(t), "iob2") for t in tags]


@dataclass(frozen=True)
class LabelCoverage:
    """Which entity types each split has: what :func:`check_label_coverage` found.

    Attributes:
        train_types: types with at least one entity in train.
        unseen_in_train: types that occur only in dev or test (the model cannot learn them), with a place each.
        dev_entities: entities in the dev split (``None`` without a dev split).
    """

    train_types: tuple[str, ...]
    unseen_in_train: dict[str, str]
    dev_entities: int | None


def check_label_coverage(splits: Mapping[str, Sequence[Example]], train_path: object) -> LabelCoverage:
    """Refuse training data without entities; describe types and dev entities for the warnings of ``train``.

    Raises:
        DataFormatError: the training split has no entity at all (every tag ``O``): the model would learn only ``O``.
    """
    train_types = entity_types(splits.get("train", ()))
    if not train_types:
        raise DataFormatError(
            str(train_path), None, "the training data has no entities (every tag is O); a model trained on it "
            "can only answer O", "some B-/I- tags; check --tag-column, --label-names or --label-map",
        )
    unseen: dict[str, str] = {}
    for name in ("dev", "test"):
        for type_, ex in entity_types(splits.get(name, ())).items():
            if type_ not in train_types and type_ not in unseen:
                unseen[type_] = f"{ex.source}:{ex.line}" if ex.line is not None else str(ex.source or name)
    dev = splits.get("dev")
    dev_entities = None if dev is None else sum(
        1 for ex in dev for tag in ex.tags if tag.startswith("B-")
    )
    return LabelCoverage(tuple(sorted(train_types)), unseen, dev_entities)
