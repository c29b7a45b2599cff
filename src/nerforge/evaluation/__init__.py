"""Evaluation: strict IOB2 entity scores, error analysis, token confusion, plots and reports."""

from nerforge.evaluation.errors_analysis import (
    CATEGORIES,
    ErrorAnalysis,
    ErrorCase,
    SpanText,
    analyse_errors,
    classify_spans,
)
from nerforge.evaluation.metrics import (
    MODE,
    SCHEME,
    AverageScores,
    EpochRecord,
    EvalResult,
    TypeScores,
    check_aligned,
    coerce_epochs,
    evaluate,
)

__all__ = [
    "CATEGORIES",
    "ErrorAnalysis",
    "ErrorCase",
    "SpanText",
    "analyse_errors",
    "classify_spans",
    "MODE",
    "SCHEME",
    "AverageScores",
    "EpochRecord",
    "EvalResult",
    "TypeScores",
    "check_aligned",
    "coerce_epochs",
    "evaluate",
]
