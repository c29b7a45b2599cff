"""Tag the texts of a file (or one literal text) with a model and stream the entities to JSONL or CSV.

The input is pre-scanned first (a bad record stops the run before any tagging, and the progress bar gets its
total); results stream to the output (written atomically) and to an optional hook as they are tagged.
``nerforge predict`` (:mod:`nerforge.cli.predict_cmd`) is a thin wrapper over :func:`predict`.
"""

from __future__ import annotations

import importlib.util
import logging
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from nerforge.errors import MissingDependencyError, UsageError
from nerforge.io_utils import atomic_open
from nerforge.outputs import check_free_space, check_output_file
from nerforge.prediction.annotation_formats import (
    ANNOTATION_FORMATS,
    BINARY_FORMATS,
    DEFAULT_FROM_NAME,
    DEFAULT_TO_NAME,
    OFFSET_UNITS,
    SUFFIXES,
    write_annotation_format,
    write_docbin,
)
from nerforge.prediction.engine import DEFAULT_CHUNK_SIZE
from nerforge.prediction.io import (
    InputRecord,
    count_inputs,
    input_format,
    output_format,
    read_inputs,
    write_predictions,
)
from nerforge.types import Entity

logger = logging.getLogger(__name__)

ResultHook = Callable[[InputRecord, Sequence[Entity]], None]


@dataclass
class PredictSummary:
    """What a prediction run did."""

    texts: int = 0
    entities: Counter[str] = field(default_factory=Counter)
    output: Path | None = None
    left_out: str = ""  # texts the output format cannot hold, said as a clause ("2 empty texts left out: ...")

    def line(self) -> str:
        by_type = ", ".join(f"{label} {n}" for label, n in sorted(self.entities.items()))
        total = sum(self.entities.values())
        text = f"tagged {self.texts} text{'s' if self.texts != 1 else ''}: {total} entit{'ies' if total != 1 else 'y'}"
        return text + (f" ({by_type})" if by_type else "") + (f"; {self.left_out}" if self.left_out else "")


def _check_output_kind(output: str | Path, kind: str | None) -> None:
    """Refuse an output kind nerforge does not write, or one whose file suffix says otherwise."""
    suffix = Path(output).suffix.lower()
    if kind is None or kind in ("jsonl", "csv"):
        found = output_format(output)
        if kind is not None and kind != found:
            raise UsageError(f"--format {kind} but {output} is named *{suffix}; name it *.{kind}")
        return
    if kind not in ANNOTATION_FORMATS:
        raise UsageError(f"unknown output format {kind!r}; choose jsonl, csv, {', '.join(ANNOTATION_FORMATS)}")
    wanted = SUFFIXES[kind]
    if suffix != wanted:
        what = {".jsonl": "JSON Lines", ".json": "one JSON list", ".spacy": "a spaCy DocBin"}[wanted]
        raise UsageError(f"--format {kind} writes {what}; name the output *{wanted} (got {output})")


@dataclass(frozen=True)
class PredictSource:
    """What :func:`predict` tags: a file (``.txt`` lines, ``.csv``/``.parquet`` rows, ``.jsonl`` records), a web page
    (an ``http(s)://`` URL in ``input_path``), or one ``text``.

    Attributes:
        input_path: the file or URL; exactly one of it and ``text``.
        text: a single text; ``text_fields`` are kept with it in the output (e.g. a page's ``url`` and ``title``).
        text_column: the CSV column / JSON field holding the text.
        whole_file: a ``.txt`` file is one text, not one per line.
        allow_private_urls: let a URL reach loopback and private addresses (refused by default).
    """

    input_path: str | Path | None = None
    text: str | None = None
    text_fields: Mapping[str, Any] | None = None
    text_column: str = "text"
    whole_file: bool = False
    allow_private_urls: bool = False


@dataclass(frozen=True)
class PredictOutput:
    """Where :func:`predict` writes: ``path`` (``None``: nowhere) in ``kind`` (``jsonl`` or ``csv``, default from the
    suffix; or an annotation tool's import format, ``label-studio``, ``doccano`` or ``spacy``, where ``from_name`` and
    ``to_name`` are Label Studio's control and object tag names, and ``offsets`` the unit of doccano's offsets,
    ``utf-16`` (what its page counts) or ``code-points``)."""

    path: str | Path | None = None
    kind: str | None = None
    from_name: str = DEFAULT_FROM_NAME
    to_name: str = DEFAULT_TO_NAME
    offsets: str = "utf-16"  # doccano: the unit of its offsets (annotation_formats.OFFSET_UNITS)


@dataclass(frozen=True)
class RunOptions:
    """How the model runs: windows per forward pass, device, backend (default: the model directory's), texts read
    and batched together, a progress bar (``None``: on a terminal)."""

    batch_size: int = 32
    device: str = "cpu"
    backend: str | None = None
    chunk_size: int = DEFAULT_CHUNK_SIZE
    progress: bool | None = None


def is_web_url(value: str | Path) -> bool:
    """An ``http://`` or ``https://`` input (other schemes such as ``s3://`` are files for the Ray engine)."""
    return isinstance(value, str) and value.lower().startswith(("http://", "https://"))


def fetch_page(url: str, *, allow_private: bool = False) -> tuple[str, dict[str, Any]]:
    """The main text of the page at ``url`` and the fields kept with it (``url``, ``title``), fetched like the
    server does (:mod:`nerforge.prediction.urlfetch`): private, loopback and link-local addresses refused (also
    after redirects), size and time limits.

    Raises:
        MissingDependencyError: the serve extra (httpx, trafilatura) is not installed.
        UsageError: the URL is refused or cannot be fetched, or the page has no text (one line saying why).
    """
    import asyncio

    from nerforge.errors import MissingDependencyError

    try:
        from nerforge.prediction.urlfetch import FetchPolicy, UrlFetcher
    except ImportError as exc:
        raise MissingDependencyError(exc.name or "httpx", "serve") from None
    page = asyncio.run(UrlFetcher(FetchPolicy(allow_private=allow_private)).fetch(url))
    if not page.text.strip():
        raise UsageError(f"{url}: the page has no text to tag")
    logger.info("fetched %s (%s, %d characters)", page.url, page.content_type, len(page.text))
    return page.text, {"url": page.url, "title": page.title}


class TextTagger(Protocol):
    """What tags the texts of a file: a model (:class:`~nerforge.prediction.tagger.Tagger`) or a term list
    (:class:`~nerforge.prediction.terms.TermTagger`)."""

    @property
    def model_version(self) -> str: ...

    def iter_predict(self, texts: Iterable[str], *, total: int | None = None) -> Iterator[list[Entity]]: ...


def predict(
    model: str | Path,
    source: PredictSource,
    output: PredictOutput = PredictOutput(),
    options: RunOptions = RunOptions(),
    *,
    on_result: ResultHook | None = None,
) -> PredictSummary:
    """Tag the texts of ``source`` with the model in ``model`` and write them to ``output``.

    Results stream: each ``(record, entities)`` goes to ``on_result`` (when given) and to ``output.path`` (written
    atomically) as it is predicted.

    Raises:
        UsageError: options that do not fit together, a refused output or URL; DataFormatError: a bad input record
            (found by a pre-scan, before any tagging); ModelError: the model.
    """
    if options.batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {options.batch_size}")

    def load() -> TextTagger:
        from nerforge.prediction.heap import settle_loaded_objects
        from nerforge.prediction.tagger import Tagger

        tagger = Tagger.load(
            model,
            batch_size=options.batch_size,
            device=options.device,
            progress=options.progress,
            chunk_size=options.chunk_size,
            backend=options.backend,
        )
        settle_loaded_objects()  # one model for the whole file: spare every later collection the loaded objects
        return tagger

    return tag_texts(load, source, output, on_result=on_result)


def tag_texts(
    load: Callable[[], TextTagger], source: PredictSource, output: PredictOutput, *, on_result: ResultHook | None = None
) -> PredictSummary:
    """Check ``source`` and ``output``, then tag the texts with what ``load`` returns (called once every check has
    passed, so a bad input or output is refused before a model loads) and write them: :func:`predict`'s work."""
    input_path, text, text_fields = source.input_path, source.text, source.text_fields
    text_column, whole_file = source.text_column, source.whole_file
    output_kind, from_name, to_name = output.kind, output.from_name, output.to_name
    if input_path is not None and is_web_url(input_path):
        if text is not None:
            raise UsageError("give either an INPUT (file or URL) or --text, not both")
        text, text_fields = fetch_page(str(input_path), allow_private=source.allow_private_urls)
        input_path = None
    out_path = output.path
    if (input_path is None) == (text is None):
        raise UsageError("give either an INPUT file or --text, not both and not neither")
    if out_path is not None:
        _check_output_kind(out_path, output_kind)  # a bad output name or kind fails before loading anything
        if output.offsets not in OFFSET_UNITS:
            raise UsageError(f"unknown offset unit {output.offsets!r}; choose {' or '.join(OFFSET_UNITS)}")
        if output_kind in BINARY_FORMATS and importlib.util.find_spec("spacy") is None:
            raise MissingDependencyError("spacy", "spacy")
        check_output_file(out_path)
        if input_path is not None and Path(input_path).resolve() == Path(out_path).resolve():
            raise UsageError(f"--output {out_path} is the INPUT file; choose another --output")
    if input_path is not None:
        input_format(input_path)
        if out_path is not None and Path(input_path).is_file():
            # the output holds each text (or row) again with its entities: at least the input's size
            check_free_space(out_path, Path(input_path).stat().st_size, what=f"the predictions ({Path(out_path).name})")
    records: Iterator[InputRecord]
    if text is not None:
        records, total = iter([InputRecord(0, text, None, dict(text_fields or {}))]), 1
    else:
        # the pre-scan finds a bad record before any tagging, and gives the progress bar its total and ETA
        total = count_inputs(input_path, text_column=text_column, whole_file=whole_file)  # type: ignore[arg-type]
        records = read_inputs(input_path, text_column=text_column, whole_file=whole_file)  # type: ignore[arg-type]
    tagger = load()
    summary = PredictSummary(output=Path(out_path) if out_path is not None else None)

    def results() -> Iterator[tuple[InputRecord, Sequence[Entity]]]:
        pending: deque[InputRecord] = deque()

        def texts() -> Iterator[str]:
            for record in records:
                pending.append(record)
                yield record.text

        for entities in tagger.iter_predict(texts(), total=total):
            record = pending.popleft()
            summary.texts += 1
            summary.entities.update(e.label for e in entities)
            if on_result is not None:
                on_result(record, entities)
            yield record, entities

    csv_input = input_path is not None and input_format(input_path) == "csv"
    if out_path is not None:
        if output_kind in BINARY_FORMATS:
            _, missed = write_docbin(out_path, results())
            if missed:
                summary.left_out = f"{missed} entities not on word boundaries left out"
        elif output_kind in ANNOTATION_FORMATS:
            with atomic_open(out_path, "w", encoding="utf-8") as fh:
                _, skipped = write_annotation_format(
                    fh, results(), output_kind, from_name=from_name, to_name=to_name,
                    model_version=tagger.model_version, offsets=output.offsets,
                )  # fmt: skip
            if skipped:
                summary.left_out = (
                    f"{skipped} empty text{'s' if skipped != 1 else ''} left out (doccano's importer refuses them)"
                )
        else:
            write_predictions(out_path, results(), csv_input=csv_input)
    else:
        for _ in results():
            pass
    return summary
