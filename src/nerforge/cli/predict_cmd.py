"""``nerforge predict MODEL INPUT``: find entities in raw texts from a file (or ``--text``) and write them out.

``--engine ray`` runs the same prediction on a Ray cluster (or a local Ray instance) instead of in this process:
see :mod:`nerforge.distributed.ray_predict`.
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from nerforge.errors import UsageError
from nerforge.outputs import check_output_file
from nerforge.prediction.engine import DEFAULT_CHUNK_SIZE
from nerforge.prediction.io import (
    InputRecord,
    count_inputs,
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
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    backend: str | None = None,
) -> PredictSummary:
    """Tag the texts of ``input_path`` (or the single ``text``) with the model in ``model``.

    Results stream: each ``(record, entities)`` goes to ``on_result`` (when given) and to ``output`` (``.jsonl`` or
    ``.csv``, written atomically) as it is predicted.
    """
    from nerforge.prediction.tagger import Tagger

    if (input_path is None) == (text is None):
        raise UsageError("give either an INPUT file or --text, not both and not neither")
    if output is not None:
        output_format(output)  # fail on a bad output name or an unwritable output before loading anything
        check_output_file(output)
        if input_path is not None and Path(input_path).resolve() == Path(output).resolve():
            raise UsageError(f"--output {output} is the INPUT file; choose another --output")
    if input_path is not None:
        input_format(input_path)
    if batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {batch_size}")
    records: Iterator[InputRecord]
    if text is not None:
        records, total = iter([InputRecord(0, text)]), 1
    else:
        # the pre-scan finds a bad record before any tagging, and gives the progress bar its total and ETA
        total = count_inputs(input_path, text_column=text_column, whole_file=whole_file)  # type: ignore[arg-type]
        records = read_inputs(input_path, text_column=text_column, whole_file=whole_file)  # type: ignore[arg-type]
    tagger = Tagger.load(
        model, batch_size=batch_size, device=device, progress=progress, chunk_size=chunk_size, backend=backend
    )
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
        write_predictions(output, results(), csv_input=csv_input)
    else:
        for _ in results():
            pass
    return summary


def _show(record: InputRecord, entities: Sequence[Entity]) -> None:
    typer.echo(f"[{record.id}] {render_inline(record.text, entities)}")


def predict_cli(
    model: str = typer.Argument(..., metavar="MODEL", help="Model directory written by 'nerforge train'."),
    input_path: str | None = typer.Argument(
        None,
        metavar="INPUT",
        help="Texts: .txt (one per line), .csv (column --text-column) or .jsonl (field text); with --engine ray also "
        ".parquet, a folder, a glob or an fsspec URL (s3://...).",
    ),
    text: str | None = typer.Option(None, "--text", help="Tag this literal text instead of a file."),
    output: str | None = typer.Option(
        None, "--output", "-o", help="Write results to OUT.jsonl or OUT.csv (with --engine ray also OUT.parquet)."
    ),
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
    backend: str | None = typer.Option(
        None, "--backend", help="torch or onnx (default: what the model directory holds)."
    ),
    chunk_size: int = typer.Option(DEFAULT_CHUNK_SIZE, "--chunk-size", min=1, help="Texts read and batched together."),
    engine: str = typer.Option("local", "--engine", help="local (this process) or ray (a pool of Ray workers)."),
    address: str | None = typer.Option(
        None,
        "--address",
        help="Ray: the cluster to join (auto, host:6379, ray://host:10001); default: start a local one.",
    ),
    num_workers: int | None = typer.Option(
        None, "--num-workers", min=1, help="Ray: tagger workers, one model copy each (default: one per CPU)."
    ),
    part_size: int | None = typer.Option(
        None, "--part-size", min=1, help="Ray: texts per part file, a multiple of --chunk-size (default: --chunk-size)."
    ),
    keep_parts: bool = typer.Option(False, "--keep-parts", help="Ray: keep the OUT.parts folder after merging."),
) -> None:
    """Find entities in raw texts and write them as JSONL or CSV."""
    from nerforge.threads import set_torch_threads

    if engine == "ray":
        _predict_ray(
            model, input_path, output, text=text, show=show, text_column=text_column, whole_file=whole_file,
            batch_size=batch_size, device=device, threads=threads, backend=backend, chunk_size=chunk_size,
            address=address, num_workers=num_workers, part_size=part_size, keep_parts=keep_parts,
        )  # fmt: skip
        return
    if engine != "local":
        raise UsageError(f"unknown --engine {engine!r}; choose local or ray")
    set_torch_threads(threads)
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
        chunk_size=chunk_size,
        backend=backend,
    )
    where = f"; wrote {summary.output}" if summary.output else ("" if show else "; use --output or --show to see them")
    typer.echo(summary.line() + where)


def _predict_ray(
    model: str,
    input_path: str | None,
    output: str | None,
    *,
    text: str | None,
    show: bool,
    num_workers: int | None,
    part_size: int | None,
    chunk_size: int,
    threads: int | None,
    device: str,
    **rest: Any,
) -> None:
    from nerforge.distributed import RayOptions, predict_on_ray

    if input_path is None or output is None or text is not None or show:
        raise UsageError("--engine ray tags an INPUT file into --output; --text and --show need --engine local")
    gpu = device.startswith("cuda")
    options = RayOptions(
        address=rest.pop("address"),
        num_workers=num_workers,
        gpus_per_worker=1.0 if gpu else 0.0,
        threads=threads,
        part_size=part_size or chunk_size,
        chunk_size=chunk_size,
        batch_size=rest.pop("batch_size"),
        backend=rest.pop("backend"),
        device=device,
        keep_parts=rest.pop("keep_parts"),
    )
    result = predict_on_ray(model, input_path, output, options=options, **rest)
    summary = PredictSummary(texts=result.texts, entities=result.entities)
    reused = f", {result.parts_skipped} reused from an earlier run" if result.parts_skipped else ""
    typer.echo(f"{summary.line()}; wrote {result.output} ({result.parts} parts{reused}, {result.seconds:.1f}s)")


def register(app: typer.Typer) -> None:
    app.command("predict")(predict_cli)
