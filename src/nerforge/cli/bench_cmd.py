"""``nerforge bench MODEL DATA``: how fast a model tags your sentences; a thin wrapper over
:func:`nerforge.prediction.speed.measure_speed`.

    nerforge bench model-int8 test.conll
    nerforge bench model test.conll --batch-sizes 1,8,64 --threads 1 --json
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from nerforge.cli.checks import check_inputs, check_model
from nerforge.cli.options import model_read_options, with_data_flags


def _batch_sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        raise typer.BadParameter(
            f"expected batch sizes of 1 or more separated by commas (e.g. 1,32), got {text!r}",
            param_hint="'--batch-sizes'",
        )
    return sizes


PARALLEL_SHOWN = {"batches": ", a batch each", "intra": ", each batch split over them"}


def render_speed(report: Any) -> str:
    """The table ``nerforge bench`` prints."""
    first = max(report.timings, key=lambda t: t.sentences)
    lines = [
        f"model:   {report.model} ({report.backend}, {report.threads} thread{'s' if report.threads != 1 else ''}"
        + (PARALLEL_SHOWN.get(report.parallel, "") if report.threads > 1 else "")
        + f"; loaded in {report.load_seconds:.1f} s)",
        f"data:    {report.data}, {first.sentences} sentences, {first.words} words",
        "",
        f"{'batch':>5}  {'words/s':>9}  {'sentences/s':>11}  {'words/CPU-s':>11}  {'p50 ms':>7}  {'p95 ms':>7}",
    ]
    for t in report.timings:
        p50 = f"{t.p50_ms:7.1f}" if t.p50_ms is not None else f"{'-':>7}"
        p95 = f"{t.p95_ms:7.1f}" if t.p95_ms is not None else f"{'-':>7}"
        lines.append(
            f"{t.batch_size:5d}  {t.words_per_s:9,.0f}  {t.sentences_per_s:11,.1f}  "
            f"{t.words_per_cpu_s:11,.0f}  {p50}  {p95}"
        )
    lines.append("")
    if report.unfused is not None:
        lines.append(f"ONNX Runtime graph rewrites left out: {', '.join(report.unfused) or 'none'}")
    if report.f1 is not None:
        lines.append(f"F1 of the batch-{report.timings[0].batch_size} tags (strict IOB2): {report.f1:.4f}")
    if report.peak_rss_mb is not None:
        lines.append(f"peak memory of this process: {report.peak_rss_mb:,.0f} MB")
    return "\n".join(lines)


@with_data_flags
def bench_cli(
    model: Path = typer.Argument(..., metavar="MODEL", help="A model directory (trained or exported)."),
    data: Path = typer.Argument(..., metavar="DATA", help="Annotated sentences in any supported format."),
    batch_sizes: str = typer.Option("1,32", "--batch-sizes", metavar="LIST", help="Batch sizes to time, e.g. 1,32."),
    sentences: int | None = typer.Option(None, "--sentences", min=1, help="Time only the first N sentences."),
    latency_sentences: int = typer.Option(
        200, "--latency-sentences", min=1, help="Sentences tagged one at a time for batch 1 (spread over DATA)."
    ),
    threads: int | None = typer.Option(None, "--threads", min=1, help="CPU threads (default: one per physical core)."),
    backend: str | None = typer.Option(None, "--backend", help="torch or onnx (default: what MODEL holds)."),
    spinning: bool = typer.Option(
        True,
        "--spinning/--no-spinning",
        help="ONNX Runtime: idle threads spin for the next piece of work (its default) or sleep.",
    ),
    parallel: str = typer.Option(
        "batches",
        "--parallel",
        metavar="HOW",
        help="ONNX Runtime with several threads: batches (each thread tags a batch of its own; the most words per "
        "CPU-second) or intra (each batch split over every thread, as nerforge serve runs).",
    ),
    all_fusions: bool = typer.Option(
        False,
        "--all-fusions",
        help="ONNX Runtime: keep every graph rewrite (default: leave out on CPU the ones measured slower there).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of the table."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Also write the JSON result to this file."),
    *,
    data_flags: dict[str, Any],
) -> None:
    """Time a model on your sentences: words per second, words per CPU-second, and latency one sentence at a time.

    Each batch size above 1 tags all the sentences at that batch size; batch 1 tags --latency-sentences of them one at
    a time. CPU-seconds count every thread of this process. The gold tags give an F1 check of the timed output.
    """
    check_model(model)
    check_inputs(data, what="data file")
    from nerforge.io_utils import atomic_write_text
    from nerforge.outputs import check_output_file
    from nerforge.prediction.speed import measure_speed
    from nerforge.threads import physical_cores, set_torch_threads

    if parallel not in PARALLEL_SHOWN:
        raise typer.BadParameter(f"expected batches or intra, got {parallel!r}", param_hint="'--parallel'")
    sizes = _batch_sizes(batch_sizes)
    set_torch_threads(threads or physical_cores())  # a PyTorch model's threads; ONNX Runtime gets them per session
    if output is not None:
        check_output_file(output)
    report = measure_speed(
        model, data, batch_sizes=sizes, max_sentences=sentences, latency_sentences=latency_sentences, threads=threads,
        backend=backend, options=model_read_options(model, data_flags), spinning=spinning,
        parallel=parallel, unfused=() if all_fusions else None,
    )  # fmt: skip
    document = json.dumps(report.to_dict(), indent=2)
    if output is not None:
        atomic_write_text(output, document + "\n")
    typer.echo(document if as_json else render_speed(report))


def register(app: typer.Typer) -> None:
    app.command("bench")(bench_cli)
