"""An evaluation written out: ``report.md``, ``metrics.json`` and PNG figures, each file atomically.

>>> result, analysis = evaluate_tags([["B-PER", "O"]], [["B-PER", "O"]], [["Ada", "wrote"]])
>>> "| PER | 1.0000 | 1.0000 | 1.0000 | 1 |" in render_markdown(result, analysis)
True
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nerforge.evaluation.confusion import ConfusionMatrix, token_confusion
from nerforge.evaluation.errors_analysis import (
    CATEGORIES,
    CATEGORY_TITLES,
    ERROR_CATEGORIES,
    ErrorAnalysis,
    ErrorCase,
    analyse_errors,
)
from nerforge.evaluation.metrics import EpochRecord, EvalResult, TagSequences, TypeScores, coerce_epochs, evaluate
from nerforge.evaluation.plots import plot_confusion, plot_per_type_f1, plot_reliability, plot_training_curves
from nerforge.io_utils import atomic_write_text

logger = logging.getLogger(__name__)

REPORT_FILE = "report.md"
METRICS_FILE = "metrics.json"
PLOT_FILES = {
    "per_type_f1": "per_type_f1.png",
    "confusion": "confusion.png",
    "training_curves": "training_curves.png",
    "reliability": "reliability.png",
}
PLOT_TITLES = {
    "per_type_f1": "F1 per entity type",
    "confusion": "Token confusion by entity type",
    "training_curves": "Training curves",
    "reliability": "Entity-score reliability (raw and calibrated)",
}
CONTEXT_TOKENS = 12  # tokens shown on each side of an example span


@dataclass(frozen=True)
class ReportFiles:
    """What :func:`write_report` wrote."""

    report: Path
    metrics: Path
    plots: dict[str, Path]


def evaluate_tags(
    gold: TagSequences,
    pred: TagSequences,
    tokens: Sequence[Sequence[str]] | None = None,
    *,
    max_examples: int = 5,
) -> tuple[EvalResult, ErrorAnalysis]:
    """Strict IOB2 scores and error analysis of predicted tags against gold tags (``tokens`` give example texts)."""
    return evaluate(gold, pred), analyse_errors(gold, pred, tokens, max_examples=max_examples)


# --- markdown -----------------------------------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    fence = "``" if "`" in text else "`"
    pad = " " if fence == "``" else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _num(x: float | None, digits: int = 4) -> str:
    if x is None:
        return "–"
    if not math.isfinite(x):
        return str(x)
    return f"{x:.{digits}f}"


def _epoch(x: float | None) -> str:
    if x is None:
        return "–"
    return str(int(x)) if float(x).is_integer() else f"{x:.2f}"


def _scores_section(result: EvalResult) -> list[str]:
    lines = [
        "## Entity scores",
        "",
        "| type | precision | recall | F1 | support |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, s in result.per_type.items():
        lines.append(f"| {_cell(name)} | {_num(s.precision)} | {_num(s.recall)} | {_num(s.f1)} | {s.support} |")
    for name, s in (("micro avg", result.micro), ("macro avg", result.macro), ("weighted avg", result.weighted)):
        lines.append(f"| {name} | {_num(s.precision)} | {_num(s.recall)} | {_num(s.f1)} | {s.support} |")
    m = result.micro
    lines += [
        "",
        f"Token accuracy: {_num(result.token_accuracy)}",
        "",
        f"Entities: {m.support} gold, {m.n_pred} predicted, {m.tp} correct ({m.fp} false positives, "
        f"{m.fn} false negatives).",
        "",
    ]
    return lines


def epochs_markdown(records: Sequence[EpochRecord | Mapping[str, object]]) -> list[str]:
    """The per-epoch table as Markdown lines: train loss, dev loss, dev P/R/F1, token accuracy (columns with no value
    in any row are left out, e.g. the dev ones of a run without dev)."""
    rows = coerce_epochs(records)
    columns = [
        ("train loss", "train_loss"), ("dev loss", "eval_loss"), ("dev P", "eval_precision"),
        ("dev R", "eval_recall"), ("dev F1", "eval_f1"), ("token acc.", "eval_token_accuracy"),
    ]  # fmt: skip
    shown = [(title, key) for title, key in columns if any(getattr(r, key) is not None for r in rows)]
    lines = ["| epoch | " + " | ".join(t for t, _ in shown) + " |", "|---:|" + "---:|" * len(shown)]
    for r in rows:
        lines.append(f"| {_epoch(r.epoch)} | " + " | ".join(_num(getattr(r, k)) for _, k in shown) + " |")
    return lines


def epochs_text(records: Sequence[EpochRecord | Mapping[str, object]]) -> list[str]:
    """The per-epoch table as aligned plain-text lines, for a terminal (same columns as :func:`epochs_markdown`)."""
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in epochs_markdown(records)]
    del cells[1]  # the Markdown rule
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    return ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in cells]


def _epochs_section(records: list[EpochRecord]) -> list[str]:
    lines = ["## Training", "", *epochs_markdown(records)]
    scored = [r for r in records if r.eval_f1 is not None]
    if scored:
        best = max(scored, key=lambda r: r.eval_f1 or 0.0)
        lines += ["", f"Best dev F1: {_num(best.eval_f1)} at epoch {_epoch(best.epoch)}."]
    return lines + [""]


def _calibration_section(c: Mapping[str, Any]) -> list[str]:
    t, b = c.get("temperature", 1.0), c.get("shift", 0.0)
    how = (
        f"temperature {t:g} and shift {b:g} fitted on the dev split at training"
        if (t, b) != (1.0, 0.0)
        else "none fitted"
    )
    return [
        "## Entity scores",
        "",
        f"Expected calibration error of the entity scores over {c.get('entities', 0)} predicted entities (10 bins; 0 "
        f"is perfect): **{_num(c.get('ece_before'))} raw, {_num(c.get('ece_after'))} calibrated** ({how}). A "
        "calibrated score is the chance that the entity is right (exact span and type).",
        "",
    ]


def _sentence_view(case: ErrorCase) -> str:
    spans = [s for s in (case.gold, case.pred) if s is not None]
    if case.tokens is None:
        return "tokens " + ", ".join(f"[{s.start}, {s.end})" for s in spans)
    lo = max(0, min(s.start for s in spans) - CONTEXT_TOKENS)
    hi = min(len(case.tokens), max(s.end for s in spans) + CONTEXT_TOKENS)
    text = " ".join(case.tokens[lo:hi])
    return ("… " if lo else "") + text + (" …" if hi < len(case.tokens) else "")


def _example_line(case: ErrorCase) -> str:
    parts = []
    for side, span in (("gold", case.gold), ("predicted", case.pred)):
        if span is not None:
            shown = span.text if span.text is not None else f"[{span.start}, {span.end})"
            parts.append(f"{side} {_code(shown)} ({_cell(span.label)})")
    return f"- sentence {case.sentence}: {_code(_sentence_view(case))}: " + ", ".join(parts)


def _errors_section(analysis: ErrorAnalysis, examples_per_category: int) -> list[str]:
    lines = [
        "## Errors",
        "",
        "Each overlapping (gold, predicted) pair is counted once; per-type counts use the gold type "
        "(the predicted type for spurious entities).",
        "",
        "| category | count |",
        "|---|---:|",
    ]
    lines += [f"| {CATEGORY_TITLES[c]} | {analysis.counts[c]} |" for c in CATEGORIES]
    lines += ["", "| type | " + " | ".join(CATEGORIES) + " |", "|---|" + "---:|" * len(CATEGORIES)]
    for name, counts in analysis.per_type.items():
        lines.append(f"| {_cell(name)} | " + " | ".join(str(counts[c]) for c in CATEGORIES) + " |")
    if analysis.type_confusions:
        lines += ["", "Most frequent type confusions (gold → predicted):", ""]
        lines += [f"- {_cell(g)} → {_cell(p)}: {n}" for g, p, n in analysis.type_confusions[:10]]
    lines += ["", "### Examples", ""]
    for c in ERROR_CATEGORIES:
        cases = analysis.examples[c][:examples_per_category]
        if not cases:
            continue
        lines += [f"#### {CATEGORY_TITLES[c]}", ""]
        lines += [_example_line(case) for case in cases]
        lines.append("")
    return lines


def render_markdown(
    result: EvalResult,
    analysis: ErrorAnalysis,
    epochs: Iterable[EpochRecord | Mapping[str, object]] | None = None,
    plots: Mapping[str, str | Path] | None = None,
    *,
    title: str = "Evaluation report",
    examples_per_category: int = 3,
    calibration: Mapping[str, Any] | None = None,
    by_depth: Mapping[str, TypeScores] | None = None,
) -> str:
    """The report as Markdown: score table, token accuracy, epoch table, error counts and examples, figure links.

    Args:
        plots: figure name -> path as it should appear in the link (relative to the report).
        by_depth: scores of outer and inner entities (nested entities), a table of their own.
    """
    lines = [
        f"# {title}",
        "",
        f'Scores use {result.mode} entity matching on {result.scheme} tags (seqeval `mode="{result.mode}", '
        f"scheme={result.scheme}`): an entity counts only if its boundaries and type both match.",
        "",
        f"{result.n_sentences} sentences, {result.n_tokens} tokens.",
        "",
    ]
    lines += _scores_section(result)
    if by_depth:
        lines += _depth_section(by_depth)
    records = coerce_epochs(epochs) if epochs is not None else []
    if records:
        lines += _epochs_section(records)
    if calibration:
        lines += _calibration_section(calibration)
    lines += _errors_section(analysis, examples_per_category)
    if plots:
        lines += ["## Figures", ""]
        for name, target in plots.items():
            caption = PLOT_TITLES.get(name, name)
            link = Path(target).as_posix()
            lines += [f"### {caption}", "", f"![{caption}]({link})", ""]
    return "\n".join(lines).rstrip() + "\n"


# --- files --------------------------------------------------------------------------------------------------------


def _finite(value: object) -> object:
    """JSON-safe: non-finite floats become None, containers are converted recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _depth_section(by_depth: Mapping[str, TypeScores]) -> list[str]:
    lines = ["## By nesting depth", "",
             "An *outer* entity lies inside no other entity of its layer, an *inner* one inside another; each level is "
             "scored against the same level of the prediction (as GermEval 2014 scores its outer and inner levels).",
             "", "| level | precision | recall | F1 | support |", "|---|---|---|---|---|"]  # fmt: skip
    for level, s in by_depth.items():
        lines.append(f"| {level} | {s.precision:.4f} | {s.recall:.4f} | {s.f1:.4f} | {s.support} |")
    return [*lines, ""]


def metrics_document(
    result: EvalResult,
    analysis: ErrorAnalysis,
    epochs: Iterable[EpochRecord | Mapping[str, object]] | None = None,
    confusion: ConfusionMatrix | None = None,
    calibration: Mapping[str, Any] | None = None,
    by_depth: Mapping[str, TypeScores] | None = None,
) -> dict[str, object]:
    """What ``metrics.json`` holds: the scores, the error analysis, the epoch table, the token confusion, the
    calibration of the entity scores, and the scores by nesting depth of nested entities."""
    doc = result.to_dict()
    if by_depth:
        doc["by_depth"] = {level: s.to_dict() for level, s in by_depth.items()}
    if calibration:
        doc["calibration"] = dict(calibration)
    doc["errors"] = analysis.to_dict(include_examples=True)
    doc["epochs"] = [r.to_dict() for r in coerce_epochs(epochs)] if epochs is not None else []
    if confusion is not None:
        doc["confusion"] = confusion.to_dict()
    return _finite(doc)  # type: ignore[return-value]


def write_report(
    out_dir: str | Path,
    result: EvalResult,
    analysis: ErrorAnalysis,
    epochs: Iterable[EpochRecord | Mapping[str, object]] | None = None,
    *,
    confusion: ConfusionMatrix | None = None,
    title: str = "Evaluation report",
    make_plots: bool = True,
    examples_per_category: int = 3,
    losses: Sequence[Mapping[str, Any]] | None = None,
    final_dir: str | Path | None = None,
    calibration: Mapping[str, Any] | None = None,
    by_depth: Mapping[str, TypeScores] | None = None,
) -> ReportFiles:
    """Write ``report.md``, ``metrics.json`` and the figures into ``out_dir``; each file is written atomically.

    Figures: per-type F1 always, the confusion heatmap when ``confusion`` is given, training curves when ``epochs``
    are given (with every logged train loss when ``losses`` are). ``report.md`` is written last, so its links point
    to files that exist. ``final_dir``: where ``out_dir`` will be once its caller moves it into place (a temporary
    directory being built), the path the log line names.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    records = coerce_epochs(epochs) if epochs is not None else None
    plots: dict[str, Path] = {}
    if make_plots:
        plots["per_type_f1"] = plot_per_type_f1(result, out / PLOT_FILES["per_type_f1"])
        if confusion is not None:
            plots["confusion"] = plot_confusion(confusion, out / PLOT_FILES["confusion"])
        if records:
            plots["training_curves"] = plot_training_curves(records, out / PLOT_FILES["training_curves"], losses=losses)
        if calibration and calibration.get("bins_before"):
            plots["reliability"] = plot_reliability(calibration, out / PLOT_FILES["reliability"])
    metrics_path = out / METRICS_FILE
    doc = metrics_document(result, analysis, records, confusion, calibration, by_depth)
    atomic_write_text(metrics_path, json.dumps(doc, indent=2, allow_nan=False) + "\n")
    report_path = out / REPORT_FILE
    links = {name: path.name for name, path in plots.items()}
    text = render_markdown(
        result,
        analysis,
        records,
        links,
        title=title,
        examples_per_category=examples_per_category,
        calibration=calibration,
        by_depth=by_depth,
    )
    atomic_write_text(report_path, text)
    logger.info("wrote %s (%s)", Path(final_dir or out) / REPORT_FILE, result.summary())
    return ReportFiles(report_path, metrics_path, plots)


def write_evaluation(
    out_dir: str | Path,
    gold: TagSequences,
    pred: TagSequences,
    tokens: Sequence[Sequence[str]] | None = None,
    epochs: Iterable[EpochRecord | Mapping[str, object]] | None = None,
    *,
    title: str = "Evaluation report",
    max_examples: int = 5,
    make_plots: bool = True,
    losses: Sequence[Mapping[str, Any]] | None = None,
    final_dir: str | Path | None = None,
    calibration: Mapping[str, Any] | None = None,
    scores: EvalResult | None = None,
    by_depth: Mapping[str, TypeScores] | None = None,
) -> tuple[EvalResult, ErrorAnalysis, ReportFiles]:
    """Evaluate predicted tags against gold ones and write the full report (token confusion heatmap included).

    ``scores`` replaces the scores of the tags (nested entities: every span, of which the tags are the flat view
    that the error analysis and the confusion read); ``by_depth`` adds the scores of outer and inner entities."""
    result, analysis = evaluate_tags(gold, pred, tokens, max_examples=max_examples)
    result = scores if scores is not None else result
    confusion = token_confusion(gold, pred)
    files = write_report(
        out_dir,
        result,
        analysis,
        epochs,
        confusion=confusion,
        title=title,
        make_plots=make_plots,
        losses=losses,
        final_dir=final_dir,
        calibration=calibration,
        by_depth=by_depth,
    )
    return result, analysis, files
