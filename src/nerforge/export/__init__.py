"""Export: a trained model directory to a self-contained ONNX model directory, with a parity check against PyTorch."""

from nerforge.export.onnx import ExportOptions, ExportResult, QuantizationInfo, export_onnx
from nerforge.export.parity import ParityReport, check_parity
from nerforge.model_dir import PARITY_FILE

__all__ = [
    "PARITY_FILE",
    "ExportOptions",
    "ExportResult",
    "ParityReport",
    "QuantizationInfo",
    "check_parity",
    "export_onnx",
]
