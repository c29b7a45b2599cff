"""The schema of the training configuration: one pydantic model per section, each rejecting unknown keys.

The reader options of the ``data`` section are built from :class:`~nerforge.data.readers.options.ReadOptions` (their
one declaration). :data:`PATH_KEYS` (keys whose relative values are made relative to the config file's folder) is
derived from the schema: every field typed as a path, plus reader options marked as paths.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from nerforge.data.readers.options import READ_OPTION_FIELDS, READ_OPTION_NAMES, ReadOptions
from nerforge.data.readers.options import problems as read_option_problems
from nerforge.errors import ConfigError
from nerforge.model_dir import DEFAULT_MODEL, RESOLVED_CONFIG_FILE  # noqa: F401 - re-exported by nerforge.config
from nerforge.modeling.head import HeadSpec

HEAD_KEYS = tuple(HeadSpec.model_fields)  # the flat model.<key> spelling of earlier configs is read into model.head

# The environment variable that replaces ``data.root`` (a data root for portable recipes); ``--data-dir`` wins over it.
DATA_DIR_ENV = "NERFORGE_DATA_DIR"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SplitConfig(_Section):
    """A fixed, seeded split carved out of the training files, for data that comes without a dev or test split.

    ``split = {dev = 0.1, test = 0.1, seed = 13, by = "document"}`` moves 10% of the training documents to a dev
    split and another 10% to a test split. The units (documents, or sentences with ``by = "sentence"``) are
    shuffled with ``random.Random(seed)`` in file order and cut: the first ``round(test * n)`` go to test, the next
    ``round(dev * n)`` to dev, the rest stay in train (each part keeps file order). A positive fraction gets at
    least one unit. The same files and seed always give the same split; every unit lands in exactly one part.
    See :mod:`nerforge.data.splits`.
    """

    dev: float = Field(0.0, ge=0, lt=1, description="fraction of the training units moved to the dev split")
    test: float = Field(0.0, ge=0, lt=1, description="fraction of the training units moved to the test split")
    seed: int = Field(13, description="seed of the shuffle; the same seed gives the same split")
    by: Literal["document", "sentence"] = Field(
        "document", description="unit kept whole: a document (needs document ids in the data) or a sentence"
    )

    @model_validator(mode="after")
    def _check_fractions(self) -> SplitConfig:
        if self.dev + self.test <= 0:
            raise ValueError("data.split moves nothing; give dev and/or test fractions, e.g. {dev = 0.1}")
        if self.dev + self.test >= 1:
            raise ValueError(f"dev {self.dev} + test {self.test} leaves nothing to train on; keep the sum below 1")
        return self


class SampleConfig(_Section):
    """A seeded random subset of at most N sentences per split (after any carving), for quick or budgeted runs.

    ``sample = {train = 2000, dev = 500, seed = 13}``; the kept sentences stay in file order. Unset splits are whole.
    """

    train: int | None = Field(None, ge=1, description="sentences kept from the train split")
    dev: int | None = Field(None, ge=1, description="sentences kept from the dev split")
    test: int | None = Field(None, ge=1, description="sentences kept from the test split")
    seed: int = Field(13, description="seed of the draw")


SplitFiles = Path | list[Path]


def _config_type(hint: Any) -> Any:
    """A reader option's type as a config key takes it: tuples of strings are written as lists."""
    args = typing.get_args(hint)
    for arg in args:
        if typing.get_origin(arg) is tuple:
            return list[typing.get_args(arg)[0]] | None  # type: ignore[misc]
    return hint


_READER_HINTS = typing.get_type_hints(ReadOptions)
# The reader options as config keys, built from ReadOptions (their one declaration): same names, defaults, help.
_ReaderSection: type[_Section] = create_model(  # type: ignore[call-overload]
    "_ReaderSection",
    __base__=_Section,
    **{
        f.name: (
            _config_type(_READER_HINTS[f.name]),
            Field(
                f.default,
                description=f.metadata["help"],
                json_schema_extra={"path": True} if f.metadata.get("path") else None,
            ),
        )
        for f in READ_OPTION_FIELDS
    },
)


class DataConfig(_ReaderSection):  # type: ignore[misc, valid-type]
    """Where the splits are and how to read them (every reader option of
    :class:`~nerforge.data.readers.options.ReadOptions` is a key here and applies to every split).

    Each split is one file or a list of files (read in order and concatenated). A missing dev or test split can
    be carved from the training files with ``split``.
    """

    root: Path | None = Field(
        None,
        description="folder the data paths of a config file are relative to (itself relative to the file); "
        f"--data-dir DIR or ${DATA_DIR_ENV} replace it; without it the paths are relative to the file's folder",
    )
    train: SplitFiles | None = Field(None, description="training split: a file or a list of files (required)")
    dev: SplitFiles | None = Field(None, description="development split: per-epoch F1, early stopping, best checkpoint")
    test: SplitFiles | None = Field(None, description="test split, evaluated once after training")
    split: SplitConfig | None = Field(None, description="carve dev and/or test out of the training files (seeded)")
    sample: SampleConfig | None = Field(None, description="seeded random subsets of the splits (quick runs)")
    dev_in_train: bool = Field(
        False,
        description="train on the train and dev splits together (as read, carved and sampled), with no dev "
        "evaluation: the final model of `nerforge tune --refit-on-dev`",
    )
    labels: list[str] | None = Field(
        None, description="entity types to learn; default: the union of the types of all splits"
    )

    @model_validator(mode="after")
    def _check_reader_options(self) -> DataConfig:
        found = read_option_problems(self)
        if found:
            raise ValueError(found[0])
        return self

    @model_validator(mode="after")
    def _check_splits(self) -> DataConfig:
        for name in ("train", "dev", "test"):
            if getattr(self, name) == []:
                raise ValueError(f"data.{name} is an empty list; give at least one file")
        if self.split is not None:
            for name in ("dev", "test"):
                if getattr(self.split, name) > 0 and getattr(self, name) is not None:
                    raise ValueError(
                        f"data.split.{name} carves a {name} split out of train, but data.{name} is given too; "
                        f"drop one of them"
                    )
        return self

    def files(self, split: str) -> list[Path]:
        """The files of ``split`` (``train``, ``dev`` or ``test``) as a list; empty when it is not given."""
        value = getattr(self, split)
        if value is None:
            return []
        return list(value) if isinstance(value, list) else [value]

    def read_options(self) -> ReadOptions:
        """The reader options of this section (lists become tuples)."""
        values: dict[str, Any] = {}
        for name in READ_OPTION_NAMES:
            value = getattr(self, name)
            values[name] = tuple(value) if isinstance(value, list) else value
        return ReadOptions(**values)


class ModelConfig(_Section):
    """The encoder to fine-tune and how sentences are cut into model inputs."""

    name: str = Field(DEFAULT_MODEL, description="'default' (embedded MiniLM), a local directory or a hub id")
    max_length: int = Field(256, ge=8, description="subwords per window, specials included (capped by the model)")
    stride: int = Field(32, ge=0, description="subwords shared by consecutive windows of a long sentence")
    label_all_subwords: bool = Field(False, description="label every subword (B- becomes I- on continuations)")
    # The head (nerforge.modeling.head.HeadSpec, the one declaration of its options). The default is shape features +
    # CRF (measured best, docs/accuracy.md); all off (`--head plain`) is the plain Hugging Face token-classification
    # head that transformers.pipeline loads. The flat keys of earlier configs (model.crf, ...) are read into it.
    head: HeadSpec = Field(
        default_factory=lambda: HeadSpec.model_validate(HeadSpec.for_training({})),
        description="the head's options (nerforge.modeling.head.HeadSpec; [model.head] in a config file)",
    )
    class_weights: Literal["balanced"] | None = Field(
        None, description="'balanced': weight the loss of each tag by 1/sqrt(its train frequency), mean 1"
    )

    @model_validator(mode="before")
    @classmethod
    def _head_defaults(cls, data: Any) -> Any:
        """Read the flat head keys of earlier configs into ``head`` and fill its defaults (``HeadSpec.for_training``:
        the head's own rules)."""
        if not isinstance(data, dict):
            return data
        head = data.get("head", {})
        if isinstance(head, HeadSpec) or not isinstance(head, dict):
            return data  # already built (an assignment validates the whole model again), or validation names it
        data = dict(data)
        head = {**head, **{key: data.pop(key) for key in HEAD_KEYS if key in data}}
        data["head"] = HeadSpec.for_training(
            head, label_all_subwords=bool(data.get("label_all_subwords")), class_weights=data.get("class_weights")
        )
        return data

    @model_validator(mode="after")
    def _check_head(self) -> ModelConfig:
        self.head.check_training(label_all_subwords=self.label_all_subwords, class_weights=self.class_weights)
        return self


class TrainingConfig(_Section):
    """Optimisation; the loop is the Hugging Face Trainer's."""

    epochs: float = Field(10.0, gt=0, description="passes over the training data (early stopping may end sooner)")
    batch_size: int = Field(16, ge=1, description="windows per batch (per device)")
    eval_batch_size: int | None = Field(None, ge=1, description="default: twice batch_size")
    learning_rate: float = Field(1e-4, gt=0, description="peak learning rate of AdamW (linear warm-up, then decay)")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay")
    warmup_ratio: float = Field(0.1, ge=0, lt=1, description="fraction of the steps spent warming up")
    max_grad_norm: float = Field(1.0, ge=0, description="gradient clipping norm")
    seed: int = Field(42, description="seed of everything random (same seed and threads: same weights)")
    gradient_accumulation_steps: int = Field(1, ge=1, description="batches per optimizer step")
    early_stopping_patience: int | None = Field(
        3, ge=0, description="evaluations without a dev F1 gain before stopping; 0 or null: never stop early"
    )
    group_by_length: bool = Field(True, description="batch windows of similar length (less padding)")
    max_steps: int | None = Field(None, ge=1, description="optimizer steps; overrides epochs")
    eval_steps: int | None = Field(
        None, ge=1, description="evaluate and checkpoint every N optimizer steps instead of every epoch"
    )
    num_threads: int | None = Field(None, ge=1, description="CPU threads for torch; default: every usable core")
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto",
        description="bf16 mixed precision (weights and optimizer stay fp32); auto: bf16 where the hardware does bf16 "
        "natively (a CUDA GPU with bf16, or a CPU with AVX512-BF16 or AMX), else fp32",
    )


class TrackingConfig(_Section):
    """MLflow tracking; embedded by default (a SQLite file in the working directory, artifacts beside it)."""

    enabled: bool = Field(True, description="log the run to MLflow")
    uri: str = Field(
        "sqlite:///mlflow.db", description="MLflow tracking URI (default: a SQLite file in the working directory)"
    )
    experiment: str = Field("nerforge", description="MLflow experiment")
    run_name: str | None = Field(None, description="MLflow run name; default: <model folder>-<date>-<time>-<4 hex>")
    parent_run_id: str | None = Field(
        None, description="set by nerforge tune: the study's MLflow run, under which this run is nested"
    )


class OutputConfig(_Section):
    """Where the model directory goes; checkpoints live in a sibling work directory until training succeeds."""

    dir: Path | None = Field(None, description="the model directory (required)")
    work_dir: Path | None = Field(None, description="checkpoints and resume state; default: '<dir>.work' beside it")
    keep_checkpoints: bool = Field(False, description="keep the work directory after a successful run")

    @property
    def resolved_work_dir(self) -> Path:
        if self.work_dir is not None:
            return self.work_dir
        if self.dir is None:
            raise ConfigError("no output directory; give --output DIR or output.dir in the config")
        return self.dir.with_name(self.dir.name + ".work")


AUGMENT_COPIES = 0  # distill.augment default; see docs/benchmarks.md (Distillation with the defaults)
AUGMENT_RATE = 0.15
HIDDEN_WEIGHT = 0.0  # distill.hidden_weight default; see docs/benchmarks.md (Distillation with the defaults)


class DistillConfig(_Section):
    """Knowledge distillation (``nerforge distill``): a student cut from a trained teacher learns the teacher's word
    distributions (soft targets) and the gold tags. See :mod:`nerforge.training.distill`."""

    teacher: Path = Field(description="the teacher: a nerforge model directory (PyTorch weights)")
    layers: int | None = Field(None, ge=1, description="transformer layers of the student, spread over the teacher's")
    keep_layers: list[int] | None = Field(
        None, description="the teacher's layers the student keeps (0-based, increasing); instead of layers"
    )
    ffn_size: int | None = Field(
        None,
        ge=1,
        description="feed-forward size of the student's layers (the most important units of the teacher's "
        "are kept); default: the teacher's",
    )
    temperature: float = Field(2.0, gt=0, description="softens both distributions; the loss is scaled by its square")
    alpha: float = Field(
        0.5, ge=0, le=1, description="weight of the teacher's soft targets; 1 - alpha goes to the gold tags"
    )
    unlabeled: list[Path] = Field(
        default_factory=list, description="raw texts the teacher labels softly (.txt lines, .csv, .jsonl), repeatable"
    )
    text_column: str = Field("text", description="the text column or field of CSV and JSON Lines unlabeled files")
    augment: int = Field(
        AUGMENT_COPIES,
        ge=0,
        description="copies of each training sentence with some words swapped for other "
        "training words, labelled softly by the teacher (more of its behaviour to learn; 0: none)",
    )
    augment_rate: float = Field(
        AUGMENT_RATE, ge=0, le=1, description="the share of words swapped in each augmented copy"
    )
    hidden_weight: float = Field(
        HIDDEN_WEIGHT,
        ge=0,
        description="weight of the hidden-state loss: each student layer's token vectors against its teacher "
        "layer's (1 - cosine); 0: off",
    )

    @model_validator(mode="after")
    def _one_layer_choice(self) -> DistillConfig:
        if (self.layers is None) == (self.keep_layers is None):
            raise ValueError("give the student's size as distill.layers (or --layers N), or distill.keep_layers")
        if self.keep_layers is not None and (
            not self.keep_layers or sorted(set(self.keep_layers)) != self.keep_layers or self.keep_layers[0] < 0
        ):
            raise ValueError(f"distill.keep_layers must be increasing layer indices from 0, got {self.keep_layers}")
        return self


class TrainConfig(_Section):
    """Everything ``nerforge train`` (and ``nerforge distill``) needs."""

    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    distill: DistillConfig | None = Field(None, description="set by nerforge distill: the teacher and the student")
    tune: dict[str, Any] | None = Field(
        None,
        description="nerforge tune's search space: setting = {low, high, log} | "
        "[choices] | value (nerforge.tuning.space); nerforge train ignores it",
    )

    def check_complete(self) -> None:
        """Raise unless the keys without defaults are given."""
        if self.data.train is None:
            raise ConfigError("no training data; give --train PATH or data.train in the config")
        if self.output.dir is None:
            raise ConfigError("no output directory; give --output DIR or output.dir in the config")

    def to_yaml(self) -> str:
        """The resolved config as YAML (every default written out; no ``distill`` section for plain training)."""
        values = self.model_dump(mode="json")
        for optional in ("distill", "tune"):
            if values.get(optional) is None:
                values.pop(optional, None)
        return yaml.safe_dump(values, sort_keys=False, allow_unicode=True)


def _is_path(annotation: Any, extra: Any) -> bool:
    if isinstance(extra, dict) and extra.get("path"):
        return True
    if annotation is Path:
        return True
    return any(_is_path(arg, None) for arg in typing.get_args(annotation))


def _path_keys() -> tuple[str, ...]:
    keys = []
    for section, info in TrainConfig.model_fields.items():
        model = next(
            (a for a in (info.annotation, *typing.get_args(info.annotation)) if hasattr(a, "model_fields")), None
        )
        if model is None:  # a free-form table ([tune]) holds no paths
            continue
        for name, field in model.model_fields.items():
            if _is_path(field.annotation, field.json_schema_extra):
                keys.append(f"{section}.{name}")
    return tuple(keys)


# Keys holding paths: relative values written in a config file are made relative to that file's folder.
PATH_KEYS = _path_keys()
