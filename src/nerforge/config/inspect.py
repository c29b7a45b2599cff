"""``nerforge inspect`` as a library function: the data checks, with subwords counted by the tokenizer training would
use, and the optional HTML report (:func:`inspect_data`). It sits with the config because it answers what training
will do to the data (the tokenizer, the window length of ``model.max_length``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nerforge.data.checks import InspectReport, inspect_files
from nerforge.data.readers.options import ReadOptions


@dataclass(frozen=True)
class InspectResult:
    """The checks of every file, and the report page when one was asked for."""

    report: InspectReport
    page: Path | None = None


def inspect_data(
    paths: Sequence[Path],
    options: ReadOptions | None = None,
    *,
    tokenizer: str | None = None,
    max_length: int | None = None,
    max_findings: int = 50,
    report_dir: Path | None = None,
) -> InspectResult:
    """Check data files: counts, scheme, quirks; subword counts with ``tokenizer`` (a name, directory or hub id);
    with ``report_dir``, also ``report_dir/index.html`` (subwords counted with the embedded tokenizer by default).

    Raises:
        UsageError: a report folder nerforge may not replace (before anything is read); DataFormatError,
            ModelError: the data or the tokenizer.
    """
    loaded: Any = None
    if report_dir is not None:
        from nerforge.outputs import DATA_REPORT, check_output_dir

        check_output_dir(report_dir, kind=DATA_REPORT)
        tokenizer = tokenizer or "default"
    if tokenizer is not None:
        from nerforge.model_dir import load_tokenizer

        loaded = load_tokenizer(tokenizer)
    corpora: list[Any] = []
    report = inspect_files(paths, options, loaded, max_length, max_findings=max_findings, corpora_out=corpora)
    if tokenizer is not None:
        report.tokenizer = tokenizer  # the name the user gave, for the report
    if report_dir is None:
        return InspectResult(report)
    from nerforge.config.schema import ModelConfig
    from nerforge.data.normalize import corpus_to_iob2
    from nerforge.evaluation.data_report import write_data_report

    examples = {c.path: corpus_to_iob2(c).examples for c in corpora}
    window = max_length or ModelConfig.model_fields["max_length"].default  # what training cuts windows at
    return InspectResult(report, write_data_report(report_dir, report, examples, tokenizer=loaded, window=window))
