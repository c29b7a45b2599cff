"""Predictions as annotation-tool imports: pre-annotate the next batch in Label Studio, doccano or spaCy.

* ``label-studio``: a JSON list of tasks, ``{"data": {"text"}, "predictions": [{"model_version", "score",
  "result": [{"id", "from_name", "to_name", "type": "labels", "value": {"start", "end", "text", "labels": [L]},
  "score"}]}]}``, the shape Label Studio's import takes as pre-annotations (its ``from_name``/``to_name`` must match
  the ``<Labels name=...>`` and ``<Text name=...>`` of the project's labeling config: ``--from-name/--to-name``).
  The input's other fields go into ``data`` too, so a task keeps its id or metadata.
* ``doccano``: JSON Lines, ``{"text", "label": [[start, end, LABEL], ...]}``, the shape doccano imports for
  sequence labelling. doccano's importer stores the offsets as they are, and its page counts JavaScript string
  positions (UTF-16 code units): so the offsets are UTF-16 units by default (``offsets="code-points"`` for code
  points), and empty texts, which its importer refuses ("Invalid data"), are left out and counted.
* ``spacy``: a spaCy v3 ``.spacy`` DocBin, what ``spacy train`` and ``spacy debug data`` read: one ``Doc`` per text,
  tokens the model's words (whitespace between them kept, so ``doc.text`` is the text), the entities in
  ``doc.ents``; needs spaCy (``pip install 'nerforge[spacy]'``). Held in memory until written (spaCy's format is
  one serialized blob).
* ``spacy-json``: spaCy v2 training JSON, a list of ``[text, {"entities": [[start, end, LABEL], ...]}]`` (also what
  the tecoholic NER annotator reads).

Offsets are in code points (Python's ``str`` indices) except doccano's: ``text[start:end]`` is the entity text. Every one of these
reads back with nerforge's readers (``labelstudio``, ``doccano``, ``spacy``) once the user has accepted or corrected
the predictions, so the next round of training takes the export as it is.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import IO, Any

from nerforge.prediction.io import InputRecord
from nerforge.types import Entity

ANNOTATION_FORMATS = ("label-studio", "doccano", "spacy", "spacy-json")
BINARY_FORMATS = ("spacy",)  # written by write_docbin, not write_annotation_format
SUFFIXES = {"label-studio": ".json", "doccano": ".jsonl", "spacy": ".spacy", "spacy-json": ".json"}
OFFSET_UNITS = ("utf-16", "code-points")  # doccano's offsets: what its page counts, or Python's str indices
DEFAULT_FROM_NAME = "label"
DEFAULT_TO_NAME = "text"


def label_studio_task(
    record: InputRecord,
    entities: Sequence[Entity],
    *,
    from_name: str = DEFAULT_FROM_NAME,
    to_name: str = DEFAULT_TO_NAME,
    model_version: str = "nerforge",
) -> dict[str, Any]:
    """One Label Studio task with the entities as a prediction (see the module docstring)."""
    data: dict[str, Any] = {k: v for k, v in record.fields.items() if k != "text" and _jsonable(v)}
    data["text"] = record.text
    prediction = label_studio_prediction(entities, from_name=from_name, to_name=to_name, model_version=model_version)
    return {"data": data, "predictions": [prediction]}


def label_studio_prediction(
    entities: Sequence[Entity],
    *,
    from_name: str = DEFAULT_FROM_NAME,
    to_name: str = DEFAULT_TO_NAME,
    model_version: str = "nerforge",
    label_for: Callable[..., str | None] | None = None,
    controls: frozenset[str] | None = None,
) -> dict[str, Any]:
    """One Label Studio prediction: ``{"model_version", "score", "result": [...]}``, the score the mean of the
    entities' scores (1.0 without entities). ``label_for`` renames an entity type for the project's labeling config
    (``None`` leaves the entity out); the default keeps every type. A layered model's entity goes to the ``<Labels>``
    control named by its layer (``from_name``: one control per layer, so overlapping regions stay apart, and a
    Label Studio export reads back into the same layers); with ``controls`` (the project's ``<Labels>`` names),
    only when the project has a control of that name, else the entity goes to ``from_name``. ``label_for(type,
    control)`` then names the type in that control."""
    result = []
    for i, e in enumerate(entities):
        control = e.layer if e.layer and (controls is None or e.layer in controls) else from_name
        if label_for is None:
            label: str | None = e.label
        else:
            label = label_for(e.label, control) if controls is not None else label_for(e.label)
        if label is None:
            continue
        result.append({
            "id": f"nf{i}", "from_name": control, "to_name": to_name, "type": "labels",
            "value": {"start": e.start, "end": e.end, "text": e.text, "labels": [label]},
            "score": round(float(e.score), 6),
        })  # fmt: skip
    scores = [r["score"] for r in result]
    return {"model_version": model_version, "score": round(sum(scores) / len(scores), 6) if scores else 1.0,
            "result": result}  # fmt: skip


def utf16_offsets(text: str) -> Callable[[int], int]:
    """A function from a code-point offset of ``text`` to its UTF-16 code-unit offset (each character beyond U+FFFF,
    an emoji say, is two units)."""
    astral = [i for i, c in enumerate(text) if ord(c) > 0xFFFF]
    if not astral:
        return lambda i: i
    import bisect

    return lambda i: i + bisect.bisect_left(astral, i)


def doccano_line(record: InputRecord, entities: Sequence[Entity], offsets: str = "utf-16") -> dict[str, Any]:
    """One doccano sequence-labelling line: ``{"text", "label": [[start, end, LABEL], ...]}``, offsets in
    ``offsets`` units (:data:`OFFSET_UNITS`)."""
    unit = utf16_offsets(record.text) if offsets == "utf-16" else (lambda i: i)
    return {"text": record.text, "label": [[unit(e.start), unit(e.end), e.label] for e in entities]}


def spacy_item(record: InputRecord, entities: Sequence[Entity]) -> list[Any]:
    """One spaCy v2 training item: ``[text, {"entities": [[start, end, LABEL], ...]}]``."""
    return [record.text, {"entities": [[e.start, e.end, e.label] for e in entities]}]


def doc_words(text: str) -> tuple[list[str], list[bool], dict[int, int], dict[int, int]]:
    """spaCy ``Doc`` tokens for ``text``: the words of the default word tokenizer, the text between them as tokens of
    their own (a single space is the previous token's trailing space), so ``Doc(vocab, words, spaces).text == text``;
    and maps from each word's start and end offset to its token index (an entity's boundaries are word
    boundaries)."""
    from nerforge.prediction.words import tokenize_words

    words: list[str] = []
    spaces: list[bool] = []
    starts: dict[int, int] = {}
    ends: dict[int, int] = {}
    at = 0

    def gap(between: str) -> None:
        if between.startswith(" ") and words and not spaces[-1]:
            spaces[-1] = True
            between = between[1:]
        if between:
            words.append(between)
            spaces.append(False)

    for word in tokenize_words(text):
        gap(text[at : word.start])
        starts[word.start] = len(words)
        words.append(word.text)
        spaces.append(False)
        ends[word.end] = len(words)
        at = word.end
    gap(text[at:])
    return words, spaces, starts, ends


def write_docbin(path: Any, results: Iterable[tuple[InputRecord, Sequence[Entity]]]) -> tuple[int, int]:
    """Write ``(record, entities)`` pairs as a ``.spacy`` DocBin at ``path`` (atomically); returns the docs written
    and the entities left out (none, unless an entity does not start and end at a word boundary).

    Raises:
        MissingDependencyError: spaCy is not installed.
    """
    from nerforge.errors import MissingDependencyError
    from nerforge.io_utils import atomic_write_bytes

    try:
        from spacy.tokens import Doc, DocBin, Span
        from spacy.vocab import Vocab
    except ImportError:
        raise MissingDependencyError("spacy", "spacy") from None
    vocab = Vocab()
    docs = DocBin(attrs=["ORTH", "ENT_IOB", "ENT_TYPE"], store_user_data=False)
    count = missed = 0
    for record, entities in results:
        words, spaces, starts, ends = doc_words(record.text)
        doc = Doc(vocab, words=words, spaces=spaces)
        spans: dict[str, list[Any]] = {}
        for e in entities:
            if e.start in starts and e.end in ends:
                spans.setdefault(e.layer, []).append(Span(doc, starts[e.start], ends[e.end], label=e.label))
            else:
                missed += 1
        layers = [name for name in dict.fromkeys(e.layer for e in entities) if name]
        if layers:  # a layered model: each layer a span group (overlaps allowed), the first layer's in doc.ents too
            for name in layers:
                doc.spans[name] = spans.get(name, [])
            doc.ents = spacy_flat(spans.get(layers[0], []))
        else:
            every = spans.get("", [])
            doc.ents = spacy_flat(every)
            if len(doc.ents) < len(every):  # nested entities (a span head's): all of them in spancat's span group
                doc.spans[NESTED_SPAN_GROUP] = every
        docs.add(doc)
        count += 1
    atomic_write_bytes(path, docs.to_bytes())
    return count, missed


NESTED_SPAN_GROUP = "sc"  # spaCy's spancat reads its spans from this group by default


def spacy_flat(spans: list[Any]) -> list[Any]:
    """Spans that ``doc.ents`` can hold (none overlapping): the outermost kept, as a flat view is made everywhere."""
    from nerforge.data.layers import flatten
    from nerforge.types import Span as TokenSpan

    by_range = {(s.start, s.end, s.label_): s for s in spans}
    kept = flatten(TokenSpan(s.start, s.end, s.label_) for s in spans)
    return [by_range[(k.start, k.end, k.label)] for k in kept]


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def write_annotation_format(
    fh: IO[str],
    results: Iterable[tuple[InputRecord, Sequence[Entity]]],
    fmt: str,
    *,
    from_name: str = DEFAULT_FROM_NAME,
    to_name: str = DEFAULT_TO_NAME,
    model_version: str = "nerforge",
    offsets: str = "utf-16",
) -> tuple[int, int]:
    """Write ``(record, entities)`` pairs to ``fh`` in ``fmt`` (streamed: a JSON list is written item by item).

    Returns:
        the records written, and those left out (empty texts in ``doccano``, which its importer refuses).
    """
    if offsets not in OFFSET_UNITS:
        raise ValueError(f"offsets must be one of {OFFSET_UNITS}, got {offsets!r}")
    count = skipped = 0
    if fmt == "doccano":
        for record, entities in results:
            if not record.text.strip():
                skipped += 1
                continue
            fh.write(json.dumps(doccano_line(record, entities, offsets), ensure_ascii=False) + "\n")
            count += 1
        return count, skipped
    fh.write("[")
    for record, entities in results:
        if fmt == "label-studio":
            item: Any = label_studio_task(
                record, entities, from_name=from_name, to_name=to_name, model_version=model_version
            )
        elif fmt == "spacy-json":
            item = spacy_item(record, entities)
        else:
            raise ValueError(f"{fmt!r} is not a text annotation format")
        fh.write(("\n" if count == 0 else ",\n") + json.dumps(item, ensure_ascii=False))
        count += 1
    fh.write("\n]\n")
    return count, skipped
