"""``nerforge convert`` as a library function: read any supported file, write IOB2 CoNLL or JSON Lines."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from nerforge.data.normalize import corpus_to_iob2
from nerforge.data.readers.labels import count_kinds
from nerforge.data.readers.options import ReadOptions
from nerforge.data.readers.registry import read_corpus
from nerforge.data.schemes import tags_to_spans
from nerforge.data.writers import BRAT_EXPORT, output_format, write_examples
from nerforge.errors import UsageError
from nerforge.outputs import check_not_inside, check_output_dir, check_output_file
from nerforge.types import Example, Finding


@dataclass(frozen=True)
class CorpusStats:
    """Sentence, token and entity counts (entities decoded conlleval-style), by type: the one corpus counter of
    ``convert``, ``train``'s logs, ``nerforge.json`` and the model card."""

    sentences: int
    tokens: int
    entities: dict[str, int]

    def to_dict(self) -> dict[str, object]:
        return {"sentences": self.sentences, "tokens": self.tokens, "entities": dict(self.entities)}

    @property
    def total_entities(self) -> int:
        return sum(self.entities.values())

    def __str__(self) -> str:
        by_type = ", ".join(f"{k} {v}" for k, v in sorted(self.entities.items(), key=lambda kv: (-kv[1], kv[0])))
        return f"{self.sentences} sentences, {self.tokens} tokens, {self.total_entities} entities" + (
            f" ({by_type})" if by_type else ""
        )


def corpus_stats(examples: Iterable[Example]) -> CorpusStats:
    """Count sentences, tokens and conlleval-style entities by type."""
    sentences = tokens = 0
    entities: Counter[str] = Counter()
    for ex in examples:
        sentences += 1
        tokens += len(ex)
        entities.update(s.label for s in (ex.spans if ex.spans is not None else tags_to_spans(ex.tags)))
    return CorpusStats(sentences, tokens, dict(sorted(entities.items())))


def unwritten_spans(examples: Iterable[Example], fmt: str) -> int:
    """Entities a format leaves out: CoNLL keeps each layer's flat view, Parquet the flat tags; JSON Lines and BRAT
    keep every span."""
    from nerforge.data.layers import example_layers, flatten, in_layer

    if fmt not in ("conll", "parquet"):
        return 0
    lost = 0
    for ex in examples:
        if ex.spans is None:
            continue
        if fmt == "parquet":
            lost += len(ex.spans) - len(tags_to_spans(ex.tags))
        else:
            lost += sum(len(in_layer(ex.spans, n)) - len(flatten(in_layer(ex.spans, n))) for n in example_layers(ex))
    return lost


@dataclass(frozen=True)
class ConvertResult:
    """What :func:`convert_file` read and wrote."""

    input_path: str
    output_path: str
    input_format: str
    output_format: str
    source_scheme: str
    stats: CorpusStats
    findings: list[Finding] = field(default_factory=list)

    def summary(self) -> str:
        kinds = count_kinds(self.findings)
        detail = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
        return (
            f"wrote {self.output_path} ({self.output_format}, IOB2) from {self.input_format}/{self.source_scheme}: "
            f"{self.stats}; {len(self.findings)} findings" + (f" ({detail})" if detail else "")
        )


def convert_file(
    input_path: str | Path,
    output_path: str | Path,
    *,
    options: ReadOptions = ReadOptions(),
    to: str | None = None,
) -> ConvertResult:
    """Read ``input_path`` and write it to ``output_path`` as IOB2 CoNLL or JSON Lines.

    The output format is ``to`` when given, else from the output extension (``.conll``/``.txt``/``.tsv``: CoNLL,
    ``.jsonl``/``.json``: JSON Lines). The output is written atomically, and only after the whole input was read.

    Raises:
        DataFormatError: the input cannot be read.
        UsageError: the output format is unknown.
    """
    fmt = output_format(output_path, to)
    if fmt == "brat":  # a folder: never one nerforge did not write (nerforge.outputs)
        check_output_dir(output_path, kind=BRAT_EXPORT, what="OUT")
    else:
        check_output_file(output_path, what="OUT")
    if Path(input_path).resolve() == Path(output_path).resolve():
        raise UsageError(f"OUT {output_path} is the input file; write the converted data to another file")
    if Path(input_path).is_dir():  # a folder of shards: a file written into it is read with them next time
        check_not_inside(output_path, input_path, what="OUT")
    corpus = read_corpus(input_path, options)
    iob2 = corpus_to_iob2(corpus)
    write_examples(iob2.examples, output_path, fmt)
    lost = unwritten_spans(iob2.examples, fmt)
    if lost:
        holds = "one tag per word in each layer's column" if fmt == "conll" else "the flat tags only"
        corpus.findings.append(Finding("spans-not-written", str(output_path), None, f"{lost} overlapping entities "
                                       f"are not in {fmt} ({fmt} holds {holds}); write jsonl or brat to keep them",
                                       "warning"))  # fmt: skip
    return ConvertResult(
        input_path=str(input_path),
        output_path=str(output_path),
        input_format=corpus.format,
        output_format=fmt,
        source_scheme=corpus.scheme,
        stats=corpus_stats(iob2.examples),
        findings=list(corpus.findings),
    )
