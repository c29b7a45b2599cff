"""Scoring a model on dev, the one way it is done during training and after it (:func:`score_dev`: the prediction
engine on the dev sentences, through the model's float32 forward), and the calibration stage fitted on those
predictions (:func:`calibrate`)."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Iterator, Sequence
from typing import Any

from nerforge.evaluation import EvalResult, evaluate
from nerforge.modeling.plan import HeadPlan
from nerforge.prediction.engine import Engine, TorchBackend
from nerforge.training.stages import Fitted, Prepared
from nerforge.types import Example

logger = logging.getLogger("nerforge.training.run")  # the run's log lines keep their logger name


def predict_examples(model: Any, tokenizer: Any, plan: HeadPlan, examples: list[Example]) -> list[Any]:
    """Word predictions of ``model`` on ``examples``, by the prediction engine exactly as the saved model directory
    will tag them (float32, whole sentences, document context, the head's decoding)."""
    from nerforge.model_dir import ModelMeta
    from nerforge.prediction.tagger import Tagger

    meta = ModelMeta(tags=list(plan.tags), max_length=plan.max_length, stride=plan.stride)
    device = str(next(model.parameters()).device)
    tagger = Tagger(
        Engine(TorchBackend(model, device=device), tokenizer, meta, plan=plan.for_model(model), progress=False), meta
    )
    return tagger.predict_words([list(ex.tokens) for ex in examples], doc_ids=[ex.doc_id for ex in examples])


@contextlib.contextmanager
def full_precision(model: Any) -> Iterator[None]:
    """The model's own float32 forward for the duration. For bf16 mixed precision, accelerate replaces ``forward``
    with an autocast wrapper and keeps the original as ``_original_forward``; a score computed through the wrapper
    is a bf16 score, which the saved model does not reproduce."""
    original = model.__dict__.get("_original_forward")
    wrapped = model.__dict__.get("forward")
    if original is None or wrapped is None:
        yield
        return
    model.forward = original
    try:
        yield
    finally:
        model.forward = wrapped


def score_dev(model: Any, prepared: Prepared) -> tuple[EvalResult, list[Any]]:
    """Strict IOB2 scores of ``model`` on the dev sentences, and its word predictions, through the prediction engine:
    the one way dev F1 is computed, at every evaluation during training and for the kept model after it."""
    examples = prepared.features["dev"].examples
    with full_precision(model):  # during bf16 training too: scored as the saved float32 model will be
        predicted = predict_examples(model, prepared.tokenizer, prepared.plan, examples)
    if prepared.plan.spec.layers:
        return score_layers(examples, predicted, prepared.plan.spec.layers), predicted
    if prepared.plan.spec.span:
        return score_span_head(examples, predicted, prepared.plan), predicted
    return evaluate([list(ex.tags) for ex in examples], [list(p.tags) for p in predicted]), predicted


def score_layers(examples: list[Example], predicted: list[Any], layers: Any) -> EvalResult:
    """A layered model's scores: strict entity scores per ``layer/type`` and pooled over the layers
    (:func:`nerforge.evaluation.nested.layer_sentences`), counted per sentence, not per sentence and layer."""
    from nerforge.evaluation.nested import layer_sentences

    gold, pred = layer_sentences(examples, predicted, layers)
    return dataclasses.replace(
        evaluate(gold, pred), n_sentences=len(examples), n_tokens=sum(len(ex.tokens) for ex in examples)
    )


def score_span_head(examples: Sequence[Example], predicted: Sequence[Any], plan: HeadPlan) -> EvalResult:
    """A span head's scores: every entity, nested ones too, against every predicted span
    (:func:`nerforge.evaluation.nested.evaluate_spans`)."""
    from nerforge.evaluation.nested import evaluate_spans, flat_tags

    gold = [plan.gold_spans(ex) for ex in examples]
    flat = [flat_tags(g, len(ex.tokens)) for g, ex in zip(gold, examples, strict=True)]
    return evaluate_spans(gold, [p.entity_spans() for p in predicted], flat, [list(p.tags) for p in predicted])


def fit_calibration(examples: list[Example], predicted: list[Any]) -> dict[str, Any]:
    """The entity-score temperature fitted on these (dev) predictions, with the ECE before and after
    (:mod:`nerforge.evaluation.calibration`); ``nerforge.json`` keeps it as ``extra.calibration``."""
    from nerforge.evaluation.calibration import expected_calibration_error, fit_temperature, rescaled, scored_entities

    items = scored_entities([list(ex.tags) for ex in examples], [list(p.tags) for p in predicted],
                            [list(p.scores) for p in predicted])  # fmt: skip
    temperature, shift = fit_temperature(items)
    out = {
        "temperature": temperature,
        "shift": shift,
        "fitted_on": "dev",
        "entities": len(items),
        "ece_before": round(expected_calibration_error(items), 6),
        "ece_after": round(expected_calibration_error(rescaled(items, temperature, shift)), 6),
    }
    logger.info(
        "entity scores calibrated on dev: temperature %g, shift %g (ECE %.3f -> %.3f over %d predicted entities)",
        temperature,
        shift,
        out["ece_before"],
        out["ece_after"],
        len(items),
    )
    return out


def calibrate(prepared: Prepared, fitted: Fitted) -> Fitted:
    """Stage 3: the entity-score temperature fitted on the kept model's dev predictions (none without dev)."""
    dev_split = prepared.features.get("dev")
    if dev_split is None or fitted.dev_predictions is None:
        return fitted
    return dataclasses.replace(fitted, calibration=fit_calibration(dev_split.examples, fitted.dev_predictions))
