"""The ONNX graph itself: trace a token-classification model to ONNX, and quantize a graph to int8.

:func:`nerforge.export.onnx.export_onnx` uses these to build a model directory; why the defaults are what they are
(exporter, attention, quantized op types) is measured there.
"""

from __future__ import annotations

import contextlib
import errno
import io
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nerforge.errors import ModelError
from nerforge.io_utils import disk_full
from nerforge.model_dir import OUTPUT_NAME
from nerforge.modeling.export import example_inputs, graph_module

logger = logging.getLogger(__name__)

INT8_OP_TYPES = ("MatMul",)
_CHATTY_LOGGERS = ("onnx_ir", "onnxscript", "torch.onnx", "torch.export", "torch._dynamo", "torch.fx")
_EXTERNAL_DATA_BYTES = 1_500_000_000  # protobuf files stop at 2 GB; larger graphs keep weights beside them


@dataclass(frozen=True)
class QuantizationInfo:
    """How the graph was quantized (saved in ``nerforge.json`` under ``extra.onnx.quantization``)."""

    method: str = "dynamic"
    weight_type: str = "QInt8"
    activation_type: str = "QUInt8"
    op_types: tuple[str, ...] = INT8_OP_TYPES
    per_channel: bool = True
    reduce_range: bool = False


@contextlib.contextmanager
def _quiet_loggers(names: tuple[str, ...] = _CHATTY_LOGGERS) -> Iterator[None]:
    """Raise the exporters' own loggers to ERROR while exporting (they log every graph pass, and missing torchvision)."""
    saved = {name: logging.getLogger(name).level for name in names}
    for name in names:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


@contextlib.contextmanager
def _eager_attention(model: Any) -> Iterator[None]:
    """Switch the outermost Hugging Face model inside ``model`` to eager attention for tracing, then switch back.

    Models that cannot switch (no ``set_attn_implementation``, or an implementation they refuse) are left as they are.
    """
    target = next((m for m in model.modules() if hasattr(m, "set_attn_implementation") and hasattr(m, "config")), None)
    before = getattr(getattr(target, "config", None), "_attn_implementation", None)
    switched = False
    if target is not None and before not in (None, "eager"):
        try:
            target.set_attn_implementation("eager")
            switched = True
        except (ValueError, ImportError, NotImplementedError) as exc:
            logger.debug("keeping %s attention for the export: %s", before, exc)
    try:
        yield
    finally:
        if switched:
            target.set_attn_implementation(before)


def export_graph(model: Any, path: Path, *, opset: int, exporter: str, max_length: int) -> None:
    """Write ``model``'s forward pass (``input_ids``, ``attention_mask`` → ``logits``) to ``path`` as ONNX."""
    import torch

    wrapped, inputs = graph_module(model)  # the head decides its graph's inputs (nerforge.modeling.export)
    vocab = model.get_input_embeddings().num_embeddings if hasattr(model, "get_input_embeddings") else 101
    ids = torch.full((2, 8), min(100, vocab - 1), dtype=torch.long)  # any valid id: the trace is shape-only
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0
    args: tuple[Any, ...] = example_inputs(model, ids, mask)
    big = sum(p.numel() * p.element_size() for p in model.parameters()) > _EXTERNAL_DATA_BYTES
    names = {"input_names": list(inputs), "output_names": [OUTPUT_NAME], "opset_version": opset}
    chatter = io.StringIO()  # the exporters print progress and warnings of their own
    with (
        _quiet_loggers(),
        _eager_attention(model),
        warnings.catch_warnings(),
        contextlib.redirect_stdout(chatter),
        torch.inference_mode(False),
        torch.no_grad(),
    ):
        warnings.simplefilter("ignore")
        try:
            if exporter == "dynamo":
                batch = torch.export.Dim("batch", max=65536)
                seq = torch.export.Dim("sequence", min=2, max=max(max_length, 16))
                params = ("input_ids", "attention_mask", "first", "second")  # the wrapper's forward (modeling.export)
                shapes = {param: {0: batch, 1: seq} for param in params[: len(inputs)]}
                program = torch.onnx.export(wrapped, args, None, dynamo=True, dynamic_shapes=shapes, **names)
                program.save(str(path), external_data=big)
            else:
                axes = {name: {0: "batch", 1: "sequence"} for name in (*inputs, OUTPUT_NAME)}
                torch.onnx.export(wrapped, args, str(path), dynamo=False, dynamic_axes=axes, **names)
        except Exception as exc:  # exporter failures come as many types (torch._dynamo, onnxscript, RuntimeError)
            if disk_full(exc):  # not the exporter's fault: no other exporter helps
                raise OSError(errno.ENOSPC, f"no space left on the disk while writing {path.name}", str(path)) from None
            other = "torchscript" if exporter == "dynamo" else "dynamo"
            raise ModelError(
                f"the {exporter} exporter failed on this model: {type(exc).__name__}: {exc}; try --exporter {other}"
            ) from exc
    logger.debug("exporter output: %s", chatter.getvalue().strip())


def quantize_int8(source: Path, target: Path, info: QuantizationInfo = QuantizationInfo()) -> None:
    """Dynamic int8 quantization of ``source`` into ``target`` (see the module docstring).

    ONNX Runtime's pre-processing step (``quant_pre_process``) is skipped: on exported BERT-style graphs it changed
    neither the accuracy nor the speed of the result, and its symbolic shape inference fails on torchscript graphs.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()  # onnxruntime.quantization logs its advice on the root logger
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        quantize_dynamic(
            str(source),
            str(target),
            op_types_to_quantize=list(info.op_types),
            per_channel=info.per_channel,
            reduce_range=info.reduce_range,
            weight_type=getattr(QuantType, info.weight_type),
            use_external_data_format=graph_bytes(source) > _EXTERNAL_DATA_BYTES,
        )
    except Exception as exc:  # onnxruntime.quantization raises RuntimeError, ValueError, onnx errors...
        if disk_full(exc):
            raise OSError(errno.ENOSPC, f"no space left on the disk while writing {target.name}", str(target)) from None
        raise ModelError(f"int8 quantization of {source.name} failed: {type(exc).__name__}: {exc}") from exc
    finally:
        root.setLevel(level)


def graph_bytes(graph: Path) -> int:
    data = graph.with_name(graph.name + ".data")
    return graph.stat().st_size + (data.stat().st_size if data.exists() else 0)


def remove_graph(graph: Path) -> None:
    graph.unlink()
    graph.with_name(graph.name + ".data").unlink(missing_ok=True)
