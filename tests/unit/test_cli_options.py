"""The data flags are generated from ReadOptions (their one declaration): every data command lists them all with
ReadOptions' names, defaults and help, and the decorators hand the command what the flags describe."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
import typer.main

from nerforge.cli import app
from nerforge.cli.options import read_options_from_flags, with_data_flags, with_read_options
from nerforge.data.readers.options import READ_OPTION_FIELDS, ReadOptions
from nerforge.errors import UsageError

DATA_FLAGS = [f.name for f in READ_OPTION_FIELDS]


@pytest.mark.parametrize("name", ["convert", "inspect", "evaluate", "train"])
def test_cli_options_every_data_command_lists_every_data_flag(name: str) -> None:
    command = typer.main.get_command(app).commands[name]  # type: ignore[attr-defined]
    data = [p for p in command.params if p.rich_help_panel == "Data"]
    assert [p.name for p in data] == DATA_FLAGS
    flags = {f.name: f.metadata.get("flag") or "--" + f.name.replace("_", "-") for f in READ_OPTION_FIELDS}
    assert [p.opts for p in data] == [[flags[n]] for n in DATA_FLAGS]
    defaults = {f.name: f.default for f in READ_OPTION_FIELDS}
    # train and evaluate take only the flags given (the config, or the options saved with the model, fill the rest)
    # --tag-column may be given more than once (several layers): not given is None, folded into the default -1
    expected = [None if name in ("train", "evaluate") or n == "tag_column" else defaults[n] for n in DATA_FLAGS]
    assert [p.default for p in data] == expected
    assert [p.help for p in data] == [f.metadata["help"] for f in READ_OPTION_FIELDS]  # the help is ReadOptions'


def test_cli_options_flags_and_config_keys_come_from_one_declaration() -> None:
    from nerforge.config import DataConfig

    for f in READ_OPTION_FIELDS:  # every reader option is a data.* key with the same default and help
        info = DataConfig.model_fields[f.name]
        assert info.default == f.default and info.description == f.metadata["help"]
    flags = read_options_from_flags(label_names="O,B-X", sentence_columns="doc,sent", separator="space")
    keys = DataConfig(label_names=["O", "B-X"], sentence_columns=["doc", "sent"], separator=" ").read_options()
    assert flags == keys


def test_cli_options_with_read_options_builds_the_options() -> None:
    @with_read_options
    def command(path: str, *, options: ReadOptions) -> tuple[str, ReadOptions]:
        return path, options

    assert "options" not in inspect.signature(command).parameters
    assert command("x") == ("x", ReadOptions())
    path, options = command("x", tag_column=2, separator="tab", label_names="O,B-PER")
    assert (path, options.tag_column, options.separator, options.label_names) == ("x", 2, "\t", ("O", "B-PER"))
    with pytest.raises(UsageError, match="unknown tag scheme 'iob9'"):
        command("x", scheme="iob9")


def test_cli_options_with_data_flags_passes_none_for_flags_not_given() -> None:
    @with_data_flags
    def command(*, data_flags: dict[str, Any]) -> dict[str, Any]:
        return data_flags

    assert command() == dict.fromkeys(DATA_FLAGS)
    assert command(missing_tag="error")["missing_tag"] == "error"


def test_cli_options_a_command_must_not_declare_a_data_flag_itself() -> None:
    def command(format: str | None = None, *, options: ReadOptions) -> None: ...

    with pytest.raises(TypeError, match="declares data flags itself: format"):
        with_read_options(command)
    with pytest.raises(TypeError, match="must take the keyword argument 'options'"):
        with_read_options(lambda: None)
