"""The finished model directory, written atomically: Hugging Face files, ``nerforge.json``, the resolved config,
the epoch table, the model card and, with a test split, the evaluation report (``eval/``).

The test split is tagged by the prediction engine (:class:`nerforge.prediction.Tagger`) on whole sentences, exactly
as the saved model will be used, and scored in strict IOB2 mode.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nerforge.alignment import WindowStats
from nerforge.data.convert import corpus_stats
from nerforge.data.readers.saved import saved_form
from nerforge.data.splits import describe_source
from nerforge.evaluation import EvalResult, write_evaluation
from nerforge.io_utils import atomic_directory, atomic_write_text
from nerforge.model_dir import (
    CALIBRATION_META_KEY,
    CARD_FILE,
    DEFAULT_MODEL,
    EPOCHS_FILE,
    EVAL_DIR,
    LOSSES_FILE,
    MODEL_ID_DIGITS,
    MODEL_ID_KEY,
    READING_META_KEY,
    RESOLVED_CONFIG_FILE,
    ModelMeta,
    TrainingInfo,
    quiet_transformers,
    weights_digest,
)
from nerforge.modeling.training import head_meta
from nerforge.outputs import MODEL_DIR
from nerforge.training.model_card import CardData, render_card
from nerforge.training.stages import Fitted, Prepared
from nerforge.types import Example

logger = logging.getLogger(__name__)

DEFAULT_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"  # what model.name "default" is, for the model card


@dataclass
class TrainResult:
    """What :func:`train` produced."""

    output_dir: Path
    tags: list[str]
    dev: EvalResult | None
    test: EvalResult | None
    epochs: list[dict[str, Any]]
    global_step: int
    report: Path | None = None
    windows: dict[str, WindowStats] = field(default_factory=dict)
    tracking_run_id: str | None = None
    resumed_from: str | None = None
    # a layered model's layers, each with its tag count (``tags`` holds the first layer's)
    layers: tuple[tuple[str, int], ...] = ()


def write_model_dir(output: Path, prepared: Prepared, fitted: Fitted) -> TrainResult:
    """Write the model directory ``output`` atomically from the two stages before (see the module docstring)."""
    from nerforge import __version__ as version

    config, tokenizer, splits, features = prepared.config, prepared.tokenizer, prepared.splits, prepared.features
    model, epochs, dev, info = fitted.model, fitted.epochs, fitted.dev, fitted.info
    tags, max_length = prepared.tags, prepared.max_length
    inputs = fitted.inputs
    base_name = DEFAULT_MODEL_ID if config.model.name == DEFAULT_MODEL else config.model.name
    if inputs is not None and inputs.base_model:
        base_name = inputs.base_model
    summaries = {name: corpus_stats(ex) for name, ex in splits.items()}
    windows = {name: f.stats for name, f in features.items()}
    spec = prepared.plan.spec
    head, head_extra = head_meta(spec, model)
    meta = ModelMeta(
        tags=tags,
        max_length=max_length,
        stride=config.model.stride,
        label_all_subwords=config.model.label_all_subwords,
        base_model=base_name,
        head=head,
        nerforge_version=version,
        extra={
            "data": {name: s.to_dict() for name, s in summaries.items()},
            "windows": {name: _stats_dict(s) for name, s in windows.items()},
            "training": asdict(info),
            READING_META_KEY: saved_form(config.data.read_options()),
            **({CALIBRATION_META_KEY: fitted.calibration} if fitted.calibration else {}),
            **head_extra,
            **(inputs.extra_meta if inputs is not None else {}),
        },
    )
    test: EvalResult | None = None
    report: Path | None = None
    model.eval()
    with atomic_directory(output, kind=MODEL_DIR) as tmp:
        with quiet_transformers():
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
        _plain_modes(tmp)  # transformers writes weights through private temporary files (mode 0600)
        meta.extra[MODEL_ID_KEY] = weights_digest(tmp)[:MODEL_ID_DIGITS]  # the model's version (ModelMeta)
        if "test" in splits:
            test = _evaluate_test(
                model,
                tokenizer,
                meta,
                splits["test"],
                epochs,
                tmp / EVAL_DIR,
                output.name,
                fitted.losses,
                final_dir=output / EVAL_DIR,
            )
            report = output / EVAL_DIR / "report.md"
        meta.metrics = {
            "mode": "strict",
            "scheme": "IOB2",
            **({"dev": dev.to_dict()} if dev is not None else {}),
            **({"test": test.to_dict()} if test is not None else {}),
        }
        meta.save(tmp)
        atomic_write_text(tmp / RESOLVED_CONFIG_FILE, config.to_yaml())
        atomic_write_text(tmp / EPOCHS_FILE, json.dumps(epochs, indent=2) + "\n")
        atomic_write_text(tmp / LOSSES_FILE, json.dumps(fitted.losses) + "\n")
        card = CardData(
            name=output.name,
            base_model=base_name,
            tags=tags,
            data={name: (describe_source(config.data, name), s) for name, s in summaries.items()},
            windows=windows,
            dev=dev,
            test=test,
            epochs=epochs,
            config_yaml=config.to_yaml(),
            max_length=max_length,
            stride=config.model.stride,
            label_all_subwords=config.model.label_all_subwords,
            notes=[*(inputs.notes if inputs is not None else []), *_notes(info, has_dev=dev is not None)],
            summary=inputs.summary if inputs is not None else None,
            head=spec,
            model_version=meta.model_version,
        )
        atomic_write_text(tmp / CARD_FILE, render_card(card))
    logger.info("wrote %s", output)
    return TrainResult(output, tags, dev, test, epochs, info.global_step, report, windows,
                       resumed_from=info.resumed_from, layers=tuple((name, len(t)) for name, t in spec.layers))  # fmt: skip


def _notes(info: TrainingInfo, *, has_dev: bool) -> list[str]:
    notes = []
    if not has_dev:
        notes.append("No dev split: no early stopping; the model of the last epoch is kept.")
    else:
        by = "dev loss (the dev split has no entities)" if info.best_by == "dev loss" else "dev F1"
        if info.stopped_early:
            notes.append(
                f"Training stopped early after {info.epochs:g} epochs ({info.global_step} of "
                f"{info.max_steps} steps) for lack of gains in {by.split(' (')[0]}; the checkpoint with the best "
                f"{by} (step {info.best_step}) is kept."
            )
        else:
            notes.append(f"The checkpoint with the best {by} (step {info.best_step}) is kept.")
    if info.resumed_from:
        notes.append(f"Training was interrupted and resumed from {Path(info.resumed_from).name}.")
    return notes


def _stats_dict(stats: WindowStats) -> dict[str, int]:
    return {
        "examples": stats.examples,
        "windowed_examples": stats.windowed_examples,
        "windows": stats.windows,
        "long_words": stats.long_words,
        "empty_words": stats.empty_words,
        **stats.extra,
    }


def _evaluate_test(
    model: Any,
    tokenizer: Any,
    meta: ModelMeta,
    examples: list[Example],
    epochs: list[dict[str, Any]],
    out_dir: Path,
    name: str,
    losses: list[dict[str, float]],
    *,
    final_dir: Path,
) -> EvalResult:
    """Tag the test sentences with the prediction engine (as the saved model will be used) and write the report."""
    from nerforge.prediction import Tagger

    device = str(next(model.parameters()).device)
    tagger = Tagger.from_model(model, tokenizer, meta, device=device, progress=False)
    predictions = tagger.predict_words([list(ex.tokens) for ex in examples], doc_ids=[ex.doc_id for ex in examples])
    gold = [list(ex.tags) for ex in examples]
    pred = [list(p.tags) for p in predictions]
    tokens = [list(ex.tokens) for ex in examples]
    result, _, _ = write_evaluation(
        out_dir, gold, pred, tokens, epochs, title=f"Test evaluation of {name}", losses=losses, final_dir=final_dir
    )
    return result


def _plain_modes(directory: Path) -> None:
    """Give every file the mode a plain ``open()`` would (0666 less the umask)."""
    mask = os.umask(0)
    os.umask(mask)
    for path in directory.rglob("*"):
        if path.is_file():
            path.chmod(0o666 & ~mask)
