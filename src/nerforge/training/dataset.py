"""Examples -> model features: word pieces, windows with a stride, one label per word on its first subword.

Nothing is truncated silently. A sentence longer than the model's maximum becomes several overlapping windows
(:func:`nerforge.alignment.windows_for`); each word is labelled (and later predicted) by exactly one window. A word
with more pieces than a window holds keeps its first pieces, and a word the tokenizer maps to no piece at all
(U+001A, a lone space) gets no label; both are counted in the split's :class:`~nerforge.alignment.WindowStats`,
together with the gold entities made only of such words, which the model can never see.

Windows, context and word features come from the head's :class:`~nerforge.modeling.plan.HeadPlan`, the same
object that decodes dev predictions back to words (and that the prediction engine uses), so dev scores are
computed on whole sentences against the gold tags of every word, exactly as the saved model will be used.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from nerforge.alignment import IGNORE_INDEX, SpecialTokens, WindowStats, special_tokens
from nerforge.data.schemes import OUTSIDE, parse_tag, strict_tags_to_spans
from nerforge.errors import ConfigError, DataFormatError
from nerforge.modeling.decoding import WordPrediction
from nerforge.modeling.plan import DROPPED_WINDOWS, Encoded, HeadPlan
from nerforge.tags import Role, make_tag
from nerforge.types import Example, LabelSet

logger = logging.getLogger(__name__)

# WindowStats.extra keys (and DROPPED_WINDOWS: windows that own no word with a piece, from the plan)
__all__ = [
    "DROPPED_WINDOWS",
    "UNSEEN_ENTITIES",
    "SplitFeatures",
    "build_split",
    "check_label_coverage",
    "resolve_labels",
    "split_predictions",
]
UNSEEN_ENTITIES = "entities_without_pieces"  # gold entities whose words all have no piece


@dataclass
class SplitFeatures:
    """The model inputs of one split and what it took to build them.

    Attributes:
        name: ``train``, ``dev`` or ``test``.
        examples: the sentences, in file order.
        inputs: the windows that label at least one word, in example order, as the head's plan encoded them.
    """

    name: str
    examples: list[Example]
    inputs: Encoded

    @property
    def stats(self) -> WindowStats:
        """Windowing counts (``extra`` holds :data:`DROPPED_WINDOWS` and :data:`UNSEEN_ENTITIES`)."""
        return self.inputs.stats

    @property
    def windows(self) -> int:
        return len(self.inputs.windows)

    def dataset(self) -> WindowDataset:
        return WindowDataset(self.inputs)

    def describe(self) -> str:
        """One line for logs."""
        s = self.stats
        return (
            f"{self.name}: {s.examples} sentences -> {self.windows} windows "
            f"({s.windowed_examples} sentences split into several windows, {s.long_words} long words clipped, "
            f"{s.empty_words} words without subwords, {s.extra.get(UNSEEN_ENTITIES, 0)} entities without subwords)"
        )


class WindowDataset(torch.utils.data.Dataset):
    """Windows as ``{"input_ids": [...], "labels": [...]}`` items (plus the head's extra inputs, e.g. word
    features); padding is the collator's job."""

    def __init__(self, inputs: Encoded) -> None:
        self._inputs = inputs

    def __len__(self) -> int:
        return len(self._inputs.windows)

    def __getitem__(self, index: int) -> dict[str, list[int]]:
        item = self._inputs.item(index)
        item.setdefault("labels", [IGNORE_INDEX] * len(item["input_ids"]))
        return item

    @property
    def lengths(self) -> list[int]:
        return [len(enc.input_ids) for enc in self._inputs.windows]


def continuation_tag(tag: str) -> str:
    """The tag of a word's later subwords: ``B-X`` becomes ``I-X``; others are unchanged."""
    p = parse_tag(tag)
    return make_tag(Role.INSIDE, p.type) if p.role is Role.BEGIN else tag


def entity_types(examples: Sequence[Example], *, every_layer: bool = False) -> dict[str, Example]:
    """Each entity type of ``examples`` with the first example that has it: of their tags, or with ``every_layer``
    of every entity of every layer (what a layered model or a span head learns)."""
    from nerforge.data.layers import entity_spans

    out: dict[str, Example] = {}
    for ex in examples:
        if every_layer:
            for span in entity_spans(ex):
                out.setdefault(span.label, ex)
            continue
        for tag in ex.tags:
            if tag != OUTSIDE:
                out.setdefault(parse_tag(tag).type or "", ex)
    return out


def count_entities(examples: Sequence[Example], *, every_layer: bool = False) -> int:
    """How many entities ``examples`` have: in their tags, or with ``every_layer`` of every layer."""
    from nerforge.data.layers import entity_spans

    if every_layer:
        return sum(len(entity_spans(ex)) for ex in examples)
    return sum(1 for ex in examples for tag in ex.tags if parse_tag(tag).role is Role.BEGIN)


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


def _layered_label_ids(
    example: Example, layers: Sequence[tuple[str, Sequence[str]]], continuation: bool
) -> tuple[list[int], list[int] | None]:
    """Every layer's tag id of each word in one integer (:func:`nerforge.modeling.layered.combine_ids`)."""
    from nerforge.data.layers import layer_tags
    from nerforge.modeling.layered import combine_ids

    sizes = [len(tags) for _, tags in layers]
    ids = [{tag: i for i, tag in enumerate(tags)} for _, tags in layers]
    per_layer = layer_tags(example, layers)
    words = range(len(example.tokens))
    first = [combine_ids([m[t[w]] for m, t in zip(ids, per_layer, strict=True)], sizes) for w in words]
    cont = None
    if continuation:
        cont = [combine_ids([m[continuation_tag(t[w])] for m, t in zip(ids, per_layer, strict=True)], sizes)
                for w in words]  # fmt: skip
    return first, cont


def span_tables(name: str, examples: Sequence[Example], plan: HeadPlan) -> list[Any]:
    """A span head's gold classes of each example (:func:`nerforge.modeling.span.gold_table`), every layer's
    entities in one; entities longer than the head's ``max_width``, and second entities on the same words, are
    counted in a warning."""
    from nerforge.data.layers import one_layer
    from nerforge.modeling.span import gold_table

    tables, too_long, same_words = [], 0, 0
    for ex in examples:
        table, longer, same = gold_table(one_layer(ex, plan.types), len(ex.tokens), plan.types, plan.spec.max_width)
        tables.append(table)
        too_long += longer
        same_words += same
    if too_long:
        logger.warning("%s: %d entities are longer than the span head's %d words; it cannot learn them",
                       name, too_long, plan.spec.max_width)  # fmt: skip
    if same_words:
        logger.warning("%s: %d entities are on the same words as another entity of another type; the span head "
                       "learns one type per span (the first in sorted order)", name, same_words)  # fmt: skip
    return tables


def _unseen_entities(example: Example, pieces: Sequence[Sequence[int]]) -> int:
    return sum(
        1 for span in strict_tags_to_spans(example.tags) if all(not pieces[w] for w in range(span.start, span.end))
    )


def build_split(
    name: str,
    examples: Sequence[Example],
    tokenizer: Any,
    label2id: Mapping[str, int],
    plan: HeadPlan,
    *,
    label_all_subwords: bool = False,
    specials: SpecialTokens | None = None,
) -> SplitFeatures:
    """Encode a split into labelled windows with the head's ``plan`` (windows, context, word features).

    Args:
        name: the split's name, for logs.
        examples: sentences with IOB2 tags.
        tokenizer: a Hugging Face *fast* tokenizer.
        label2id: tag -> id (every tag of ``examples`` must be there).
        plan: the head's plan (its ``max_length`` and ``stride`` size the windows).
        label_all_subwords: label every subword of a word (continuations get ``I-``), not only the first.
        specials: the tokenizer's special tokens (found from the tokenizer when ``None``).

    Raises:
        ConfigError: ``max_length`` leaves no room for words.
        DataFormatError: a tag outside ``label2id`` (with the file and line).
    """
    specials = specials if specials is not None else special_tokens(tokenizer)
    if plan.max_length - specials.count < 1:
        raise ConfigError(f"model.max_length {plan.max_length} leaves no room beside {specials.count} special tokens")
    examples = list(examples)
    sentences = [ex.tokens for ex in examples]
    span_gold = None
    if plan.spec.span:  # the span head: each word's gold class per width; no per-word labels
        span_gold = span_tables(name, examples, plan)
        labels = None
    elif plan.spec.layers:
        labels = [_layered_label_ids(ex, plan.spec.layers, label_all_subwords) for ex in examples]
    else:
        labels = [_label_ids(ex, label2id, label_all_subwords) for ex in examples]
    contexts = plan.contexts(sentences, [ex.doc_id for ex in examples])
    if contexts is not None:
        with_context = sum(1 for c in contexts if c.left or c.right)
        logger.info(
            "%s: %d of %d sentences have document context (%d each side)",
            name, with_context, len(examples), plan.context_width,
        )  # fmt: skip
    inputs = plan.encode(tokenizer, sentences, contexts=contexts, labels=labels, span_gold=span_gold, specials=specials)
    inputs.stats.extra[UNSEEN_ENTITIES] = sum(
        _unseen_entities(ex, p) for ex, p in zip(examples, inputs.pieces, strict=True)
    )
    split = SplitFeatures(name, examples, inputs)
    logger.info("%s", split.describe())
    if split.stats.long_words:
        logger.warning(
            "%s: %d words have more subwords than a window holds (%d); only their first subwords are used",
            name,
            split.stats.long_words,
            plan.max_length - specials.count,
        )
    if split.stats.extra[UNSEEN_ENTITIES]:
        logger.warning(
            "%s: %d gold entities consist only of words the tokenizer maps to no subword; the model cannot see them",
            name,
            split.stats.extra[UNSEEN_ENTITIES],
        )
    return split


def split_predictions(split: SplitFeatures, plan: HeadPlan, logits: Any) -> list[WordPrediction]:
    """Per-word predictions of every example of ``split`` from the logits of its windows (``logits[k]``: window
    ``k`` of ``split.inputs``, padded positions allowed), decoded by the head's ``plan`` as the saved model will be."""
    return plan.decode(split.inputs, [logits[k] for k in range(split.windows)])


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


def check_label_coverage(
    splits: Mapping[str, Sequence[Example]], train_path: object, *, every_layer: bool = False
) -> LabelCoverage:
    """Refuse training data without entities; describe types and dev entities for the warnings of ``train``: those of
    the examples' tags, or with ``every_layer`` those of every layer (a layered model's or a span head's data).

    Raises:
        DataFormatError: the training split has no entity at all (every tag ``O``): the model would learn only ``O``.
    """
    train_types = entity_types(splits.get("train", ()), every_layer=every_layer)
    if not train_types:
        raise DataFormatError(
            str(train_path),
            None,
            "the training data has no entities (every tag is O); a model trained on it can only answer O",
            "some B-/I- tags; check --tag-column, --label-names or --label-map",
        )
    unseen: dict[str, str] = {}
    for name in ("dev", "test"):
        for type_, ex in entity_types(splits.get(name, ()), every_layer=every_layer).items():
            if type_ not in train_types and type_ not in unseen:
                unseen[type_] = f"{ex.source}:{ex.line}" if ex.line is not None else str(ex.source or name)
    dev = splits.get("dev")
    dev_entities = None if dev is None else count_entities(dev, every_layer=every_layer)
    return LabelCoverage(tuple(sorted(train_types)), unseen, dev_entities)
