"""Evaluate a model directory on annotated data: tag it with the prediction engine, score it, write the report.

Whole sentences are tagged by the prediction engine (long ones in overlapping windows), so every gold entity counts,
however far into a sentence it lies. Scores are strict IOB2 entity matches (seqeval ``mode="strict"``).

An entity type in the data that the model does not know is an error naming the type, the file and the line: the
model could never predict it, so scoring it silently as misses would hide a data or labelling mistake.

``nerforge evaluate`` (:mod:`nerforge.cli.evaluate_cmd`) is a thin wrapper over :func:`evaluate`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nerforge.data.readers.options import ReadOptions
from nerforge.data.readers.saved import from_saved
from nerforge.errors import DataFormatError, UsageError
from nerforge.evaluation import EvalResult, ReportFiles
from nerforge.io_utils import atomic_directory, atomic_write_text
from nerforge.model_dir import EPOCHS_FILE, LOSSES_FILE
from nerforge.outputs import EVALUATION_REPORT, check_output_dir
from nerforge.tags import tag_type
from nerforge.types import Example

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Evaluation:
    """What :func:`evaluate` measured and wrote."""

    model: Path
    data: Path
    output: Path
    result: EvalResult
    files: ReportFiles
    calibration: dict[str, Any] | None = None
    by_depth: dict[str, Any] | None = None  # nested entities: the scores of the outer and of the inner ones
    data_files: tuple[Path, ...] = ()  # every data file scored together (``data`` is the first)

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` document: the scores (``micro``, ``per_type``, ...), those by nesting depth of nested
        entities, the entity-score calibration, and where things are."""
        return {
            **self.result.to_dict(),
            **({"by_depth": {k: v.to_dict() for k, v in self.by_depth.items()}} if self.by_depth else {}),
            **({"calibration": self.calibration} if self.calibration else {}),
            "model": str(self.model),
            "data": " + ".join(str(f) for f in self.data_files) if len(self.data_files) > 1 else str(self.data),
            "output": str(self.output),
            "report": str(self.files.report),
        }


SOURCE_FILE = "source.json"  # in an evaluation directory: which data file it scores


def _source_of(directory: Path) -> str | None:
    try:
        return str(json.loads((directory / SOURCE_FILE).read_text(encoding="utf-8"))["data"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def source_key(files: Sequence[Path]) -> str:
    """What an evaluation directory records as the data it scores: the resolved file, or files joined by `` + ``."""
    return " + ".join(str(f.expanduser().resolve()) for f in files)


def default_output(model: Path, data: Path | Sequence[Path]) -> Path:
    """``MODEL/eval-<data stem>``, or ``eval-<stem>-2``, ``-3``... when that one holds the evaluation of another file
    with the same name (``a.txt`` and ``other/a.txt``): one data file's report never replaces another's. Several
    files are named by the first (``eval-<stem>``) and recorded as all of them."""
    files = [data] if isinstance(data, Path) else list(data)
    source, data = source_key(files), files[0]
    for n in range(1, 1000):
        out = model / (f"eval-{data.stem}" if n == 1 else f"eval-{data.stem}-{n}")
        if not out.exists() or _source_of(out) == source:  # free, or this file's own earlier report
            return out
    raise UsageError(f"{model}: too many evaluations named eval-{data.stem}-N; give --output")


def check_known_types(examples: list[Example], known: list[str], path: Path) -> None:
    """Raise :class:`DataFormatError` at the first gold entity whose type the model cannot predict."""
    allowed = set(known)
    for ex in examples:
        for i, tag in enumerate(ex.tags):
            type_ = tag_type(tag)
            if type_ is not None and type_ not in allowed:
                raise DataFormatError(
                    ex.source or path,
                    ex.line_of(i),
                    f"entity type {type_!r} is not known to the model (it predicts {', '.join(known) or 'none'})",
                    expected=f"only those types; rename or drop it with --label-map '{type_}=NEW' or '{type_}='",
                )


def entity_calibration(
    examples: list[Example], predictions: list[Any], calibration: tuple[float, float]
) -> dict[str, Any]:
    """ECE of the entity scores raw and with the model's calibration, and the reliability bins of both."""
    from nerforge.evaluation.calibration import expected_calibration_error, reliability, rescaled, scored_entities

    items = scored_entities([list(ex.tags) for ex in examples], [list(p.tags) for p in predictions],
                            [list(p.scores) for p in predictions])  # fmt: skip
    calibrated = rescaled(items, *calibration)
    return {
        "temperature": calibration[0],
        "shift": calibration[1],
        "entities": len(items),
        "ece_before": round(expected_calibration_error(items), 6),
        "ece_after": round(expected_calibration_error(calibrated), 6),
        "bins_before": [[round(c, 6), round(a, 6), n] for c, a, n in reliability(items)],
        "bins_after": [[round(c, 6), round(a, 6), n] for c, a, n in reliability(calibrated)],
    }


def load_losses(model: Path) -> list[dict[str, Any]] | None:
    """Every logged train loss (``losses.json``), or ``None`` when there is none or it is unreadable."""
    try:
        records = json.loads((model / LOSSES_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return records if isinstance(records, list) and all(isinstance(r, dict) for r in records) else None


def load_epochs(model: Path) -> list[dict[str, Any]] | None:
    """The per-epoch table the trainer saved (``epochs.json``), or ``None`` when there is none or it is unreadable."""
    path = model / EPOCHS_FILE
    if not path.is_file():
        return None
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        logger.warning("%s: cannot read the epoch table (%s); the report will have no training curves", path, exc)
        return None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        logger.warning("%s: expected a JSON list of objects; the report will have no training curves", path)
        return None
    return records


def evaluate(
    model: str | Path,
    data: str | Path | Sequence[str | Path],
    *,
    output: str | Path | None = None,
    options: ReadOptions | None = None,
    batch_size: int = 32,
    device: str = "cpu",
    progress: bool | None = None,
    make_plots: bool = True,
) -> Evaluation:
    """Tag ``data`` (read as IOB2 with ``options``) with the model in ``model``; write the report into ``output``.

    ``data`` is a file or several, scored together as one split (a test split published as two files, for example).

    ``options`` ``None`` reads ``data`` as the model's training data was read (``nerforge.json`` ``extra.reading``:
    label names, scheme, columns, label map...). The report directory is replaced as a whole (no figure of an
    earlier run stays behind) and records which data file it scores.

    Raises:
        ModelError: ``model`` is not a model directory.
        DataFormatError: ``data`` cannot be read, is empty, or has an entity type the model does not know.
    """
    from nerforge.data.normalize import read_examples
    from nerforge.evaluation import write_evaluation
    from nerforge.prediction.heap import settle_loaded_objects
    from nerforge.prediction.tagger import Tagger

    model = Path(model)
    files = [Path(data)] if isinstance(data, (str, Path)) else [Path(d) for d in data]
    if not files:
        raise UsageError("no data file to evaluate")
    data, source = files[0], source_key(files)
    out = Path(output) if output is not None else default_output(model, files)
    check_output_dir(out, kind=EVALUATION_REPORT)
    earlier = _source_of(out) if out.is_dir() else None
    if earlier is not None and earlier != source:
        logger.warning("%s holds the evaluation of %s; replacing it with that of %s", out, earlier, source)
    tagger = Tagger.load(model, batch_size=batch_size, device=device, progress=progress)
    settle_loaded_objects()  # one model for the whole file, as in nerforge predict
    if options is None:
        options = from_saved(tagger.meta.reading)
    examples: list[Example] = []
    for path in files:
        read = read_examples(path, options)
        check_known_types(read, tagger.types, path)
        examples.extend(read)
    if not examples:
        raise DataFormatError(data, None, "no sentences to evaluate")
    tokens = [list(ex.tokens) for ex in examples]
    predictions = tagger.predict_words(tokens, doc_ids=[ex.doc_id for ex in examples])  # context, if the model reads it
    calibration = entity_calibration(examples, predictions, tagger.meta.score_calibration)
    gold: list[list[str]] = [list(ex.tags) for ex in examples]
    pred: list[list[str]] = [list(p.tags) for p in predictions]
    title = f"Evaluation of {model.name} on {' + '.join(f.name for f in files)}"
    layers = tagger.plan.spec.layers
    scores, by_depth = None, None
    if layers:  # every layer scored, its types named by layer; each sentence counted once per layer
        from nerforge.evaluation.nested import layer_sentences

        gold, pred = layer_sentences(examples, predictions, layers)
        tokens = [t for t in tokens for _ in layers]
        title += (
            f" ({len(layers)} layers of entities: {', '.join(n for n, _ in layers)}; a sentence counts once per layer)"
        )
    if layers or tagger.plan.spec.span:  # entities that overlap: scored by nesting depth too
        from nerforge.evaluation.nested import evaluate_spans, flat_tags, score_layered

        gold_spans = [tagger.plan.gold_spans(ex) for ex in examples]
        pred_spans = [p.entity_spans() for p in predictions]
        by_depth = score_layered(gold_spans, pred_spans).by_depth
        if layers and not (by_depth["inner"].support or by_depth["inner"].n_pred):
            by_depth = None  # no entity nests inside another of its layer: the per-layer scores say it all
        if not layers:  # a span head: every entity scored, nested ones too; the analysis reads the outermost ones
            gold = [flat_tags(g, len(ex.tokens)) for g, ex in zip(gold_spans, examples, strict=True)]
            scores = evaluate_spans(gold_spans, pred_spans, gold, pred)
            title += (
                " (a span head: scores count every entity, nested ones too; the errors and confusion are "
                "those of the outermost)"
            )
    with atomic_directory(out, kind=EVALUATION_REPORT) as tmp:
        result, _, written = write_evaluation(
            tmp,
            gold,
            pred,
            tokens,
            load_epochs(model),
            title=title,
            make_plots=make_plots,
            losses=load_losses(model),
            final_dir=out,
            calibration=calibration,
            scores=scores,
            by_depth=by_depth,
        )
        source = {"data": source, "model": str(model.expanduser().resolve())}
        atomic_write_text(tmp / SOURCE_FILE, json.dumps(source, indent=2) + "\n")
    report = ReportFiles(
        report=out / written.report.name,
        metrics=out / written.metrics.name,
        plots={name: out / path.name for name, path in written.plots.items()},
    )
    return Evaluation(model, data, out, result, report, calibration, by_depth, tuple(files))
