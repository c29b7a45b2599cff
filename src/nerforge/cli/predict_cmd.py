"""``nerforge predict MODEL INPUT``: find entities in raw texts from a file (or ``--text``) and write them out.

``--engine ray`` runs the same prediction on a Ray cluster (or a local Ray instance) instead of in this process:
see :mod:`nerforge.distributed.ray_predict`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import typer

from nerforge.cli.checks import check_inputs, check_model
from nerforge.errors import UsageError
from nerforge.prediction.engine import DEFAULT_CHUNK_SIZE
from nerforge.prediction.files import PredictOutput, PredictSource, PredictSummary, RunOptions, predict
from nerforge.prediction.io import InputRecord, render_inline
from nerforge.types import Entity

logger = logging.getLogger(__name__)


def _show(record: InputRecord, entities: Sequence[Entity]) -> None:
    typer.echo(f"[{record.id}] {render_inline(record.text, entities)}")


def predict_cli(
    model: str = typer.Argument(..., metavar="MODEL", help="Model directory written by 'nerforge train'."),
    input_path: str | None = typer.Argument(
        None,
        metavar="INPUT",
        help="Texts: .txt (one per line), .csv or .parquet (column --text-column) or .jsonl (field text); an http(s) URL "
        "(the page's main text); with --engine ray also a folder, a glob or an fsspec URL (s3://...).",
    ),
    text: str | None = typer.Option(None, "--text", help="Tag this literal text instead of a file."),
    output: str | None = typer.Option(
        None, "--output", "-o", help="Write results to OUT.jsonl or OUT.csv (with --engine ray also OUT.parquet)."
    ),
    output_kind: str | None = typer.Option(
        None,
        "--format",
        metavar="FORMAT",
        help="Output format: jsonl, csv (default: from the --output suffix), or an annotation tool's import: "
        "label-studio (OUT.json, tasks with predictions), doccano (OUT.jsonl; empty texts left out), spacy (OUT.spacy, "
        "a DocBin for spacy train), spacy-json (OUT.json, v2 training JSON).",
    ),
    from_name: str = typer.Option(
        "label", "--from-name", help="Label Studio: the name of the <Labels> tag of your labeling config."
    ),
    to_name: str = typer.Option("text", "--to-name", help="Label Studio: the name of the <Text> tag."),
    doccano_offsets: str = typer.Option(
        "utf-16",
        "--doccano-offsets",
        metavar="UNIT",
        help="doccano: offsets in utf-16 code units (what its page counts: right after an emoji) or code-points.",
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
    allow_private_urls: bool = typer.Option(
        False, "--allow-private-urls", help="Let a URL INPUT reach private and loopback addresses (refused by default)."
    ),
) -> None:
    """Find entities in raw texts and write them as JSONL or CSV."""
    if engine == "local":
        check_model(model)
    check_inputs(input_path)
    from nerforge.threads import set_torch_threads

    if engine == "ray":
        if output_kind not in (None, "jsonl", "csv"):
            raise UsageError(f"--format {output_kind} is written by --engine local only")
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
        PredictSource(
            input_path=input_path,
            text=text,
            text_column=text_column,
            whole_file=whole_file,
            allow_private_urls=allow_private_urls,
        ),
        PredictOutput(path=output, kind=output_kind, from_name=from_name, to_name=to_name, offsets=doccano_offsets),
        RunOptions(batch_size=batch_size, device=device, backend=backend, chunk_size=chunk_size, progress=progress),
        on_result=_show if show else None,
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
