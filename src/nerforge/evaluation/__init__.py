"""Evaluation: strict IOB2 entity scores, error analysis, token confusion, plots and reports."""

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
