"""Several tag columns, each a layer of entities (``--tag-column 1 --tag-column 2``, ``data.tag_columns = [1, 2]``).

The file is read once per tag column, each time exactly as a file with that one tag column is read (format
detection, scheme detection and repair, the label map, ``--lenient``, every finding with its ``file:line``), and the
readings are joined: the examples must have the same tokens in every reading (they do, the token column being the
same), each example's ``spans`` hold every column's entities with the column's layer name, and its ``tags`` the first
column's (IOB2), which a flat model learns. A layer is named by ``layer_names`` or else by its column's entity types
(``SKILL``, or ``KNOWLEDGE+SKILL`` for several); two columns with the same types are told apart by their number.
Findings that every reading makes (the file's bytes, its blank lines) are kept once; the others say their column.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from nerforge.data.readers.options import ReadOptions
from nerforge.data.schemes import convert_tags, tags_to_spans
from nerforge.errors import DataFormatError
from nerforge.types import Corpus, Finding, Span


def read_layers(path: str, options: ReadOptions, read_one: Callable[[str, ReadOptions], Corpus]) -> Corpus:
    """Read ``path`` once per column of ``options.tag_columns`` with ``read_one`` and join the layers (see the
    module docstring).

    Raises:
        DataFormatError: the readings do not line up (a reader that splits sentences by the tag column).
    """
    columns = tuple(options.tag_columns or ())
    corpora = [read_one(path, replace(options, tag_columns=None, layer_names=None, tag_column=c)) for c in columns]
    names = _layer_names(corpora, columns, options.layer_names)
    first = corpora[0]
    # each single-column reading advises on the other tag columns; read together, that advice is moot
    findings = [f for f in first.findings if f.kind != "tag-columns"]
    seen = set(findings)
    for column, corpus in zip(columns[1:], corpora[1:], strict=True):
        for f in corpus.findings:
            if f not in seen and f.kind != "tag-columns":
                findings.append(replace(f, message=f"{f.message} (tag column {column})"))
                seen.add(f)
    examples = []
    for n, group in enumerate(zip(*(c.examples for c in corpora), strict=False)):
        if any(ex.tokens != group[0].tokens for ex in group[1:]):
            raise DataFormatError(path, group[0].line, f"sentence {n + 1} has other tokens when read by tag column "
                                  f"{columns[1]}", "the same sentences in every tag column")  # fmt: skip
        tags = [tuple(convert_tags(ex.tags, "iob2")) for ex in group]
        spans = tuple(Span(s.start, s.end, s.label, name) for name, t in zip(names, tags, strict=True)
                      for s in tags_to_spans(t))  # fmt: skip
        examples.append(replace(group[0], tags=tags[0], spans=spans, layers=tuple(names)))
    if any(len(c.examples) != len(first.examples) for c in corpora):
        counts = ", ".join(f"column {c}: {len(k.examples)}" for c, k in zip(columns, corpora, strict=True))
        raise DataFormatError(path, None, f"the tag columns give different numbers of sentences ({counts})",
                              "the same sentences in every tag column")  # fmt: skip
    counts = {name: sum(1 for ex in examples for s in ex.spans or () if s.layer == name) for name in names}
    said = ", ".join(f"{name} (column {c}, {n} spans)" for (name, n), c in zip(counts.items(), columns, strict=True))
    findings.append(Finding("layers", path, None, f"{len(names)} layers of entities: {said}", "info"))
    return Corpus(path=first.path, format=first.format, examples=examples, scheme="iob2", findings=findings)


def _layer_names(corpora: list[Corpus], columns: tuple[int, ...], given: tuple[str, ...] | None) -> list[str]:
    if given:
        return list(given)
    names = []
    for corpus in corpora:
        types = sorted({s.label for ex in corpus.examples for s in tags_to_spans(convert_tags(ex.tags, "iob2"))})
        names.append("+".join(types) or "none")
    if len(set(names)) < len(names):
        names = [f"{name}@{column}" if names.count(name) > 1 else name
                 for name, column in zip(names, columns, strict=True)]  # fmt: skip
    return names


def select_layer(corpus: Corpus, layer: str) -> Corpus:
    """``corpus`` with the tags of one layer (its outermost entities), the flat view a flat model learns; the spans
    stay as they are.

    Raises:
        UsageError: the corpus has no such layer (the message lists those it has).
    """
    from nerforge.data.layers import example_layers, flatten, in_layer
    from nerforge.data.schemes import spans_to_tags
    from nerforge.errors import UsageError

    have = list(dict.fromkeys(n for ex in corpus.examples for n in example_layers(ex)))
    if layer not in have:
        named = ", ".join(repr(n) for n in have if n) or "one unnamed layer"
        raise UsageError(f"{corpus.path} has no layer {layer!r}; it has {named}")
    examples = [replace(ex, tags=tuple(spans_to_tags(flatten(in_layer(ex.spans or (), layer)), len(ex.tokens))))
                for ex in corpus.examples]  # fmt: skip
    return replace(corpus, examples=examples)
