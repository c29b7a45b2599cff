"""spaCy v3 ``.spacy`` DocBin files (what ``nerforge predict --format spacy`` writes and ``spacy train`` reads).

Each ``Doc`` becomes one example, or one per sentence when the docs carry sentence boundaries (then they share the
doc's id, for document context); whitespace tokens are left out (spaCy keeps runs of whitespace as tokens) and the
others keep their character offsets into the doc's text. Entities come from ``doc.ents`` as IOB2 tags. Span groups
(``doc.spans``, where overlapping spans live) are not read yet: their spans are counted in a finding. Needs spaCy
(``pip install 'nerforge[spacy]'``); a file that is not a DocBin is a :class:`~nerforge.errors.DataFormatError`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nerforge.data.readers.options import ReadOptions
from nerforge.errors import DataFormatError, MissingDependencyError
from nerforge.types import Example, Finding

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
        raise DataFormatError(name, None, f"not a spaCy DocBin ({type(exc).__name__}: {exc})",
                              "a .spacy file written by spaCy's DocBin") from None
    examples: list[Example] = []
    grouped = 0
    for n, doc in enumerate(docs, start=1):
        grouped += sum(len(group) for group in doc.spans.values())
        sentences = list(doc.sents) if doc.has_annotation("SENT_START") else [doc[:]]
        doc_id = f"{Path(name).name}#{n}" if len(sentences) > 1 else None
        for sentence in sentences:
            example = _example(sentence, doc.text, doc_id, name)
            if example.tokens:
                examples.append(example)
    findings = []
    if grouped:
        findings.append(Finding("span-groups", name, None, f"{grouped} spans in doc.spans groups not read (only "
                                "doc.ents is, as flat entities)", "warning"))
    return examples, findings


def _example(tokens: Any, text: str, doc_id: str | None, name: str) -> Example:
    words, tags, offsets = [], [], []
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
        offsets.append((token.idx, token.idx + len(token.text)))
    return Example(tuple(words), tuple(tags), doc_id=doc_id, offsets=tuple(offsets), text=text, source=name)
