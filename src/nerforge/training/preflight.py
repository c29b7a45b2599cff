"""Checks of a training run that need no data read and no model loaded: its input files exist and its outputs can
be written. The CLI runs them before it imports torch and transformers, so a usage error costs a fraction of a
second (:func:`nerforge.training.run.train` runs them again for library callers)."""

from __future__ import annotations

from pathlib import Path

from nerforge.config import TrainConfig
from nerforge.errors import DataFormatError, UsageError
from nerforge.model_dir import DEFAULT_MODEL, resolve_model
from nerforge.outputs import MODEL_DIR, check_free_space, check_not_inside, check_output_dir, weights_bytes
from nerforge.training.workdir import RESUME_FILE


def check_inputs(config: TrainConfig) -> None:
    """Every data file of every split, the labels file and the unlabelled texts of a distillation exist.

    Raises:
        DataFormatError: naming the missing file and the key (or flag) that names it.
    """
    named = [(path, f"data.{split}", "data") for split in ("train", "dev", "test") for path in config.data.files(split)]
    if config.data.labels_file:
        named.append((Path(config.data.labels_file), "data.labels_file", "labels"))
    if config.distill is not None:
        named += [(Path(p), "distill.unlabeled", "unlabeled") for p in config.distill.unlabeled]
    for path, key, what in named:
        if not Path(path).exists():
            raise DataFormatError(path, None, f"no such {what} file (from {key})")


def check_outputs(config: TrainConfig) -> None:
    """Refuse, before any data or model is loaded, an output the run could not write or must not replace.

    Raises:
        UsageError: naming the path and what is wrong (a file, a folder of someone else's files, read-only, full).
    """
    output: Path = config.output.dir  # type: ignore[assignment]
    check_output_dir(output, kind=MODEL_DIR)
    work = config.output.resolved_work_dir
    check_output_dir(
        work, ours=lambda p: (p / RESUME_FILE).is_file(), kind="nerforge work directory", what="output.work_dir"
    )
    for split in ("train", "dev", "test"):
        for path in config.data.files(split):
            check_not_inside(path, output)
            if Path(path).resolve() == Path(output).resolve():
                raise UsageError(f"--output {output} is the {split} file; choose another --output")
            if Path(path).is_dir():  # a data folder: a model written into it would change the data (and --resume)
                check_not_inside(output, path)
                check_not_inside(work, path, what="output.work_dir")
    name = config.model.name
    local = resolve_model(name) if name == DEFAULT_MODEL or Path(name).expanduser().is_dir() else None
    if local is not None and Path(local).resolve() == Path(output).resolve():
        role = "teacher" if config.distill is not None else "base model (--model)"
        raise UsageError(
            f"--output {output} is the {role}; choose another directory"
            + (" for the student" if config.distill is not None else "")
        )
    if local is not None:  # the encoder (or the teacher of a distillation) is read while the output is written
        check_not_inside(output, local)
        check_not_inside(work, local, what="output.work_dir")
    weights = weights_bytes(local) if local else None  # a hub id is not fetched twice just for an estimate
    if weights:
        # a checkpoint holds the weights and AdamW's two moments; up to save_total_limit + 1 exist at once, and the
        # finished model directory holds the weights once more
        needed = weights * (3 * 3 + 1)
        check_free_space(work / "checkpoints", needed, what="checkpoints and the model")
