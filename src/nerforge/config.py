"""The typed training configuration: a TOML or YAML file, dotted overrides, one validated :class:`TrainConfig`.

Every section is a pydantic model that rejects unknown keys, so a misspelt key fails before any data is read::

    error: job.toml: unknown key 'training.lr'; expected one of batch_size, early_stopping_patience, ...

Precedence, lowest first: the file, then command-line flags, then ``--set key.sub=value`` overrides (values are
read as YAML scalars: ``3e-5``, ``true``, ``[SKILL, TECH]``). Relative paths written in the file are relative to
the file's folder; paths given on the command line are relative to the working directory. The resolved config
(absolute paths, every default filled in) is saved next to the model as ``config.resolved.yaml``.

EXAMPLE:
    >>> cfg = load_config(None, overrides={"data.train": "train.conll", "output.dir": "model"})
    >>> cfg.training.batch_size
    8
"""

from __future__ import annotations

import difflib
import typing
from collections.abc import Mapping, Sequence
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from nerforge.data.readers.options import ReadOptions
from nerforge.errors import ConfigError
from nerforge.model_dir import DEFAULT_MODEL

# Keys holding paths: relative values written in a config file are made relative to that file's folder.
PATH_KEYS = ("data.train", "data.dev", "data.test", "data.labels_file", "output.dir", "output.work_dir")


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


class DataConfig(_Section):
    """Where the splits are and how to read them (every reader option applies to every split).

    Each split is one file or a list of files (read in order and concatenated). A missing dev or test split can
    be carved from the training files with ``split``.
    """

    train: SplitFiles | None = Field(None, description="training split: a file or a list of files (required)")
    dev: SplitFiles | None = Field(
        None, description="development split: per-epoch F1, early stopping, best checkpoint"
    )
    test: SplitFiles | None = Field(None, description="test split, evaluated once after training")
    split: SplitConfig | None = Field(None, description="carve dev and/or test out of the training files (seeded)")
    sample: SampleConfig | None = Field(None, description="seeded random subsets of the splits (quick runs)")
    labels: list[str] | None = Field(
        None, description="entity types to learn; default: the union of the types of all splits"
    )
    # Reader options: the fields of nerforge.data.readers.options.ReadOptions.
    format: str | None = None
    token_column: int = 0
    tag_column: int = -1
    separator: str | None = None
    tokens_field: str = "tokens"
    tags_field: str | None = None
    label_names: list[str] | None = None
    labels_file: str | None = None
    entity_type: str | None = None
    scheme: str | None = None
    label_map: dict[str, str | None] | None = None
    strip_token_prefix: str | None = None
    sentence_columns: list[str] | None = None
    doc_column: str | None = None
    missing_tag: Literal["o", "error"] = "o"

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
        for f in dataclass_fields(ReadOptions):
            value = getattr(self, f.name)
            values[f.name] = tuple(value) if isinstance(value, list) else value
        return ReadOptions(**values)


class ModelConfig(_Section):
    """The encoder to fine-tune and how sentences are cut into model inputs."""

    name: str = Field(DEFAULT_MODEL, description="'default' (embedded MiniLM), a local directory or a hub id")
    max_length: int = Field(256, ge=8, description="subwords per window, specials included (capped by the model)")
    stride: int = Field(32, ge=0, description="subwords shared by consecutive windows of a long sentence")
    label_all_subwords: bool = Field(False, description="label every subword (B- becomes I- on continuations)")
    # Head options (nerforge.modeling); all off is the plain Hugging Face token-classification head.
    features: list[Literal["shape"]] = Field(
        default_factory=list, description="word features fed to the head: 'shape' (casing, digits, punctuation)"
    )
    crf: bool = Field(False, description="a linear-chain CRF over the words (IOB2 transitions), Viterbi decoding")
    context_sentences: int = Field(
        0, ge=0, le=8, description="neighbouring sentences of the same document on each side, as unlabelled context"
    )
    class_weights: Literal["balanced"] | None = Field(
        None, description="'balanced': weight the loss of each tag by 1/sqrt(its train frequency), mean 1"
    )

    @model_validator(mode="after")
    def _check_head(self) -> ModelConfig:
        from nerforge.errors import ModelError
        from nerforge.modeling.head import HeadSpec  # the head's own rules live with the head

        try:
            spec = HeadSpec.from_config(self)
        except ModelError as exc:
            raise ValueError(str(exc)) from None
        spec.check_training(label_all_subwords=self.label_all_subwords, class_weights=self.class_weights)
        return self


class TrainingConfig(_Section):
    """Optimisation; the loop is the Hugging Face Trainer's."""

    epochs: float = Field(10.0, gt=0)
    batch_size: int = Field(8, ge=1)
    eval_batch_size: int | None = Field(None, ge=1, description="default: twice batch_size")
    learning_rate: float = Field(5e-5, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    max_grad_norm: float = Field(1.0, ge=0)
    seed: int = 42
    gradient_accumulation_steps: int = Field(1, ge=1)
    early_stopping_patience: int | None = Field(
        3, ge=0, description="evaluations without a dev F1 gain before stopping; 0 or null: never stop early"
    )
    group_by_length: bool = Field(True, description="batch windows of similar length (less padding)")
    max_steps: int | None = Field(None, ge=1, description="optimizer steps; overrides epochs")
    eval_steps: int | None = Field(
        None, ge=1, description="evaluate and checkpoint every N optimizer steps instead of every epoch"
    )
    num_threads: int | None = Field(
        None, ge=1, description="CPU threads for torch; default: the usable cores that are idle at the start"
    )
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto",
        description="bf16 mixed precision (weights and optimizer stay fp32); auto: bf16 where the hardware does bf16 "
        "natively (a CUDA GPU with bf16, or a CPU with AVX512-BF16 or AMX), else fp32",
    )


class TrackingConfig(_Section):
    """MLflow tracking; embedded by default (a SQLite file in the working directory, artifacts beside it)."""

    enabled: bool = True
    uri: str = "sqlite:///mlflow.db"
    experiment: str = "nerforge"
    run_name: str | None = None


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


class TrainConfig(_Section):
    """Everything ``nerforge train`` needs."""

    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)

    def check_complete(self) -> None:
        """Raise unless the keys without defaults are given."""
        if self.data.train is None:
            raise ConfigError("no training data; give --train PATH or data.train in the config")
        if self.output.dir is None:
            raise ConfigError("no output directory; give --output DIR or output.dir in the config")

    def to_yaml(self) -> str:
        """The resolved config as YAML (every default written out)."""
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Parse a ``.toml``, ``.yaml`` or ``.yml`` file into a dict (no validation)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    text = path.read_text(encoding="utf-8")
    suffix = path.suffix.lower()
    if suffix == ".toml":
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            import tomli as tomllib  # type: ignore[no-redef]
        try:
            raw: Any = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    elif suffix in (".yaml", ".yml"):
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise ConfigError(f"{where}: invalid YAML: {problem}") from None
        raw = raw or {}
    else:
        raise ConfigError(f"{path}: unknown config format {suffix!r}; expected .toml, .yaml or .yml")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections (data, model, training, ...) at the top level")
    _resolve_relative_paths(raw, path.parent)
    return raw


def _resolve_relative_paths(raw: dict[str, Any], base: Path) -> None:
    for key in PATH_KEYS:
        section, name = key.split(".")
        block = raw.get(section)
        if isinstance(block, dict) and isinstance(block.get(name), str):
            block[name] = _relative_to(block[name], base)
        elif isinstance(block, dict) and isinstance(block.get(name), list):  # several files per split
            block[name] = [_relative_to(v, base) if isinstance(v, str) else v for v in block[name]]


def _relative_to(value: str, base: Path) -> str:
    path = Path(value).expanduser()
    return str(path) if path.is_absolute() else str(base / path)


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``["training.learning_rate=3e-5", ...]`` -> ``{"training.learning_rate": 3e-05, ...}`` (YAML scalars)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key or "." not in key:
            raise ConfigError(f"--set expects section.key=value (e.g. training.learning_rate=3e-5); got {item!r}")
        try:
            out[key] = yaml.safe_load(value) if value.strip() else None
        except yaml.YAMLError:
            out[key] = value
    return out


def apply_overrides(raw: dict[str, Any], overrides: Mapping[str, Any], *, source: str = "--set") -> dict[str, Any]:
    """Set dotted keys in a nested dict (in place, and returned)."""
    for dotted, value in overrides.items():
        parts = dotted.split(".")
        node = raw
        for depth, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                where = ".".join(parts[: depth + 1])
                raise ConfigError(f"{source}: '{where}' is a value, not a section; cannot set '{dotted}'")
            node = child
        node[parts[-1]] = value
    return raw


def load_config(
    path: str | Path | None,
    overrides: Mapping[str, Any] | None = None,
    *,
    flags: Mapping[str, Any] | None = None,
) -> TrainConfig:
    """Read, override and validate a training config.

    Args:
        path: a TOML/YAML file, or ``None`` to start from the defaults.
        overrides: dotted keys from ``--set`` (applied last).
        flags: dotted keys from command-line flags such as ``--epochs`` (applied before ``overrides``).

    Raises:
        ConfigError: unreadable file, unknown key or invalid value; the message names the key and its source.
    """
    for key in list(flags or {}) + list(overrides or {}):
        _check_section_path(key)
    raw = read_config_file(path) if path is not None else {}
    sources = {key: str(path) for key in _dotted_keys(raw)}
    apply_overrides(raw, dict(flags or {}), source="command line")
    sources.update({key: "command line" for key in flags or {}})
    apply_overrides(raw, dict(overrides or {}))
    sources.update({key: "--set" for key in overrides or {}})
    try:
        config = TrainConfig.model_validate(raw)
    except ValidationError as exc:
        raise _config_error(exc, sources) from None
    return _absolute_paths(config)


def _check_section_path(dotted: str) -> None:
    """Raise when a dotted key goes *through* a plain value (``training.epochs.x``); mappings may be entered."""
    parts = dotted.split(".")
    model: type[BaseModel] = TrainConfig
    for depth, part in enumerate(parts[:-1]):
        field = model.model_fields.get(part)
        if field is None:
            return  # unknown: validation names it
        annotation = _section_model(field.annotation)
        if annotation is not None:
            model = annotation
            continue
        if "dict" in str(field.annotation):
            return
        where = ".".join(parts[: depth + 1])
        raise ConfigError(f"--set: '{where}' is a value, not a section; cannot set '{dotted}'")


def _absolute_paths(config: TrainConfig) -> TrainConfig:
    for key in PATH_KEYS:
        section, name = key.split(".")
        block = getattr(config, section)
        value = getattr(block, name)
        if isinstance(value, list):
            setattr(block, name, [Path(v).expanduser().resolve() for v in value])
        elif value is not None:
            setattr(block, name, type(value)(Path(value).expanduser().resolve()))
    return config


def _dotted_keys(raw: Mapping[str, Any], prefix: str = "") -> list[str]:
    out: list[str] = []
    for key, value in raw.items():
        dotted = f"{prefix}{key}"
        out.append(dotted)
        if isinstance(value, Mapping) and not dotted.startswith("data.label_map"):
            out.extend(_dotted_keys(value, dotted + "."))
    return out


def _model_at(loc: Sequence[str | int]) -> type[BaseModel] | None:
    model: type[BaseModel] = TrainConfig
    for part in loc:
        field = model.model_fields.get(str(part))
        annotation = _section_model(field.annotation) if field is not None else None
        if annotation is None:
            return None
        model = annotation
    return model


def _section_model(annotation: Any) -> type[BaseModel] | None:
    """The section model of a field annotated ``Section`` or ``Section | None`` (optional sections such as
    ``data.split``); ``None`` for plain values."""
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _config_error(exc: ValidationError, sources: Mapping[str, str]) -> ConfigError:
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"]]
    key = ".".join(loc)
    # the source of the key itself (or of a key under it), else of the nearest section that holds it
    below = [src for k, src in sources.items() if k == key or k.startswith(key + ".")]
    above = [sources[k] for k in (".".join(loc[:i]) for i in range(len(loc) - 1, 0, -1)) if k in sources]
    source = (below or above or ["config"])[-1 if below else 0]
    if err["type"] == "extra_forbidden":
        parent = _model_at(loc[:-1])
        allowed = sorted(parent.model_fields) if parent is not None else []
        message = f"{source}: unknown key '{key}'; expected one of {', '.join(allowed)}"
        close = difflib.get_close_matches(loc[-1], allowed, n=1)
        if close:
            message += f" (did you mean '{'.'.join(loc[:-1] + close)}'?)"
        return ConfigError(message)
    value = err.get("input")
    shown = f" (got {value!r})" if not isinstance(value, (dict, list)) else ""
    more = f"; and {len(exc.errors()) - 1} more problem(s)" if len(exc.errors()) > 1 else ""
    return ConfigError(f"{source}: {key or 'config'}: {err['msg']}{shown}{more}")
