"""Tag the texts of a file (or one literal text) with a model and stream the entities to JSONL or CSV.

The input is pre-scanned first (a bad record stops the run before any tagging, and the progress bar gets its
total); results stream to the output (written atomically) and to an optional hook as they are tagged.
``nerforge predict`` (:mod:`nerforge.cli.predict_cmd`) is a thin wrapper over :func:`predict`.
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nerforge.errors import UsageError
from nerforge.io_utils import atomic_open
from nerforge.outputs import check_free_space, check_output_file
from nerforge.prediction.annotation_formats import (
    ANNOTATION_FORMATS,
    DEFAULT_FROM_NAME,
    DEFAULT_TO_NAME,
    write_annotation_format,
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

    def line(self) -> str:
        by_type = ", ".join(f"{label} {n}" for label, n in sorted(self.entities.items()))
        total = sum(self.entities.values())
        text = f"tagged {self.texts} text{'s' if self.texts != 1 else ''}: {total} entit{'ies' if total != 1 else 'y'}"
        return text + (f" ({by_type})" if by_type else "")


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
    wanted = ".jsonl" if kind == "doccano" else ".json"
    if suffix != wanted:
        raise UsageError(f"--format {kind} writes {'JSON Lines' if kind == 'doccano' else 'one JSON list'}; "
                         f"name the output *{wanted} (got {output})")


def predict(
    model: str | Path,
    *,
    input_path: str | Path | None = None,
    text: str | None = None,
    output: str | Path | None = None,
    text_column: str = "text",
    whole_file: bool = False,
    batch_size: int = 32,
    device: str = "cpu",
    progress: bool | None = None,
    on_result: ResultHook | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    backend: str | None = None,
    text_fields: Mapping[str, Any] | None = None,
    output_kind: str | None = None,
    from_name: str = DEFAULT_FROM_NAME,
    to_name: str = DEFAULT_TO_NAME,
) -> PredictSummary:
    """Tag the texts of ``input_path`` (or the single ``text``) with the model in ``model``.

    ``text_fields``: fields kept with the single ``text`` in the output (e.g. the ``url`` and ``title`` of a page).
    ``output_kind``: ``jsonl`` or ``csv`` (default: from the output's suffix), or an annotation tool's import format,
    ``label-studio``, ``doccano`` or ``spacy`` (:mod:`nerforge.prediction.annotation_formats`; ``from_name`` and
    ``to_name`` are Label Studio's control and object tag names).

    Results stream: each ``(record, entities)`` goes to ``on_result`` (when given) and to ``output`` (``.jsonl`` or
    ``.csv``, written atomically) as it is predicted.
    """
    from nerforge.prediction.heap import settle_loaded_objects
    from nerforge.prediction.tagger import Tagger

    if (input_path is None) == (text is None):
        raise UsageError("give either an INPUT file or --text, not both and not neither")
    if output is not None:
        _check_output_kind(output, output_kind)  # a bad output name or kind fails before loading anything
        check_output_file(output)
        if input_path is not None and Path(input_path).resolve() == Path(output).resolve():
            raise UsageError(f"--output {output} is the INPUT file; choose another --output")
    if input_path is not None:
        input_format(input_path)
        if output is not None and Path(input_path).is_file():
            # the output holds each text (or row) again with its entities: at least the input's size
            check_free_space(output, Path(input_path).stat().st_size, what=f"the predictions ({Path(output).name})")
    if batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {batch_size}")
    records: Iterator[InputRecord]
    if text is not None:
        records, total = iter([InputRecord(0, text, None, dict(text_fields or {}))]), 1
    else:
        # the pre-scan finds a bad record before any tagging, and gives the progress bar its total and ETA
        total = count_inputs(input_path, text_column=text_column, whole_file=whole_file)  # type: ignore[arg-type]
        records = read_inputs(input_path, text_column=text_column, whole_file=whole_file)  # type: ignore[arg-type]
    tagger = Tagger.load(
        model, batch_size=batch_size, device=device, progress=progress, chunk_size=chunk_size, backend=backend
    )
    settle_loaded_objects()  # one model for the whole file: spare every later collection the loaded objects
    summary = PredictSummary(output=Path(output) if output is not None else None)

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
    if output is not None:
        if output_kind in ANNOTATION_FORMATS:
            with atomic_open(output, "w", encoding="utf-8") as fh:
                write_annotation_format(
                    fh, results(), output_kind, from_name=from_name, to_name=to_name,
                    model_version=f"nerforge {Path(str(model)).name}",
                )  # fmt: skip
        else:
            write_predictions(output, results(), csv_input=csv_input)
    else:
        for _ in results():
            pass
    return summary
