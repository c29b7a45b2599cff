"""``nerforge predict MODEL INPUT``: find entities in raw texts from a file (or ``--text``) and write them out."""

from __future__ import annotations

import logging
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import typer

from nerforge.errors import UsageError
from nerforge.prediction.io import (
    InputRecord,
    input_format,
    output_format,
    read_inputs,
    render_inline,
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
) -> PredictSummary:
    """Tag the texts of ``input_path`` (or the single ``text``) with the model in ``model``.

    Results stream: each ``(record, entities)`` goes to ``on_result`` (when given) and to ``output`` (``.jsonl`` or
    ``.csv``, written atomically) as it is predicted.
    """
    from nerforge.prediction.tagger import Tagger

    if (input_path is None) == (text is None):
        raise UsageError("give either an INPUT file or --text, not both and not neither")
    if output is not None:
        output_format(output)  # fail on a bad output name before loading anything
    if input_path is not None:
        input_format(input_path)
    if batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {batch_size}")
    records: Iterator[InputRecord]
    if text is not None:
        records = iter([InputRecord(0, text)])
    else:
        records = read_inputs(input_path, text_column=text_column, whole_file=whole_file)  # type: ignore[arg-type]
    tagger = Tagger.load(model, batch_size=batch_size, device=device, progress=progress)
    summary = PredictSummary(output=Path(output) if output is not None else None)

    def results() -> Iterator[tuple[InputRecord, Sequence[Entity]]]:
        pending: deque[InputRecord] = deque()

        def texts() -> Iterator[str]:
            for record in records:
                pending.append(record)
                yield record.text

        for entities in tagger.iter_predict(texts()):
            record = pending.popleft()
            summary.texts += 1
            summary.entities.update(e.label for e in entities)
            if on_result is not None:
                on_result(record, entities)
            yield record, entities

    csv_input = input_path is not None and input_format(input_path) == "csv"
    if output is not None:
        write_predictions(output, results(), csv_input=csv_input)
    else:
        for _ in results():
            pass
    return summary


def _show(record: InputRecord, entities: Sequence[Entity]) -> None:
    typer.echo(f"[{record.id}] {render_inline(record.text, entities)}")


def predict_cli(
    model: Path = typer.Argument(..., metavar="MODEL", help="Model directory written by 'nerforge train'."),
    input_path: Path | None = typer.Argument(
        None, metavar="INPUT", help="Texts: .txt (one per line), .csv (column --text-column) or .jsonl (field text)."
    ),
    text: str | None = typer.Option(None, "--text", help="Tag this literal text instead of a file."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write results to OUT.jsonl or OUT.csv."),
    text_column: str = typer.Option("text", "--text-column", help="CSV column / JSONL field holding the text."),
    whole_file: bool = typer.Option(False, "--whole-file", help="Treat a whole .txt file as one text."),
    batch_size: int = typer.Option(32, "--batch-size", help="Windows per forward pass."),
    device: str = typer.Option("cpu", "--device", help="Torch device: cpu, cuda, cuda:1, mps."),
    threads: int | None = typer.Option(
        None, "--threads", min=1, help="CPU threads for torch (default: the cores idle now)."
    ),
    show: bool = typer.Option(False, "--show", help="Print each text with its entities marked inline: \\[Acme](ORG)."),
    progress: bool | None = typer.Option(
        None, "--progress/--no-progress", help="Progress bar (default: only on a terminal)."
    ),
) -> None:
    """Find entities in raw texts and write them as JSONL or CSV."""
    from nerforge.prediction.engine import set_cpu_threads

    set_cpu_threads(threads)
    summary = predict(
        model,
        input_path=input_path,
        text=text,
        output=output,
        text_column=text_column,
        whole_file=whole_file,
        batch_size=batch_size,
        device=device,
        progress=progress,
        on_result=_show if show else None,
    )
    where = f"; wrote {summary.output}" if summary.output else ("" if show else "; use --output or --show to see them")
    typer.echo(summary.line() + where)


def register(app: typer.Typer) -> None:
    app.command("predict")(predict_cli)
