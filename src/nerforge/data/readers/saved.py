"""How a model directory keeps the way its training data was read (``nerforge.json`` ``extra.reading``), and how
``evaluate`` and ``export --parity-data`` read annotated data that way again, with options given now on top."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nerforge.data.readers.labels import load_labels_file
from nerforge.data.readers.options import READ_OPTION_FIELDS, READ_OPTION_NAMES, ReadOptions

# Options describing one file rather than the data's meaning: never carried to another file.
_PER_FILE = ("dataset_split",)


def saved_form(options: ReadOptions) -> dict[str, Any]:
    """The options that differ from the defaults, as JSON values: what a model directory keeps of how its training
    data was read (``nerforge.json`` ``extra.reading``), so that ``evaluate`` and ``export --parity-data`` read
    annotated data the same way without the flags again.

    A labels file that is a plain list of names is kept as ``label_names`` (the file may not travel with the model);
    an id table with gaps is kept as the file's absolute path.
    """
    out: dict[str, Any] = {}
    for f in READ_OPTION_FIELDS:
        value = getattr(options, f.name)
        if f.name in _PER_FILE or value == f.default:
            continue
        if f.name == "labels_file":
            names = load_labels_file(value)
            if isinstance(names, tuple) and not options.label_names:
                out["label_names"] = list(names)
                continue
            value = str(Path(value).expanduser().resolve())
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def from_saved(saved: dict[str, Any] | None, overrides: dict[str, Any] | None = None) -> ReadOptions:
    """:class:`ReadOptions` from :func:`saved_form` output, with ``overrides`` (options given now) on top; unknown
    keys (from a newer nerforge) are ignored.

    Raises:
        UsageError: a value :func:`problems` refuses.
    """
    values: dict[str, Any] = {}
    for name, value in (saved or {}).items():
        if name in READ_OPTION_NAMES and name not in _PER_FILE:
            values[name] = tuple(value) if isinstance(value, list) else value
    if overrides:
        if "labels_file" in overrides and "label_names" not in overrides:
            values.pop("label_names", None)  # a labels file given now replaces the saved names
        values.update(overrides)
    return ReadOptions(**values)
