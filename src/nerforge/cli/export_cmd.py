"""``nerforge export MODEL --onnx [--quantize int8] --output DIR``: a model directory that runs on ONNX Runtime."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from nerforge.cli.checks import check_model
from nerforge.cli.options import model_read_options, with_data_flags
from nerforge.errors import UsageError
from nerforge.export.onnx import (
    DEFAULT_EXPORTER,
    DEFAULT_OPSET,
    EXPORTERS,
    FP32_MAX_LOGIT_DIFF,
    ExportOptions,
    ExportResult,
)


def export(model: str | Path, output: str | Path, *, onnx: bool, options: ExportOptions) -> ExportResult:
    """Export ``model`` to ``output`` (only ONNX for now)."""
    check_model(model)
    from nerforge.export.onnx import export_onnx

    if not onnx:
        raise UsageError("choose an export format: --onnx (the only one so far)")
    return export_onnx(model, output, options)


@with_data_flags
def export_cli(
    model: Path = typer.Argument(..., help="Model directory written by 'nerforge train'."),
    output: Path = typer.Option(
        ...,
        "--output",
        "-o",
        help="Directory to write; an existing one is replaced (atomically) only if an earlier export wrote it.",
    ),
    onnx: bool = typer.Option(False, "--onnx", help="Export to ONNX (graph, tokenizer, config, nerforge.json)."),
    quantize: str | None = typer.Option(
        None, "--quantize", help="Quantize the graph: int8 (dynamic, int8 weights of MatMul; ~2-3x faster on CPU)."
    ),
    parity_data: Path | None = typer.Option(
        None, "--parity-data", help="Labelled data (any format nerforge reads) to compare F1 of PyTorch and ONNX on."
    ),
    parity_format: str | None = typer.Option(
        None, "--parity-format", help="Format of --parity-data (same as --format; default: detect)."
    ),
    parity_limit: int = typer.Option(2000, "--parity-limit", help="Use at most this many sentences of --parity-data."),
    opset: int = typer.Option(DEFAULT_OPSET, "--opset", help="ONNX opset to target."),
    exporter: str = typer.Option(
        DEFAULT_EXPORTER, "--exporter", help=f"Torch exporter: {' or '.join(EXPORTERS)} (dynamo needs onnxscript)."
    ),
    batch_size: int = typer.Option(32, "--batch-size", help="Batch size of the parity check."),
    max_logit_diff: float = typer.Option(
        FP32_MAX_LOGIT_DIFF, "--max-logit-diff", help="Refuse an fp32 graph whose logits differ more from PyTorch's."
    ),
    *,
    data_flags: dict[str, Any],
) -> None:
    """Export a trained model for fast CPU inference, and check it against PyTorch.

    --parity-data is read the way the model's training data was (label names, scheme, columns... are kept in the
    model directory); the data flags replace kept values.
    """
    options = ExportOptions(
        quantize=quantize,
        opset=opset,
        exporter=exporter,
        parity_data=str(parity_data) if parity_data is not None else None,
        parity_format=parity_format,
        parity_read=model_read_options(model, data_flags) if parity_data is not None else None,
        parity_limit=parity_limit,
        batch_size=batch_size,
        max_logit_diff=max_logit_diff,
    )
    result = export(model, output, onnx=onnx, options=options)
    kind = f"int8 ({', '.join(result.quantization.op_types)} weights)" if result.quantization else "fp32"
    size = f"{result.onnx_bytes / 1e6:.1f} MB"
    if result.quantization:
        size += f" (fp32 {result.fp32_bytes / 1e6:.1f} MB)"
    typer.echo(f"exported {model} -> {result.directory}: {kind}, opset {result.opset}, {result.exporter}, {size}")
    for line in result.parity.lines():
        typer.echo(line)
    typer.echo(f"wrote {result.directory / 'parity.json'}; use the directory like any model (predict, evaluate, serve)")


def register(app: typer.Typer) -> None:
    app.command("export")(export_cli)
