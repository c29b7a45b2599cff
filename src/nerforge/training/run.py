"""``train(config)``: read the splits, build windows, fine-tune, evaluate, and write the model directory atomically.

While training, checkpoints live in a work directory beside the output (:mod:`nerforge.training.workdir`). The
output directory itself appears only at the very end, complete (:mod:`nerforge.training.output`): a killed run
never leaves a half-written model where a finished one is expected. The work directory is removed after success
unless ``output.keep_checkpoints``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import logging
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from nerforge.config import TrainConfig
from nerforge.data.splits import listed_types, read_data_splits
from nerforge.errors import DataFormatError, Interrupted, ModelError
from nerforge.io_utils import clean_leftovers, disk_full
from nerforge.locking import exclusive
from nerforge.model_dir import (
    TrainingInfo,
    load_tokenizer,
    position_limit,
    quiet_transformers,
    resolve_model,
)
from nerforge.modeling.plan import HeadPlan
from nerforge.threads import training_threads, usable_cpus
from nerforge.training.callbacks import CrashAfterStepCallback, EpochProgressCallback, epoch_table, loss_curve
from nerforge.training.collate import PaddingCollator
from nerforge.training.dataset import build_split, check_label_coverage, entity_types, resolve_labels
from nerforge.training.distributed import DistributedContext
from nerforge.training.layering import head_for_data, warn_flat_view
from nerforge.training.output import TrainResult, write_model_dir
from nerforge.training.preflight import check_inputs, check_outputs
from nerforge.training.reporting import SMALL_DEV_ENTITIES, announce_early_stop, warn_if_nothing_predicted
from nerforge.training.scoring import calibrate, score_dev
from nerforge.training.stages import FitInputs, Fitted, Prepared
from nerforge.training.tracking_start import start_run_tracker
from nerforge.training.trainer import (
    BEST_METRIC,
    DevEarlyStopping,
    NerTrainer,
    drop_logits,
    entity_metrics,
    training_arguments,
)
from nerforge.training.workdir import ResumePoint, WorkDir, fingerprint_files
from nerforge.types import Example

logger = logging.getLogger(__name__)

LOSS_POINTS_PER_EPOCH = 25  # train loss logged about this often per epoch (the loss plot; MLflow's train_loss)
_RESUME_SECTIONS = ("data", "model", "training", "distill")  # must match to resume; output and tracking may change


def data_files(config: TrainConfig) -> dict[str, list[Path]]:
    """The data files a run reads (for the resume fingerprint)."""
    files = {split: [Path(p) for p in config.data.files(split)] for split in ("train", "dev", "test")}
    if config.data.labels_file:
        files["labels_file"] = [Path(config.data.labels_file)]
    return {k: v for k, v in files.items() if v}


def read_splits(config: TrainConfig) -> dict[str, list[Example]]:
    """The splits of ``config.data``, read as IOB2 with the same reader options: several files per split, dev/test
    carved from train by ``data.split``, seeded subsets by ``data.sample`` (:mod:`nerforge.data.splits`).

    Data with several layers of entities trains a layered model (:func:`nerforge.training.layering.data_layers`), unless ``data.layer`` picks
    one; data of one layer whose entities overlap trains on its flat view (the outermost entities: ``Example.tags``),
    and a warning says which entities are not learned. A span head (``model.head.span``) learns every entity, nested
    ones too, in one layer."""
    splits = read_data_splits(config.data)
    if not config.model.head.span:
        warn_flat_view(splits.get("train", []), config.data.layer)
    return splits


def _max_length(requested: int, tokenizer: Any, model_config: Any) -> int:
    limits = [requested]
    if 0 < getattr(tokenizer, "model_max_length", 0) < 1_000_000:
        limits.append(int(tokenizer.model_max_length))
    positions = position_limit(model_config)  # RoBERTa-style positions lose pad_token_id + 1
    if positions is not None:
        limits.append(positions)
    length = min(limits)
    if length < requested:
        logger.info("model.max_length %d is more than the model takes; using %d", requested, length)
    return length


def _resume_config(config: TrainConfig) -> dict[str, Any]:
    return {k: v for k, v in config.model_dump(mode="json").items() if k in _RESUME_SECTIONS}


def final_model(trainer: NerTrainer) -> Any:
    """The trained model as it will be saved and loaded: without the mixed-precision ``forward`` wrapper that
    accelerate puts on it for bf16 training (scores computed through that wrapper are bf16 scores, which the saved
    float32 model does not reproduce)."""
    return trainer.accelerator.unwrap_model(trainer.model, keep_fp32_wrapper=False)


def train(
    config: TrainConfig,
    *,
    resume: bool = False,
    progress: bool | None = None,
    customise: Callable[[Prepared], FitInputs] | None = None,
    callbacks: Sequence[Any] = (),
) -> TrainResult:
    """Fine-tune ``config.model.name`` on ``config.data`` and write the model directory ``config.output.dir``.

    Args:
        config: a validated config (see :mod:`nerforge.config`).
        resume: continue from the last checkpoint in the work directory, if there is one.
        progress: progress bars (``None``: only when stderr is a terminal); the per-epoch lines are logged anyway.
        customise: builds what ``fit`` trains instead of a fresh model (see :func:`run_locked`; ``nerforge
            distill``).
        callbacks: more ``transformers`` trainer callbacks (``nerforge tune`` reports each dev evaluation to its
            study and stops a trial early through one).

    Raises:
        ConfigError, DataFormatError, ModelError, UsageError: with a message that says what to fix.
    """
    config.check_complete()
    output: Path = config.output.dir  # type: ignore[assignment]
    work = WorkDir(config.output.resolved_work_dir)
    check_inputs(config)
    check_outputs(config)
    dist = DistributedContext.detect()  # one process, or one of several started by torchrun / accelerate launch
    with contextlib.ExitStack() as locks:
        if dist.is_main:  # one writer per output and work directory; a second run is refused, naming this pid
            locks.enter_context(exclusive(output, what="model directory"))
            locks.enter_context(exclusive(work.path, what="work directory"))
            clean_leftovers(output)
        return run_locked(
            config,
            output,
            work,
            dist,
            resume=resume,
            progress=sys.stderr.isatty() if progress is None else progress,
            customise=customise,
            callbacks=callbacks,
        )


def run_locked(
    config: TrainConfig,
    output: Path,
    work: WorkDir,
    dist: DistributedContext,
    *,
    resume: bool,
    progress: bool,
    customise: Callable[[Prepared], FitInputs] | None = None,
    callbacks: Sequence[Any] = (),
) -> TrainResult:
    """The stages of a run, under the locks of its output and work directory: prepare, (customise), fit, calibrate,
    package.

    ``customise`` turns the prepared run into what ``fit`` trains instead of the defaults (``nerforge distill``
    builds its student and the teacher's soft targets there).
    """
    prepared = prepare(config, dist)
    fingerprint = fingerprint_files(data_files(config))
    start = dist.from_main(lambda: work.prepare(_resume_config(config), resume=resume, fingerprint=fingerprint))
    # the threads the run uses go into config.resolved.yaml (after the resume check: not compared), in a copy: the
    # validated config the caller passed is never changed
    resolved = config.model_copy(
        update={"training": config.training.model_copy(update={"num_threads": prepared.threads})}
    )
    prepared = dataclasses.replace(prepared, config=resolved)
    inputs = customise(prepared) if customise is not None else None
    tracker = start_run_tracker(prepared, start, work, dist, output)
    try:
        fitted = calibrate(
            prepared, fit(prepared, work, dist, start, tracker, progress=progress, inputs=inputs, callbacks=callbacks)
        )
        dist.barrier()  # every process has finished; rank 0 alone writes the model directory
        result = dist.from_main(lambda: package(prepared, fitted, output))
    except BaseException as exc:
        if tracker is not None:
            tracker.end("KILLED" if isinstance(exc, (KeyboardInterrupt, Interrupted)) else "FAILED")
        if dist.is_main:
            cut = work.remove_incomplete()  # a checkpoint half written when the disk filled up must not survive
            if cut:
                logger.info("removed the unfinished checkpoint(s) %s", ", ".join(cut))
        if isinstance(exc, Interrupted) and dist.is_main:
            last = work.last_checkpoint()
            exc.hint = (
                f"{last.name} is kept in {work.path}: the same command with --resume continues from it"
                if last is not None
                else "no checkpoint was written yet: the next run starts over"
            )
        if not isinstance(exc, (KeyboardInterrupt, Interrupted, OSError)) and disk_full(exc, work.path):
            raise OSError(errno.ENOSPC, "no space left on the disk while writing a checkpoint", str(work.path)) from exc
        raise
    warn_if_nothing_predicted(result, config)
    if tracker is not None:
        from nerforge.training.tracking import log_results

        log_results(tracker, result)
        result.tracking_run_id = tracker.run_id
    if not config.output.keep_checkpoints and dist.is_main:
        work.clean()
    return result


def prepare(config: TrainConfig, dist: DistributedContext) -> Prepared:
    """Stage 1: threads, the splits and their labels, the tokenizer, the head's plan, every split encoded.

    Raises:
        DataFormatError: unreadable data, training data without entities or without a word the tokenizer encodes.
        ModelError: the encoder or its tokenizer cannot be loaded, or the tokenizer is not a fast one.
    """
    import torch

    from nerforge.modeling.model import encoder_config

    threads = config.training.num_threads or dist.cpu_threads(usable_cpus(), training_threads)
    torch.set_num_threads(threads)
    logger.info("torch uses %d CPU thread(s) of %d usable cores (training.num_threads sets it)", threads, usable_cpus())

    splits = read_splits(config)
    spec, first_layer = head_for_data(config, splits)  # a layered head when the data has several layers
    every_layer = bool(spec.layers) or spec.span  # the model learns every layer's entities, not the tags alone
    coverage = check_label_coverage(splits, config.data.train, every_layer=every_layer)  # DataFormatError: none
    labels = resolve_labels(
        splits, listed_types(config.data.labels, config.data.label_map) if config.data.labels else None
    )
    if coverage.unseen_in_train:
        logger.warning(
            "entity types that occur only in dev/test, never in train (the model cannot learn them; they will count "
            "as misses): %s",
            ", ".join(f"{t} ({where})" for t, where in sorted(coverage.unseen_in_train.items())),
        )
    best_metric = BEST_METRIC
    if coverage.dev_entities is not None and 0 < coverage.dev_entities < SMALL_DEV_ENTITIES:
        logger.warning(
            "the dev split holds only %d entities: its F1 moves in steps too coarse to choose a checkpoint well (ties "
            "go to the lower dev loss); a larger dev file or data.split.dev gives a better choice",
            coverage.dev_entities,
        )
    if coverage.dev_entities == 0:
        best_metric = "loss"
        logger.warning(
            "the dev split has no entities: dev F1 is 0 at every evaluation, so the best checkpoint is chosen by "
            "dev loss instead (add entities to dev, or carve one from train with data.split)"
        )
    every = [ex for split in splits.values() for ex in split]
    types = sorted(entity_types(every, every_layer=True)) if every_layer else list(labels.types)
    logger.info(
        "labels (%d types from %s%s): %s",
        len(types),
        "data.labels" if config.data.labels else "all splits",
        ", every layer" if every_layer else "",
        ", ".join(types),
    )

    base = resolve_model(config.model.name)
    with quiet_transformers():
        tokenizer = load_tokenizer(base)  # the local copy: the hub is asked once per run
    try:
        with quiet_transformers():
            model_config = encoder_config(base)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load model {config.model.name!r}: {str(exc).splitlines()[0]}") from None
    if not getattr(tokenizer, "is_fast", False):
        raise ModelError(f"{config.model.name}: nerforge needs a fast tokenizer (word ids); this model has a slow one")
    max_length = _max_length(config.model.max_length, tokenizer, model_config)
    plan = HeadPlan(spec, first_layer or tuple(labels.tags), max_length, config.model.stride)
    features = {
        name: build_split(
            name, examples, tokenizer, labels.label2id, plan, label_all_subwords=config.model.label_all_subwords
        )
        for name, examples in splits.items()
    }
    if not features["train"].windows:
        raise DataFormatError(config.data.train, None, "no training sentence has a word the tokenizer can encode")
    if "dev" not in features:
        logger.warning("no dev split: no per-epoch F1, no early stopping; the model of the last epoch is kept")
    _check_memory(config, model_config, plan, features)
    return Prepared(config, splits, tokenizer, base, plan, features, best_metric, threads)


def _check_memory(config: TrainConfig, model_config: Any, plan: HeadPlan, features: dict[str, Any]) -> None:
    """Refuse, before any weight is loaded, a run whose estimated peak memory exceeds what is available."""
    import torch

    from nerforge.training.memory import check_fits, workload
    from nerforge.training.trainer import resolve_precision

    cuda = torch.cuda.is_available()
    batch = config.training.batch_size
    length = max(len(enc.input_ids) for split in features.values() for enc in split.inputs.windows)
    est = check_fits(
        workload(
            model_config,
            plan,
            batch=batch,
            eval_batch=config.training.eval_batch_size or 2 * batch,
            length=length,
            half=resolve_precision(config.training.precision, cuda=cuda) == "bf16",
        ),
        device="cuda" if cuda else "cpu",
        accumulation=config.training.gradient_accumulation_steps,
    )
    logger.info("estimated peak memory: %s", est.describe())


def fit(
    prepared: Prepared,
    work: WorkDir,
    dist: DistributedContext,
    start: ResumePoint,
    tracker: Any,
    *,
    progress: bool = True,
    inputs: FitInputs | None = None,
    callbacks: Sequence[Any] = (),
) -> Fitted:
    """Stage 2: build the model, run the Trainer (from ``start.checkpoint`` when resuming), score dev (the
    predictions are kept for :func:`calibrate`).

    ``inputs`` replaces the model, the training items and the Trainer class of plain fine-tuning
    (:func:`plain_inputs`, built after the seed is set).

    Raises:
        ModelError: the encoder's weights cannot be loaded.
    """
    from transformers import set_seed

    config = prepared.config
    set_seed(config.training.seed)
    inputs = inputs if inputs is not None else plain_inputs(prepared)  # built after the seed: same head init
    model = inputs.model
    with quiet_transformers():
        _align_special_tokens(model, prepared.tokenizer)
        trainer = _build_trainer(prepared, model, work, progress=progress, world_size=dist.world_size, inputs=inputs)
    for callback in callbacks:
        trainer.add_callback(callback)
    if tracker is not None:
        from nerforge.training.tracking import MlflowCallback

        trainer.add_callback(MlflowCallback(tracker))
    last = start.checkpoint
    dev_split = prepared.features.get("dev")
    with quiet_transformers(errors_only=False):
        trainer.train(resume_from_checkpoint=str(last) if last is not None else None)
        state = trainer.state
        info = TrainingInfo(
            global_step=state.global_step,
            max_steps=state.max_steps,
            epochs=round(float(state.epoch or 0), 4),
            stopped_early=state.global_step < state.max_steps,
            best_step=state.best_global_step,
            best_by=f"dev {prepared.best_metric}" if dev_split is not None else None,
            best_dev_f1=state.best_metric if prepared.best_metric == BEST_METRIC else None,
            best_dev_loss=state.best_metric if prepared.best_metric == "loss" else None,
            resumed_from=str(last) if last is not None else None,
            world_size=dist.world_size,
            threads=prepared.threads,
        )
        model = final_model(trainer)
        model.eval()
        dev, predicted = score_dev(model, prepared) if dev_split is not None else (None, None)
    announce_early_stop(info, prepared)
    return Fitted(
        model,
        epoch_table(state.log_history),
        dev,
        info,
        loss_curve(state.log_history),
        inputs=inputs,
        dev_predictions=predicted,
    )


def _align_special_tokens(model: Any, tokenizer: Any) -> None:
    """Give the model config the tokenizer's pad (bos, eos) ids now, quietly: the Trainer does the same at the start
    of ``train()`` with a warning, which for an encoder whose config lacks a pad id is noise, not news."""
    try:
        from transformers.trainer_utils import align_special_tokens
    except ImportError:  # older transformers: the Trainer does not align either
        return
    align_special_tokens(model, tokenizer)


def package(prepared: Prepared, fitted: Fitted, output: Path) -> TrainResult:
    """Stage 4: the model directory, written atomically (:func:`nerforge.training.output.write_model_dir`)."""
    return write_model_dir(output, prepared, fitted)


def warm_start(prepared: Prepared) -> Any:
    """The trained model to continue from when ``model.name`` is a nerforge model directory with the run's head and
    tags (``nerforge serve --learn`` trains each new version from the served one); ``None`` for an encoder.

    Raises:
        ModelError: a nerforge model directory with other tags or another head: it cannot be continued from (its
            encoder can: name it, the ``base_model`` of its ``nerforge.json``).
    """
    from nerforge.model_dir import META_FILE, ModelMeta
    from nerforge.modeling.head import HeadSpec
    from nerforge.modeling.model import load_trained

    directory = Path(prepared.base)
    if not (directory / META_FILE).is_file():
        return None
    meta = ModelMeta.load(directory)
    if list(meta.tags) != list(prepared.tags) or HeadSpec.from_meta(meta) != prepared.plan.spec:
        raise ModelError(
            f"{directory} is a trained model with tags {', '.join(meta.tags)} and head {meta.head}; training continues "
            f"from it only with the same tags and head (this run: {', '.join(prepared.tags)}, "
            f"{prepared.plan.spec.name}); to start again from its encoder, give model.name = {meta.base_model!r}"
        )
    logger.info("continuing from the trained model %s", directory)
    return load_trained(directory, meta)


def plain_inputs(prepared: Prepared) -> FitInputs:
    """What plain fine-tuning trains: the encoder under a fresh head (a plain ``AutoModelForTokenClassification``
    when the head needs nothing else), the train split's windows, right padding and the :class:`NerTrainer`.

    Raises:
        ModelError: the encoder's weights cannot be loaded.
    """
    from nerforge.modeling.model import build_model

    try:
        with quiet_transformers():
            model = warm_start(prepared) or build_model(prepared.plan.spec, prepared.base, prepared.tags)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load model {prepared.config.model.name!r}: {str(exc).splitlines()[0]}") from None
    train = prepared.features["train"].dataset()
    return FitInputs(model, train, train.lengths, PaddingCollator(prepared.tokenizer.pad_token_id or 0), NerTrainer)


def _build_trainer(
    prepared: Prepared, model: Any, work: WorkDir, *, progress: bool, world_size: int, inputs: FitInputs
) -> NerTrainer:
    from transformers.trainer_callback import ProgressCallback

    from nerforge.modeling.training import loss_function

    config, plan, tokenizer = prepared.config, prepared.plan, prepared.tokenizer
    train_split, dev_split = prepared.features["train"], prepared.features.get("dev")
    train_dataset, lengths = inputs.train_dataset, inputs.lengths
    per_step = config.training.batch_size * config.training.gradient_accumulation_steps * max(1, world_size)
    steps_per_epoch = max(1, math.ceil(len(train_dataset) / per_step))
    args = training_arguments(
        config.training,
        work.checkpoints,
        has_dev=dev_split is not None,
        best_metric=prepared.best_metric,
        logging_steps=max(1, steps_per_epoch // LOSS_POINTS_PER_EPOCH),
    )
    trainer = inputs.trainer_class(
        model=model,
        args=args,
        data_collator=inputs.collator,
        train_dataset=train_dataset,
        eval_dataset=dev_split.dataset() if dev_split is not None else None,
        processing_class=tokenizer,
        compute_metrics=entity_metrics(lambda: score_dev(model, prepared)[0], prepared.plan.spec.layer_names)
        if dev_split is not None
        else None,
        preprocess_logits_for_metrics=drop_logits if dev_split is not None else None,
        compute_loss_func=loss_function(config.model.class_weights, train_split.inputs.windows, list(plan.tags)),
        lengths=lengths if config.training.group_by_length else None,
        **inputs.trainer_kwargs,
    )
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(
        EpochProgressCallback(None if config.training.max_steps else config.training.epochs, progress=progress)
    )
    patience = config.training.early_stopping_patience
    if dev_split is not None and patience:
        trainer.add_callback(DevEarlyStopping(early_stopping_patience=patience))
    crash = CrashAfterStepCallback.from_env()
    if crash is not None:
        trainer.add_callback(crash)
    return trainer
