"""The splits of a :class:`~nerforge.config.DataConfig`: several files per split, seeded carving and sampling.

:func:`read_data_splits` is what ``nerforge train`` reads:

1. Each split is the concatenation, in the order given, of its files (``train = ["a.txt", "b.txt"]``), every file
   read with the same reader options and converted to IOB2.
2. With ``data.split``, a dev and/or test split is carved out of the training examples by :func:`carve`: whole
   documents (``by = "document"``) or sentences are shuffled with ``random.Random(seed)`` and cut. The same
   files and seed give the same split; every unit lands in exactly one part.
3. With ``data.sample``, a seeded random subset of at most N sentences of a split is kept (:func:`sample`).
4. With ``data.dev_in_train``, the dev split (as read, carved and sampled) joins train and is no longer a split.

EXAMPLE:
    >>> parts = carve(examples, dev=0.1, test=0.1, seed=13, by="sentence")  # doctest: +SKIP
    >>> sorted(parts)                                                       # doctest: +SKIP
    ['dev', 'test', 'train']
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from nerforge.data.labelmap import compile_label_map
from nerforge.data.normalize import read_examples
from nerforge.data.readers.options import ReadOptions
from nerforge.data.schemes import OUTSIDE, tags_to_spans
from nerforge.errors import ConfigError, DataFormatError
from nerforge.types import Example


class SplitsSpec(Protocol):
    """What this module needs of a data config (:class:`nerforge.config.DataConfig` is one): the files of each
    split, the reader options, and the optional carving (``split``) and sampling (``sample``) settings."""

    split: Any  # .dev, .test (fractions), .seed, .by ("document" | "sentence"), or None
    sample: Any  # .train, .dev, .test (sizes or None), .seed, or None
    labels: Any  # the entity types to learn (a list), or None for every type of the data
    dev_in_train: bool  # the dev split (as read, carved and sampled) joins train, and there is no dev split

    def files(self, split: str) -> list[Path]: ...

    def read_options(self) -> ReadOptions: ...


logger = logging.getLogger(__name__)

SPLITS = ("train", "dev", "test")


def read_files(paths: Sequence[Path], options: ReadOptions, split: str) -> list[Example]:
    """The examples of ``paths`` in order, as IOB2.

    Raises:
        DataFormatError: a file cannot be read, or the split has no sentences.
    """
    examples: list[Example] = []
    for path in paths:
        examples += read_examples(path, options)
    if not examples:
        raise DataFormatError(", ".join(map(str, paths)), None, f"the {split} split has no sentences")
    return examples


def units_of(examples: Sequence[Example], by: str) -> list[list[int]]:
    """Indices of ``examples`` grouped into the units a split keeps whole, in file order.

    ``by="sentence"``: one unit per example. ``by="document"``: one unit per ``(source file, doc_id)``.

    Raises:
        ConfigError: ``by="document"`` but an example has no document id.
    """
    if by == "sentence":
        return [[i] for i in range(len(examples))]
    if by != "document":
        raise ConfigError(f"unknown split unit {by!r}; expected 'document' or 'sentence'")
    groups: dict[tuple[str | None, str], list[int]] = {}
    for i, ex in enumerate(examples):
        if ex.doc_id is None:
            where = f"{ex.source}:{ex.line}" if ex.line is not None else str(ex.source or "data")
            raise ConfigError(
                f"{where}: data.split.by = 'document' but this file has no document ids "
                "(no -DOCSTART- lines, doc column or document records); use data.split.by = 'sentence'"
            )
        groups.setdefault((ex.source, ex.doc_id), []).append(i)
    return list(groups.values())


def _part_size(fraction: float, total: int) -> int:
    return max(1, round(fraction * total)) if fraction > 0 else 0


def carve(
    examples: Sequence[Example], *, dev: float = 0.0, test: float = 0.0, seed: int = 13, by: str = "document"
) -> dict[str, list[Example]]:
    """Split ``examples`` into ``train``, ``dev`` and ``test`` parts (see :class:`nerforge.config.SplitConfig`),
    stratified by entity type.

    Units (documents or sentences) are shuffled with ``random.Random(seed)``; test takes ``round(test * n)`` units,
    dev ``round(dev * n)`` (a positive fraction gets at least one), train the rest. Each carved part first takes, for
    every entity type (rarest first), its share of the units that hold that type (at least one when three or more
    units hold it), then fills up in shuffled order: a small dev split gets entities of every type it can, not
    whatever a random draw gives it (a draw of 26 sentences can hold one entity, and then dev F1 cannot choose a
    model). Each part keeps file order. Parts with a zero fraction are left out of the result.

    Raises:
        ConfigError: too few units to give train at least one, ``by="document"`` without document ids, or a dev part
            that would hold no entity while train has some (naming how many units hold entities).
    """
    units = units_of(examples, by)
    n_test, n_dev = _part_size(test, len(units)), _part_size(dev, len(units))
    if n_test + n_dev >= len(units):
        raise ConfigError(
            f"data.split: {len(units)} {by}(s) cannot give {n_dev} to dev and {n_test} to test and keep some for "
            "train; lower the fractions" + (" or split by sentence" if by == "document" else "")
        )
    order = list(range(len(units)))
    random.Random(seed).shuffle(order)
    types_of = [{span.label for i in unit for span in tags_to_spans(examples[i].tags)} for unit in units]
    holding: Counter[str] = Counter(t for types in types_of for t in types)
    free = dict.fromkeys(order)  # unassigned units, in shuffled order
    chosen: dict[str, list[int]] = {}
    for name, size, fraction in (("test", n_test, test), ("dev", n_dev, dev)):
        picked: list[int] = []
        for type_ in sorted(holding, key=lambda t: (holding[t], t)):
            want = max(1, round(fraction * holding[type_])) if holding[type_] >= 3 and size else 0
            have = sum(1 for u in picked if type_ in types_of[u])
            for u in list(free):
                if have >= want or len(picked) >= size:
                    break
                if type_ in types_of[u]:
                    picked.append(u)
                    del free[u]
                    have += 1
        # fill up, keeping in train the units of types too rare to share (fewer than three units hold them)
        rare = {t for t, n in holding.items() if n < 3}
        for u in sorted(free, key=lambda u: bool(types_of[u] & rare))[: size - len(picked)]:
            picked.append(u)
            del free[u]
        chosen[name] = picked
    chosen["train"] = list(free)
    if n_dev and holding and not any(types_of[u] for u in chosen["dev"]):
        raise ConfigError(
            f"data.split: only {sum(1 for t in types_of if t)} of the {len(units)} training {by}s hold an entity, "
            f"too few to carve a dev part of {dev:g} that has one (dev F1 could not choose a model); give a dev "
            "file, or train without a dev split (data.split.dev = 0)"
        )
    parts: dict[str, list[Example]] = {}
    for name in ("test", "dev", "train"):
        if chosen[name]:
            parts[name] = [examples[i] for u in sorted(chosen[name]) for i in units[u]]
    return parts


def sample(examples: Sequence[Example], size: int, seed: int) -> list[Example]:
    """At most ``size`` examples drawn with ``random.Random(seed)``, in their original order."""
    if size >= len(examples):
        return list(examples)
    keep = sorted(random.Random(seed).sample(range(len(examples)), size))
    return [examples[i] for i in keep]


def read_data_splits(data: SplitsSpec) -> dict[str, list[Example]]:
    """The train, dev and test splits of ``data`` (those that are given or carved), read as IOB2.

    Raises:
        DataFormatError: a file cannot be read or a split is empty.
        ConfigError: the split cannot be carved as asked.
    """
    options = data.read_options()
    splits: dict[str, list[Example]] = {}
    for name in SPLITS:
        paths = data.files(name)
        if paths:
            splits[name] = read_files(paths, options, name)
            logger.info("%s: %s (%d sentences)", name, ", ".join(map(str, paths)), len(splits[name]))
    listed = getattr(data, "labels", None)
    if listed:
        splits = restrict_types(splits, listed_types(listed, options.label_map))
    if data.split is not None and "train" in splits:
        s = data.split
        parts = carve(splits["train"], dev=s.dev, test=s.test, seed=s.seed, by=s.by)
        splits.update(parts)
        logger.info(
            "data.split (seed %d, by %s): train %d, %s sentences",
            s.seed,
            s.by,
            len(parts["train"]),
            ", ".join(f"{k} {len(v)}" for k, v in parts.items() if k != "train"),
        )
    if data.sample is not None:
        for name in SPLITS:
            size = getattr(data.sample, name)
            if size is not None and name in splits and size < len(splits[name]):
                splits[name] = sample(splits[name], size, data.sample.seed)
                logger.info("data.sample: %s keeps %d sentences (seed %d)", name, size, data.sample.seed)
    if data.dev_in_train and "dev" in splits and "train" in splits:
        dev = splits.pop("dev")
        splits["train"] = [*splits["train"], *dev]
        logger.info("data.dev_in_train: train %d sentences, %d of them from dev", len(splits["train"]), len(dev))
    return {name: splits[name] for name in SPLITS if name in splits}


def listed_types(listed: Sequence[str], label_map: Any = None) -> list[str]:
    """The types of ``data.labels`` as the data has them after the label map: a listed type the map drops is not
    learned, one it renames is learned under its new name (``data.labels = ["Skill"]`` with ``Skill=`` learns nothing
    of Skill)."""
    if not label_map:
        return list(dict.fromkeys(listed))
    compiled = compile_label_map(label_map)
    mapped = (compiled.map_type(t) for t in listed)
    return list(dict.fromkeys(t for t in mapped if t))


def restrict_types(splits: dict[str, list[Example]], types: Sequence[str]) -> dict[str, list[Example]]:
    """The splits with every entity of a type outside ``types`` read as ``O`` (``data.labels`` lists what to
    learn: a type left out of it is dropped, not an error), in the tags and in the spans of every layer. Logs each
    dropped type with its count per split, and each listed type that no split has.
    """
    from nerforge.data.layers import entity_spans

    keep = set(types)
    dropped: dict[str, Counter[str]] = {}
    out: dict[str, list[Example]] = {}
    for name, examples in splits.items():
        kept = []
        for ex in examples:
            every = entity_spans(ex)  # every layer's entities; the tags' when the example has no spans
            if all(s.label in keep for s in every):
                kept.append(ex)
                continue
            for s in every:
                if s.label not in keep:
                    dropped.setdefault(s.label, Counter())[name] += 1
            tags = list(ex.tags)
            for s in tags_to_spans(ex.tags):
                if s.label not in keep:
                    tags[s.start : s.end] = [OUTSIDE] * (s.end - s.start)
            spans = None if ex.spans is None else tuple(s for s in ex.spans if s.label in keep)
            kept.append(replace(ex, tags=tuple(tags), spans=spans))
        out[name] = kept
    for type_, counts in sorted(dropped.items()):
        where = ", ".join(f"{n} {counts[n]}" for n in SPLITS if counts[n])
        logger.warning("data.labels leaves out %s: its entities (%s) are read as O and not learned", type_, where)
    present = {s.label for examples in out.values() for ex in examples for s in entity_spans(ex)}
    absent = [t for t in types if t not in present]
    if absent:
        logger.warning(
            "data.labels lists %s, which no split has: the model can never predict it (a typo?)", ", ".join(absent)
        )
    return out


def describe_source(data: SplitsSpec, split: str) -> str:
    """Where a split comes from, for model cards: its file names, or how it was carved from train (train names the
    dev split joined to it by ``data.dev_in_train``)."""
    text = _source(data, split)
    if split == "train" and data.dev_in_train and _source(data, "dev") != "none":
        text += f"; with the dev split joined (data.dev_in_train): {_source(data, 'dev')}"
    return text


def _source(data: SplitsSpec, split: str) -> str:
    paths = data.files(split)
    if paths:
        text = ", ".join(p.name for p in paths)
    elif data.split is not None and getattr(data.split, split, 0) > 0:
        s = data.split
        text = f"{getattr(s, split):.0%} of the training {s.by}s (data.split, seed {s.seed})"
    else:
        text = "none"
    size = getattr(data.sample, split, None) if data.sample is not None else None
    return f"{text}; a seeded sample of {size} sentences" if size is not None else text
