"""``train(config)``: read the splits, build windows, fine-tune, evaluate, and write the model directory atomically.

Layout while training (``<dir>`` is ``output.dir``)::

    <dir>.work/checkpoints/checkpoint-N/   Trainer checkpoints (model, optimizer, scheduler, RNG, trainer state)
    <dir>.work/resume.json                 the config and MLflow run of the interrupted run, for --resume

``<dir>`` itself appears only at the very end, complete (:func:`nerforge.io_utils.atomic_directory`): a killed run
never leaves a half-written model where a finished one is expected. It holds the Hugging Face model (safetensors,
tokenizer, ``id2label``/``label2id``), ``nerforge.json``, ``config.resolved.yaml``, ``epochs.json``, the model card
``README.md`` and, with a test split, ``eval/`` (``report.md``, ``metrics.json``, plots). The work directory is
removed after success unless ``output.keep_checkpoints``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nerforge.alignment import WindowStats
from nerforge.config import RESOLVED_CONFIG_FILE, TrainConfig
from nerforge.data.normalize import read_examples
from nerforge.errors import ConfigError, DataFormatError, ModelError, UsageError
from nerforge.evaluation import EvalResult, evaluate, write_evaluation
from nerforge.io_utils import atomic_directory, atomic_write_text
from nerforge.model_dir import DEFAULT_MODEL, META_FILE, ModelMeta, resolve_model
from nerforge.training.callbacks import CrashAfterStepCallback, EpochProgressCallback, epoch_table
from nerforge.training.collate import PaddingCollator
from nerforge.training.dataset import DataSummary, SplitFeatures, build_split, resolve_labels, word_tags
from nerforge.training.model_card import CardData, render_card
from nerforge.training.trainer import NerTrainer, argmax_logits, entity_metrics, training_arguments
from nerforge.types import Example

logger = logging.getLogger(__name__)

DEFAULT_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"  # what model.name "default" is, for the model card
EPOCHS_FILE = "epochs.json"
RESUME_FILE = "resume.json"
CHECKPOINTS = "checkpoints"
EVAL_DIR = "eval"
_RESUME_SECTIONS = ("data", "model", "training")  # must match to resume; output and tracking may change


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


def usable_cpus() -> int:
    """CPU cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def _quiet_transformers(*, errors_only: bool = True) -> Iterator[None]:
    """Hide transformers' loading/saving progress bars and, with ``errors_only``, its load reports (a fresh
    classification head is expected). The Trainer's own progress bars stay."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    if errors_only:
        hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def _check_output(output: Path) -> None:
    if output.is_file():
        raise UsageError(f"{output} is a file; --output must be a directory")
    if output.is_dir() and any(output.iterdir()) and not (output / META_FILE).is_file():
        raise UsageError(f"{output} exists and is not a nerforge model directory; choose another --output or remove it")


def read_splits(config: TrainConfig) -> dict[str, list[Example]]:
    """The splits named in ``config.data``, read as IOB2 with the same reader options."""
    options = config.data.read_options()
    splits: dict[str, list[Example]] = {}
    for name in ("train", "dev", "test"):
        path = getattr(config.data, name)
        if path is None:
            continue
        examples = read_examples(path, options)
        if not examples:
            raise DataFormatError(path, None, f"the {name} split has no sentences")
        splits[name] = examples
        logger.info("%s: %s (%d sentences)", name, path, len(examples))
    return splits


def _max_length(requested: int, tokenizer: Any, model_config: Any) -> int:
    limits = [requested]
    if 0 < getattr(tokenizer, "model_max_length", 0) < 1_000_000:
        limits.append(int(tokenizer.model_max_length))
    positions = getattr(model_config, "max_position_embeddings", None)
    if isinstance(positions, int) and positions > 0:
        limits.append(positions)
    length = min(limits)
    if length < requested:
        logger.info("model.max_length %d is more than the model takes; using %d", requested, length)
    return length


def _last_checkpoint(directory: Path) -> Path | None:
    """The newest checkpoint whose trainer state was written (a checkpoint cut off mid-save is skipped)."""
    if not directory.is_dir():
        return None
    done = [p for p in directory.glob("checkpoint-*") if (p / "trainer_state.json").is_file()]
    return max(done, key=lambda p: int(p.name.rsplit("-", 1)[1]), default=None)


def _resume_state(config: TrainConfig, work: Path, resume: bool) -> tuple[Path | None, str | None]:
    """The checkpoint to resume from and the MLflow run to continue (``None`` for a fresh start)."""
    checkpoints = work / CHECKPOINTS
    state_file = work / RESUME_FILE
    current = {k: v for k, v in config.model_dump(mode="json").items() if k in _RESUME_SECTIONS}
    last = _last_checkpoint(checkpoints)
    if resume and last is not None and state_file.is_file():
        saved = json.loads(state_file.read_text(encoding="utf-8"))
        changed = _differences(saved.get("config", {}), current)
        if changed:
            raise ConfigError(
                f"cannot resume from {last}: the config differs from the interrupted run's in {'; '.join(changed[:5])}; "
                "restore it, or run without --resume to start over"
            )
        logger.info("resuming from %s", last)
        return last, saved.get("mlflow_run_id")
    if resume:
        logger.warning("--resume: no checkpoint in %s; starting from scratch", checkpoints)
    elif last is not None:
        logger.warning("found checkpoints of an earlier run in %s; starting over (pass --resume to continue it)", work)
    if checkpoints.exists():
        shutil.rmtree(checkpoints)
    work.mkdir(parents=True, exist_ok=True)
    atomic_write_text(state_file, json.dumps({"config": current, "mlflow_run_id": None}, indent=2) + "\n")
    return None, None


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new)):
            out += _differences(old.get(key), new.get(key), f"{prefix}{key}.")
        return out
    return [] if old == new else [f"{prefix.rstrip('.')} ({old!r} -> {new!r})"]


def _remember_run(work: Path, run_id: str) -> None:
    path = work / RESUME_FILE
    state = json.loads(path.read_text(encoding="utf-8"))
    state["mlflow_run_id"] = run_id
    atomic_write_text(path, json.dumps(state, indent=2) + "\n")


def _predict_dev(trainer: NerTrainer, split: SplitFeatures, id2label: dict[int, str]) -> EvalResult:
    output = trainer.predict(split.dataset(), metric_key_prefix="dev")
    pred = word_tags(split, output.predictions, id2label)
    return evaluate([list(ex.tags) for ex in split.examples], pred)


def train(config: TrainConfig, *, resume: bool = False) -> TrainResult:
    """Fine-tune ``config.model.name`` on ``config.data`` and write the model directory ``config.output.dir``.

    Args:
        config: a validated config (see :mod:`nerforge.config`).
        resume: continue from the last checkpoint in the work directory, if there is one.

    Raises:
        ConfigError, DataFormatError, ModelError, UsageError: with a message that says what to fix.
    """
    import torch
    from transformers import AutoConfig, AutoModelForTokenClassification, AutoTokenizer, EarlyStoppingCallback, set_seed
    from transformers.trainer_callback import ProgressCallback

    config.check_complete()
    output: Path = config.output.dir  # type: ignore[assignment]
    work = config.output.resolved_work_dir
    _check_output(output)
    threads = config.training.num_threads or usable_cpus()
    torch.set_num_threads(threads)
    logger.info("torch uses %d CPU threads", threads)

    splits = read_splits(config)
    labels = resolve_labels(splits, config.data.labels)
    tags = list(labels.tags)
    label2id, id2label = labels.label2id, labels.id2label
    logger.info(
        "labels (%d types from %s): %s",
        len(labels.types),
        "data.labels" if config.data.labels else "all splits",
        ", ".join(labels.types),
    )

    base = resolve_model(config.model.name)
    try:
        with _quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(base, trust_remote_code=False)
            model_config = AutoConfig.from_pretrained(base, trust_remote_code=False)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load model {config.model.name!r}: {str(exc).splitlines()[0]}") from None
    if not getattr(tokenizer, "is_fast", False):
        raise ModelError(f"{config.model.name}: nerforge needs a fast tokenizer (word ids); this model has a slow one")
    max_length = _max_length(config.model.max_length, tokenizer, model_config)
    features = {
        name: build_split(
            name,
            examples,
            tokenizer,
            label2id,
            max_length=max_length,
            stride=config.model.stride,
            label_all_subwords=config.model.label_all_subwords,
        )
        for name, examples in splits.items()
    }
    train_split, dev_split = features["train"], features.get("dev")
    if dev_split is None:
        logger.warning("no dev split: no per-epoch F1, no early stopping; the model of the last epoch is kept")

    last, run_id = _resume_state(config, work, resume)
    set_seed(config.training.seed)
    try:
        with _quiet_transformers():
            model = AutoModelForTokenClassification.from_pretrained(
                base,
                num_labels=len(tags),
                id2label=id2label,
                label2id=label2id,
                use_safetensors=True,
                trust_remote_code=False,
            )
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load model {config.model.name!r}: {str(exc).splitlines()[0]}") from None

    tracker = None
    if config.tracking.enabled:
        from nerforge.training.tracking import MlflowCallback, MlflowTracker

        tracker = MlflowTracker.start(config.tracking, run_id=run_id, tags={"nerforge.output": str(output)})
        if run_id is None:
            _remember_run(work, tracker.run_id)
            tracker.log_params(_params(config, tags, max_length, features))

    args = training_arguments(config.training, work / CHECKPOINTS, has_dev=dev_split is not None)
    trainer = NerTrainer(
        model=model,
        args=args,
        data_collator=PaddingCollator(tokenizer.pad_token_id or 0),
        train_dataset=train_split.dataset(),
        eval_dataset=dev_split.dataset() if dev_split is not None else None,
        processing_class=tokenizer,
        compute_metrics=entity_metrics(dev_split, id2label) if dev_split is not None else None,
        preprocess_logits_for_metrics=argmax_logits,
        lengths=train_split.dataset().lengths if config.training.group_by_length else None,
    )
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(EpochProgressCallback(None if config.training.max_steps else config.training.epochs))
    patience = config.training.early_stopping_patience
    if dev_split is not None and patience:
        trainer.add_callback(EarlyStoppingCallback(early_stopping_patience=patience))
    if tracker is not None:
        trainer.add_callback(MlflowCallback(tracker))
    crash = CrashAfterStepCallback.from_env()
    if crash is not None:
        trainer.add_callback(crash)

    try:
        with _quiet_transformers(errors_only=False):
            trainer.train(resume_from_checkpoint=str(last) if last is not None else None)
            model = trainer.model
            epochs = epoch_table(trainer.state.log_history)
            dev = _predict_dev(trainer, dev_split, id2label) if dev_split is not None else None
            result = _write_model_dir(config, output, model, tokenizer, tags, max_length, features, splits, epochs, dev)
        result.global_step = trainer.state.global_step
    except BaseException as exc:
        if tracker is not None:
            tracker.end("KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
        raise
    result.resumed_from = str(last) if last is not None else None
    if tracker is not None:
        _track_results(tracker, result)
        result.tracking_run_id = tracker.run_id
    if not config.output.keep_checkpoints:
        _clean_work_dir(work)
    return result


def _params(
    config: TrainConfig, tags: list[str], max_length: int, features: dict[str, SplitFeatures]
) -> dict[str, Any]:
    params: dict[str, Any] = config.model_dump(mode="json")
    params["derived"] = {
        "num_tags": len(tags),
        "types": ",".join(sorted({t[2:] for t in tags if t != "O"})),
        "max_length": max_length,
        **{f"{name}_sentences": f.stats.examples for name, f in features.items()},
        **{f"{name}_windows": len(f.encoded) for name, f in features.items()},
    }
    return params


def _write_model_dir(
    config: TrainConfig,
    output: Path,
    model: Any,
    tokenizer: Any,
    tags: list[str],
    max_length: int,
    features: dict[str, SplitFeatures],
    splits: dict[str, list[Example]],
    epochs: list[dict[str, Any]],
    dev: EvalResult | None,
) -> TrainResult:
    from nerforge import __version__ as version

    base_name = DEFAULT_MODEL_ID if config.model.name == DEFAULT_MODEL else config.model.name
    summaries = {name: DataSummary.from_examples(ex) for name, ex in splits.items()}
    windows = {name: f.stats for name, f in features.items()}
    meta = ModelMeta(
        tags=tags,
        max_length=max_length,
        stride=config.model.stride,
        label_all_subwords=config.model.label_all_subwords,
        base_model=base_name,
        nerforge_version=version,
        extra={
            "data": {name: s.to_dict() for name, s in summaries.items()},
            "windows": {name: _stats_dict(s) for name, s in windows.items()},
        },
    )
    test: EvalResult | None = None
    report: Path | None = None
    model.eval()
    with atomic_directory(output) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if "test" in splits:
            test = _evaluate_test(model, tokenizer, meta, splits["test"], epochs, tmp / EVAL_DIR, output.name)
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
        card = CardData(
            name=output.name,
            base_model=base_name,
            tags=tags,
            data={name: (str(getattr(config.data, name)), s) for name, s in summaries.items()},
            windows=windows,
            dev=dev,
            test=test,
            epochs=epochs,
            config_yaml=config.to_yaml(),
            max_length=max_length,
            stride=config.model.stride,
            label_all_subwords=config.model.label_all_subwords,
        )
        atomic_write_text(tmp / "README.md", render_card(card))
    logger.info("wrote %s", output)
    return TrainResult(output, tags, dev, test, epochs, 0, report, windows)


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
) -> EvalResult:
    """Tag the test sentences with the prediction engine (as the saved model will be used) and write the report."""
    from nerforge.prediction import Tagger

    device = str(next(model.parameters()).device)
    tagger = Tagger.from_model(model, tokenizer, meta, device=device, progress=False)
    predictions = tagger.predict_words([list(ex.tokens) for ex in examples])
    gold = [list(ex.tags) for ex in examples]
    pred = [list(p.tags) for p in predictions]
    tokens = [list(ex.tokens) for ex in examples]
    result, _, _ = write_evaluation(out_dir, gold, pred, tokens, epochs, title=f"Test evaluation of {name}")
    return result


def _track_results(tracker: Any, result: TrainResult) -> None:
    final: dict[str, float] = {}
    for split, scores in (("dev", result.dev), ("test", result.test)):
        if scores is None:
            continue
        m = scores.micro
        final.update({f"{split}_precision": m.precision, f"{split}_recall": m.recall, f"{split}_f1": m.f1})
        final.update({f"{split}_f1_{name}": s.f1 for name, s in scores.per_type.items()})
    tracker.log_metrics({f"final_{k}" if k.startswith("dev") else k: v for k, v in final.items()}, result.global_step)
    for name in ("README.md", META_FILE, EPOCHS_FILE, RESOLVED_CONFIG_FILE):
        tracker.log_artifact(result.output_dir / name)
    if (result.output_dir / EVAL_DIR).is_dir():
        tracker.log_artifact(result.output_dir / EVAL_DIR, EVAL_DIR)
    tracker.end("FINISHED")


def _clean_work_dir(work: Path) -> None:
    shutil.rmtree(work / CHECKPOINTS, ignore_errors=True)
    with contextlib.suppress(FileNotFoundError):
        (work / RESUME_FILE).unlink()
    with contextlib.suppress(OSError):
        work.rmdir()  # only when nothing else is in it
