"""spaCy v3 ``.spacy`` DocBin files (what ``nerforge predict --format spacy`` writes and ``spacy train`` reads).

Each ``Doc`` becomes one example, or one per sentence when the docs carry sentence boundaries (then they share the
doc's id, for document context); whitespace tokens are left out (spaCy keeps runs of whitespace as tokens) and the
others keep their character offsets into the doc's text. Entities come from ``doc.ents`` as IOB2 tags. Span groups
(``doc.spans``, where overlapping spans live, spancat's ``sc`` among them) are layers of entities: each group a layer
named by its key, ``doc.ents`` the first layer (``ents``) when there are any; every span is in the example's
``spans``, and the tags hold the flat view of the first layer's. Needs spaCy
(``pip install 'nerforge[spacy]'``); a file that is not a DocBin is a :class:`~nerforge.errors.DataFormatError`.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from nerforge.data.readers.options import ReadOptions
from nerforge.errors import DataFormatError, MissingDependencyError
from nerforge.types import Example, Finding, Span

DOCBIN_FORMAT = "docbin"
DOCBIN_SUFFIX = ".spacy"


def docbin_format(path: str | Path) -> str | None:
    """``docbin`` for a ``.spacy`` file, else ``None``."""
    return DOCBIN_FORMAT if Path(path).suffix.lower() == DOCBIN_SUFFIX else None


def read_docbin(path: str | Path, options: ReadOptions) -> tuple[list[Example], list[Finding]]:
    """The examples of a DocBin (see the module docstring).

    Raises:
        MissingDependencyError: spaCy is not installed.
        DataFormatError: the file cannot be read or is not a DocBin.
    """
    try:
        from spacy.tokens import DocBin
        from spacy.vocab import Vocab
    except ImportError:
        raise MissingDependencyError("spacy", "spacy") from None
    name = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise DataFormatError(name, None, f"cannot read the file: {exc.strerror or exc}", "a readable file") from None
    try:
        docs = list(DocBin().from_bytes(data).get_docs(Vocab()))
    except Exception as exc:  # noqa: BLE001 - spaCy and msgpack raise many kinds for a damaged file
        raise DataFormatError(
            name, None, f"not a spaCy DocBin ({type(exc).__name__}: {exc})", "a .spacy file written by spaCy's DocBin"
        ) from None
    # layers: doc.ents (named "ents") when span groups are there too, then each span group by its key
    keys = list(dict.fromkeys(key for doc in docs for key, group in doc.spans.items() if len(group)))
    # doc.ents is a layer of its own unless a span group holds them all (nerforge writes a layered model's first
    # layer both ways: its group and, flat, doc.ents)
    has_ents = any(doc.ents for doc in docs) and not any(all(_holds_ents(doc, key) for doc in docs) for key in keys)
    layers = ((ENTS_LAYER,) if has_ents or not keys else ()) + tuple(keys) if keys else None
    examples: list[Example] = []
    wordless = 0  # group spans over whitespace tokens only: no word to hold them
    for n, doc in enumerate(docs, start=1):
        sentences = list(doc.sents) if doc.has_annotation("SENT_START") else [doc[:]]
        doc_id = f"{Path(name).name}#{n}" if len(sentences) > 1 else None
        for sentence in sentences:
            example, kept = _example(sentence, doc.text, doc_id, name)
            if example.tokens and layers is not None:
                example, missed = _with_groups(example, kept, sentence, doc, layers)
                wordless += missed
            if example.tokens:
                examples.append(example)
    findings = []
    if wordless:
        findings.append(Finding("span-without-words", name, None, f"{wordless} span(s) of doc.spans groups cover only "
                                "whitespace tokens and were left out", "warning"))  # fmt: skip
    return examples, findings


def _holds_ents(doc: Any, key: str) -> bool:
    group = doc.spans[key] if key in doc.spans else []
    return {(s.start, s.end, s.label_) for s in doc.ents} <= {(s.start, s.end, s.label_) for s in group}


ENTS_LAYER = "ents"  # the layer of doc.ents in a DocBin that has span groups too


def _with_groups(
    example: Example, kept: list[int], sentence: Any, doc: Any, layers: tuple[str, ...]
) -> tuple[Example, int]:
    """``example`` with every span of ``doc.ents`` and of each span group in the sentence, by layer (the tags the flat
    view of the first layer's), and how many group spans touched no word."""
    import bisect

    from nerforge.data.layers import flatten
    from nerforge.data.schemes import spans_to_tags, tags_to_spans

    missed = 0
    spans = [Span(s.start, s.end, s.label, ENTS_LAYER) for s in tags_to_spans(example.tags)]
    if ENTS_LAYER not in layers:
        spans = []
    for key in layers:
        if key == ENTS_LAYER or key not in doc.spans:
            continue
        for span in doc.spans[key]:
            if span.end <= sentence.start or span.start >= sentence.end:
                continue
            first = bisect.bisect_left(kept, max(span.start, sentence.start))  # the words the span touches
            last = bisect.bisect_left(kept, min(span.end, sentence.end)) - 1
            if first <= last:
                spans.append(Span(first, last + 1, span.label_, key))
            else:
                missed += 1
    ordered = tuple(sorted(set(spans)))
    tags = spans_to_tags(flatten(s for s in ordered if s.layer == layers[0]), len(example.tokens))
    return replace(example, tags=tuple(tags), spans=ordered, layers=layers), missed


def _example(tokens: Any, text: str, doc_id: str | None, name: str) -> tuple[Example, list[int]]:
    """The example of a sentence's tokens, and the doc index of each word kept (whitespace tokens are not)."""
    words, tags, offsets, kept = [], [], [], []
    inside: str | None = None  # the type of the entity the previous kept token is in
    for token in tokens:
        kind = token.ent_type_ if token.ent_iob_ in ("B", "I") else ""
        if not token.text.strip():  # whitespace tokens (is_space needs a language's lexeme flags)
            continue
        if not kind:
            tags.append("O")
        elif token.ent_iob_ == "B" or inside != kind:
            tags.append(f"B-{kind}")
        else:
            tags.append(f"I-{kind}")
        inside = kind or None
        words.append(token.text)
        kept.append(token.i)
        offsets.append((token.idx, token.idx + len(token.text)))
    return Example(tuple(words), tuple(tags), doc_id=doc_id, offsets=tuple(offsets), text=text, source=name), kept
