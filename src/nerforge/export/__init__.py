"""Export: a trained model directory to a self-contained ONNX model directory, with a parity check against PyTorch."""

from nerforge.export.onnx import ExportOptions, ExportResult, QuantizationInfo, export_onnx
from nerforge.export.parity import PARITY_FILE, ParityReport, check_parity

__all__ = [
    "PARITY_FILE",
    "ExportOptions",
    "ExportResult",
    "ParityReport",
    "QuantizationInfo",
    "check_parity",
    "export_onnx",
]
