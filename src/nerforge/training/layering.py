"""What a run learns from data with several layers of entities, or overlapping ones: the layers of a layered model
(:func:`data_layers`), and a warning when a model learns one flat view of them (:func:`warn_flat_view`)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from nerforge.types import Example

logger = logging.getLogger("nerforge.training.run")  # the run's log lines keep their logger name


def data_layers(
    splits: dict[str, list[Example]], types: Sequence[str] | None
) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The layers a layered model tags, each with its IOB2 tags (``()`` when the training data has one layer): the
    layers of the training examples, each with the types its entities have in any split (of ``types`` when the
    config lists what to learn)."""
    from nerforge.data.layers import example_layers
    from nerforge.tags import iob2_tags

    names = list(dict.fromkeys(n for ex in splits.get("train", []) if ex.spans is not None for n in example_layers(ex)))
    if len(names) < 2:
        return ()
    allowed = None if types is None else set(types)
    found: dict[str, set[str]] = {name: set() for name in names}
    for examples in splits.values():
        for ex in examples:
            for span in ex.spans or ():
                if span.layer in found and (allowed is None or span.label in allowed):
                    found[span.layer].add(span.label)
    return tuple((name, tuple(iob2_tags(tuple(sorted(found[name]))))) for name in names)


def warn_flat_view(examples: list[Example], chosen: str | None) -> None:
    from nerforge.data.layers import example_layers

    layered = [ex for ex in examples if ex.spans is not None]
    if not layered:
        return
    every = list(dict.fromkeys(n for ex in layered for n in example_layers(ex)))
    if chosen is None and len(every) > 1:
        return  # a layered model learns every layer
    learned = sum(1 for ex in layered for s in ex.tags if s.startswith("B-"))
    layers = list(dict.fromkeys(n for ex in layered for n in example_layers(ex)))
    logger.warning(
        "the training data has %d layer(s) of entities (%s) or overlapping entities: this model learns "
        "one flat view (%s, outermost entities: %d of %d in the training data); --head span learns nested "
        "entities too, in one layer",
        len(layers),
        ", ".join(n or "unnamed" for n in layers),
        chosen or layers[0] or "the only layer",
        learned,
        sum(len(ex.spans or ()) for ex in layered),
    )


def span_head_for_data(
    head: Any, splits: dict[str, list[Example]], configured: Sequence[str] | None
) -> tuple[Any, tuple[str, ...]]:
    """A span head's settings from the data: ``max_width`` (when not set) the most words of a training entity, and
    the tags of every entity type of every layer (nested entities and inner layers have types the flat view lacks).

    Raises:
        DataFormatError: the training data has no entity span.
    """
    from nerforge.data.layers import depths, one_layer
    from nerforge.errors import DataFormatError
    from nerforge.modeling.span import longest_span
    from nerforge.tags import iob2_tags

    train = [one_layer(ex, configured) for ex in splits.get("train", [])]
    longest = longest_span(train)
    if not longest:
        raise DataFormatError(
            str(splits["train"][0].source if splits.get("train") else "train"),
            None,
            "the training data has no entity for the span head to learn",
            "entity spans",
        )
    width = head.max_width or longest
    types = sorted({s.label for examples in splits.values() for ex in examples for s in one_layer(ex, configured)})
    nested = sum(1 for spans in train for d in depths(spans) if d)
    longer = sum(1 for spans in train for s in spans if s.end - s.start > width)
    logger.info("a span head: spans of up to %d words (%s), %d of %d training entities nested in another%s", width,
                "model.head.max_width" if head.max_width else "the longest training entity",
                nested, sum(len(s) for s in train),
                f"; {longer} longer entities cannot be learned or found" if longer else "")  # fmt: skip
    return head.model_copy(update={"max_width": width}), tuple(iob2_tags(tuple(types)))


def trained_layers(config: Any, splits: dict[str, list[Example]]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The layers a run of ``config`` on ``splits`` trains a layered model of (:func:`data_layers`; ``()`` for a
    model of one layer: data of one layer, ``data.layer`` picking one, or a span head)."""
    from nerforge.data.splits import listed_types

    if config.model.head.span or config.data.layer is not None:
        return ()
    configured = listed_types(config.data.labels, config.data.label_map) if config.data.labels else None
    return data_layers(splits, configured)


def head_for_data(config: Any, splits: dict[str, list[Example]]) -> tuple[Any, tuple[str, ...] | None]:
    """The head a run trains: ``config.model.head``, made layered (:func:`data_layers`) when the data has several
    layers and ``data.layer`` picks none; and the first layer's tags (``None`` for one layer).

    Raises:
        ConfigError: class weights with several layers; loss weights of layers the data does not have.
    """
    from nerforge.data.splits import listed_types
    from nerforge.errors import ConfigError

    configured = listed_types(config.data.labels, config.data.label_map) if config.data.labels else None
    if config.model.head.span:
        return span_head_for_data(config.model.head, splits, configured)
    layers = trained_layers(config, splits)
    if not layers:
        return _weights_checked(config.model.head), None
    if config.model.class_weights is not None:
        raise ConfigError("model.class_weights is for a model of one layer of entities; this data has several "
                          "(--layer NAME trains a model of one)")  # fmt: skip
    logger.info("a layered model: one tagger per layer on one encoder (%s)",
                "; ".join(f"{name}: {', '.join(t[2:] for t in tags[1::2])}" for name, tags in layers))  # fmt: skip
    return _weights_checked(config.model.head.model_copy(update={"layers": layers})), tuple(layers[0][1])


def _weights_checked(head: Any) -> Any:
    """``head``, once its loss weights name only layers it has (:meth:`HeadSpec.check_layer_weights`).

    Raises:
        ConfigError: the check's message.
    """
    from nerforge.errors import ConfigError

    try:
        head.check_layer_weights()
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return head
