"""Loading the training configuration: a TOML or YAML file, dotted overrides, one validated :class:`TrainConfig`.

Every section is a pydantic model that rejects unknown keys, so a misspelt key fails before any data is read::

    error: job.toml: unknown key 'training.lr'; expected one of batch_size, early_stopping_patience, ...

Precedence, lowest first: the file, then command-line flags, then ``--set key.sub=value`` overrides (values are
TOML inline values, ``{dev = 0.1, test = 0.2}``, ``"text"``, ``3e-5``, ``true``, or else YAML ones, ``[SKILL, TECH]``,
``{dev: 0.1}``). Relative paths written in the file are relative to the file's folder, except the data files of
``[data]``: those are relative to the data root, which is ``--data-dir DIR``, else (in a file with ``data.root``)
``$NERFORGE_DATA_DIR``, else ``data.root`` (relative to the file), else the file's folder. Paths given on the command line are relative to the
working directory. The resolved config
(absolute paths, every default filled in) is saved next to the model as ``config.resolved.yaml``.

EXAMPLE:
    >>> cfg = load_config(None, overrides={"data.train": "train.conll", "output.dir": "model"})
    >>> cfg.training.batch_size
    16
"""

from __future__ import annotations

import difflib
import os
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from nerforge.config.schema import DATA_DIR_ENV, HEAD_KEYS, PATH_KEYS, TrainConfig
from nerforge.errors import ConfigError


def _toml() -> Any:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    return tomllib


def data_root(base: Path, written: Any, data_dir: str | Path | None = None) -> Path:
    """The folder the ``[data]`` paths of a config file in ``base`` are relative to.

    ``data_dir`` (``--data-dir``) first; then, for a file that declares ``data.root`` (a portable recipe),
    ``$NERFORGE_DATA_DIR`` and then that root (relative to the file); else the file's own folder. The environment
    variable never moves the paths of a file without ``root``: it is ambient, and such a file's paths are its own.
    """
    if data_dir:
        root, source = Path(data_dir).expanduser().resolve(), "--data-dir"
    elif isinstance(written, str) and written and os.environ.get(DATA_DIR_ENV):
        root, source = Path(os.environ[DATA_DIR_ENV]).expanduser().resolve(), f"${DATA_DIR_ENV}"
    elif isinstance(written, str) and written:
        root, source = Path(_relative_to(written, base)).resolve(), "data.root"
    else:
        return base
    if not root.is_dir():
        raise ConfigError(f"the data root {root} (from {source}) is not a folder")
    return root


def read_config_file(path: str | Path, *, data_dir: str | Path | None = None) -> dict[str, Any]:
    """Parse a ``.toml``, ``.yaml`` or ``.yml`` file into a dict (no validation); relative paths resolved (the data
    files against :func:`data_root`, others against the file's folder)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    text = path.read_text(encoding="utf-8")
    suffix = path.suffix.lower()
    if suffix == ".toml":
        tomllib = _toml()
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
    data = raw.get("data")
    root = data_root(path.parent, data.get("root") if isinstance(data, dict) else None, data_dir)
    if isinstance(data, dict) and (data.get("root") or data_dir):
        data["root"] = str(root)
    _resolve_relative_paths(raw, path.parent, root)
    return raw


def _resolve_relative_paths(raw: dict[str, Any], base: Path, root: Path) -> None:
    for key in PATH_KEYS:
        section, name = key.split(".")
        if key == "data.root":
            continue
        if section == "data":
            base_here = root
        else:
            base_here = base
        block = raw.get(section)
        if isinstance(block, dict) and isinstance(block.get(name), str):
            block[name] = _relative_to(block[name], base_here)
        elif isinstance(block, dict) and isinstance(block.get(name), list):  # several files per split
            block[name] = [_relative_to(v, base_here) if isinstance(v, str) else v for v in block[name]]


def _relative_to(value: str, base: Path) -> str:
    path = Path(value).expanduser()
    return str(path) if path.is_absolute() else str(base / path)


def parse_value(text: str) -> Any:
    """One ``--set`` value: a TOML inline value (``{dev = 0.1}``, ``"x"``, ``3e-5``, ``[1, 2]``) where it is one, else
    a YAML one (``[SKILL, TECH]``, ``{dev: 0.1}``, bare words), else the text itself; empty is ``None``."""
    if not text.strip():
        return None
    tomllib = _toml()
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``["training.learning_rate=3e-5", "data.split={dev=0.1}"]`` -> ``{"training.learning_rate": 3e-05,
    "data.split": {"dev": 0.1}}`` (TOML inline values, else YAML)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key or "." not in key:
            raise ConfigError(f"--set expects section.key=value (e.g. training.learning_rate=3e-5); got {item!r}")
        out[key] = parse_value(value)
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
    data_dir: str | Path | None = None,
) -> TrainConfig:
    """Read, override and validate a training config.

    Args:
        path: a TOML/YAML file, or ``None`` to start from the defaults.
        overrides: dotted keys from ``--set`` (applied last).
        flags: dotted keys from command-line flags such as ``--epochs`` (applied before ``overrides``).
        data_dir: ``--data-dir``: the folder the file's data paths are relative to (see :func:`data_root`).

    Raises:
        ConfigError: unreadable file, unknown key or invalid value; the message names the key and its source.
    """
    flags, overrides = _nested_head_keys(flags or {}), _nested_head_keys(overrides or {})
    for key in list(flags) + list(overrides):
        _check_section_path(key)
    raw = read_config_file(path, data_dir=data_dir) if path is not None else {}
    model = raw.get("model")
    if isinstance(model, dict) and any(key in model for key in HEAD_KEYS):  # the flat head keys of earlier configs
        head = model.setdefault("head", {})
        if isinstance(head, dict):
            head.update({key: model.pop(key) for key in HEAD_KEYS if key in model})
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


def _nested_head_keys(keys: Mapping[str, Any]) -> dict[str, Any]:
    """``model.KEY`` for a head option (the flat spelling of earlier configs) as ``model.head.KEY``, so that each
    source keeps its precedence over the others whichever spelling it uses."""
    return {
        (f"model.head.{dotted[6:]}" if dotted.startswith("model.") and dotted[6:] in HEAD_KEYS else dotted): value
        for dotted, value in keys.items()
    }


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
        if block is None:  # an optional section that is not given (distill)
            continue
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
        if isinstance(value, Mapping) and _model_at(dotted.split(".")) is not None:  # a section, not a value
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
        if not close and parent is not None:  # a key of a section inside this one (a head key misspelt at model level)
            nested = {
                name: f"{section}.{name}"
                for section, field in parent.model_fields.items()
                if (inner := _section_model(field.annotation)) is not None
                for name in inner.model_fields
            }
            close = [nested[c] for c in difflib.get_close_matches(loc[-1], list(nested), n=1)]
        if close:
            message += f" (did you mean '{'.'.join(loc[:-1] + close)}'?)"
        return ConfigError(message)
    value = err.get("input")
    shown = f" (got {value!r})" if not isinstance(value, (dict, list)) else ""
    more = f"; and {len(exc.errors()) - 1} more problem(s)" if len(exc.errors()) > 1 else ""
    return ConfigError(f"{source}: {key or 'config'}: {err['msg']}{shown}{more}")
