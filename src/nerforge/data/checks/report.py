"""``inspect_files``: read files, run every check, and gather counts and findings into an :class:`InspectReport`."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nerforge.data.checks import subwords
from nerforge.data.checks.common import FindingLog, decode_spans, split_docstart
from nerforge.data.checks.lines import check_extra_fields, column_separator, file_lines
from nerforge.data.checks.overlap import Overlap, check_duplicates, check_label_consistency, check_overlap
from nerforge.data.checks.tags import check_corrupt_types, check_i_starts, check_tag_shapes, check_types_across_files
from nerforge.data.checks.tokens import check_tokens, unusual_chars
from nerforge.data.readers.arrow import arrow_format
from nerforge.data.readers.brat import brat_format
from nerforge.data.readers.options import ReadOptions
from nerforge.errors import DataFormatError, UsageError
from nerforge.types import Corpus, Example, Finding, Span

logger = logging.getLogger(__name__)

Reader = Callable[[str, ReadOptions], Corpus]

# Kinds that the checks here compute in full for every scheme; a reader's findings of these kinds repeat them.
OWN_KINDS = frozenset({"i-start", "whitespace-token"})


@dataclass
class FileReport:
    """Counts and findings of one file.

    ``findings`` keeps the first few of each kind and ``findings_by_kind`` counts them all. ``lengths`` maps a unit
    (``words``, ``subwords``) to its :class:`~nerforge.data.checks.subwords.LengthStats`. ``unusual_chars`` counts the
    tokens holding each non-printable character.
    """

    path: str
    format: str
    scheme: str
    documents: int
    sentences: int
    tokens: int
    entities: int
    entities_by_type: dict[str, int]
    findings: list[Finding] = field(default_factory=list)
    findings_by_kind: dict[str, int] = field(default_factory=dict)
    lengths: dict[str, subwords.LengthStats] = field(default_factory=dict)
    unusual_chars: dict[str, int] = field(default_factory=dict)
    nesting: dict[str, Any] | None = None  # layers and overlapping spans (nerforge.data.layers), when the data has any

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "format": self.format,
            "scheme": self.scheme,
            "documents": self.documents,
            "sentences": self.sentences,
            "tokens": self.tokens,
            "entities": self.entities,
            "entities_by_type": dict(self.entities_by_type),
            "findings": [
                {"kind": f.kind, "path": f.path, "line": f.line, "message": f.message, "severity": f.severity}
                for f in self.findings
            ],
            "findings_by_kind": dict(self.findings_by_kind),
            "lengths": {unit: asdict(stats) for unit, stats in self.lengths.items()},
            "unusual_chars": dict(self.unusual_chars),
            "nesting": self.nesting,
        }


@dataclass
class InspectReport:
    """What ``nerforge inspect`` found in a set of files."""

    files: list[FileReport]
    overlaps: list[Overlap] = field(default_factory=list)
    tokenizer: str | None = None
    max_length: int | None = None

    def total(self) -> dict[str, Any]:
        """Sums over the files: sentences, tokens, entities, entities by type and findings by kind."""
        by_type: Counter[str] = Counter()
        by_kind: Counter[str] = Counter()
        for f in self.files:
            by_type.update(f.entities_by_type)
            by_kind.update(f.findings_by_kind)
        return {
            "sentences": sum(f.sentences for f in self.files),
            "tokens": sum(f.tokens for f in self.files),
            "entities": sum(f.entities for f in self.files),
            "entities_by_type": dict(sorted(by_type.items())),
            "findings_by_kind": dict(sorted(by_kind.items())),
        }

    def entities_lost(self) -> int:
        """Entities a naive truncation at the checked maximum length would lose, over all files."""
        return sum(stats.entities_lost for f in self.files for stats in f.lengths.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": [f.to_dict() for f in self.files],
            "total": self.total(),
            "overlaps": [asdict(o) for o in self.overlaps],
            "tokenizer": self.tokenizer,
            "max_length": self.max_length,
        }


@dataclass
class _Prepared:
    corpus: Corpus
    examples: list[Example]
    spans: list[list[Span]]
    markers: int
    log: FindingLog


def _prepare(corpus: Corpus, options: ReadOptions, max_findings: int | None) -> _Prepared:
    log = FindingLog(max_findings)
    log.extend(f for f in corpus.findings if f.kind not in OWN_KINDS)
    if corpus.format == "conll" and Path(corpus.path).is_file():
        lines = file_lines(corpus.path)
        log.extend(check_extra_fields(lines, corpus.path, column_separator(lines, options.separator)))
    examples, markers, docstart_findings = split_docstart(corpus.examples, corpus.path)
    log.extend(docstart_findings)
    spans = [decode_spans(ex.tags) for ex in examples]
    return _Prepared(corpus, examples, spans, markers, log)


def inspect_corpora(
    corpora: Sequence[Corpus],
    *,
    tokenizer: Any = None,
    max_length: int | None = None,
    max_findings: int | None = 50,
    options: ReadOptions | None = None,
) -> InspectReport:
    """Check corpora that are already read (``train`` calls this before training).

    Args:
        corpora: one per file, in the order given; overlap is reported in the later file.
        tokenizer: a Hugging Face tokenizer (the caller loads it, e.g. with
            :func:`nerforge.model_dir.load_tokenizer`), or ``None`` to skip subword checks.
        max_length: the limit for truncation counts, in subwords with a tokenizer (default: the tokenizer's
            ``model_max_length``) or in words without one (default: no truncation check).
        max_findings: findings kept per kind and file (all are counted); ``None`` keeps all.
        options: the options the corpora were read with (the raw-line checks of column files use the separator).
    """
    paths = [c.path for c in corpora]
    if len(set(paths)) != len(paths):
        twice = next(p for p in paths if paths.count(p) > 1)
        raise UsageError(f"{twice} is given twice; give each file once")
    tok = tokenizer
    model = getattr(tok, "name_or_path", None) or None
    if tok is not None and not model:
        model = type(tok).__name__
    limit = max_length if max_length is not None or tok is None else subwords.tokenizer_limit(tok)
    prepared = [_prepare(c, options or ReadOptions(), max_findings) for c in corpora]
    pieces = None
    if tok is not None:
        pieces = subwords.piece_counts(tok, (t for p in prepared for ex in p.examples for t in ex.tokens))
    reports = [_check_file(p, tok, pieces, model, limit) for p in prepared]
    logs = {p.corpus.path: p.log for p in prepared}
    files = [(p.corpus.path, p.examples) for p in prepared]
    overlaps, overlap_findings = check_overlap(files)
    cross = [
        *check_types_across_files(files),
        *overlap_findings,
        *check_label_consistency([(p.corpus.path, p.examples, p.spans) for p in prepared]),
    ]
    for finding in cross:
        logs[finding.path].add(finding)
    for report, p in zip(reports, prepared, strict=True):
        report.findings = list(p.log.kept)
        report.findings_by_kind = dict(sorted(p.log.counts.items()))
    return InspectReport(reports, overlaps, model, limit)


def by_source(examples: list[Example], spans: list[Any], path: str) -> list[tuple[str, list[Example], list[Any]]]:
    """The examples (and their spans) of each file they were read from, in order: one group, named ``path``, for a
    corpus read from one file; one per document for a folder (BRAT) or a dataset of shards, so that findings name
    the file their line is in."""
    sources = {ex.source for ex in examples if ex.source}
    if len(sources) <= 1:
        return [(path, examples, spans)]
    groups: dict[str, tuple[list[Example], list[Any]]] = {}
    for ex, sp in zip(examples, spans, strict=True):
        some, their = groups.setdefault(ex.source or path, ([], []))
        some.append(ex)
        their.append(sp)
    return [(source, some, their) for source, (some, their) in groups.items()]


def _check_file(
    p: _Prepared, tok: Any, pieces: dict[str, int] | None, model: str | None, limit: int | None
) -> FileReport:
    path, examples, spans, log = p.corpus.path, p.examples, p.spans, p.log
    for source, some, their_spans in by_source(examples, spans, path):  # file:line of the file a sentence is in
        log.extend(check_tag_shapes(some, source))
        log.extend(check_corrupt_types(some, source))
        log.extend(check_i_starts(some, their_spans, source, p.corpus.scheme))
        log.extend(check_tokens(some, source))
        log.extend(check_duplicates(some, source))
    lengths: dict[str, subwords.LengthStats] = {}
    words, found = subwords.length_stats(examples, spans, path, max_length=limit if tok is None else None)
    lengths["words"] = words
    log.extend(found)
    if tok is not None and pieces is not None:
        log.extend(subwords.check_no_subword(examples, spans, path, pieces, model or "the tokenizer"))
        sub, found = subwords.length_stats(
            examples, spans, path, pieces=pieces, max_length=limit, specials=subwords.special_count(tok)
        )
        lengths["subwords"] = sub
        log.extend(found)
    by_type = Counter(s.label for ex_spans in spans for s in ex_spans)
    nesting = _nesting(examples)
    if nesting is not None:
        from nerforge.data.layers import entity_spans

        # every layer's entities count, not only the flat view's
        by_type = Counter(s.label for ex in examples for s in entity_spans(ex))
    doc_ids = {ex.doc_id for ex in p.corpus.examples if ex.doc_id is not None}
    return FileReport(
        path=path,
        format=p.corpus.format,
        scheme=p.corpus.scheme,
        documents=p.markers or len(doc_ids),
        sentences=sum(1 for ex in examples if ex.tokens),
        tokens=sum(len(ex.tokens) for ex in examples),
        entities=sum(by_type.values()),
        entities_by_type=dict(sorted(by_type.items())),
        lengths=lengths,
        unusual_chars=unusual_chars(examples),
        nesting=nesting,
    )


def _nesting(examples: Sequence[Example]) -> dict[str, Any] | None:
    """How the entities of layered or overlapping data overlap (``None`` when every example is flat tags)."""
    if all(ex.spans is None for ex in examples):
        return None
    from nerforge.data.layers import entity_spans, overlap_stats

    stats = overlap_stats(entity_spans(ex) for ex in examples)
    declared = dict.fromkeys(name for ex in examples for name in ex.layers or ())  # a column without entities too
    layers = {name: stats.layers.get(name, 0) for name in declared} | dict(stats.layers)
    return {"layers": layers, "spans": stats.spans, "nested": stats.nested, "max_depth": stats.max_depth,
            "nested_pairs": {f"{outer} > {inner}": n for (outer, inner), n in stats.nested_pairs.most_common()},
            "crossing": stats.crossing, "across_layers": stats.across_layers,
            "sentences_with_overlap": stats.examples_with_overlap}  # fmt: skip


def _default_reader() -> Reader:
    from nerforge.data.readers.registry import read_corpus

    return read_corpus


def inspect_files(
    paths: Sequence[str | Path],
    options: ReadOptions | None = None,
    tokenizer: Any = None,
    max_length: int | None = None,
    *,
    max_findings: int | None = 50,
    reader: Reader | None = None,
    corpora_out: list[Corpus] | None = None,
) -> InspectReport:
    """Read each file with ``options`` and check it; see :func:`inspect_corpora` for the other arguments.

    ``corpora_out``: a list that receives the corpora read (for callers that need the examples too).

    Raises:
        DataFormatError: a file is missing or cannot be read as asked (with ``path:line``).
        ModelError: the tokenizer cannot be loaded.
    """
    options = options or ReadOptions()
    read = reader or _default_reader()
    corpora = []
    for path in paths:
        if Path(path).is_dir() and arrow_format(path) is None and brat_format(path) is None:
            raise DataFormatError(
                path,
                None,
                "is a directory",
                "a data file (give each file: train.conll dev.conll), a dataset folder or a folder of BRAT .ann files",
            )
        if not Path(path).exists():
            raise DataFormatError(path, None, "no such file")
        logger.debug("reading %s", path)
        corpora.append(read(str(path), options))
    if corpora_out is not None:
        corpora_out.extend(corpora)
    return inspect_corpora(
        corpora, tokenizer=tokenizer, max_length=max_length, max_findings=max_findings, options=options
    )
