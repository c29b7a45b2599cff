"""Data flags shared by ``convert``, ``inspect``, ``evaluate`` and ``train``, generated from the fields of
:class:`~nerforge.data.readers.options.ReadOptions` (their one declaration: name, default, help), their parsing into
a ``ReadOptions``, and decorators that give a command all of them.

Use in a command::

    @with_read_options
    def inspect_cli(path: Path, ..., *, options: ReadOptions) -> None:
        report = inspect_files([path], options)

The command's ``--help`` then lists every data flag (``--format``, ``--tag-column``, ...) in the "Data" panel, and
``options`` is what :func:`read_options_from_flags` builds from them. Every flag has the default of the matching
``ReadOptions`` field. :func:`with_data_flags` gives the raw flag values instead (``None`` where not given).
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar, get_args

import typer

from nerforge.data.labelmap import load_label_map
from nerforge.data.readers.options import READ_OPTION_FIELDS, READ_OPTION_NAMES, ReadOptions
from nerforge.errors import UsageError

_PANEL = "Data"
R = TypeVar("R")

_SEPARATORS = {"tab": "\t", "\\t": "\t", "space": " ", "whitespace": " ", "ws": " "}
_HINTS = typing.get_type_hints(ReadOptions)


def _is_int(name: str) -> bool:
    return _HINTS[name] is int


def _is_bool(name: str) -> bool:
    return _HINTS[name] is bool


def _flag_type(f: Any) -> Any:
    """The Typer option of one reader option: ``--token-column`` for ``token_column``, its help, in the Data panel.

    Integers stay integers; every other option is given as text on the command line (lists comma-separated, the
    label map as 'A=B,...' or a file) and parsed by :func:`read_options_from_flags`.
    """
    base: Any = int if _is_int(f.name) else bool if _is_bool(f.name) else (str | None)
    if f.name == REPEATED_COLUMN:
        base = list[int] | None  # given more than once: several tag columns (folded into tag_columns)
    flag = f.metadata.get("flag") or "--" + f.name.replace("_", "-")
    return Annotated[base, typer.Option(flag, help=f.metadata["help"], rich_help_panel=_PANEL)]


def _flag_default(f: Any) -> Any:
    if f.name == REPEATED_COLUMN:
        return None
    return f.default if isinstance(f.default, (bool, int, str)) or f.default is None else None


REPEATED_COLUMN = "tag_column"


def _fold_tag_columns(values: dict[str, Any], unset: Any) -> dict[str, Any]:
    """``--tag-column`` as Typer gives it (a list): one column stays ``tag_column``, several become ``tag_columns``
    (``unset``: what a flag not given is)."""
    given = values.get(REPEATED_COLUMN)
    if given is None:
        return {**values, REPEATED_COLUMN: unset}
    if not isinstance(given, list):
        return values
    if len(given) > 1:
        if values.get("tag_columns") is not None:
            raise UsageError("give several tag columns one way: --tag-column more than once, or --tag-columns 1,2")
        return {**values, "tag_columns": list(given), REPEATED_COLUMN: unset}
    return {**values, REPEATED_COLUMN: given[0] if given else unset}


def _split_list(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    items = tuple(v.strip() for v in value.split(",") if v.strip())
    return items or None


def _column_numbers(value: Any) -> tuple[int, ...] | None:
    """``--tag-columns 1,2`` (or ``--tag-column`` given more than once: a list) as column numbers."""
    items = list(value) if isinstance(value, (list, tuple)) else _split_list(str(value)) or []
    try:
        numbers = tuple(int(v) for v in items)
    except ValueError:
        raise UsageError(f"--tag-columns takes column numbers separated by commas (1,2), got {value!r}") from None
    return numbers or None


def _parse(name: str, value: Any) -> Any:
    """One flag's text as the option's value (see :func:`_flag_type`)."""
    if value is None or _is_int(name) or _is_bool(name):
        return value
    hint = _HINTS[name]
    args = typing.get_args(hint)
    if name == "tag_columns":
        return _column_numbers(value)
    if any(typing.get_origin(a) is tuple for a in args):
        return _split_list(value)
    if name == "label_map":
        return load_label_map(value) if value else None
    if name == "separator":
        return _SEPARATORS.get(value.lower(), value)
    if name == "missing_tag":
        return value.lower()
    if name == "strip_token_prefix":
        return value or None  # an empty prefix strips nothing
    return value


def read_options_from_flags(**flags: Any) -> ReadOptions:
    """Build the :class:`ReadOptions` that the data flags describe (flags not given take the defaults).

    Raises:
        UsageError: a value :func:`nerforge.data.readers.options.problems` refuses (unknown format, scheme or
            missing-tag policy, an empty separator), naming the flag.
        DataFormatError: a label-map file that cannot be read.
    """
    unknown = set(flags) - set(READ_OPTION_NAMES)
    if unknown:
        raise TypeError(f"unknown data flags: {', '.join(sorted(unknown))}")
    values = {name: _parse(name, value) for name, value in flags.items()}
    try:
        return ReadOptions(**values)
    except UsageError as exc:
        raise UsageError(f"{exc} (a data flag: see --help)") from None


# Each reader option becomes a flag, in the order of ReadOptions; nothing is declared here a second time.
_FLAG_TYPES: dict[str, Any] = {f.name: _flag_type(f) for f in READ_OPTION_FIELDS}
_FLAG_DEFAULTS: dict[str, Any] = {f.name: _flag_default(f) for f in READ_OPTION_FIELDS}
_FIELD_DEFAULTS: dict[str, Any] = {f.name: f.default for f in READ_OPTION_FIELDS}


def _flag_parameters(unset_is_none: bool) -> list[inspect.Parameter]:
    """The data flags as keyword-only parameters; with ``unset_is_none`` each is optional and defaults to ``None``."""
    params = []
    for name, flag in _FLAG_TYPES.items():
        annotation, default = flag, _FLAG_DEFAULTS[name]
        if unset_is_none:
            base, info = get_args(flag)
            annotation, default = Annotated[base | None, info], None
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default))
    return params


def _add_data_flags(
    command: Callable[..., R], into: str, build: Callable[[dict[str, Any]], Any], *, unset_is_none: bool
) -> Callable[..., R]:
    # Typer builds a command's options from inspect.signature() and cannot spread one parameter (a dataclass) over
    # several options. So the data flags are appended to the signature Typer sees (__signature__, which Typer reads
    # as is, hence the evaluated annotations), and the wrapper folds the values Typer passes back into the one
    # keyword argument ``into``. This keeps each command a plain function with its own options only, and the data
    # flags declared once, here; a shared helper called with locals() would still need all 15 parameters per command.
    signature = inspect.signature(command, eval_str=True)
    if into not in signature.parameters:
        raise TypeError(f"{command.__qualname__} must take the keyword argument {into!r}")
    own = [p for p in signature.parameters.values() if p.name != into]
    flags = _flag_parameters(unset_is_none)
    clash = {p.name for p in own} & {p.name for p in flags}
    if clash:
        raise TypeError(f"{command.__qualname__} declares data flags itself: {', '.join(sorted(clash))}")

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> R:
        values = {p.name: kwargs.pop(p.name, p.default) for p in flags}
        values = _fold_tag_columns(values, None if unset_is_none else _FIELD_DEFAULTS[REPEATED_COLUMN])
        return command(*args, **kwargs, **{into: build(values)})

    params = [*own, *flags]
    wrapper.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params if p.annotation is not p.empty}
    if signature.return_annotation is not signature.empty:
        wrapper.__annotations__["return"] = signature.return_annotation
    return wrapper


def with_read_options(command: Callable[..., R]) -> Callable[..., R]:
    """Give a Typer command every data flag; it receives them as one ``options: ReadOptions`` keyword argument.

    The flags are checked when the command runs, before its body (see :func:`read_options_from_flags`).
    """
    return _add_data_flags(command, "options", lambda values: read_options_from_flags(**values), unset_is_none=False)


def with_data_flags(command: Callable[..., R]) -> Callable[..., R]:
    """Give a Typer command every data flag, each defaulting to ``None`` (not given); it receives them as one
    ``data_flags: dict[str, Any]`` keyword argument, for commands where only the flags given override something else.
    """
    return _add_data_flags(command, "data_flags", dict, unset_is_none=True)


def given_options(data_flags: dict[str, Any]) -> dict[str, Any]:
    """The data flags that were given (``None`` is not given), parsed and checked as :class:`ReadOptions` values."""
    given = {name: value for name, value in data_flags.items() if value is not None}
    if not given:
        return {}
    parsed = read_options_from_flags(**given)
    return {name: getattr(parsed, name) for name in given}


def model_read_options(model: Any, data_flags: dict[str, Any]) -> ReadOptions:
    """How to read annotated data for ``model``: the reading options saved with it (``nerforge.json``), with the data
    flags given now on top; the defaults for a model without saved options or a path that is not a model directory
    (loading the model reports that)."""
    from pathlib import Path

    from nerforge.data.readers.saved import from_saved
    from nerforge.errors import ModelError
    from nerforge.model_dir import ModelMeta

    try:
        saved = ModelMeta.load(Path(model)).reading
    except ModelError:
        saved = {}
    return from_saved(saved, given_options(data_flags))


# Flags of `train` and `distill` and the config keys they set.
FLAG_KEYS = {
    "train": "data.train",
    "dev": "data.dev",
    "test": "data.test",
    "output": "output.dir",
    "model": "model.name",
    "max_length": "model.max_length",
    "epochs": "training.epochs",
    "max_steps": "training.max_steps",
    "seed": "training.seed",
    "batch_size": "training.batch_size",
    "learning_rate": "training.learning_rate",
    "tracking_uri": "tracking.uri",
    "experiment": "tracking.experiment",
    "run_name": "tracking.run_name",
}


def config_default(section: Any, key: str) -> str:
    """`` [default: X]`` from the config schema: these flags default to "not given" (the config file decides), so
    Typer cannot show what a run without them gets."""
    value = section.model_fields[key].default
    return f" \\[default: {value:g}]" if isinstance(value, float) else f" \\[default: {value}]"  # \\[: not rich markup


def flag_overrides(data_flags: dict[str, Any], **flags: Any) -> dict[str, Any]:
    """Dotted config keys for the flags that were given (``None`` means not given).

    Data flags go through :func:`nerforge.cli.options.read_options_from_flags` (the same checks and conversions as
    in ``convert`` and ``inspect``) and become ``data.<option>`` keys.
    """
    out = {FLAG_KEYS[name]: value for name, value in flags.items() if value not in (None, [])}
    for key in ("data.train", "data.dev", "data.test", "output.dir"):
        if key in out:
            value = out[key]
            paths = [str(Path(v).expanduser().resolve()) for v in (value if isinstance(value, list) else [value])]
            out[key] = paths[0] if len(paths) == 1 else paths
    given = {name: value for name, value in data_flags.items() if value is not None}
    if given:
        options = read_options_from_flags(**given)
        for name in given:
            value = getattr(options, name)
            out[f"data.{name}"] = list(value) if isinstance(value, tuple) else value
    return out
