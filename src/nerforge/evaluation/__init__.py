"""Evaluation: strict IOB2 entity scores, error analysis, token confusion, plots and reports.

Typical use::

    from nerforge.evaluation import write_evaluation
    result, analysis, files = write_evaluation("out/eval", gold_tags, pred_tags, tokens, epochs=log_records)
    print(result.micro.f1, files.report)
"""

from nerforge.evaluation.confusion import ConfusionMatrix, normalize_rows, tag_to_type, token_confusion
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
from nerforge.evaluation.plots import plot_confusion, plot_per_type_f1, plot_training_curves
from nerforge.evaluation.report import (
    ReportFiles,
    evaluate_tags,
    metrics_document,
    render_markdown,
    write_evaluation,
    write_report,
)

__all__ = [
    "CATEGORIES",
    "MODE",
    "SCHEME",
    "AverageScores",
    "ConfusionMatrix",
    "EpochRecord",
    "ErrorAnalysis",
    "ErrorCase",
    "EvalResult",
    "ReportFiles",
    "SpanText",
    "TypeScores",
    "analyse_errors",
    "check_aligned",
    "classify_spans",
    "coerce_epochs",
    "evaluate",
    "evaluate_tags",
    "metrics_document",
    "normalize_rows",
    "plot_confusion",
    "plot_per_type_f1",
    "plot_training_curves",
    "render_markdown",
    "tag_to_type",
    "token_confusion",
    "write_evaluation",
    "write_report",
]
